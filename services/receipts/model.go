package receipts

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"google.golang.org/protobuf/types/known/timestamppb"

	receiptsv1 "github.com/bcx-exchange/bcx/proto/bcx/receipts/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
)

// piece is one bale, drum or tank lot; Weight is in the receipt's weight units.
type piece struct {
	Number string `json:"n"`
	Weight int64  `json:"w"`
}

// Pending commands to the matching core (receipt.Pending).
const (
	pendingNone   = ""
	pendingCredit = "credit"
	pendingDebit  = "debit"
)

// receipt is a row of the receipts table. Weights are int64 counts of
// 10^-Scale tonnes, so they add and compare exactly.
type receipt struct {
	Number, Warehouse, Commodity, Grade, Brand, Origin, ProductionDate string
	Customs                                                            typev1.CustomsStatus
	Scale                                                              int32
	// Tolerance is the commodity's over/under-weight tolerance (a fraction) at
	// issue: deliveries of this receipt are judged against it.
	Tolerance string
	Weight    int64
	// Pieces are kept in piece-number order.
	Pieces                                 []piece
	Inspection, StoragePaidThrough, Expiry string
	Holder                                 string
	Enc                                    receiptsv1.Encumbrance
	PledgeBank, PledgeLoan                 string
	PledgeCurrency, PledgeAmount           string
	Status                                 receiptsv1.ReceiptStatus
	IssuedAt                               int64
	Version, Children, Commands, Pool      int64
	Pending, PendingKey, PendingRequest    string
	PendingSymbols                         []string
	PendingAfter                           int64
	isNew                                  bool
	origVersion                            int64
	// piecesChanged: the flush rewrites the pieces column only when set (a
	// cotton receipt's ~185 bales are kilobytes, and most changes leave
	// them alone).
	piecesChanged bool
}

func (r *receipt) clone() *receipt {
	c := *r
	c.Pieces = append([]piece(nil), r.Pieces...)
	c.PendingSymbols = append([]string(nil), r.PendingSymbols...)
	return &c
}

func sortPieces(ps []piece) {
	sort.Slice(ps, func(i, j int) bool { return ps[i].Number < ps[j].Number })
}

func sumPieces(ps []piece) int64 {
	var n int64
	for _, p := range ps {
		n += p.Weight
	}
	return n
}

func unitOf(scale int32) decimal.Decimal { return decimal.New(1, -scale) }

// formatWeight renders weight units as decimal tonnes without trailing zeros
// ("227", "40.125").
func formatWeight(units int64, scale int32) string {
	return decimal.New(units, -scale).String()
}

