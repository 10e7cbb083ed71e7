package orderbook

import (
	"slices"
	"sort"
)

// refBook is the naive reference model the differential tests compare Book
// against. It keeps resting orders in one unsorted slice, sorts a copy
// whenever it needs priority order, and re-runs the full matching loop on a
// copy of itself to decide FOK and minimum quantity. Nothing is cached, so
// it is slow and obviously correct.
type refBook struct {
	cfg        Config
	phase      Phase
	orders     []*refOrder
	seq        int64
	events     []Event
	simulating bool // a what-if copy used by the FOK/MinQty check
}

type refOrder struct {
	st  OrderState
	seq int64 // time priority, lower first
}

func newRefBook(cfg Config) *refBook { return &refBook{cfg: cfg} }

func (r *refBook) emit(e Event) {
	if !r.simulating {
		r.events = append(r.events, e)
	}
}

func (r *refBook) nextSeq() int64 { r.seq++; return r.seq }

func refAhead(a, b *refOrder) bool {
	if a.st.Price != b.st.Price {
		if a.st.Side == Buy {
			return a.st.Price > b.st.Price
		}
		return a.st.Price < b.st.Price
	}
	return a.seq < b.seq
}

// sideOrders returns the resting orders of side s in priority order.
func (r *refBook) sideOrders(s Side) []*refOrder {
	var out []*refOrder
	for _, o := range r.orders {
		if o.st.Side == s {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return refAhead(out[i], out[j]) })
	return out
}

func (r *refBook) find(id int64) *refOrder {
	for _, o := range r.orders {
		if o.st.ID == id {
			return o
		}
	}
	return nil
}

func (r *refBook) remove(o *refOrder) {
	i := slices.Index(r.orders, o)
	r.orders = slices.Delete(r.orders, i, i+1)
}

func (r *refBook) clone() *refBook {
	c := *r
	c.orders = nil
	for _, o := range r.orders {
		cp := *o
		c.orders = append(c.orders, &cp)
	}
	c.events = nil
	return &c
}

func (r *refBook) best(s Side) (int64, bool) {
	os := r.sideOrders(s)
	if len(os) == 0 {
		return 0, false
	}
	return os[0].st.Price, true
}

// wouldTrade reports whether an order on side s limited at limit can trade
// with a resting order at price p.
func wouldTrade(s Side, limit, p int64) bool {
	if s == Buy {
		return p <= limit
	}
	return p >= limit
}

func (r *refBook) crosses(s Side, limit int64) bool {
	p, ok := r.best(1 - s)
	return ok && wouldTrade(s, limit, p)
}

func rests(t TIF) bool { return t == GTC || t == Day }

func refEvent(kind EventKind, reason Reason, st *OrderState, qty int64) Event {
	return Event{Kind: kind, Reason: reason, Side: st.Side, OrderID: st.ID, Participant: st.Participant,
		User: st.User, Price: st.Price, Qty: qty, Remaining: st.Qty}
}

func (r *refBook) reject(reason Reason, side Side, id, participant int64, user uint64, price, qty int64) Reason {
	r.emit(Event{Kind: EventReject, Reason: reason, Side: side, OrderID: id, Participant: participant,
		User: user, Price: price, Qty: qty})
	return reason
}

