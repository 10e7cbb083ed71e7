package receipts

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
)

// Settlement is the part of settlement's SettlementInternalService the
// registry uses: it reports each delivered trade's goods leg.
// settlementv1.SettlementInternalServiceClient satisfies it.
//
// How a leg reaches settlement exactly once. The consumer writes the leg into
// the goods_legs table in the transaction that delivers the trade and moves
// the consumer position, so a leg exists if and only if the delivery
// committed, once per trade through restarts and redelivery (applied_trades).
// Run's forwarder sends pending legs, oldest due first, and marks them sent
// once settlement acknowledges; a leg sent but not marked (a crash, a lost
// answer) is sent again, which settlement's RecordReceiptsLeg makes a no-op,
// since the row, and so the request, never changes. Several registries may
// forward from one database: a leg they both send is recorded once.
//
//   - Acknowledged: state 'sent'; never sent again.
//   - Refused for good (InvalidArgument, e.g. a delivered weight outside the
//     commodity's tolerance once the trade is booked; FailedPrecondition, e.g.
//     a different leg already recorded for the trade): state 'refused', an
//     error logged and a break recorded for operators; never sent again.
//   - Anything else (settlement unreachable, Unavailable, a credential
//     problem): sent again after a backoff per leg, 100 ms doubling up to
//     Config.ResendAfter. The pass stops at such a failure, so an outage
//     costs one call per pass, not one per leg.
type Settlement interface {
	RecordReceiptsLeg(ctx context.Context, in *settlementv1.RecordReceiptsLegRequest, opts ...grpc.CallOption) (*settlementv1.RecordReceiptsLegResponse, error)
}

var _ Settlement = settlementv1.SettlementInternalServiceClient(nil)

// Goods leg states (goods_legs.state).
const (
	legPending = "pending"
	legSent    = "sent"
	legRefused = "refused"
)

const (
	// legBatch bounds how many legs one read of the outbox returns.
	legBatch = 256
	// legCallTimeout bounds one call to settlement.
	legCallTimeout = 10 * time.Second
	// legFirstBackoff is the wait after a leg's first failed send; it doubles
	// with every further failure, up to Config.ResendAfter.
	legFirstBackoff = 100 * time.Millisecond
)

// goodsLeg is a goods_legs row.
type goodsLeg struct {
	tradeID, sequence int64
	weight, reference string
	attempts          int64
}

// newGoodsLeg is the leg of a trade delivered by ds (its deliveries, none
// broken): the net weight of every piece that moved, in tonnes.
func newGoodsLeg(seq, tradeID int64, ds []deliveryRow) goodsLeg {
	total := decimal.Zero
	for _, d := range ds {
		total = total.Add(decimal.New(d.delivered, -d.scale))
	}
	return goodsLeg{tradeID: tradeID, sequence: seq, weight: total.String(), reference: legReference(tradeID)}
}

// legReference is the registry's id for a trade's transfer: the trade's rows
// in deliveries, and its events in the chain, carry the trade id.
func legReference(tradeID int64) string { return "receipts/trade/" + strconv.FormatInt(tradeID, 10) }

func (s *Server) wakeForwarder() {
	select {
	case s.legsWake <- struct{}{}:
	default:
	}
}

// forwardLoop sends pending goods legs until ctx ends: woken when the
// consumer commits new ones, and on a timer for retries and for legs another
// process committed or left behind.
func (s *Server) forwardLoop(ctx context.Context) {
	tick := time.NewTicker(min(s.resendAfter/4, 500*time.Millisecond))
	defer tick.Stop()
	for {
		if err := s.forwardLegs(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("receipts: forwarding goods legs to settlement", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.legsWake:
		case <-tick.C:
		}
	}
}

// forwardLegs sends the legs that are due, in batches, until none is left,
// or a send fails for a reason other than a refusal. It returns database
// errors; failed sends are recorded on their legs.
func (s *Server) forwardLegs(ctx context.Context) error {
	for ctx.Err() == nil {
		due, err := s.dueLegs(ctx)
		if err != nil {
			return err
		}
		var acked []any
		failed := false
		for _, l := range due {
			err := s.sendLeg(ctx, l)
			if err == nil {
				acked = append(acked, l.tradeID)
				continue
			}
			if ctx.Err() != nil {
				break // shutting down: the leg stays due
			}
			if refusedBySettlement(err) {
				if err := s.refuseLeg(ctx, l, err); err != nil {
					return err
				}
				continue
			}
			if err := s.retryLeg(ctx, l, err); err != nil {
				return err
			}
			failed = true
			break
		}
		if err := s.markSent(ctx, acked); err != nil {
			return err
		}
		if failed || len(due) < legBatch {
			return nil
		}
	}
	return nil
}

func (s *Server) dueLegs(ctx context.Context) ([]goodsLeg, error) {
	var due []goodsLeg
	err := s.store.run(ctx, s.now, func(t *txn) error {
		due = due[:0]
		rows, err := t.tx.QueryContext(ctx, `SELECT trade_id, sequence, delivered_weight, reference, attempts FROM goods_legs
			WHERE state = $1 AND next_attempt <= $2 ORDER BY next_attempt, trade_id LIMIT $3`, legPending, time.Now().UnixNano(), legBatch)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var l goodsLeg
			if err := rows.Scan(&l.tradeID, &l.sequence, &l.weight, &l.reference, &l.attempts); err != nil {
				return err
			}
			due = append(due, l)
		}
		return rows.Err()
	})
	return due, err
}

