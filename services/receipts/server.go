// Package receipts is the warehouse receipt registry (仓单): documents of title
// to goods in the exchange's warehouses, each with exactly one holder, and a
// tamper-evident history anyone shown a receipt can verify.
//
// What it guarantees, and how:
//   - No double issuance: every piece (bale, drum, tank lot) of a receipt that
//     still stands for goods holds a row in live_pieces, whose primary key
//     refuses a second claim, however concurrent the issues.
//   - No double pledge or sale: a receipt has one encumbrance (none, trading
//     custody, pledged); every write is an UPDATE guarded by the version the
//     transaction read, so of two racing requests one wins and the other is
//     refused by the state the winner left.
//   - Title transfer on settlement: Run consumes the matching core's event log
//     by sequence and moves exactly the receipts each trade allocated, storing
//     its position in the same transaction as the effects (consumer.go).
//   - Goods legs to settlement: that transaction also records, for each trade
//     delivered without a break, its goods leg (net weight delivered) in an
//     outbox, which Run sends to settlement until acknowledged (settlement.go).
//   - Verifiable history: every change appends an event to one registry-wide
//     SHA-256 hash chain; VerifyReceipt returns a proof that VerifyProof (and
//     `bcx receipts verify`) checks offline against a published root (chain.go).
//
// Receipts in trading custody are pools of weight in the matching core
// (CoreService.CreditPosition/DebitPosition); see core.go for how the registry
// and the core stay in step.
package receipts

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/money"
	"github.com/bcx-exchange/bcx/pkg/paging"
	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	"github.com/bcx-exchange/bcx/pkg/sqlstore"
	receiptsv1 "github.com/bcx-exchange/bcx/proto/bcx/receipts/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
)

var _ receiptsv1.ReceiptsServiceServer = (*Server)(nil)

// Config is what the registry needs.
type Config struct {
	// DB is the registry's database; New applies its migrations.
	DB *sqlstore.DB
	// Listing reads reference data (a listingv1.ListingServiceClient whose
	// credential can read every participant: ROLE_SERVICE or ROLE_OPERATOR).
	Listing Listing
	// Core is the matching core (a tradingv1.CoreServiceClient).
	Core   Core
	Logger *slog.Logger
	// Currencies for pledge amounts; defaults to money.NewRegistry().
	Currencies *money.Registry
	// Now defaults to time.Now.
	Now func() time.Time
	// BatchSize is the most core events applied in one transaction (512).
	BatchSize int
	// ApplyWait bounds how long DepositReceipt and WithdrawReceipt wait for the
	// consumer to apply the core's confirmation (10s).
	ApplyWait time.Duration
	// ResendAfter is how long a command an RPC sent to the core may stay
	// unconfirmed before Run's resender sends it again (10s). It also caps
	// the backoff between sends of a goods leg settlement has not
	// acknowledged.
	ResendAfter time.Duration
	// Settlement receives each delivered trade's goods leg (a
	// settlementv1.SettlementInternalServiceClient acting for a ROLE_SERVICE
	// credential). Optional: without it the legs are kept, unsent, until a
	// registry with one runs (Run logs a warning).
	Settlement Settlement
}

// Server implements bcx.receipts.v1.ReceiptsService.
type Server struct {
	receiptsv1.UnimplementedReceiptsServiceServer
	store       *store
	ref         *refData
	core        Core
	settlement  Settlement
	currencies  *money.Registry
	logger      *slog.Logger
	now         func() time.Time
	batchSize   int
	applyWait   time.Duration
	resendAfter time.Duration

	mu        sync.Mutex
	applied   int64         // consumer position as last committed by this process
	advanced  chan struct{} // closed (and replaced) whenever applied moves
	resendNow chan struct{} // wakes the resender
	legsWake  chan struct{} // wakes the goods-leg forwarder
	outbox    []*receipt    // credits for the resender to send (under mu)

	observeBatch func(events int, took time.Duration) // the benchmark's probe
}

