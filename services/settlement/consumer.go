package settlement

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/proto"

	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	"github.com/bcx-exchange/bcx/services/settlement/internal/bulk"
)

// position is how far the consumer has applied the core's event log: every
// event with a sequence below Seq, and the first N events of sequence Seq
// (one command, e.g. an order that sweeps the book, causes several trades
// under one sequence number). It is written in the same transaction as the
// postings the events cause, so each event takes effect exactly once
// through restarts, reconnects and redelivery.
type position struct {
	Seq, N int64
}

// applied reports whether the event (seq, idx) is already reflected.
func (p position) applied(seq, idx int64) bool {
	return seq < p.Seq || (seq == p.Seq && idx < p.N)
}

// from is the first sequence to subscribe from: the last one seen again,
// since more events of it may follow the ones applied.
func (p position) from() int64 {
	if p.Seq == 0 {
		return 1
	}
	return p.Seq
}

func (s *Service) loadPosition(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (position, error) {
	var p position
	err := q.QueryRowContext(ctx, `SELECT sequence, applied_in_sequence FROM stl_consumer WHERE name = $1`, s.cfg.ConsumerName).Scan(&p.Seq, &p.N)
	if errors.Is(err, sql.ErrNoRows) {
		return position{}, nil
	}
	return p, err
}

// lockPosition locks the consumer's position row (creating it, at the
// start of the log, if there is none) until the transaction ends. The
// booking transaction takes it first, and so does RecordReceiptsLeg: a
// receipts leg that arrives while its trade is being booked waits for the
// booking to commit and then finds the trade. Without it, under PostgreSQL's
// READ COMMITTED, each transaction could miss the other's uncommitted row
// (the leg would find no trade, the booking no waiting leg) and the leg
// would never be applied. SQLite runs one write transaction at a time anyway.
func (s *Service) lockPosition(ctx context.Context, q *sql.Tx) error {
	_, err := q.ExecContext(ctx, `INSERT INTO stl_consumer (name, sequence, applied_in_sequence, updated_at) VALUES ($1, 0, 0, 0)
		ON CONFLICT (name) DO UPDATE SET updated_at = stl_consumer.updated_at`, s.cfg.ConsumerName)
	return err
}

// Position returns the consumer's stored position: the last sequence number
// applied and how many of its events.
func (s *Service) Position(ctx context.Context) (seq, n int64, err error) {
	p, err := s.loadPosition(ctx, s.db)
	return p.Seq, p.N, err
}

type eventItem struct {
	ev     *tradingv1.SubscribeEventsResponse
	idx    int64
	recvAt time.Time
}

// consume subscribes to the core from the stored position and books events
// until ctx is done, reconnecting with backoff after any error.
func (s *Service) consume(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		progressed, err := s.consumeOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if progressed {
			backoff = 100 * time.Millisecond
		}
		if err != nil && !errors.Is(err, io.EOF) {
			s.logger.Warn("core event stream", "error", err, "retry_in", backoff)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, s.cfg.RetryMax)
	}
	return nil
}

func (s *Service) consumeOnce(ctx context.Context) (progressed bool, err error) {
	pos, err := s.loadPosition(ctx, s.db)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := s.cfg.Core.SubscribeEvents(ctx, &tradingv1.SubscribeEventsRequest{FromSequence: pos.from()})
	if err != nil {
		return false, fmt.Errorf("subscribe: %w", err)
	}
	// A reader goroutine keeps the next batch arriving while one is being
	// booked; the channel bounds how far it runs ahead (one batch).
	items := make(chan eventItem, s.cfg.EventBatch)
	errc := make(chan error, 1)
	go func() {
		defer close(items)
		var prevSeq, idx int64 = -1, 0
		for {
			ev, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			if ev.Sequence == prevSeq {
				idx++
			} else {
				prevSeq, idx = ev.Sequence, 0
			}
			select {
			case items <- eventItem{ev: ev, idx: idx, recvAt: time.Now()}:
			case <-ctx.Done():
				return
			}
		}
	}()
	batch := make([]eventItem, 0, s.cfg.EventBatch)
	for {
		it, ok := <-items
		if !ok {
			select {
			case err := <-errc:
				return progressed, err
			default:
				return progressed, ctx.Err()
			}
		}
		batch = append(batch[:0], it)
	fill:
		for len(batch) < s.cfg.EventBatch {
			select {
			case it, ok := <-items:
				if !ok {
					break fill
				}
				batch = append(batch, it)
			default:
				break fill
			}
		}
		if err := s.bookEvents(ctx, batch); err != nil {
			return progressed, err
		}
		progressed = true
	}
}

