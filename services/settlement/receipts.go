package settlement

import (
	"context"
	"database/sql"
	"errors"
	"strconv"

	"github.com/shopspring/decimal"

	pkgmoney "github.com/bcx-exchange/bcx/pkg/money"
	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	"github.com/bcx-exchange/bcx/services/settlement/fees"
	"github.com/bcx-exchange/bcx/services/settlement/internal/bulk"
	"github.com/bcx-exchange/bcx/services/settlement/ledger"
)

// ReceiptsLeg is the receipts service's report that the title to a trade's
// receipts has passed to the buyer: the goods leg of delivery versus
// payment. A trade is SETTLED when its cash leg (booked gross, or netted by
// the T+1 batch) and this leg are both done.
type ReceiptsLeg struct {
	TradeID int64
	// DeliveredWeight is the net weight of the pieces delivered, decimal in
	// the commodity's unit. Empty means exactly the traded quantity. A
	// difference is settled in cash at the trade price (溢短), within the
	// commodity's delivery tolerance.
	DeliveredWeight string
	// Reference is the receipts service's id for the transfer.
	Reference string
}

// RecordReceiptsLeg records the receipts leg of a trade. It is idempotent:
// recording the same leg again changes nothing; a different leg for the same
// trade is refused. The leg may arrive before settlement has booked the
// trade (the receipts service reads the same event log); it is then kept and
// applied when the trade is booked, and RecordReceiptsLeg returns nil.
//
// The receipts service reports legs through
// SettlementInternalService.RecordReceiptsLeg (ROLE_SERVICE only), which
// calls this; its errors are pkg/rpcerr errors (InvalidArgument for a
// malformed leg or a weight outside the delivery tolerance,
// FailedPrecondition RECEIPTS_LEG_RECORDED for a different leg of a trade
// that has one).
func (s *Service) RecordReceiptsLeg(ctx context.Context, leg ReceiptsLeg) (*settlementv1.TradeSettlement, error) {
	if leg.TradeID <= 0 {
		return nil, rpcerr.Invalid("trade_id", "required")
	}
	if leg.Reference == "" {
		return nil, rpcerr.Invalid("reference", "required")
	}
	if leg.DeliveredWeight != "" {
		w, err := pkgmoney.ParseDecimal(leg.DeliveredWeight)
		if err != nil || !w.IsPositive() {
			return nil, rpcerr.Invalid("delivered_weight", "%q is not a positive decimal weight", leg.DeliveredWeight)
		}
	}
	for attempt := 1; ; attempt++ {
		out, err := s.recordReceiptsLeg(ctx, leg)
		// The trade was booked between the reference data lookup and the
		// write transaction, and its data was not cached: look it up now.
		if errors.Is(err, errNotPrefetched) && attempt < 3 {
			continue
		}
		return out, err
	}
}

func (s *Service) recordReceiptsLeg(ctx context.Context, leg ReceiptsLeg) (*settlementv1.TradeSettlement, error) {
	// Reference data first, outside the write transaction.
	if t, err := inTx(ctx, s, func(q *sql.Tx) (*tradeRow, error) { return s.getTrade(ctx, q, leg.TradeID) }); err == nil {
		if _, err := s.tolerance(ctx, t); err != nil {
			return nil, err
		}
		for _, m := range []string{t.Buyer, t.Seller} {
			if _, err := s.ref.Banks(ctx, m); err != nil {
				return nil, err
			}
		}
	} else if !errors.Is(err, errNoTrade) {
		return nil, err
	}
	var e effects
	txCtx := noRPC(ctx)
	out, err := inTx(ctx, s, func(q *sql.Tx) (*settlementv1.TradeSettlement, error) {
		ctx := txCtx
		e = effects{}
		// Wait for a booking transaction in flight: it may be booking this
		// trade (see lockPosition).
		if err := s.lockPosition(ctx, q); err != nil {
			return nil, err
		}
		var weight, ref string
		err := q.QueryRowContext(ctx, `SELECT delivered_weight, reference FROM stl_receipts_legs WHERE trade_id = $1`, leg.TradeID).Scan(&weight, &ref)
		switch {
		case err == nil:
			if weight != leg.DeliveredWeight || ref != leg.Reference {
				return nil, rpcerr.Precondition("RECEIPTS_LEG_RECORDED", "trade %d already has a receipts leg (%s, weight %q)", leg.TradeID, ref, weight)
			}
			t, err := s.getTrade(ctx, q, leg.TradeID)
			if errors.Is(err, errNoTrade) {
				return nil, nil
			}
			if err != nil {
				return nil, err
			}
			return s.tradeProto(t), nil
		case !errors.Is(err, sql.ErrNoRows):
			return nil, err
		}
		t, err := s.getTrade(ctx, q, leg.TradeID)
		if err != nil && !errors.Is(err, errNoTrade) {
			return nil, err
		}
		if t != nil {
			if err := s.checkTolerance(ctx, t, leg.DeliveredWeight); err != nil {
				return nil, err
			}
		}
		if _, err := q.ExecContext(ctx, `INSERT INTO stl_receipts_legs (trade_id, delivered_weight, reference, recorded_at, applied)
			VALUES ($1, $2, $3, $4, 0)`, leg.TradeID, leg.DeliveredWeight, leg.Reference, s.now().UnixNano()); err != nil {
			return nil, err
		}
		if t == nil {
			return nil, nil
		}
		if err := s.applyReceiptsLeg(ctx, q, t, leg, &e); err != nil {
			return nil, err
		}
		return s.tradeProto(t), nil
	})
	if err != nil {
		return nil, err
	}
	s.afterCommit(&e)
	return out, nil
}