// New migrates the database and returns the registry. Call Run to consume the
// core's events; without it, deposits and withdrawals do not complete.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.DB == nil || cfg.Listing == nil || cfg.Core == nil {
		return nil, errors.New("receipts: DB, Listing and Core are required")
	}
	st, err := openStore(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	s := &Server{store: st, core: cfg.Core, settlement: cfg.Settlement, currencies: cfg.Currencies, logger: cfg.Logger, now: cfg.Now,
		batchSize: cfg.BatchSize, applyWait: cfg.ApplyWait, resendAfter: cfg.ResendAfter,
		advanced: make(chan struct{}), resendNow: make(chan struct{}, 1), legsWake: make(chan struct{}, 1)}
	if s.currencies == nil {
		s.currencies = money.NewRegistry()
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.batchSize <= 0 {
		s.batchSize = 512
	}
	if s.applyWait <= 0 {
		s.applyWait = 10 * time.Second
	}
	if s.resendAfter <= 0 {
		s.resendAfter = 10 * time.Second
	}
	s.ref = newRefData(cfg.Listing, time.Now) // cache ages are wall-clock, whatever the business clock says
	return s, nil
}

var (
	member    = []typev1.Role{typev1.Role_ROLE_MEMBER}
	warehouse = []typev1.Role{typev1.Role_ROLE_WAREHOUSE}
	bank      = []typev1.Role{typev1.Role_ROLE_CLEARING_BANK}
)

// Policy says who may call each ReceiptsService method. Reads are open to
// every role and filtered by what the caller may see; the stock report and
// the registry root are public market information.
func Policy() auth.Policy {
	m := func(name string) string { return "/" + receiptsv1.ReceiptsService_ServiceDesc.ServiceName + "/" + name }
	return auth.Policy{
		m("IssueReceipt"):        warehouse,
		m("DepositReceipt"):      member,
		m("WithdrawReceipt"):     member,
		m("PledgeReceipt"):       member,
		m("ReleasePledge"):       bank,
		m("SplitReceipt"):        member,
		m("MergeReceipts"):       member,
		m("RequestCancellation"): member,
		m("ConfirmLoadOut"):      warehouse,
		m("ReportInspection"):    warehouse,
		m("GetReceipt"):          auth.Everyone,
		m("ListReceipts"):        auth.Everyone,
		m("GetStockReport"):      auth.Everyone,
		m("VerifyReceipt"):       auth.Everyone,
		m("GetRegistryRoot"):     auth.Everyone,
	}
}

func (s *Server) today() string { return dateOf(s.now()) }

// idempotent runs fn in a transaction guarded by the request's idempotency
// key: a repeat of the same request returns the first response, a different
// request under the same key is refused, an empty key just runs fn. fn returns
// a builder for the response, called after the events are chained (the
// response shows their hashes).
func idempotent[T proto.Message](ctx context.Context, s *Server, method, key string, req proto.Message,
	fn func(t *txn, p auth.Principal) (func() (T, error), error)) (T, error) {
	var zero T
	p, err := auth.MustFromContext(ctx)
	if err != nil {
		return zero, err
	}
	if err := validKey(key); err != nil {
		return zero, err
	}
	reqBytes, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return zero, err
	}
	hash, scope := sqlstore.RequestHash(reqBytes), "receipts."+method+"/"+p.ParticipantID
	var out T
	err = s.store.run(ctx, s.now, func(t *txn) error {
		if key != "" {
			prev, found, err := sqlstore.Recall(ctx, t.tx, scope, key, hash)
			if errors.Is(err, sqlstore.ErrKeyReused) {
				return rpcerr.Invalid("idempotency_key", "%q was used before with a different request", key)
			}
			if err != nil {
				return err
			}
			if found {
				out = out.ProtoReflect().New().Interface().(T)
				return proto.Unmarshal(prev, out)
			}
		}
		build, err := fn(t, p)
		if err != nil {
			return err
		}
		t.then(func() error {
			res, err := build()
			if err != nil {
				return err
			}
			out = res
			if key == "" {
				return nil
			}
			b, err := proto.Marshal(res)
			if err != nil {
				return err
			}
			return sqlstore.Remember(ctx, t.tx, scope, key, hash, b)
		})
		return nil
	})
	if err != nil {
		return zero, err
	}
	return out, nil
}

// canSee is the registry's visibility rule: members see the receipts they
// hold, warehouses those in warehouses they operate, banks those pledged to
// them, operators and bcx services everything. Whatever a caller cannot see
// answers exactly like a receipt that does not exist.
func (s *Server) canSee(ctx context.Context, p auth.Principal, r *receipt) (bool, error) {
	switch p.Role {
	case typev1.Role_ROLE_OPERATOR, typev1.Role_ROLE_SERVICE:
		return true, nil
	case typev1.Role_ROLE_MEMBER:
		return r.Holder == p.ParticipantID, nil
	case typev1.Role_ROLE_CLEARING_BANK:
		return r.Enc == receiptsv1.Encumbrance_ENCUMBRANCE_PLEDGED && r.PledgeBank == p.ParticipantID, nil
	case typev1.Role_ROLE_WAREHOUSE:
		w, err := s.ref.warehouse(ctx, r.Warehouse)
		if errors.Is(err, errUnknownRef) {
			return false, nil
		}
		return err == nil && w.OperatorParticipantId == p.ParticipantID, err
	}
	return false, nil
}

// visible loads a receipt the caller may see, or answers NotFound.
func (s *Server) visible(ctx context.Context, t *txn, p auth.Principal, field, number string) (*receipt, error) {
	if err := validReceiptNumber(field, number); err != nil {
		return nil, err
	}
	r, err := t.get(number)
	if errors.Is(err, sqlstore.ErrNotFound) {
		return nil, rpcerr.NotFound("receipt", number)
	}
	if err != nil {
		return nil, err
	}
	ok, err := s.canSee(ctx, p, r)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, rpcerr.NotFound("receipt", number)
	}
	return r, nil
}

