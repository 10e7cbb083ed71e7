package receipts

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/money"
	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
	receiptsv1 "github.com/bcx-exchange/bcx/proto/bcx/receipts/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
)

// Issued receipt numbers are upper-case letters, digits and '-'. Receipts the
// registry creates from others (split, merge, partial delivery) are numbered
// "<parent>.<n>"; since '.' never occurs in an issued number, the two can
// never collide.
var (
	receiptNumberPattern = regexp.MustCompile(`^[A-Z0-9][A-Z0-9-]{0,47}$`)
	anyReceiptNumber     = regexp.MustCompile(`^[A-Z0-9][A-Z0-9.-]{0,199}$`)
	pieceNumberPattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$`)
	yearPattern          = regexp.MustCompile(`^(19|20)[0-9]{2}$`)
)

const (
	maxPieces    = 5000
	maxTextField = 128
	maxKeyLength = 128
)

func required(field, v string) error {
	if v == "" {
		return rpcerr.Invalid(field, "is required")
	}
	return nil
}

// text checks a free-text field: printable, bounded.
func text(field, v string, needed bool) error {
	if needed && v == "" {
		return rpcerr.Invalid(field, "is required")
	}
	if len(v) > maxTextField {
		return rpcerr.Invalid(field, "longer than %d bytes", maxTextField)
	}
	for _, c := range v {
		if !unicode.IsPrint(c) {
			return rpcerr.Invalid(field, "contains a control character")
		}
	}
	return nil
}

func validKey(key string) error {
	if len(key) > maxKeyLength {
		return rpcerr.Invalid("idempotency_key", "longer than %d bytes", maxKeyLength)
	}
	return nil
}

func validReceiptNumber(field, v string) error {
	if !anyReceiptNumber.MatchString(v) {
		return rpcerr.Invalid(field, "%q is not a receipt number", v)
	}
	return nil
}

func parseDate(field, v string) (time.Time, error) {
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return t, rpcerr.Invalid(field, "%q: want a date YYYY-MM-DD", v)
	}
	return t, nil
}

// parseWeight reads a decimal weight in tonnes into units of 10^-scale t. A
// weight with more decimals than the commodity allows is refused, never
// rounded.
func parseWeight(field, v string, scale int32) (int64, error) {
	d, err := money.ParseDecimal(v)
	if err != nil {
		return 0, rpcerr.Invalid(field, "%q is not a decimal number of tonnes", v)
	}
	if !d.IsPositive() {
		return 0, rpcerr.Invalid(field, "%s must be positive", v)
	}
	n, err := money.Steps(d, unitOf(scale))
	if errors.Is(err, money.ErrNotMultiple) {
		return 0, rpcerr.Invalid(field, "%s has more than %d decimal places", v, scale)
	}
	if err != nil {
		return 0, rpcerr.Invalid(field, "%s is too large", v)
	}
	return n, nil
}

// validateIssue checks an issue request against the reference data and
// returns the receipt to create. A warehouse may only issue for a warehouse it
// operates; an unknown code and another operator's code get the same answer,
// InvalidArgument on receipt.warehouse, so the answer reveals nothing about
// other warehouses.
func (s *Server) validateIssue(ctx context.Context, p auth.Principal, in *receiptsv1.Receipt, today string) (*receipt, error) {
	if in == nil {
		return nil, rpcerr.Invalid("receipt", "is required")
	}
	if !receiptNumberPattern.MatchString(in.ReceiptNumber) {
		return nil, rpcerr.Invalid("receipt.receipt_number", "%q: want 1-48 of A-Z, 0-9 and '-', starting with a letter or digit", in.ReceiptNumber)
	}
	for _, f := range []struct {
		name, v string
		needed  bool
	}{
		{"receipt.brand", in.Brand, false}, {"receipt.origin", in.Origin, false},
		{"receipt.inspection_certificate", in.InspectionCertificate, true},
	} {
		if err := text(f.name, f.v, f.needed); err != nil {
			return nil, err
		}
	}
	if err := validProductionDate(in.ProductionDate, today); err != nil {
		return nil, err
	}
	if in.StoragePaidThrough != "" {
		if _, err := parseDate("receipt.storage_paid_through", in.StoragePaidThrough); err != nil {
			return nil, err
		}
	}
	if err := required("receipt.expiry_date", in.ExpiryDate); err != nil {
		return nil, err
	}
	if _, err := parseDate("receipt.expiry_date", in.ExpiryDate); err != nil {
		return nil, err
	}
	if in.ExpiryDate <= today {
		return nil, rpcerr.Invalid("receipt.expiry_date", "%s is not after the issue date %s", in.ExpiryDate, today)
	}
	if len(in.Pieces) == 0 {
		return nil, rpcerr.Invalid("receipt.pieces", "a receipt needs at least one piece")
	}
	if len(in.Pieces) > maxPieces {
		return nil, rpcerr.Invalid("receipt.pieces", "%d pieces: at most %d on one receipt", len(in.Pieces), maxPieces)
	}
	seen := make(map[string]int, len(in.Pieces))
	for i, pc := range in.Pieces {
		field := fmt.Sprintf("receipt.pieces[%d].number", i)
		if !pieceNumberPattern.MatchString(pc.GetNumber()) {
			return nil, rpcerr.Invalid(field, "%q: want 1-64 of letters, digits, '.', '_', '/' and '-'", pc.GetNumber())
		}
		if j, dup := seen[pc.Number]; dup {
			return nil, rpcerr.Invalid(field, "piece %q is listed twice (also pieces[%d])", pc.Number, j)
		}
		seen[pc.Number] = i
	}

	// Reference data.
	w, err := s.ref.warehouse(ctx, in.Warehouse)
	if errors.Is(err, errUnknownRef) || (err == nil && w.OperatorParticipantId != p.ParticipantID) {
		return nil, rpcerr.Invalid("receipt.warehouse", "%q is not a warehouse you operate", in.Warehouse)
	} else if err != nil {
		return nil, err
	}
	c, err := s.ref.commodity(ctx, in.Commodity)
	if errors.Is(err, errUnknownRef) {
		return nil, rpcerr.Invalid("receipt.commodity", "unknown commodity %q", in.Commodity)
	} else if err != nil {
		return nil, err
	}
	if !contains(c.Grades, in.Grade) {
		return nil, rpcerr.Invalid("receipt.grade", "%q is not a grade of %s (grades: %s)", in.Grade, c.Code, strings.Join(c.Grades, ", "))
	}
	customs := typev1.CustomsStatus_CUSTOMS_STATUS_DUTY_PAID
	if w.Bonded {
		customs = typev1.CustomsStatus_CUSTOMS_STATUS_BONDED
	}
	if in.CustomsStatus != typev1.CustomsStatus_CUSTOMS_STATUS_UNSPECIFIED && in.CustomsStatus != customs {
		return nil, rpcerr.Invalid("receipt.customs_status", "goods in warehouse %s are %s", w.Code, customs)
	}
	net, err := parseWeight("receipt.net_weight", in.NetWeight, c.WeightScale)
	if err != nil {
		return nil, err
	}
	r := &receipt{Number: in.ReceiptNumber, Warehouse: w.Code, Commodity: c.Code, Grade: in.Grade, Brand: in.Brand,
		Origin: in.Origin, ProductionDate: in.ProductionDate, Customs: customs, Scale: c.WeightScale,
		Tolerance: c.DeliveryTolerance, Weight: net, Inspection: in.InspectionCertificate,
		StoragePaidThrough: in.StoragePaidThrough, Expiry: in.ExpiryDate, Holder: in.HolderParticipantId,
		Enc: receiptsv1.Encumbrance_ENCUMBRANCE_NONE, Status: receiptsv1.ReceiptStatus_RECEIPT_STATUS_LIVE}
	var sum int64
	for i, pc := range in.Pieces {
		wt, err := parseWeight(fmt.Sprintf("receipt.pieces[%d].net_weight", i), pc.NetWeight, c.WeightScale)
		if err != nil {
			return nil, err
		}
		if sum += wt; sum < 0 {
			return nil, rpcerr.Invalid("receipt.pieces", "the pieces' weights are too large")
		}
		r.Pieces = append(r.Pieces, piece{Number: pc.Number, Weight: wt})
	}
	if sum != net {
		return nil, rpcerr.Invalid("receipt.pieces", "the pieces sum to %s t, not the net weight %s t",
			formatWeight(sum, c.WeightScale), formatWeight(net, c.WeightScale))
	}
	sortPieces(r.Pieces)
	if err := s.requireRole(ctx, "receipt.holder_participant_id", in.HolderParticipantId, typev1.Role_ROLE_MEMBER, "an active trading member"); err != nil {
		return nil, err
	}
	return r, nil
}

func validProductionDate(v, today string) error {
	const field = "receipt.production_date"
	if err := required(field, v); err != nil {
		return err
	}
	if !yearPattern.MatchString(v) {
		if _, err := time.Parse(time.DateOnly, v); err != nil {
			return rpcerr.Invalid(field, "%q: want a date YYYY-MM-DD or a crop year YYYY", v)
		}
	}
	if v > today {
		return rpcerr.Invalid(field, "%s is in the future", v)
	}
	return nil
}

// requireRole checks that a participant named in a request exists, is active
// and has the role; anything else is InvalidArgument on field.
func (s *Server) requireRole(ctx context.Context, field, id string, role typev1.Role, what string) error {
	if id == "" {
		return rpcerr.Invalid(field, "is required")
	}
	part, err := s.ref.participant(ctx, id)
	if errors.Is(err, errUnknownRef) || (err == nil && (part.Role != role || part.Status != listingv1.ParticipantStatus_PARTICIPANT_STATUS_ACTIVE)) {
		return rpcerr.Invalid(field, "%q is not %s", id, what)
	}
	return err
}

func contains[T comparable](xs []T, x T) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