func (r *refBook) Submit(o Order) Reason {
	iceberg := o.DisplayQty > 0 && o.DisplayQty < o.Qty
	notResting := o.Type == Market || !rests(o.TIF)
	var why Reason
	switch {
	case o.Side != Buy && o.Side != Sell:
		why = ReasonInvalidSide
	case o.Type != Limit && o.Type != Market:
		why = ReasonInvalidType
	case o.TIF != GTC && o.TIF != Day && o.TIF != IOC && o.TIF != FOK:
		why = ReasonInvalidTIF
	case o.STP > STPDecrement:
		why = ReasonInvalidSTP
	case o.Qty <= 0 || o.Qty > MaxQty:
		why = ReasonInvalidQty
	case o.Price < r.cfg.MinPrice || o.Price > r.cfg.MaxPrice:
		why = ReasonPriceOutOfBand
	case o.Type == Market && rests(o.TIF):
		why = ReasonMarketTIF
	case o.DisplayQty < 0:
		why = ReasonInvalidDisplayQty
	case iceberg && notResting:
		why = ReasonIcebergNotResting
	case o.MinQty < 0 || o.MinQty > o.Qty:
		why = ReasonInvalidMinQty
	case o.PostOnly && notResting:
		why = ReasonPostOnlyTIF
	case o.PostOnly && o.MinQty > 0:
		why = ReasonPostOnlyMinQty
	case r.find(o.ID) != nil:
		why = ReasonDuplicateID
	case r.phase == PhaseAuction && notResting:
		why = ReasonAuctionOrderType
	case r.phase == PhaseAuction && o.MinQty > 0:
		why = ReasonAuctionMinQty
	case len(r.orders) >= r.cfg.MaxOrders:
		why = ReasonBookFull
	}
	if why != ReasonNone {
		return r.reject(why, o.Side, o.ID, o.Participant, o.User, o.Price, o.Qty)
	}
	limit := o.Price
	if o.Type == Market && r.cfg.MarketProtectionTicks > 0 {
		if p, ok := r.best(1 - o.Side); ok {
			if o.Side == Buy && p+r.cfg.MarketProtectionTicks < limit {
				limit = p + r.cfg.MarketProtectionTicks
			}
			if o.Side == Sell && p-r.cfg.MarketProtectionTicks > limit {
				limit = p - r.cfg.MarketProtectionTicks
			}
		}
	}
	t := &refOrder{st: OrderState{ID: o.ID, Participant: o.Participant, User: o.User, Side: o.Side,
		TIF: o.TIF, STP: o.STP, PostOnly: o.PostOnly, Price: limit, Qty: o.Qty, OrigQty: o.Qty}}
	if iceberg {
		t.st.DisplayQty = o.DisplayQty
	}
	if r.phase == PhaseContinuous {
		if o.PostOnly && r.crosses(o.Side, limit) {
			return r.reject(ReasonPostOnlyWouldTake, o.Side, o.ID, o.Participant, o.User, o.Price, o.Qty)
		}
		if o.TIF == FOK || o.MinQty > 0 {
			// Play the match on a copy and see how much trades.
			sim := r.clone()
			sim.simulating = true
			cp := *t
			sim.match(&cp)
			if o.TIF == FOK && cp.st.FilledQty < o.Qty {
				return r.reject(ReasonFOKNotFillable, o.Side, o.ID, o.Participant, o.User, o.Price, o.Qty)
			}
			if o.TIF != FOK && cp.st.FilledQty < o.MinQty {
				return r.reject(ReasonMinQtyNotMet, o.Side, o.ID, o.Participant, o.User, o.Price, o.Qty)
			}
		}
	}
	r.emit(refEvent(EventAccepted, ReasonNone, &t.st, o.Qty))
	if r.phase == PhaseContinuous {
		r.match(t)
	}
	if t.st.Qty == 0 {
		return ReasonNone
	}
	if o.Type == Market {
		r.cancelIncoming(t, ReasonMarketRemainder)
	} else if !rests(o.TIF) {
		r.cancelIncoming(t, ReasonIOCRemainder)
	} else {
		r.rest(t)
		r.emit(refEvent(EventRested, ReasonNone, &t.st, t.st.Qty))
	}
	return ReasonNone
}

func refFresh(st *OrderState) int64 {
	if st.DisplayQty > 0 && st.DisplayQty < st.Qty {
		return st.DisplayQty
	}
	return st.Qty
}

func (r *refBook) rest(t *refOrder) {
	t.st.Visible = refFresh(&t.st)
	t.seq = r.nextSeq()
	r.orders = append(r.orders, t)
}

func (r *refBook) cancelIncoming(t *refOrder, why Reason) {
	q := t.st.Qty
	t.st.CancelledQty += q
	t.st.Qty = 0
	r.emit(refEvent(EventCancel, why, &t.st, q))
}

func (r *refBook) cancelResting(m *refOrder, why Reason) {
	q := m.st.Qty
	m.st.CancelledQty += q
	m.st.Qty, m.st.Visible = 0, 0
	r.emit(refEvent(EventCancel, why, &m.st, q))
	r.remove(m)
}

func refShrink(st *OrderState, d int64) {
	st.Qty -= d
	st.CancelledQty += d
	st.Visible = min(st.Visible, st.Qty)
}