// refuse is the FailedPrecondition for an action the receipt's state does not
// allow; the message names the state.
func refuse(r *receipt, today, action string) error {
	return rpcerr.Precondition(r.stateReason(today), "cannot %s receipt %s: it is %s", action, r.Number, r.describe(today))
}

// requireFree is the state most holder actions need: LIVE, not expired,
// unencumbered, nothing pending at the core.
func requireFree(r *receipt, today, action string) error {
	if r.Status != receiptsv1.ReceiptStatus_RECEIPT_STATUS_LIVE || r.expired(today) ||
		r.Enc != receiptsv1.Encumbrance_ENCUMBRANCE_NONE || r.Pending != pendingNone {
		return refuse(r, today, action)
	}
	return nil
}

func (s *Server) render(t *txn, r *receipt, today string) (*receiptsv1.Receipt, error) {
	h, err := t.head(r.Number)
	if err != nil {
		return nil, err
	}
	return r.toProto(today, h), nil
}

func piecesDetail(r *receipt) [][2]string {
	out := make([][2]string, len(r.Pieces))
	for i, p := range r.Pieces {
		out[i] = [2]string{p.Number, formatWeight(p.Weight, r.Scale)}
	}
	return out
}

// IssueReceipt creates a receipt for goods in the caller's warehouse.
func (s *Server) IssueReceipt(ctx context.Context, req *receiptsv1.IssueReceiptRequest) (*receiptsv1.IssueReceiptResponse, error) {
	p, err := auth.MustFromContext(ctx)
	if err != nil {
		return nil, err
	}
	today := s.today()
	r, err := s.validateIssue(ctx, p, req.Receipt, today)
	if err != nil {
		return nil, err
	}
	resp, err := idempotent(ctx, s, "IssueReceipt", req.IdempotencyKey, req, func(t *txn, p auth.Principal) (func() (*receiptsv1.IssueReceiptResponse, error), error) {
		if _, err := t.get(r.Number); err == nil {
			return nil, rpcerr.AlreadyExists("receipt.receipt_number", "receipt %s already exists", r.Number)
		} else if !errors.Is(err, sqlstore.ErrNotFound) {
			return nil, err
		}
		numbers := make([]string, len(r.Pieces))
		for i, pc := range r.Pieces {
			numbers[i] = pc.Number
		}
		claimed, err := t.claimedPieces(numbers)
		if err != nil {
			return nil, err
		}
		for i, pc := range req.Receipt.Pieces {
			if _, taken := claimed[pc.Number]; taken {
				return nil, rpcerr.AlreadyExists(fmt.Sprintf("receipt.pieces[%d].number", i), "piece %q is already on a live receipt", pc.Number)
			}
		}
		nr := r.clone()
		nr.IssuedAt = t.now
		t.create(nr)
		t.claim(nr.Pieces)
		t.emit(nr, kindIssued, p.ParticipantID, map[string]any{"pieces": piecesDetail(nr)})
		return func() (*receiptsv1.IssueReceiptResponse, error) {
			out, err := s.render(t, nr, today)
			return &receiptsv1.IssueReceiptResponse{Receipt: out}, err
		}, nil
	})
	if sqlstore.IsUniqueViolation(err) {
		// Lost a race the pre-checks could not see: the constraint decided.
		if strings.Contains(err.Error(), "live_pieces") {
			return nil, rpcerr.AlreadyExists("receipt.pieces", "a piece of this receipt is already on a live receipt")
		}
		return nil, rpcerr.AlreadyExists("receipt.receipt_number", "receipt %s already exists", r.Number)
	}
	return resp, err
}

// PledgeReceipt pledges a free receipt to a clearing bank.
func (s *Server) PledgeReceipt(ctx context.Context, req *receiptsv1.PledgeReceiptRequest) (*receiptsv1.PledgeReceiptResponse, error) {
	pl := req.Pledge
	if pl == nil {
		return nil, rpcerr.Invalid("pledge", "is required")
	}
	if err := text("pledge.loan_reference", pl.LoanReference, true); err != nil {
		return nil, err
	}
	if pl.Amount == nil {
		return nil, rpcerr.Invalid("pledge.amount", "is required")
	}
	cur, err := s.currencies.Lookup(pl.Amount.Currency)
	if err != nil {
		return nil, rpcerr.Invalid("pledge.amount.currency", "unknown currency %q (known: %v)", pl.Amount.Currency, s.currencies.Codes())
	}
	minor, err := cur.ParseAmount(pl.Amount.Amount)
	if err != nil || minor <= 0 {
		return nil, rpcerr.Invalid("pledge.amount.amount", "%q: want a positive amount with at most %d decimals", pl.Amount.Amount, cur.Exponent)
	}
	if err := s.requireRole(ctx, "pledge.bank_participant_id", pl.BankParticipantId, typev1.Role_ROLE_CLEARING_BANK, "an active clearing bank"); err != nil {
		return nil, err
	}
	today := s.today()
	return idempotent(ctx, s, "PledgeReceipt", req.IdempotencyKey, req, func(t *txn, p auth.Principal) (func() (*receiptsv1.PledgeReceiptResponse, error), error) {
		r, err := s.visible(ctx, t, p, "receipt_number", req.ReceiptNumber)
		if err != nil {
			return nil, err
		}
		if err := requireFree(r, today, "pledge"); err != nil {
			return nil, err
		}
		r.Enc, r.PledgeBank, r.PledgeLoan = receiptsv1.Encumbrance_ENCUMBRANCE_PLEDGED, pl.BankParticipantId, pl.LoanReference
		r.PledgeCurrency, r.PledgeAmount = cur.Code, cur.FormatAmount(minor)
		t.save(r)
		t.emit(r, kindPledged, p.ParticipantID, nil)
		return func() (*receiptsv1.PledgeReceiptResponse, error) {
			out, err := s.render(t, r, today)
			return &receiptsv1.PledgeReceiptResponse{Receipt: out}, err
		}, nil
	})
}

