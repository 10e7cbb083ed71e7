package receipts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/shopspring/decimal"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bcx-exchange/bcx/pkg/sqlstore"
	receiptsv1 "github.com/bcx-exchange/bcx/proto/bcx/receipts/v1"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
)

// Run consumes the matching core's event log, delivering the receipts each
// trade allocated and completing deposits and withdrawals, resends commands
// the core has not confirmed, and sends each delivered trade's goods leg to
// settlement (Config.Settlement) until acknowledged. It returns when ctx
// ends. Several processes may run it against one database: the stored
// position is advanced by compare-and-set, so each batch is applied by
// exactly one of them.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.resendLoop(ctx)
	}()
	if s.settlement == nil {
		s.logger.Warn("receipts: no settlement client (Config.Settlement): trades' goods legs are kept in goods_legs " +
			"but not sent, so settlement cannot mark trades settled until a registry with one runs")
	} else {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.forwardLoop(ctx)
		}()
	}
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		began := time.Now()
		err := s.consume(ctx)
		if ctx.Err() != nil {
			break
		}
		if errors.Is(err, errPositionMoved) || time.Since(began) > time.Minute {
			// Another consumer moved on (resubscribe from its position), or
			// this session ran long enough that the failure is news.
			backoff = 50 * time.Millisecond
		}
		if !errors.Is(err, errPositionMoved) {
			s.logger.Warn("receipts: core event stream interrupted; resubscribing", "error", err, "after", backoff)
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	wg.Wait()
	return nil
}

// consume subscribes from the stored position and applies events in batches
// until the stream or a batch fails.
func (s *Server) consume(ctx context.Context) error {
	var pos int64
	if err := s.store.run(ctx, s.now, func(t *txn) (err error) { pos, err = t.consumerPosition(); return err }); err != nil {
		return err
	}
	s.setApplied(pos)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The stored position's own sequence is asked for again: a command's events
	// share its sequence, and a batch may have ended among them. What was
	// applied of it is recognised (trade ids, pending keys) and skipped.
	stream, err := s.core.SubscribeEvents(sctx, &tradingv1.SubscribeEventsRequest{FromSequence: max(pos, 1)})
	if err != nil {
		return err
	}
	events := make(chan *tradingv1.SubscribeEventsResponse, 2*s.batchSize)
	var streamErr error
	go func() {
		defer close(events)
		for {
			ev, err := stream.Recv()
			if err != nil {
				streamErr = err
				return
			}
			select {
			case events <- ev:
			case <-sctx.Done():
				streamErr = sctx.Err()
				return
			}
		}
	}()
	for {
		var batch []*tradingv1.SubscribeEventsResponse
		select {
		case ev, ok := <-events:
			if !ok {
				return streamErr // written before close(events)
			}
			batch = append(batch, ev)
		case <-ctx.Done():
			return ctx.Err()
		}
	drain: // whatever else has arrived joins the batch: one transaction for many events
		for len(batch) < s.batchSize {
			select {
			case ev, ok := <-events:
				if !ok {
					break drain
				}
				batch = append(batch, ev)
			default:
				break drain
			}
		}
		if err := s.applyBatch(ctx, batch); err != nil {
			return err
		}
	}
}