func (s *Service) tolerance(ctx context.Context, t *tradeRow) (decimal.Decimal, error) {
	in, err := s.ref.Instrument(ctx, t.Symbol)
	if err != nil {
		return decimal.Decimal{}, err
	}
	return s.ref.Tolerance(ctx, in.Commodity)
}

func (s *Service) checkTolerance(ctx context.Context, t *tradeRow, delivered string) error {
	if delivered == "" {
		return nil
	}
	tol, err := s.tolerance(ctx, t)
	if err != nil {
		return err
	}
	w, _ := pkgmoney.ParseDecimal(delivered)
	qty, err := pkgmoney.ParseDecimal(t.Quantity)
	if err != nil {
		return err
	}
	if w.Sub(qty).Abs().GreaterThan(qty.Mul(tol)) {
		return rpcerr.InvalidReason("delivered_weight", "OUTSIDE_DELIVERY_TOLERANCE",
			"%s delivered against %s traded is outside the commodity's tolerance of %s", w, qty, tol)
	}
	return nil
}

// applyReceiptsLeg marks the trade's goods leg done and books the
// over/under-weight adjustment: (delivered - traded weight) x price, rounded
// half away from zero to the minor unit (package fees), paid by the buyer to
// the seller when positive and the reverse when negative, gross into
// available funds (for either settlement cycle), through the members' FX
// preferences like the trade itself.
func (s *Service) applyReceiptsLeg(ctx context.Context, q *sql.Tx, t *tradeRow, leg ReceiptsLeg, e *effects) error {
	now := s.now()
	var adj int64
	if leg.DeliveredWeight != "" {
		cur, err := s.cfg.Currencies.Lookup(t.Currency)
		if err != nil {
			return err
		}
		w, _ := pkgmoney.ParseDecimal(leg.DeliveredWeight)
		qty, _ := pkgmoney.ParseDecimal(t.Quantity)
		price, _ := pkgmoney.ParseDecimal(t.Price)
		if adj, err = fees.WeightAdjustment(w, qty, price, cur); err != nil {
			return err
		}
	}
	if adj != 0 {
		prefs, err := s.loadFxPrefs(ctx, q)
		if err != nil {
			return err
		}
		ref := "adjustment/" + strconv.FormatInt(t.TradeID, 10)
		txn := &ledger.Transaction{Kind: ledger.KindAdjustment, Reference: ref, BookedAt: now}
		b := &booker{s: s, ctx: ctx, q: q, prefs: prefs, ref: ref, at: now, target: ledger.Available, txn: txn}
		if err := b.memberFunds(t.Buyer, t.Currency, line{-adj, ledger.KindAdjustment}); err != nil {
			return err
		}
		if err := b.memberFunds(t.Seller, t.Currency, line{adj, ledger.KindAdjustment}); err != nil {
			return err
		}
		one := effects{txns: []*ledger.Transaction{txn}}
		one.merge(&b.fx)
		// The core's trading funds move with the ledger: each member's net
		// movement, in the currency it ends up in (its funding currency if
		// it opted in). A debit the member cannot cover is refused by the
		// core and reported by the outbox for operators.
		cmds, err := s.fundsCmds(ref, b.legs.Members)
		if err != nil {
			return err
		}
		one.outbox = append(one.outbox, cmds...)
		one.instructions = append(one.instructions, transfers(b.legs.Needs, ref)...)
		if err := s.write(ctx, q, &one, now); err != nil {
			return err
		}
		e.merge(&one)
	}
	t.ReceiptsTransferred, t.ReceiptsAt, t.WeightAdjustment = true, now, adj
	if _, err := q.ExecContext(ctx, `UPDATE stl_trades SET receipts_transferred = 1, receipts_at = $2, weight_adjustment_minor = $3
		WHERE trade_id = $1`, t.TradeID, now.UnixNano(), adj); err != nil {
		return err
	}
	_, err := q.ExecContext(ctx, `UPDATE stl_receipts_legs SET applied = 1 WHERE trade_id = $1`, t.TradeID)
	return err
}

// applyWaitingReceiptsLegs applies legs that arrived before their trades.
func (s *Service) applyWaitingReceiptsLegs(ctx context.Context, q *sql.Tx, tradeIDs []any, e *effects) error {
	var legs []ReceiptsLeg
	err := bulk.Chunks(tradeIDs, 1000, func(chunk []any) error {
		rows, err := q.QueryContext(ctx, `SELECT trade_id, delivered_weight, reference FROM stl_receipts_legs
			WHERE applied = 0 AND trade_id IN (`+bulk.InList(1, len(chunk))+`)`, chunk...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var l ReceiptsLeg
			if err := rows.Scan(&l.TradeID, &l.DeliveredWeight, &l.Reference); err != nil {
				return err
			}
			legs = append(legs, l)
		}
		return rows.Err()
	})
	if err != nil {
		return err
	}
	for _, l := range legs {
		t, err := s.getTrade(ctx, q, l.TradeID)
		if err != nil {
			return err
		}
		if err := s.checkTolerance(ctx, t, l.DeliveredWeight); err != nil {
			s.logger.Error("receipts leg outside the delivery tolerance: goods leg recorded, no weight adjustment booked",
				"trade_id", l.TradeID, "delivered_weight", l.DeliveredWeight, "error", err)
			l.DeliveredWeight = ""
		}
		if err := s.applyReceiptsLeg(ctx, q, t, l, e); err != nil {
			return err
		}
	}
	return nil
}