// ReleasePledge frees a receipt; only the pledgee bank may (and only it can
// see the receipt to begin with).
func (s *Server) ReleasePledge(ctx context.Context, req *receiptsv1.ReleasePledgeRequest) (*receiptsv1.ReleasePledgeResponse, error) {
	today := s.today()
	return idempotent(ctx, s, "ReleasePledge", req.IdempotencyKey, req, func(t *txn, p auth.Principal) (func() (*receiptsv1.ReleasePledgeResponse, error), error) {
		r, err := s.visible(ctx, t, p, "receipt_number", req.ReceiptNumber)
		if err != nil {
			return nil, err
		}
		if r.Enc != receiptsv1.Encumbrance_ENCUMBRANCE_PLEDGED {
			return nil, refuse(r, today, "release the pledge of")
		}
		bankID, loan := r.PledgeBank, r.PledgeLoan
		r.Enc, r.PledgeBank, r.PledgeLoan, r.PledgeCurrency, r.PledgeAmount = receiptsv1.Encumbrance_ENCUMBRANCE_NONE, "", "", "", ""
		t.save(r)
		t.emit(r, kindPledgeReleased, p.ParticipantID, map[string]any{"bank": bankID, "loan_reference": loan})
		return func() (*receiptsv1.ReleasePledgeResponse, error) {
			out, err := s.render(t, r, today)
			return &receiptsv1.ReleasePledgeResponse{Receipt: out}, err
		}, nil
	})
}

// child makes a new receipt for some of r's goods, numbered "<r>.<n>".
func child(r *receipt, ps []piece, now int64) *receipt {
	r.Children++
	c := &receipt{Number: fmt.Sprintf("%s.%d", r.Number, r.Children), Warehouse: r.Warehouse, Commodity: r.Commodity,
		Grade: r.Grade, Brand: r.Brand, Origin: r.Origin, ProductionDate: r.ProductionDate, Customs: r.Customs,
		Scale: r.Scale, Tolerance: r.Tolerance, Weight: sumPieces(ps), Pieces: ps, Inspection: r.Inspection,
		StoragePaidThrough: r.StoragePaidThrough, Expiry: r.Expiry, Holder: r.Holder,
		Enc: receiptsv1.Encumbrance_ENCUMBRANCE_NONE, Status: receiptsv1.ReceiptStatus_RECEIPT_STATUS_LIVE, IssuedAt: now}
	return c
}

// SplitReceipt partitions a free receipt's pieces into new receipts
// "<number>.<n>"; the original becomes SUPERSEDED. A receipt in trading
// custody must be withdrawn first: the core's pool is keyed by its number.
func (s *Server) SplitReceipt(ctx context.Context, req *receiptsv1.SplitReceiptRequest) (*receiptsv1.SplitReceiptResponse, error) {
	if len(req.Parts) < 2 {
		return nil, rpcerr.Invalid("parts", "a split needs at least two parts")
	}
	for i, part := range req.Parts {
		if len(part.PieceNumbers) == 0 {
			return nil, rpcerr.Invalid(fmt.Sprintf("parts[%d].piece_numbers", i), "a part needs at least one piece")
		}
	}
	today := s.today()
	return idempotent(ctx, s, "SplitReceipt", req.IdempotencyKey, req, func(t *txn, p auth.Principal) (func() (*receiptsv1.SplitReceiptResponse, error), error) {
		r, err := s.visible(ctx, t, p, "receipt_number", req.ReceiptNumber)
		if err != nil {
			return nil, err
		}
		if err := requireFree(r, today, "split"); err != nil {
			return nil, err
		}
		byNumber := make(map[string]piece, len(r.Pieces))
		for _, pc := range r.Pieces {
			byNumber[pc.Number] = pc
		}
		used := map[string]string{}
		parts := make([][]piece, len(req.Parts))
		for i, part := range req.Parts {
			for j, n := range part.PieceNumbers {
				field := fmt.Sprintf("parts[%d].piece_numbers[%d]", i, j)
				pc, ok := byNumber[n]
				if !ok {
					return nil, rpcerr.Invalid(field, "piece %q is not on receipt %s", n, r.Number)
				}
				if prev, dup := used[n]; dup {
					return nil, rpcerr.Invalid(field, "piece %q is already in %s", n, prev)
				}
				used[n] = field
				parts[i] = append(parts[i], pc)
			}
		}
		if len(used) != len(r.Pieces) {
			var missing []string
			for _, pc := range r.Pieces {
				if _, ok := used[pc.Number]; !ok {
					missing = append(missing, pc.Number)
				}
			}
			return nil, rpcerr.Invalid("parts", "every piece must be in a part; missing: %s", strings.Join(missing, ", "))
		}
		parentHead, err := t.head(r.Number)
		if err != nil {
			return nil, err
		}
		var children []*receipt
		var names []string
		for _, ps := range parts {
			sortPieces(ps)
			c := child(r, ps, t.now)
			children = append(children, c)
			names = append(names, c.Number)
		}
		r.Status = receiptsv1.ReceiptStatus_RECEIPT_STATUS_SUPERSEDED
		t.save(r)
		t.emit(r, kindSplit, p.ParticipantID, map[string]any{"into": names})
		for _, c := range children {
			t.create(c)
			t.emit(c, kindSplitFrom, p.ParticipantID, map[string]any{"from": r.Number, "from_head": parentHead, "pieces": piecesDetail(c)})
		}
		return func() (*receiptsv1.SplitReceiptResponse, error) {
			resp := &receiptsv1.SplitReceiptResponse{}
			for _, c := range children {
				out, err := s.render(t, c, today)
				if err != nil {
					return nil, err
				}
				resp.Receipts = append(resp.Receipts, out)
			}
			return resp, nil
		}, nil
	})
}