// match trades incoming order t (not in r.orders) against the other side.
func (r *refBook) match(t *refOrder) {
	for t.st.Qty > 0 {
		contra := r.sideOrders(1 - t.st.Side)
		if len(contra) == 0 || !wouldTrade(t.st.Side, t.st.Price, contra[0].st.Price) {
			return
		}
		m := contra[0]
		if t.st.STP != STPNone && m.st.Participant == t.st.Participant {
			if r.simulating && t.st.STP == STPDecrement {
				return // the FOK/MinQty count stops at an own order
			}
			switch t.st.STP {
			case STPCancelIncoming:
				r.cancelIncoming(t, ReasonSTPCancelIncoming)
			case STPCancelResting:
				r.cancelResting(m, ReasonSTPCancelResting)
			case STPCancelBoth:
				r.cancelResting(m, ReasonSTPCancelBoth)
				r.cancelIncoming(t, ReasonSTPCancelBoth)
			case STPDecrement:
				d := min(t.st.Qty, m.st.Qty)
				if d == m.st.Qty {
					m.st.Visible = 0
					m.st.Qty -= d
					m.st.CancelledQty += d
					r.emit(refEvent(EventCancel, ReasonSTPDecrement, &m.st, d))
					r.remove(m)
				} else {
					refShrink(&m.st, d)
					r.emit(refEvent(EventReduce, ReasonSTPDecrement, &m.st, d))
				}
				refShrink(&t.st, d)
				if t.st.Qty == 0 {
					r.emit(refEvent(EventCancel, ReasonSTPDecrement, &t.st, d))
				} else {
					r.emit(refEvent(EventReduce, ReasonSTPDecrement, &t.st, d))
				}
			}
			continue
		}
		q := min(t.st.Qty, m.st.Visible)
		t.st.Qty -= q
		t.st.FilledQty += q
		m.st.Qty -= q
		m.st.Visible -= q
		m.st.FilledQty += q
		r.emit(Event{Kind: EventFill, Side: t.st.Side, OrderID: t.st.ID, Participant: t.st.Participant,
			User: t.st.User, Price: m.st.Price, Qty: q, Remaining: t.st.Qty, ContraID: m.st.ID,
			ContraParticipant: m.st.Participant, ContraUser: m.st.User, ContraRemaining: m.st.Qty})
		if m.st.Qty == 0 {
			r.remove(m)
		} else if m.st.Visible == 0 {
			m.st.Visible = refFresh(&m.st)
			m.seq = r.nextSeq()
		}
	}
}

func (r *refBook) Cancel(id int64) Reason {
	o := r.find(id)
	if o == nil {
		return r.reject(ReasonUnknownOrder, 0, id, 0, 0, 0, 0)
	}
	r.cancelResting(o, ReasonCancelled)
	return ReasonNone
}

func (r *refBook) Reduce(id, qty int64) Reason {
	o := r.find(id)
	if o == nil {
		return r.reject(ReasonUnknownOrder, 0, id, 0, 0, 0, qty)
	}
	if qty <= 0 {
		return r.reject(ReasonInvalidQty, o.st.Side, id, o.st.Participant, o.st.User, o.st.Price, qty)
	}
	if qty >= o.st.Qty {
		return r.reject(ReasonReduceNotLower, o.st.Side, id, o.st.Participant, o.st.User, o.st.Price, qty)
	}
	d := o.st.Qty - qty
	refShrink(&o.st, d)
	r.emit(refEvent(EventReduce, ReasonNone, &o.st, d))
	return ReasonNone
}

func (r *refBook) Replace(id, price, qty int64) Reason {
	o := r.find(id)
	if o == nil {
		return r.reject(ReasonUnknownOrder, 0, id, 0, 0, price, qty)
	}
	rej := func(why Reason) Reason {
		return r.reject(why, o.st.Side, id, o.st.Participant, o.st.User, price, qty)
	}
	if qty <= 0 || qty > MaxQty {
		return rej(ReasonInvalidQty)
	}
	if price < r.cfg.MinPrice || price > r.cfg.MaxPrice {
		return rej(ReasonPriceOutOfBand)
	}
	if price == o.st.Price && qty == o.st.Qty {
		return rej(ReasonReplaceNoChange)
	}
	if o.st.PostOnly && r.phase == PhaseContinuous && r.crosses(o.st.Side, price) {
		return rej(ReasonPostOnlyWouldTake)
	}
	if price == o.st.Price && qty < o.st.Qty {
		refShrink(&o.st, o.st.Qty-qty)
		r.emit(refEvent(EventReplace, ReasonNone, &o.st, qty))
		return ReasonNone
	}
	r.remove(o)
	if qty > o.st.Qty {
		o.st.OrigQty += qty - o.st.Qty
	} else {
		o.st.CancelledQty += o.st.Qty - qty
	}
	o.st.Qty = qty
	o.st.Price = price
	r.emit(refEvent(EventReplace, ReasonNone, &o.st, qty))
	if r.phase == PhaseContinuous {
		r.match(o)
	}
	if o.st.Qty > 0 {
		r.rest(o)
	}
	return ReasonNone
}

