package core

import (
	"fmt"
	"slices"

	"github.com/bcx-exchange/bcx/pkg/orderbook"
)

// CheckInvariants verifies the core's accounting and returns the first
// violation. It walks everything: for tests, debug builds and after
// recovery, not the hot path.
//
//   - funds: for every participant and currency, total >= reserved >= 0,
//     and reserved is the sum of the reservations of its open buy orders,
//     each exactly what its open quantity needs;
//   - funds are conserved: per currency, the sum of totals equals credits
//     minus debits minus fees paid plus what FX conversions moved in;
//   - an FX-funded order's converted total is exactly its trade-currency
//     total converted with its rounding;
//   - pools: total >= reserved >= 0, reserved is the sum of the open sell
//     orders' reservations in it, and every open sell order holds exactly
//     its open lots' weight;
//   - weight is conserved: the pools' totals equal deposits minus
//     withdrawals minus weight sold;
//   - orders: a client order id's inline copy is its bytes;
//     original = filled + open + cancelled; every open order rests
//     in its instrument's book with the same open quantity and price, and
//     the books' own invariants hold.
func (c *Core) CheckInvariants() error {
	type key struct{ part, cur int32 }
	want := map[key]int64{}
	poolRes := make([]int64, len(c.pools))
	open, openListings, openAuction := 0, 0, 0
	for slot := range int32(c.orders.len()) {
		o := c.orders.peek(slot)
		if !o.live {
			continue
		}
		if n := int(o.cloidN) - 1; n >= 0 && (n != len(o.cloid) || n > len(o.cloidIn) || string(o.cloidIn[:n]) != o.cloid) {
			return fmt.Errorf("order %d: client order id %q, inline copy %q (length+1 %d)", o.id, o.cloid, o.cloidIn, o.cloidN)
		}
		if o.qty != o.filled+o.open+o.cancelled || o.filled < 0 || o.open < 0 || o.cancelled < 0 {
			return fmt.Errorf("order %d: qty %d != filled %d + open %d + cancelled %d", o.id, o.qty, o.filled, o.open, o.cancelled)
		}
		if s, ok := c.lookup(o.id); !ok || s != int32(slot) {
			return fmt.Errorf("order %d not indexed at its slot", o.id)
		}
		d := &c.defs[o.def]
		if o.fx != 0 {
			if o.fx < 0 || int(o.fx) > len(c.rates) {
				return fmt.Errorf("order %d: no FX rate %d", o.id, o.fx-1)
			}
			r := &c.rates[o.fx-1]
			tc := c.defCur[o.def]
			if o.fxCur == tc || !(r.base == tc && r.quote == o.fxCur || r.quote == tc && r.base == o.fxCur) {
				return fmt.Errorf("order %d: FX rate %d does not convert %s", o.id, o.fx-1, d.Currency)
			}
			if done, ok := c.convert(r, tc, o.fxBase, o.side == orderbook.Buy); !ok || done != o.fxDone {
				return fmt.Errorf("order %d: FX total %d converts to %d, recorded %d", o.id, o.fxBase, done, o.fxDone)
			}
		}
		if err := c.checkOutsideBook(o); err != nil {
			return err
		}
		if o.open == 0 {
			if o.reserved != 0 || o.wresLen() != 0 {
				return fmt.Errorf("finished order %d holds a reservation", o.id)
			}
			continue
		}
		if o.auc != nil || o.bidOf != 0 {
			// An auction's lot and bids rest with the auction.
			openAuction++
			if _, inBook := c.insts[o.inst].book.Order(o.id); inBook {
				return fmt.Errorf("auction order %d rests in the book", o.id)
			}
			if o.auc != nil && (o.auc.closed || !slices.Contains(c.auctions, int32(slot))) {
				return fmt.Errorf("open auction %d not listed", o.id)
			}
			if o.bidOf != 0 {
				as, ok := c.lookup(o.bidOf)
				if !ok || c.orders.peek(as).auc == nil || !slices.Contains(c.orders.peek(as).auc.bids, int32(slot)) {
					return fmt.Errorf("open bid %d not in auction %d", o.id, o.bidOf)
				}
			}
		} else if o.lst != nil {
			// A listing rests in the listing list, never in the book.
			openListings++
			if !slices.Contains(c.listings, int32(slot)) {
				return fmt.Errorf("open listing %d not listed", o.id)
			}
			if _, inBook := c.insts[o.inst].book.Order(o.id); inBook {
				return fmt.Errorf("listing %d rests in the book", o.id)
			}
		} else {
			open++
			st, ok := c.insts[o.inst].book.Order(o.id)
			if !ok || st.Qty != o.open || st.Price != o.price || int32(st.User) != int32(slot) {
				return fmt.Errorf("open order %d (open %d at %d) not in its book as such: %+v %v", o.id, o.open, o.price, st, ok)
			}
		}
		if o.side == orderbook.Buy {
			need, ok := c.buyReserve(d, o.fee, o.price, o.open)
			if ok && o.fx != 0 {
				need, ok = c.fxNeed(o, need)
			}
			if !ok || need != o.reserved {
				return fmt.Errorf("buy order %d reserves %d, needs %d", o.id, o.reserved, need)
			}
			want[key{o.part, c.fundCur(o)}] += o.reserved
			if o.wresLen() != 0 {
				return fmt.Errorf("buy order %d reserves weight", o.id)
			}
		} else {
			if o.reserved != 0 {
				return fmt.Errorf("sell order %d reserves funds", o.id)
			}
			if w := o.reservedWeight(); w != o.open*d.LotMicro {
				return fmt.Errorf("sell order %d reserves %d micro-units, needs %d", o.id, w, o.open*d.LotMicro)
			}
			for i := range o.wresLen() {
				r := o.wresAt(i)
				if r.weight <= 0 || !c.pools[r.pool].live || c.pools[r.pool].part != o.part ||
					!containsInt64(c.pools[r.pool].insts, d.Number) {
					return fmt.Errorf("sell order %d: bad reservation %+v", o.id, *r)
				}
				named := []string(nil)
				if o.lst != nil {
					named = o.lst.spec.Receipts
				} else if o.auc != nil {
					named = o.auc.receipts
				}
				if len(named) > 0 && !slices.Contains(named, c.pools[r.pool].receipt) {
					return fmt.Errorf("listing or auction %d reserves receipt %s it does not name", o.id, c.pools[r.pool].receipt)
				}
				poolRes[r.pool] += r.weight
			}
		}
	}
	resting := 0
	for i := range c.insts {
		b := c.insts[i].book
		if err := b.CheckInvariants(); err != nil {
			return fmt.Errorf("instrument %s: %v", c.defs[c.insts[i].def].Symbol, err)
		}
		resting += b.Len()
	}
	if resting != open {
		return fmt.Errorf("%d orders rest in books, %d open in the core", resting, open)
	}
	sums := make([]int64, len(c.currencies))
	for pi := range c.parts {
		p := &c.parts[pi]
		for cur, f := range p.funds {
			if f.reserved < 0 || f.total < f.reserved {
				return fmt.Errorf("participant %s %s: total %d, reserved %d", p.id, c.currencies[cur].Code, f.total, f.reserved)
			}
			if w := want[key{int32(pi), int32(cur)}]; w != f.reserved {
				return fmt.Errorf("participant %s %s: reserved %d, orders reserve %d", p.id, c.currencies[cur].Code, f.reserved, w)
			}
			sums[cur] += f.total
		}
		for _, s := range p.pools {
			if !c.pools[s].live || c.pools[s].part != int32(pi) {
				return fmt.Errorf("participant %s lists pool %d it does not own", p.id, s)
			}
		}
	}
	for cur := range c.currencies {
		if want := c.credits[cur] - c.debits[cur] - c.feesPaid[cur] + c.fxNet[cur]; sums[cur] != want {
			return fmt.Errorf("%s not conserved: balances %d, credits %d - debits %d - fees %d + FX %d = %d",
				c.currencies[cur].Code, sums[cur], c.credits[cur], c.debits[cur], c.feesPaid[cur], c.fxNet[cur], want)
		}
	}
	var weight int64
	live := 0
	for s := range c.pools {
		p := &c.pools[s]
		if !p.live {
			continue
		}
		live++
		if p.reserved < 0 || p.total < p.reserved {
			return fmt.Errorf("receipt %s: total %d, reserved %d", p.receipt, p.total, p.reserved)
		}
		if p.reserved != poolRes[s] {
			return fmt.Errorf("receipt %s: reserved %d, orders reserve %d", p.receipt, p.reserved, poolRes[s])
		}
		if slot, ok := c.poolByRc[p.receipt]; !ok || slot != int32(s) {
			return fmt.Errorf("receipt %s not indexed", p.receipt)
		}
		weight += p.total
	}
	if live != len(c.poolByRc) {
		return fmt.Errorf("%d live pools, %d indexed", live, len(c.poolByRc))
	}
	if want := c.weightIn - c.weightOut - c.weightSold; weight != want {
		return fmt.Errorf("weight not conserved: pools %d, in %d - out %d - sold %d = %d", weight, c.weightIn, c.weightOut, c.weightSold, want)
	}
	if openListings != len(c.listings) {
		return fmt.Errorf("%d open listings, %d listed", openListings, len(c.listings))
	}
	bids := 0
	for _, s := range c.auctions {
		bids += len(c.orders.peek(s).auc.bids)
	}
	if openAuction != len(c.auctions)+bids {
		return fmt.Errorf("%d open auction orders, %d auctions with %d bids", openAuction, len(c.auctions), bids)
	}
	if c.ids.n != open+openListings+openAuction+c.finished.len() {
		return fmt.Errorf("%d orders indexed, %d open + %d listings + %d in auctions + %d finished", c.ids.n, open, openListings,
			openAuction, c.finished.len())
	}
	if n := c.cloids.byHash.len() + len(c.cloids.over); n != c.cloids.live {
		return fmt.Errorf("%d client order ids indexed, %d counted", n, c.cloids.live)
	}

	return nil
}