// sameGoods says whether two receipts are of the same goods, so that merging
// them loses nothing a buyer or a grader would care about.
func sameGoods(a, b *receipt) (string, bool) {
	for _, f := range []struct{ name, x, y string }{
		{"warehouse", a.Warehouse, b.Warehouse}, {"commodity", a.Commodity, b.Commodity}, {"grade", a.Grade, b.Grade},
		{"brand", a.Brand, b.Brand}, {"origin", a.Origin, b.Origin}, {"production_date", a.ProductionDate, b.ProductionDate},
		{"customs_status", a.Customs.String(), b.Customs.String()},
	} {
		if f.x != f.y {
			return f.name, false
		}
	}
	return "", true
}

// MergeReceipts merges free receipts of the same goods held by the caller into
// one, numbered "<lowest number>.<n>". Its expiry and storage paid-through
// dates are the earliest of the merged ones; its inspection certificate lists
// theirs.
func (s *Server) MergeReceipts(ctx context.Context, req *receiptsv1.MergeReceiptsRequest) (*receiptsv1.MergeReceiptsResponse, error) {
	if len(req.ReceiptNumbers) < 2 {
		return nil, rpcerr.Invalid("receipt_numbers", "a merge needs at least two receipts")
	}
	for i, n := range req.ReceiptNumbers {
		field := fmt.Sprintf("receipt_numbers[%d]", i)
		if err := validReceiptNumber(field, n); err != nil {
			return nil, err
		}
		if contains(req.ReceiptNumbers[:i], n) {
			return nil, rpcerr.Invalid(field, "receipt %s is listed twice", n)
		}
	}
	today := s.today()
	return idempotent(ctx, s, "MergeReceipts", req.IdempotencyKey, req, func(t *txn, p auth.Principal) (func() (*receiptsv1.MergeReceiptsResponse, error), error) {
		if err := t.prefetch(req.ReceiptNumbers); err != nil {
			return nil, err
		}
		var parts []*receipt
		for i, n := range req.ReceiptNumbers {
			r, err := s.visible(ctx, t, p, fmt.Sprintf("receipt_numbers[%d]", i), n)
			if err != nil {
				return nil, err
			}
			if err := requireFree(r, today, "merge"); err != nil {
				return nil, err
			}
			if len(parts) > 0 {
				if f, ok := sameGoods(parts[0], r); !ok {
					return nil, rpcerr.Invalid(fmt.Sprintf("receipt_numbers[%d]", i), "receipt %s differs from %s in %s: only the same goods merge", n, parts[0].Number, f)
				}
			}
			parts = append(parts, r)
		}
		sort.Slice(parts, func(i, j int) bool { return parts[i].Number < parts[j].Number })
		var pieces []piece
		var certs, names, heads []string
		expiry, storage := parts[0].Expiry, parts[0].StoragePaidThrough
		for _, r := range parts {
			pieces = append(pieces, r.Pieces...)
			if !contains(certs, r.Inspection) {
				certs = append(certs, r.Inspection)
			}
			expiry, storage = min(expiry, r.Expiry), min(storage, r.StoragePaidThrough)
			h, err := t.head(r.Number)
			if err != nil {
				return nil, err
			}
			names, heads = append(names, r.Number), append(heads, h)
		}
		sortPieces(pieces)
		m := child(parts[0], pieces, t.now)
		m.Expiry, m.StoragePaidThrough, m.Inspection = expiry, storage, strings.Join(certs, ",")
		if len(m.Inspection) > maxTextField {
			return nil, rpcerr.Invalid("receipt_numbers", "the merged inspection certificates would be longer than %d bytes", maxTextField)
		}
		for _, r := range parts {
			r.Status = receiptsv1.ReceiptStatus_RECEIPT_STATUS_SUPERSEDED
			t.save(r)
			t.emit(r, kindMerged, p.ParticipantID, map[string]any{"into": m.Number})
		}
		t.create(m)
		t.emit(m, kindMergedFrom, p.ParticipantID, map[string]any{"from": names, "from_heads": heads, "pieces": piecesDetail(m)})
		return func() (*receiptsv1.MergeReceiptsResponse, error) {
			out, err := s.render(t, m, today)
			return &receiptsv1.MergeReceiptsResponse{Receipt: out}, err
		}, nil
	})
}