func (s *Server) sendLeg(ctx context.Context, l goodsLeg) error {
	ctx, cancel := context.WithTimeout(ctx, legCallTimeout)
	defer cancel()
	_, err := s.settlement.RecordReceiptsLeg(ctx, &settlementv1.RecordReceiptsLegRequest{TradeId: l.tradeID,
		DeliveredWeight: l.weight, Reference: l.reference})
	return err
}

// refusedBySettlement says whether settlement's answer is a decision about
// the leg (it will never be recorded as sent) rather than a failure to
// answer.
func refusedBySettlement(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange, codes.AlreadyExists:
		return true
	}
	return false
}

// markSent records settlement's acknowledgements. It finishes even when ctx
// ends (a shutdown): an acknowledged leg left pending would only be sent
// again, but there is no reason to.
func (s *Server) markSent(ctx context.Context, ids []any) error {
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return s.store.run(ctx, s.now, func(t *txn) error {
		return t.inChunks(ids, func(part []any) error {
			clause, args := t.in(4, part)
			_, err := t.tx.ExecContext(ctx, `UPDATE goods_legs SET state = $1, attempts = attempts + 1, last_error = '', done_at = $2
				WHERE state = $3 AND trade_id`+clause, append([]any{legSent, t.now, legPending}, args...)...)
			return err
		})
	})
}

// refuseLeg ends a leg settlement refused: it is kept, refused, with a break
// for operators, and never sent again.
func (s *Server) refuseLeg(ctx context.Context, l goodsLeg, sendErr error) error {
	msg := status.Convert(sendErr).Message()
	return s.store.run(ctx, s.now, func(t *txn) error {
		res, err := t.tx.ExecContext(ctx, `UPDATE goods_legs SET state = $1, attempts = attempts + 1, last_error = $2, done_at = $3
			WHERE trade_id = $4 AND state = $5`, legRefused, sendErr.Error(), t.now, l.tradeID, legPending)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err // another registry settled it meanwhile
		}
		reason := fmt.Sprintf("settlement refused the goods leg (delivered %s t, %s): %s", l.weight, l.reference, msg)
		t.breaks = append(t.breaks, breakRow{sequence: l.sequence, tradeID: l.tradeID, reason: reason})
		s.logger.Error("receipts: settlement refused a trade's goods leg; operators must settle it", "trade_id", l.tradeID,
			"delivered_weight", l.weight, "code", status.Code(sendErr).String(), "error", msg)
		return nil
	})
}

// retryLeg schedules the next send of a leg settlement did not acknowledge.
func (s *Server) retryLeg(ctx context.Context, l goodsLeg, sendErr error) error {
	backoff := min(legFirstBackoff<<min(l.attempts, 20), max(s.resendAfter, legFirstBackoff))
	next := time.Now().Add(backoff)
	s.logger.Warn("receipts: goods leg not acknowledged by settlement; will resend", "trade_id", l.tradeID,
		"attempt", l.attempts+1, "after", backoff, "code", status.Code(sendErr).String(), "error", status.Convert(sendErr).Message())
	return s.store.run(ctx, s.now, func(t *txn) error {
		_, err := t.tx.ExecContext(ctx, `UPDATE goods_legs SET attempts = attempts + 1, next_attempt = $1, last_error = $2
			WHERE trade_id = $3 AND state = $4`, next.UnixNano(), sendErr.Error(), l.tradeID, legPending)
		return err
	})
}