// checkOutsideBook checks the terms of listings, auctions and bids.
func (c *Core) checkOutsideBook(o *order) error {
	if (o.lst != nil) && (o.auc != nil || o.bidOf != 0) || (o.auc != nil && o.bidOf != 0) {
		return fmt.Errorf("order %d is more than one of listing, auction and bid", o.id)
	}
	if l := o.lst; l != nil && (l.minTake < 1 || l.minTake > o.qty) {
		return fmt.Errorf("listing %d: minimum take %d of %d", o.id, l.minTake, o.qty)
	}
	if a := o.auc; a != nil {
		if o.side != orderbook.Sell || a.ends <= a.starts || a.minInc < 1 || a.ext < 0 {
			return fmt.Errorf("auction %d: bad terms", o.id)
		}
		var top int64
		for _, b := range a.bids {
			bo := c.orders.peek(b)
			if bo.side != orderbook.Buy || bo.inst != o.inst || bo.price < o.price || bo.bidOf != o.id || bo.open == 0 {
				return fmt.Errorf("auction %d: bad bid %d", o.id, bo.id)
			}
			top = max(top, bo.price)
		}
		if len(a.bids) > 0 && a.best != top {
			return fmt.Errorf("auction %d: best bid %d, bids reach %d", o.id, a.best, top)
		}
		if a.closed && len(a.bids) != 0 {
			return fmt.Errorf("closed auction %d holds bids", o.id)
		}
	}
	if o.bidOf != 0 && o.side != orderbook.Buy {
		return fmt.Errorf("bid %d is not a buy", o.id)
	}
	return nil
}