// RequestCancellation asks the warehouse to release the goods; the receipt
// must be free (a pledged receipt cannot be cancelled, one in trading custody
// must be withdrawn first). Expired receipts may be cancelled: taking the
// goods out is what one does with them.
func (s *Server) RequestCancellation(ctx context.Context, req *receiptsv1.RequestCancellationRequest) (*receiptsv1.RequestCancellationResponse, error) {
	today := s.today()
	return idempotent(ctx, s, "RequestCancellation", req.IdempotencyKey, req, func(t *txn, p auth.Principal) (func() (*receiptsv1.RequestCancellationResponse, error), error) {
		r, err := s.visible(ctx, t, p, "receipt_number", req.ReceiptNumber)
		if err != nil {
			return nil, err
		}
		if r.Status != receiptsv1.ReceiptStatus_RECEIPT_STATUS_LIVE || r.Enc != receiptsv1.Encumbrance_ENCUMBRANCE_NONE || r.Pending != pendingNone {
			return nil, refuse(r, today, "cancel")
		}
		r.Status = receiptsv1.ReceiptStatus_RECEIPT_STATUS_CANCELLATION_REQUESTED
		t.save(r)
		t.emit(r, kindCancelRequested, p.ParticipantID, nil)
		return func() (*receiptsv1.RequestCancellationResponse, error) {
			out, err := s.render(t, r, today)
			return &receiptsv1.RequestCancellationResponse{Receipt: out}, err
		}, nil
	})
}

// ConfirmLoadOut is the warehouse confirming the goods left: the receipt is
// cancelled and its piece numbers are free again.
func (s *Server) ConfirmLoadOut(ctx context.Context, req *receiptsv1.ConfirmLoadOutRequest) (*receiptsv1.ConfirmLoadOutResponse, error) {
	today := s.today()
	return idempotent(ctx, s, "ConfirmLoadOut", req.IdempotencyKey, req, func(t *txn, p auth.Principal) (func() (*receiptsv1.ConfirmLoadOutResponse, error), error) {
		r, err := s.visible(ctx, t, p, "receipt_number", req.ReceiptNumber)
		if err != nil {
			return nil, err
		}
		if r.Status != receiptsv1.ReceiptStatus_RECEIPT_STATUS_CANCELLATION_REQUESTED {
			return nil, refuse(r, today, "confirm the load-out of")
		}
		r.Status = receiptsv1.ReceiptStatus_RECEIPT_STATUS_CANCELLED
		t.save(r)
		t.releasePieces(r.Pieces)
		t.emit(r, kindLoadedOut, p.ParticipantID, nil)
		return func() (*receiptsv1.ConfirmLoadOutResponse, error) {
			out, err := s.render(t, r, today)
			return &receiptsv1.ConfirmLoadOutResponse{Receipt: out}, err
		}, nil
	})
}

// ReportInspection records a new inspection certificate for goods still in
// the warehouse, whatever their encumbrance.
func (s *Server) ReportInspection(ctx context.Context, req *receiptsv1.ReportInspectionRequest) (*receiptsv1.ReportInspectionResponse, error) {
	if err := text("inspection_certificate", req.InspectionCertificate, true); err != nil {
		return nil, err
	}
	today := s.today()
	return idempotent(ctx, s, "ReportInspection", req.IdempotencyKey, req, func(t *txn, p auth.Principal) (func() (*receiptsv1.ReportInspectionResponse, error), error) {
		r, err := s.visible(ctx, t, p, "receipt_number", req.ReceiptNumber)
		if err != nil {
			return nil, err
		}
		if r.Status != receiptsv1.ReceiptStatus_RECEIPT_STATUS_LIVE && r.Status != receiptsv1.ReceiptStatus_RECEIPT_STATUS_CANCELLATION_REQUESTED {
			return nil, refuse(r, today, "report an inspection of")
		}
		prev := r.Inspection
		r.Inspection = req.InspectionCertificate
		t.save(r)
		t.emit(r, kindInspection, p.ParticipantID, map[string]any{"previous": prev})
		return func() (*receiptsv1.ReportInspectionResponse, error) {
			out, err := s.render(t, r, today)
			return &receiptsv1.ReportInspectionResponse{Receipt: out}, err
		}, nil
	})
}

