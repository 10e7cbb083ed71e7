package core

import (
	"slices"

	"github.com/bcx-exchange/bcx/pkg/orderbook"
)

// Reads for the service's query commands. They run on the sequencer's
// goroutine like commands and change nothing.

// Order returns a participant's order by id, or by client order id when id
// is 0. Another participant's order is not found, exactly like a missing one.
func (c *Core) Order(participant int64, id int64, clientID string) (OrderView, bool) {
	if id == 0 {
		e, ok := c.cloids.get(cloidKey{participant, clientID})
		if !ok {
			return OrderView{}, false
		}
		id = e.orderID
	}
	s, ok := c.lookup(id)
	if !ok || c.orders.peek(s).partNum != participant {
		return OrderView{}, false
	}
	return c.view(s), true
}

// Orders returns up to limit of a participant's known orders (open, and
// finished ones still kept) with ids above afterID, in id order, optionally
// only in one instrument and only open ones.
func (c *Core) Orders(participant, instrument int64, openOnly bool, afterID int64, limit int) []OrderView {
	pi, ok := c.partIndex(participant)
	if !ok {
		return nil
	}
	var out []OrderView
	for s := range int32(c.orders.len()) {
		o := c.orders.peek(s)
		if !o.live || o.part != pi || o.id <= afterID || (openOnly && o.open == 0) ||
			(instrument != 0 && c.defs[o.def].Number != instrument) {
			continue
		}
		out = append(out, c.view(int32(s)))
	}
	slices.SortFunc(out, func(a, b OrderView) int { return int(a.ID - b.ID) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// FundsBalance is a participant's balance in one currency, minor units.
type FundsBalance struct {
	Currency string
	Exp      int32
	Total    int64
	Reserved int64
}

// PositionBalance is a participant's weight usable in one instrument:
// receipts that qualify for several instruments count in each.
type PositionBalance struct {
	Instrument int64
	Def        int32
	Total      int64 // micro-units
	Reserved   int64
}

// Balances returns a participant's funds by currency and positions by
// instrument, in currency and instrument order.
func (c *Core) Balances(participant int64) ([]FundsBalance, []PositionBalance) {
	pi, ok := c.partIndex(participant)
	if !ok {
		return nil, nil
	}
	p := &c.parts[pi]
	var fs []FundsBalance
	for cur, f := range p.funds {
		fs = append(fs, FundsBalance{Currency: c.currencies[cur].Code, Exp: c.currencies[cur].Exp, Total: f.total, Reserved: f.reserved})
	}
	var ps []PositionBalance
	for ii := range c.insts {
		n := c.defs[c.insts[ii].def].Number
		var pb PositionBalance
		found := false
		for _, s := range p.pools {
			pl := &c.pools[s]
			if containsInt64(pl.insts, n) {
				pb.Total += pl.total
				pb.Reserved += pl.reserved
				found = true
			}
		}
		if found {
			pb.Instrument, pb.Def = n, c.insts[ii].def
			ps = append(ps, pb)
		}
	}
	return fs, ps
}

// Market is an instrument's public state.
type Market struct {
	Number     int64
	Def        int32
	Phase      Phase
	Bids, Asks []orderbook.Level
	LastPrice  int64
	LastQty    int64
	Volume     int64 // lots today
	Indicative orderbook.Indication
	Auction    bool
}

// MarketOf fills m with an instrument's public state, reusing m's level
// slices, with up to depth levels a side.
func (c *Core) MarketOf(number int64, depth int, m *Market) bool {
	ii, ok := c.instByNum[number]
	if !ok {
		return false
	}
	in := &c.insts[ii]
	m.Number, m.Def, m.Phase = number, in.def, in.phase
	m.Bids = slices.Grow(m.Bids[:0], depth)[:depth]
	m.Asks = slices.Grow(m.Asks[:0], depth)[:depth]
	m.Bids = m.Bids[:in.book.Depth(orderbook.Buy, m.Bids)]
	m.Asks = m.Asks[:in.book.Depth(orderbook.Sell, m.Asks)]
	m.LastPrice, m.LastQty, m.Volume = in.lastPrice, in.lastQty, in.volume
	m.Auction = in.book.Phase() == orderbook.PhaseAuction
	m.Indicative = orderbook.Indication{}
	if m.Auction {
		ref := in.lastPrice
		if ref == 0 {
			ref = c.defs[in.def].ReferenceTicks
		}
		m.Indicative = in.book.Indicative(ref)
	}
	return true
}

// RecentTrades returns an instrument's kept trades, oldest first.
func (c *Core) RecentTrades(number int64) []Trade {
	ii, ok := c.instByNum[number]
	if !ok {
		return nil
	}
	r := &c.insts[ii].trades
	out := make([]Trade, r.len())
	for k := range out {
		out[k] = r.at(k)
	}
	return out
}