// piecesDigest commits to a receipt's pieces in the chain without repeating
// them in every event: SHA-256 over "number\tweight\n" per piece, in order.
func piecesDigest(numbers []string, weights []string) string {
	h := sha256.New()
	for i := range numbers {
		fmt.Fprintf(h, "%s\t%s\n", numbers[i], weights[i])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (r *receipt) piecesDigest() string {
	ns, ws := make([]string, len(r.Pieces)), make([]string, len(r.Pieces))
	for i, p := range r.Pieces {
		ns[i], ws[i] = p.Number, formatWeight(p.Weight, r.Scale)
	}
	return piecesDigest(ns, ws)
}

// exchangeZone is where the exchange's dates (expiry, storage) are read.
var exchangeZone = func() *time.Location {
	if loc, err := time.LoadLocation("Asia/Shanghai"); err == nil {
		return loc
	}
	return time.FixedZone("CST", 8*3600) // China has no DST; the offset is enough
}()

func dateOf(t time.Time) string { return t.In(exchangeZone).Format(time.DateOnly) }

// expired says whether a LIVE receipt is past its expiry date: the expiry date
// is the last day it is good for.
func (r *receipt) expired(today string) bool {
	return r.Status == receiptsv1.ReceiptStatus_RECEIPT_STATUS_LIVE && r.Expiry < today
}

// shownStatus is the status the API reports: EXPIRED is derived from the date,
// not stored, so a receipt expires at midnight without anyone writing to it.
func (r *receipt) shownStatus(today string) receiptsv1.ReceiptStatus {
	if r.expired(today) {
		return receiptsv1.ReceiptStatus_RECEIPT_STATUS_EXPIRED
	}
	return r.Status
}

func shortEnum(s string, prefix string) string { return strings.TrimPrefix(s, prefix) }

func statusName(s receiptsv1.ReceiptStatus) string {
	return shortEnum(s.String(), "RECEIPT_STATUS_")
}

func encName(e receiptsv1.Encumbrance) string { return shortEnum(e.String(), "ENCUMBRANCE_") }

func customsName(c typev1.CustomsStatus) string { return shortEnum(c.String(), "CUSTOMS_STATUS_") }

// describe names a receipt's state for FailedPrecondition messages.
func (r *receipt) describe(today string) string {
	switch {
	case r.Status != receiptsv1.ReceiptStatus_RECEIPT_STATUS_LIVE:
		return statusName(r.Status)
	case r.expired(today):
		return "EXPIRED (expiry date " + r.Expiry + ")"
	}
	s := "LIVE and "
	switch r.Enc {
	case receiptsv1.Encumbrance_ENCUMBRANCE_PLEDGED:
		s += "PLEDGED to " + r.PledgeBank
	case receiptsv1.Encumbrance_ENCUMBRANCE_TRADING_CUSTODY:
		s += "in TRADING_CUSTODY"
	default:
		s += "unencumbered (not in trading)"
	}
	switch r.Pending {
	case pendingCredit:
		s += ", with a deposit waiting for the matching core"
	case pendingDebit:
		s += ", with a withdrawal waiting for the matching core"
	}
	return s
}

// stateReason is the ErrorInfo reason of a refusal caused by the state.
func (r *receipt) stateReason(today string) string {
	switch {
	case r.Status != receiptsv1.ReceiptStatus_RECEIPT_STATUS_LIVE:
		return "RECEIPT_" + statusName(r.Status)
	case r.expired(today):
		return "RECEIPT_EXPIRED"
	case r.Pending != pendingNone:
		return "RECEIPT_PENDING"
	case r.Enc == receiptsv1.Encumbrance_ENCUMBRANCE_PLEDGED:
		return "RECEIPT_PLEDGED"
	case r.Enc == receiptsv1.Encumbrance_ENCUMBRANCE_TRADING_CUSTODY:
		return "RECEIPT_IN_TRADING"
	}
	return "RECEIPT_NOT_IN_TRADING"
}

// toProto renders the receipt; headHash is its latest event's hash.
func (r *receipt) toProto(today, headHash string) *receiptsv1.Receipt {
	out := &receiptsv1.Receipt{
		ReceiptNumber: r.Number, Warehouse: r.Warehouse, Commodity: r.Commodity, Grade: r.Grade, Brand: r.Brand,
		Origin: r.Origin, ProductionDate: r.ProductionDate, CustomsStatus: r.Customs,
		NetWeight: formatWeight(r.Weight, r.Scale), InspectionCertificate: r.Inspection,
		StoragePaidThrough: r.StoragePaidThrough, ExpiryDate: r.Expiry, HolderParticipantId: r.Holder,
		Encumbrance: r.Enc, Status: r.shownStatus(today), IssuedAt: timestamppb.New(time.Unix(0, r.IssuedAt)),
		HeadHash: headHash,
	}
	for _, p := range r.Pieces {
		out.Pieces = append(out.Pieces, &receiptsv1.Piece{Number: p.Number, NetWeight: formatWeight(p.Weight, r.Scale)})
	}
	if r.Enc == receiptsv1.Encumbrance_ENCUMBRANCE_PLEDGED {
		out.Pledge = &receiptsv1.Pledge{BankParticipantId: r.PledgeBank, LoanReference: r.PledgeLoan,
			Amount: &typev1.Money{Currency: r.PledgeCurrency, Amount: r.PledgeAmount}}
	}
	return out
}