// applyBatch applies events in one transaction together with the new position.
func (s *Server) applyBatch(ctx context.Context, batch []*tradingv1.SubscribeEventsResponse) error {
	var newPos int64
	var outbox []*receipt
	var legs bool
	start := time.Now()
	err := s.store.run(ctx, s.now, func(t *txn) error {
		outbox, legs = nil, false
		pos, err := t.consumerPosition()
		if err != nil {
			return err
		}
		newPos = pos
		var evs []*tradingv1.SubscribeEventsResponse
		var tradeIDs []any
		var numbers []string
		for _, ev := range batch {
			if ev.Sequence < pos {
				continue // applied before: a redelivery
			}
			evs = append(evs, ev)
			switch e := ev.Event.(type) {
			case *tradingv1.SubscribeEventsResponse_Trade:
				tradeIDs = append(tradeIDs, e.Trade.TradeId)
				for _, a := range e.Trade.Allocations {
					numbers = append(numbers, a.ReceiptNumber)
				}
			case *tradingv1.SubscribeEventsResponse_Position:
				numbers = append(numbers, e.Position.ReceiptNumber)
			}
		}
		if len(evs) == 0 {
			return nil
		}
		applied, err := t.appliedTrades(tradeIDs)
		if err != nil {
			return err
		}
		if err := t.prefetch(numbers); err != nil {
			return err
		}
		for _, ev := range evs {
			switch e := ev.Event.(type) {
			case *tradingv1.SubscribeEventsResponse_Trade:
				if applied[e.Trade.TradeId] {
					continue
				}
				applied[e.Trade.TradeId] = true
				t.trades = append(t.trades, [2]int64{e.Trade.TradeId, ev.Sequence})
				if err := s.applyTrade(t, ev.Sequence, e.Trade); err != nil {
					return err
				}
			case *tradingv1.SubscribeEventsResponse_Position:
				if err := s.applyPosition(t, ev.Sequence, e.Position); err != nil {
					return err
				}
			}
		}
		last := pos // the log is in order, but a redelivery may repeat older events
		for _, ev := range evs {
			last = max(last, ev.Sequence)
		}
		if last > pos {
			t.position = &[2]int64{pos, last}
			newPos = last
		}
		outbox, legs = t.outbox, len(t.legs) > 0
		return nil
	})
	if err != nil {
		return err
	}
	s.setApplied(newPos)
	if legs {
		s.wakeForwarder()
	}
	if s.observeBatch != nil {
		s.observeBatch(len(batch), time.Since(start))
	}
	if len(outbox) > 0 {
		// Buyers' receipts wait for their credit: hand them to the resender
		// now, rather than have it find them in the database.
		s.mu.Lock()
		for _, r := range outbox {
			s.outbox = append(s.outbox, r.clone())
		}
		s.mu.Unlock()
		select {
		case s.resendNow <- struct{}{}:
		default:
		}
	}
	return nil
}

func (t *txn) appliedTrades(ids []any) (map[int64]bool, error) {
	out := map[int64]bool{}
	err := t.inList(`SELECT trade_id FROM applied_trades WHERE trade_id`, ids, func(rows *sql.Rows) error {
		var id int64
		err := rows.Scan(&id)
		out[id] = true
		return err
	})
	return out, err
}