func eventProto(e storedEvent) *receiptsv1.ReceiptEvent {
	return &receiptsv1.ReceiptEvent{Index: e.idx, ReceiptNumber: e.receipt, Kind: e.kind, Payload: e.payload,
		PreviousHash: e.prev, Hash: e.hash, At: timestamppb.New(time.Unix(0, e.at))}
}

// GetReceipt returns a receipt with its whole history. A receipt created from
// others (split, merge, delivery) starts with an event naming them and the
// hashes of their histories at that point.
func (s *Server) GetReceipt(ctx context.Context, req *receiptsv1.GetReceiptRequest) (*receiptsv1.GetReceiptResponse, error) {
	p, err := auth.MustFromContext(ctx)
	if err != nil {
		return nil, err
	}
	today := s.today()
	var resp *receiptsv1.GetReceiptResponse
	err = s.store.run(ctx, s.now, func(t *txn) error {
		r, err := s.visible(ctx, t, p, "receipt_number", req.ReceiptNumber)
		if err != nil {
			return err
		}
		events, err := t.receiptEvents(r.Number)
		if err != nil {
			return err
		}
		resp = &receiptsv1.GetReceiptResponse{}
		for _, e := range events {
			resp.History = append(resp.History, eventProto(e))
			t.heads[r.Number] = e.hash
		}
		resp.Receipt, err = s.render(t, r, today)
		return err
	})
	return resp, err
}

// ListReceipts lists the receipts the caller may see, by receipt number,
// filtered by holder, warehouse, commodity and status.
func (s *Server) ListReceipts(ctx context.Context, req *receiptsv1.ListReceiptsRequest) (*receiptsv1.ListReceiptsResponse, error) {
	p, err := auth.MustFromContext(ctx)
	if err != nil {
		return nil, err
	}
	size, err := paging.Size(req.PageSize)
	if err != nil {
		return nil, err
	}
	after, err := base64.RawURLEncoding.DecodeString(req.PageToken)
	if err != nil {
		return nil, rpcerr.Invalid("page_token", "malformed page token")
	}
	if _, ok := receiptsv1.ReceiptStatus_name[int32(req.Status)]; !ok {
		return nil, rpcerr.Invalid("status", "unknown status %d", req.Status)
	}
	today := s.today()
	var where []string
	var args []any
	cond := func(sql string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(sql, len(args)))
	}
	cond("receipt_number > $%d", string(after))
	switch p.Role {
	case typev1.Role_ROLE_MEMBER:
		cond("holder = $%d", p.ParticipantID)
	case typev1.Role_ROLE_CLEARING_BANK:
		cond("pledge_bank = $%d", p.ParticipantID)
		cond("encumbrance = $%d", int32(receiptsv1.Encumbrance_ENCUMBRANCE_PLEDGED))
	case typev1.Role_ROLE_WAREHOUSE:
		codes, err := s.ref.operatedBy(ctx, p.ParticipantID)
		if err != nil {
			return nil, err
		}
		if len(codes) == 0 {
			return &receiptsv1.ListReceiptsResponse{}, nil
		}
		var ph []string
		for _, c := range codes {
			args = append(args, c)
			ph = append(ph, fmt.Sprintf("$%d", len(args)))
		}
		where = append(where, "warehouse IN ("+strings.Join(ph, ", ")+")")
	}
	if req.HolderParticipantId != "" {
		cond("holder = $%d", req.HolderParticipantId)
	}
	if req.Warehouse != "" {
		cond("warehouse = $%d", req.Warehouse)
	}
	if req.Commodity != "" {
		cond("commodity = $%d", req.Commodity)
	}
	switch req.Status {
	case receiptsv1.ReceiptStatus_RECEIPT_STATUS_UNSPECIFIED:
	case receiptsv1.ReceiptStatus_RECEIPT_STATUS_EXPIRED:
		cond("status = $%d", int32(receiptsv1.ReceiptStatus_RECEIPT_STATUS_LIVE))
		cond("expiry_date < $%d", today)
	case receiptsv1.ReceiptStatus_RECEIPT_STATUS_LIVE:
		cond("status = $%d", int32(receiptsv1.ReceiptStatus_RECEIPT_STATUS_LIVE))
		cond("expiry_date >= $%d", today)
	default:
		cond("status = $%d", int32(req.Status))
	}
	args = append(args, size)
	query := `SELECT ` + receiptCols + ` FROM receipts WHERE ` + strings.Join(where, " AND ") +
		fmt.Sprintf(` ORDER BY receipt_number LIMIT $%d`, len(args))
	resp := &receiptsv1.ListReceiptsResponse{}
	err = s.store.run(ctx, s.now, func(t *txn) error {
		resp.Receipts = nil
		rows, err := t.tx.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		var rs []*receipt
		for rows.Next() {
			r, err := scanReceipt(rows)
			if err != nil {
				rows.Close()
				return err
			}
			rs = append(rs, r)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		for _, r := range rs {
			out, err := s.render(t, r, today)
			if err != nil {
				return err
			}
			resp.Receipts = append(resp.Receipts, out)
		}
		if len(rs) == size {
			resp.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(rs[len(rs)-1].Number))
		}
		return nil
	})
	return resp, err
}

