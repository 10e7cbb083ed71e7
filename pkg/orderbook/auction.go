package orderbook

// StartAuction begins a call auction's collection phase: from now on orders
// rest without matching (market, IOC, FOK and MinQty orders are rejected)
// and the book may be crossed, until Uncross.
func (b *Book) StartAuction() error {
	if b.phase != PhaseContinuous {
		return ErrPhase
	}
	b.phase = PhaseAuction
	return nil
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// Indicative returns what Uncross(ref) would do now: the uncross price, the
// volume that would execute there and the imbalance. It does not allocate
// and may be called at any time; outside an auction the book is not crossed
// and the result is zero.
//
// The uncross price is chosen among the limit prices of resting orders. At a
// candidate price p, BuyQty is the open quantity (shown and hidden) of bids
// priced at or above p, SellQty that of asks priced at or below p, and the
// executable volume is min(BuyQty, SellQty). The price is the candidate
//  1. with the largest executable volume (which must be > 0, else nothing
//     executes and the result is zero), then
//  2. with the smallest absolute imbalance |BuyQty - SellQty|, then
//  3. closest to the reference price ref, |p - ref|, then
//  4. the lowest price.
func (b *Book) Indicative(ref int64) Indication {
	bids, asks := &b.sides[Buy], &b.sides[Sell]
	if bids.best < 0 || asks.best < 0 || bids.best < asks.best {
		return Indication{}
	}
	lo, hi := asks.best, bids.best
	var totalBuy int64
	for off := hi; off >= lo; off = bids.bits.prev(off - 1) {
		totalBuy += b.levels[bids.slot[off]].total
	}
	var best Indication
	var bestDist int64
	var buyBelow, sellCum int64
	for off := lo; off >= 0 && off <= hi; {
		if li := asks.slot[off]; li != 0 {
			sellCum += b.levels[li].total
		}
		buyQty := totalBuy - buyBelow
		vol := min(buyQty, sellCum)
		imb := buyQty - sellCum
		p := b.minPrice + int64(off)
		dist := abs64(p - ref)
		if vol > best.Volume ||
			(vol == best.Volume && (abs64(imb) < abs64(best.Imbalance) ||
				(abs64(imb) == abs64(best.Imbalance) && dist < bestDist))) {
			best = Indication{Price: p, Volume: vol, BuyQty: buyQty, SellQty: sellCum, Imbalance: imb}
			bestDist = dist
		}
		if li := bids.slot[off]; li != 0 {
			buyBelow += b.levels[li].total
		}
		na, nb := asks.bits.next(off+1), bids.bits.next(off+1)
		switch {
		case na < 0:
			off = nb
		case nb < 0:
			off = na
		default:
			off = min(na, nb)
		}
	}
	return best
}

// Uncross ends the auction collection phase: it executes at the price chosen
// by Indicative(ref), emits EventUncross and then one EventFill per pair of
// orders matched (OrderID is the buy order, ContraID the sell order, Price
// the uncross price), and returns the book to continuous trading. Orders
// execute in price-time priority on each side; an iceberg trades its whole
// open quantity, hidden part first, and keeps its place in the queue.
// Self-trade prevention does not apply. What remains is not crossed.
func (b *Book) Uncross(ref int64) (Indication, error) {
	if b.phase != PhaseAuction {
		return Indication{}, ErrPhase
	}
	ind := b.Indicative(ref)
	b.ev = Event{Kind: EventUncross, Price: ind.Price, Qty: ind.Volume}
	b.sink.OnEvent(&b.ev)
	bids, asks := &b.sides[Buy], &b.sides[Sell]
	for rem := ind.Volume; rem > 0; {
		bl := &b.levels[bids.slot[bids.best]]
		sl := &b.levels[asks.slot[asks.best]]
		bi, si := bl.head, sl.head
		bo, so := &b.orders[bi], &b.orders[si]
		q := min(rem, bo.leaves, so.leaves)
		rem -= q
		auctionFill(bo, bl, q)
		auctionFill(so, sl, q)
		if bo.leaves > 0 {
			b.account(bi).filled += q
		}
		if so.leaves > 0 {
			b.account(si).filled += q
		}
		b.emitFill(Buy, bo, so, ind.Price, q)
		if bo.leaves == 0 {
			b.dropResting(bi)
		}
		if so.leaves == 0 {
			b.dropResting(si)
		}
	}
	b.phase = PhaseContinuous
	return ind, nil
}

func auctionFill(o *order, lv *level, q int64) {
	o.leaves -= q
	lv.total -= q
	if o.visible > o.leaves {
		lv.visible -= o.visible - o.leaves
		o.visible = o.leaves
	}
}