// applyPosition completes the pending command the event confirms. Events for
// commands this registry did not send, or already applied, change nothing.
func (s *Server) applyPosition(t *txn, seq int64, pe *tradingv1.PositionEvent) error {
	r, err := t.get(pe.ReceiptNumber)
	if errors.Is(err, sqlstore.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if r.Pending == pendingNone || r.PendingKey != pe.IdempotencyKey {
		return nil
	}
	if r.Pending == pendingDebit {
		r.Enc, r.Pool, r.PendingSymbols = receiptsv1.Encumbrance_ENCUMBRANCE_NONE, 0, nil
		t.emit(r, kindWithdrawn, r.Holder, map[string]any{"core_key": r.PendingKey, "sequence": seq})
	}
	r.Pending, r.PendingKey, r.PendingAfter = pendingNone, "", 0
	t.save(r)
	return nil
}

// applyTrade delivers a trade's allocations, each from the seller's receipt
// to the buyer. An allocation the registry cannot honour (a receipt the
// seller does not hold in custody, say) is recorded as a break for operators
// and skipped: the rest of the log must not wait on it. An error (the
// database's) fails the batch.
//
// A trade whose allocations were all delivered, and add up to its quantity,
// gets its goods leg for settlement in the outbox (goods_legs, see
// settlement.go), in this transaction. A trade with a break gets none: its
// title passed in part or not at all, which settlement must not take for
// delivery; operators resolve it.
func (s *Server) applyTrade(t *txn, seq int64, tr *tradingv1.TradeEvent) error {
	var total int64
	var scale int32 = -1
	broken := false
	first := len(t.deliveries)
	for _, a := range tr.Allocations {
		brk := func(format string, args ...any) {
			broken = true
			reason := fmt.Sprintf(format, args...)
			t.breaks = append(t.breaks, breakRow{sequence: seq, tradeID: tr.TradeId, receipt: a.ReceiptNumber, reason: reason})
			s.logger.Error("receipts: trade allocation not delivered", "trade_id", tr.TradeId, "sequence", seq,
				"receipt", a.ReceiptNumber, "reason", reason)
		}
		r, err := t.get(a.ReceiptNumber)
		if errors.Is(err, sqlstore.ErrNotFound) {
			brk("receipt not found")
			continue
		}
		if err != nil {
			return err
		}
		switch {
		case r.Holder != tr.SellerParticipantId:
			brk("receipt is held by %s, not by the seller %s", r.Holder, tr.SellerParticipantId)
			continue
		case r.Status != receiptsv1.ReceiptStatus_RECEIPT_STATUS_LIVE || r.Enc != receiptsv1.Encumbrance_ENCUMBRANCE_TRADING_CUSTODY:
			brk("receipt is %s, not in trading custody", r.describe(""))
			continue
		}
		w, err := parseWeight("weight", a.Weight, r.Scale)
		if err != nil {
			brk("allocation weight %q: %v", a.Weight, err)
			continue
		}
		total += w
		scale = r.Scale
		s.deliver(t, seq, tr, r, w)
	}
	if scale >= 0 {
		if q, err := parseWeight("quantity", tr.Quantity, scale); err != nil || q != total {
			broken = true
			t.breaks = append(t.breaks, breakRow{sequence: seq, tradeID: tr.TradeId,
				reason: fmt.Sprintf("allocations deliver %s t of a trade of %s t", formatWeight(total, scale), tr.Quantity)})
		}
	}
	if !broken && len(t.deliveries) > first {
		t.legs = append(t.legs, newGoodsLeg(seq, tr.TradeId, t.deliveries[first:]))
	}
	return nil
}

// choosePieces is the delivery rule for an allocation that takes part of a
// receipt: goods move in whole pieces, taken in piece-number order; the pieces
// are added one by one until the allocated weight is reached, and the last
// piece is kept or left out, whichever brings the delivered weight closer to
// the allocated one (a tie delivers it; at least one piece always moves).
func choosePieces(ps []piece, w int64) []piece {
	var acc int64
	for i, p := range ps {
		prev := acc
		acc += p.Weight
		if acc >= w {
			if i > 0 && w-prev < acc-w {
				return ps[:i]
			}
			return ps[:i+1]
		}
	}
	return ps
}

// withinTolerance says whether a delivery's over/under-weight stays within
// the commodity's tolerance, a fraction of the allocated weight.
func withinTolerance(diff, allocated int64, tolerance string) bool {
	tol, err := decimal.NewFromString(tolerance)
	if err != nil {
		return false
	}
	if diff < 0 {
		diff = -diff
	}
	return decimal.NewFromInt(diff).LessThanOrEqual(tol.Mul(decimal.NewFromInt(allocated)))
}

// deliver moves an allocation of w from the seller's receipt r to the buyer.
//
// The core's pool for r shrinks by the allocated weight. If that empties the
// pool, or the chosen pieces are all of r's, the whole receipt changes hands
// and keeps its number; otherwise the chosen pieces become a new receipt
// "<r>.<n>" for the buyer, and r keeps the rest under its number, so the
// core's pool (keyed by that number) still names the seller's goods.
//
// The difference between the pieces delivered and the weight allocated is the
// over/under-weight (溢短): positive means the buyer got more than it paid
// for. It is recorded on the events and in the deliveries table with the
// trade price, for settlement to cash-adjust, and flagged when outside the
// commodity's tolerance; the delivery itself stands, because the trade does.
//
// The buyer's goods stay in trading custody and are credited to the buyer as
// a new pool (sent by the resender once the transfer is committed), so the
// buyer can sell them on at once. This assumes the core does not itself give
// the buyer a receipt-backed position from the trade, and that it drops a
// pool once its weight is fully allocated (so a whole receipt's number can be
// credited to the buyer, like a re-deposit after a withdrawal).
func (s *Server) deliver(t *txn, seq int64, tr *tradingv1.TradeEvent, r *receipt, w int64) {
	pool := r.Pool - w
	var take []piece
	if pool <= 0 {
		take = r.Pieces
	} else {
		take = choosePieces(r.Pieces, w)
	}
	d := sumPieces(take)
	diff := d - w
	detail := map[string]any{
		"trade_id": tr.TradeId, "sequence": seq, "symbol": tr.Symbol, "seller": tr.SellerParticipantId,
		"buyer": tr.BuyerParticipantId, "allocated": formatWeight(w, r.Scale), "delivered": formatWeight(d, r.Scale),
		"difference": formatWeight(diff, r.Scale), "within_tolerance": withinTolerance(diff, w, r.Tolerance),
	}
	row := deliveryRow{tradeID: tr.TradeId, from: r.Number, sequence: seq, symbol: tr.Symbol, seller: tr.SellerParticipantId,
		buyer: tr.BuyerParticipantId, scale: r.Scale, allocated: w, delivered: d, diff: diff, within: detail["within_tolerance"].(bool)}
	if tr.Price != nil {
		detail["price"] = map[string]string{"currency": tr.Price.Currency, "amount": tr.Price.Amount}
		row.priceCurrency, row.price = tr.Price.Currency, tr.Price.Amount
	}
	buyerCustody := func(b *receipt) {
		b.Holder, b.Enc = tr.BuyerParticipantId, receiptsv1.Encumbrance_ENCUMBRANCE_TRADING_CUSTODY
		b.Commands++
		b.Pool = b.Weight
		// The resender finds the instruments and sends the credit.
		b.Pending, b.PendingKey = pendingCredit, fmt.Sprintf("deposit/%s/%d", b.Number, b.Commands)
		b.PendingSymbols, b.PendingRequest, b.PendingAfter = nil, "", 0
		t.outbox = append(t.outbox, b)
	}
	if len(take) == len(r.Pieces) {
		if pool > 0 {
			detail["pool_left_without_goods"] = formatWeight(pool, r.Scale)
			t.breaks = append(t.breaks, breakRow{sequence: seq, tradeID: tr.TradeId, receipt: r.Number,
				reason: fmt.Sprintf("all goods delivered but the core's pool keeps %s t", formatWeight(pool, r.Scale))})
		}
		buyerCustody(r)
		t.save(r)
		detail["to_receipt"] = r.Number
		row.to = r.Number
		t.emit(r, kindTransferred, "core", detail)
		t.deliveries = append(t.deliveries, row)
		return
	}
	c := child(r, append([]piece(nil), take...), t.now)
	buyerCustody(c)
	r.Pieces, r.piecesChanged = append([]piece(nil), r.Pieces[len(take):]...), true
	r.Weight -= d
	r.Pool = pool
	t.save(r)
	t.create(c)
	detail["to_receipt"] = c.Number
	row.to = c.Number
	names := make([]string, len(c.Pieces))
	for i, p := range c.Pieces {
		names[i] = p.Number
	}
	// The seller's side names the trade and what left; the buyer's receipt
	// carries the delivery's full terms.
	t.emit(r, kindDeliveredPart, "core", map[string]any{"trade_id": tr.TradeId, "sequence": seq, "to_receipt": c.Number,
		"pieces": names, "allocated": detail["allocated"], "delivered": detail["delivered"], "difference": detail["difference"]})
	t.emit(c, kindDeliveredFrom, "core", withKV(withKV(detail, "from_receipt", r.Number), "pieces", piecesDetail(c)))
	t.deliveries = append(t.deliveries, row)
}

func withKV(m map[string]any, k string, v any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for a, b := range m {
		out[a] = b
	}
	out[k] = v
	return out
}

// resendLoop sends the commands receipts are waiting on: credits for goods a
// buyer received, handed over by the consumer as soon as the delivery is
// committed; and, scanning the database every ResendAfter (or sooner), any
// pending command the core has not confirmed within ResendAfter (the core was
// unreachable, or a process stopped between marking and sending). The core
// dedupes by key, so a resend by two processes, or after a restart, is
// harmless. What was sent when is kept in memory only: no write per send.
func (s *Server) resendLoop(ctx context.Context) {
	sent := map[string]time.Time{} // pending key -> last sent
	tick := time.NewTicker(min(s.resendAfter, time.Second))
	defer tick.Stop()
	lastScan := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.resendNow:
			s.mu.Lock()
			queued := s.outbox
			s.outbox = nil
			s.mu.Unlock()
			for _, r := range queued {
				s.send(ctx, r, sent)
			}
		case now := <-tick.C:
			if now.Sub(lastScan) < s.resendAfter/2 {
				continue
			}
			lastScan = now
			if err := s.scanPending(ctx, sent); err != nil && ctx.Err() == nil {
				s.logger.Warn("receipts: scanning for unconfirmed core commands", "error", err)
			}
			for k, at := range sent { // forget what the core has long confirmed
				if now.Sub(at) > 4*s.resendAfter {
					delete(sent, k)
				}
			}
		}
	}
}