// Walk returns every resting order in Walk order.
func (r *refBook) Walk() []OrderState {
	var out []OrderState
	for _, s := range []Side{Buy, Sell} {
		for _, o := range r.sideOrders(s) {
			out = append(out, o.st)
		}
	}
	return out
}

func (r *refBook) cancelWhere(why Reason, f func(*OrderState) bool) int {
	n := 0
	for _, st := range r.Walk() {
		if f(&st) {
			r.cancelResting(r.find(st.ID), why)
			n++
		}
	}
	return n
}

func (r *refBook) CancelParticipant(p int64) int {
	return r.cancelWhere(ReasonMassCancel, func(st *OrderState) bool { return st.Participant == p })
}

func (r *refBook) ExpireDayOrders() int {
	return r.cancelWhere(ReasonDayExpired, func(st *OrderState) bool { return st.TIF == Day })
}

func (r *refBook) StartAuction() error {
	if r.phase != PhaseContinuous {
		return ErrPhase
	}
	r.phase = PhaseAuction
	return nil
}

// Indicative tries every price of every resting order and ranks them by the
// documented rule with one sort.
func (r *refBook) Indicative(ref int64) Indication {
	var cands []Indication
	for _, c := range r.orders {
		p := c.st.Price
		ind := Indication{Price: p}
		for _, o := range r.orders {
			if o.st.Side == Buy && o.st.Price >= p {
				ind.BuyQty += o.st.Qty
			}
			if o.st.Side == Sell && o.st.Price <= p {
				ind.SellQty += o.st.Qty
			}
		}
		ind.Volume = min(ind.BuyQty, ind.SellQty)
		ind.Imbalance = ind.BuyQty - ind.SellQty
		if ind.Volume > 0 {
			cands = append(cands, ind)
		}
	}
	absv := func(v int64) int64 { return max(v, -v) }
	sort.Slice(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if a.Volume != b.Volume {
			return a.Volume > b.Volume
		}
		if absv(a.Imbalance) != absv(b.Imbalance) {
			return absv(a.Imbalance) < absv(b.Imbalance)
		}
		if absv(a.Price-ref) != absv(b.Price-ref) {
			return absv(a.Price-ref) < absv(b.Price-ref)
		}
		return a.Price < b.Price
	})
	if len(cands) == 0 {
		return Indication{}
	}
	return cands[0]
}

func (r *refBook) Uncross(ref int64) (Indication, error) {
	if r.phase != PhaseAuction {
		return Indication{}, ErrPhase
	}
	ind := r.Indicative(ref)
	r.emit(Event{Kind: EventUncross, Price: ind.Price, Qty: ind.Volume})
	bids, asks := r.sideOrders(Buy), r.sideOrders(Sell)
	rem := ind.Volume
	for i, j := 0, 0; rem > 0; {
		bo, so := bids[i], asks[j]
		q := min(rem, bo.st.Qty, so.st.Qty)
		rem -= q
		for _, st := range []*OrderState{&bo.st, &so.st} {
			st.Qty -= q
			st.FilledQty += q
			st.Visible = min(st.Visible, st.Qty)
		}
		r.emit(Event{Kind: EventFill, Side: Buy, OrderID: bo.st.ID, Participant: bo.st.Participant,
			User: bo.st.User, Price: ind.Price, Qty: q, Remaining: bo.st.Qty, ContraID: so.st.ID,
			ContraParticipant: so.st.Participant, ContraUser: so.st.User, ContraRemaining: so.st.Qty})
		if bo.st.Qty == 0 {
			r.remove(bo)
			i++
		}
		if so.st.Qty == 0 {
			r.remove(so)
			j++
		}
	}
	r.phase = PhaseContinuous
	return ind, nil
}

func (r *refBook) Depth(s Side) []Level {
	var out []Level
	for _, o := range r.sideOrders(s) {
		if n := len(out); n == 0 || out[n-1].Price != o.st.Price {
			out = append(out, Level{Price: o.st.Price})
		}
		l := &out[len(out)-1]
		l.Qty += o.st.Visible
		l.TotalQty += o.st.Qty
		l.Orders++
	}
	return out
}