// bookEvents applies a batch of consecutive core events in one transaction:
// events the stored position already covers are skipped, trades are booked,
// malformed trades are parked, and the position moves to the last event.
func (s *Service) bookEvents(ctx context.Context, batch []eventItem) error {
	if len(batch) == 0 {
		return nil
	}
	// Reference data first, outside the transaction: listing is a network
	// call, and a transaction should not wait on one.
	for _, it := range batch {
		if t := it.ev.GetTrade(); t != nil {
			if err := s.prefetchTrade(ctx, t); err != nil {
				return err
			}
		}
	}
	var all effects
	txCtx := noRPC(ctx)
	err := s.db.InTx(ctx, func(q *sql.Tx) error {
		ctx := txCtx
		all = effects{}
		if err := s.lockPosition(ctx, q); err != nil {
			return err
		}
		pos, err := s.loadPosition(ctx, q)
		if err != nil {
			return err
		}
		var fresh []eventItem
		var tradeIDs []any
		for _, it := range batch {
			if pos.applied(it.ev.Sequence, it.idx) {
				continue
			}
			fresh = append(fresh, it)
			if t := it.ev.GetTrade(); t != nil {
				tradeIDs = append(tradeIDs, t.TradeId)
			}
		}
		if len(fresh) == 0 {
			return nil
		}
		booked, err := s.existingTrades(ctx, q, tradeIDs)
		if err != nil {
			return err
		}
		var plans []*tradePlan
		now := s.now()
		for _, it := range fresh {
			t := it.ev.GetTrade()
			if t == nil {
				continue // funds, positions, orders, phases: nothing to book
			}
			if booked[t.TradeId] {
				s.logger.Warn("trade event redelivered under a new position; already booked", "trade_id", t.TradeId, "sequence", it.ev.Sequence)
				continue
			}
			p, err := s.planTrade(ctx, q, it.ev.Sequence, it.ev.GetTime().AsTime(), t)
			if errors.Is(err, errPoison) {
				s.logger.Error("trade event parked: it cannot be booked", "sequence", it.ev.Sequence, "trade_id", t.TradeId, "reason", err)
				if err := s.park(ctx, q, it, err.Error(), now); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return err
			}
			booked[t.TradeId] = true
			plans = append(plans, p)
		}
		if err := s.writeTrades(ctx, q, plans, tradeIDs, &all, now); err != nil {
			return err
		}
		last := fresh[len(fresh)-1]
		if _, err := q.ExecContext(ctx, `INSERT INTO stl_consumer (name, sequence, applied_in_sequence, updated_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (name) DO UPDATE SET sequence = excluded.sequence, applied_in_sequence = excluded.applied_in_sequence,
			updated_at = excluded.updated_at`, s.cfg.ConsumerName, last.ev.Sequence, last.idx+1, now.UnixNano()); err != nil {
			return err
		}
		if s.testHookBeforeCommit != nil {
			return s.testHookBeforeCommit(last.ev.Sequence)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.afterCommit(&all)
	if s.onBooked != nil {
		s.onBooked(batch, time.Now())
	}
	return nil
}

// prefetchTrade fetches, outside any transaction, the reference data booking
// a trade reads (its instrument and commodity, its members' accounts). What
// listing does not know is no error here: booking parks the trade.
func (s *Service) prefetchTrade(ctx context.Context, t *tradingv1.TradeEvent) error {
	in, err := s.ref.Instrument(ctx, t.Symbol)
	if err != nil && !errors.Is(err, errUnknown) {
		return err
	}
	if err == nil {
		if _, err := s.ref.Tolerance(ctx, in.Commodity); err != nil && !errors.Is(err, errUnknown) {
			return err
		}
	}
	for _, m := range []string{t.BuyerParticipantId, t.SellerParticipantId} {
		if _, err := s.ref.Banks(ctx, m); err != nil && !errors.Is(err, errUnknown) {
			return err
		}
	}
	return nil
}

// writeTrades writes planned trades: their ledger transactions, bank
// instructions and core commands (added to all), their rows, and the
// receipts legs among tradeIDs that were waiting for them.
func (s *Service) writeTrades(ctx context.Context, q *sql.Tx, plans []*tradePlan, tradeIDs []any, all *effects, now time.Time) error {
	rows := make([]*tradeRow, 0, len(plans))
	for _, p := range plans {
		all.txns = append(all.txns, p.txn)
	}
	for _, p := range plans {
		all.instructions = append(all.instructions, p.fx.instructions...)
		all.outbox = append(all.outbox, p.fx.outbox...)
	}
	if err := s.write(ctx, q, all, now); err != nil {
		return err
	}
	for _, p := range plans {
		p.row.TransactionID = p.txn.ID
		rows = append(rows, p.row)
	}
	if err := s.insertTrades(ctx, q, rows); err != nil {
		return err
	}
	if len(rows) > 0 {
		return s.applyWaitingReceiptsLegs(ctx, q, tradeIDs, all)
	}
	return nil
}

func (s *Service) existingTrades(ctx context.Context, q *sql.Tx, ids []any) (map[int64]bool, error) {
	out := map[int64]bool{}
	err := bulk.Chunks(ids, 1000, func(chunk []any) error {
		rows, err := q.QueryContext(ctx, `SELECT trade_id FROM stl_trades WHERE trade_id IN (`+bulk.InList(1, len(chunk))+`)`, chunk...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			out[id] = true
		}
		return rows.Err()
	})
	return out, err
}

func (s *Service) park(ctx context.Context, q *sql.Tx, it eventItem, reason string, now time.Time) error {
	body, err := proto.Marshal(it.ev)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, `INSERT INTO stl_parked_events (sequence, idx, body, reason, created_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (sequence, idx) DO NOTHING`, it.ev.Sequence, it.idx, body, reason, now.UnixNano())
	return err
}