// scanPending (re)sends the pending commands that are due and were not sent
// within ResendAfter, going through them by receipt number.
func (s *Server) scanPending(ctx context.Context, sent map[string]time.Time) error {
	after := ""
	for {
		var due []*receipt
		err := s.store.run(ctx, s.now, func(t *txn) error {
			due = nil
			rows, err := t.tx.QueryContext(ctx, `SELECT `+receiptCols+` FROM receipts
				WHERE pending <> '' AND pending_after <= $1 AND receipt_number > $2 ORDER BY receipt_number LIMIT $3`, t.now, after, resendBatch)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				r, err := scanReceipt(rows)
				if err != nil {
					return err
				}
				due = append(due, r)
			}
			return rows.Err()
		})
		if err != nil {
			return err
		}
		for _, r := range due {
			if at, ok := sent[r.PendingKey]; ok && time.Since(at) < s.resendAfter {
				continue
			}
			s.send(ctx, r, sent)
		}
		if len(due) < resendBatch {
			return nil
		}
		after = due[len(due)-1].Number
	}
}

const resendBatch = 256

// send sends a receipt's pending command. A refusal ends it (endPending); a
// failure to answer leaves it for the next scan.
func (s *Server) send(ctx context.Context, r *receipt, sent map[string]time.Time) {
	var err error
	switch r.Pending {
	case pendingCredit:
		symbols := r.PendingSymbols
		if len(symbols) == 0 { // a buyer's goods: the instruments are found now
			cs, qerr := s.qualifying(ctx, r)
			if qerr != nil {
				s.logger.Warn("receipts: instruments for a credit", "receipt", r.Number, "error", qerr)
				return
			}
			if symbols = symbolsOf(cs); len(symbols) == 0 {
				err = status.Error(codes.FailedPrecondition, "no active instrument accepts the receipt")
				break
			}
		}
		_, err = s.core.CreditPosition(ctx, &tradingv1.CreditPositionRequest{IdempotencyKey: r.PendingKey,
			ParticipantId: r.Holder, ReceiptNumber: r.Number, Symbols: symbols, Weight: formatWeight(r.Weight, r.Scale)})
	case pendingDebit:
		_, err = s.core.DebitPosition(ctx, &tradingv1.DebitPositionRequest{IdempotencyKey: r.PendingKey,
			ParticipantId: r.Holder, ReceiptNumber: r.Number})
	default:
		return
	}
	sent[r.PendingKey] = time.Now()
	switch {
	case err == nil:
	case refusedByCore(err):
		if eerr := s.endPending(ctx, r.Number, r.PendingKey, err); eerr != nil && ctx.Err() == nil {
			s.logger.Warn("receipts: ending a refused core command", "receipt", r.Number, "key", r.PendingKey, "error", eerr)
			delete(sent, r.PendingKey) // try again at the next scan
		}
	case ctx.Err() == nil:
		s.logger.Warn("receipts: core command not confirmed", "receipt", r.Number, "key", r.PendingKey,
			"error", status.Convert(err).Message())
	}
}