// GetStockReport totals the goods registered in each warehouse by commodity
// and grade: receipts that still stand for goods in store (LIVE, including
// expired ones, and CANCELLATION_REQUESTED until the load-out).
func (s *Server) GetStockReport(ctx context.Context, req *receiptsv1.GetStockReportRequest) (*receiptsv1.GetStockReportResponse, error) {
	resp := &receiptsv1.GetStockReportResponse{}
	err := s.store.run(ctx, s.now, func(t *txn) error {
		resp.Lines = nil
		resp.AsOf = timestamppb.New(time.Unix(0, t.now))
		args := []any{int32(receiptsv1.ReceiptStatus_RECEIPT_STATUS_LIVE), int32(receiptsv1.ReceiptStatus_RECEIPT_STATUS_CANCELLATION_REQUESTED)}
		filter := ""
		if req.Commodity != "" {
			args = append(args, req.Commodity)
			filter = " AND commodity = $3"
		}
		rows, err := t.tx.QueryContext(ctx, `SELECT warehouse, commodity, grade, weight_scale, COUNT(*), CAST(SUM(net_weight) AS BIGINT)
			FROM receipts WHERE status IN ($1, $2)`+filter+`
			GROUP BY warehouse, commodity, grade, weight_scale ORDER BY warehouse, commodity, grade, weight_scale`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var l receiptsv1.StockLine
			var scale int32
			var weight int64
			if err := rows.Scan(&l.Warehouse, &l.Commodity, &l.Grade, &scale, &l.Receipts, &weight); err != nil {
				return err
			}
			l.NetWeight = formatWeight(weight, scale)
			resp.Lines = append(resp.Lines, &l)
		}
		return rows.Err()
	})
	return resp, err
}

// maxProofLength bounds a VerifyReceipt answer: a linear chain's proof grows
// with everything registered since the receipt was created.
const maxProofLength = 200_000

// VerifyReceipt returns the receipt's events and the chain from its first
// event to the current root. Other receipts' events in that stretch are
// redacted to their payload digests: the proof shows their receipt numbers
// but nothing about their holders or goods.
func (s *Server) VerifyReceipt(ctx context.Context, req *receiptsv1.VerifyReceiptRequest) (*receiptsv1.VerifyReceiptResponse, error) {
	p, err := auth.MustFromContext(ctx)
	if err != nil {
		return nil, err
	}
	today := s.today()
	var resp *receiptsv1.VerifyReceiptResponse
	err = s.store.run(ctx, s.now, func(t *txn) error {
		r, err := s.visible(ctx, t, p, "receipt_number", req.ReceiptNumber)
		if err != nil {
			return err
		}
		events, err := t.receiptEvents(r.Number)
		if err != nil {
			return err
		}
		if len(events) == 0 {
			return fmt.Errorf("receipt %s has no events", r.Number)
		}
		idx, hash, at, err := t.root()
		if err != nil {
			return err
		}
		if n := idx - events[0].idx + 1; n > maxProofLength {
			return rpcerr.Precondition("PROOF_TOO_LONG", "the proof for receipt %s would span %d chain events (at most %d)", r.Number, n, maxProofLength)
		}
		chain, err := t.chainRange(events[0].idx, idx)
		if err != nil {
			return err
		}
		resp = &receiptsv1.VerifyReceiptResponse{Root: &receiptsv1.RegistryRoot{Index: idx, Hash: hash, At: timestamppb.New(time.Unix(0, at))}}
		for _, e := range events {
			resp.Events = append(resp.Events, eventProto(e))
			t.heads[r.Number] = e.hash
		}
		for _, e := range chain {
			if e.receipt == r.Number {
				resp.Chain = append(resp.Chain, eventProto(e))
				continue
			}
			resp.Chain = append(resp.Chain, &receiptsv1.ReceiptEvent{Index: e.idx, ReceiptNumber: e.receipt,
				Payload: redactedPrefix + sha256Hex([]byte(e.payload)), PreviousHash: e.prev, Hash: e.hash})
		}
		resp.Receipt, err = s.render(t, r, today)
		return err
	})
	return resp, err
}

// GetRegistryRoot returns the chain's head: publishing it commits the registry
// to its whole history up to that point.
func (s *Server) GetRegistryRoot(ctx context.Context, _ *receiptsv1.GetRegistryRootRequest) (*receiptsv1.GetRegistryRootResponse, error) {
	var resp *receiptsv1.GetRegistryRootResponse
	err := s.store.run(ctx, s.now, func(t *txn) error {
		idx, hash, at, err := t.root()
		resp = &receiptsv1.GetRegistryRootResponse{Root: &receiptsv1.RegistryRoot{Index: idx, Hash: hash, At: timestamppb.New(time.Unix(0, at))}}
		return err
	})
	return resp, err
}
