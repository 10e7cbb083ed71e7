package orderbook

import (
	"errors"
	"fmt"
	"slices"
)

// BestBid returns the best bid price and its shown quantity.
func (b *Book) BestBid() (price, qty int64, ok bool) { return b.bestOf(Buy) }

// BestAsk returns the best ask price and its shown quantity.
func (b *Book) BestAsk() (price, qty int64, ok bool) { return b.bestOf(Sell) }

func (b *Book) bestOf(s Side) (int64, int64, bool) {
	sd := &b.sides[s]
	if sd.best < 0 {
		return 0, 0, false
	}
	return b.minPrice + int64(sd.best), b.levels[sd.slot[sd.best]].visible, true
}

// Depth fills dst with the best len(dst) levels of side s, best first, and
// returns how many it filled.
func (b *Book) Depth(s Side, dst []Level) int {
	if s > Sell {
		return 0
	}
	sd := &b.sides[s]
	n := 0
	for off := sd.best; off >= 0 && n < len(dst); off = b.nextOff(s, off) {
		lv := &b.levels[sd.slot[off]]
		dst[n] = Level{Price: lv.price, Qty: lv.visible, TotalQty: lv.total, Orders: lv.count}
		n++
	}
	return n
}

func (b *Book) state(i int32) OrderState {
	o := &b.orders[i]
	return OrderState{ID: o.id, Participant: o.participant, User: o.user, Side: o.side, TIF: o.tif,
		STP: o.stp, PostOnly: o.flags&flagPostOnly != 0, Price: o.price, Qty: o.leaves, Visible: o.visible,
		DisplayQty: b.display(i), OrigQty: o.orig, FilledQty: b.filled(i), CancelledQty: b.cancelled(i)}
}

// Order returns the state of resting order id.
func (b *Book) Order(id int64) (OrderState, bool) {
	i := b.ids.get(id)
	if i == 0 {
		return OrderState{}, false
	}
	return b.state(i), true
}

// LevelOrders appends the orders resting at price on side s, in time
// priority, to dst and returns it. It does not allocate if dst has room.
func (b *Book) LevelOrders(s Side, price int64, dst []OrderState) []OrderState {
	if s > Sell || price < b.minPrice || price > b.maxPrice {
		return dst
	}
	li := b.sides[s].slot[price-b.minPrice]
	if li == 0 {
		return dst
	}
	for i := b.levels[li].head; i != 0; i = b.links[i].next {
		dst = append(dst, b.state(i))
	}
	return dst
}

// Walk calls fn for every resting order in priority order: bids from the
// best price down, then asks from the best price up, each level in time
// priority. It stops when fn returns false. fn must not change the book.
func (b *Book) Walk(fn func(OrderState) bool) {
	for s := Buy; s <= Sell; s++ {
		for off := b.sides[s].best; off >= 0; off = b.nextOff(s, off) {
			for i := b.levels[b.sides[s].slot[off]].head; i != 0; i = b.links[i].next {
				if !fn(b.state(i)) {
					return
				}
			}
		}
	}
}

// Resting is what a snapshot keeps of a resting order: its user value and
// quantities (see AppendResting).
type Resting struct {
	User                                      uint64
	Visible, OrigQty, FilledQty, CancelledQty int64
}

// restingLanes is how many price levels AppendResting follows at once.
const restingLanes = 8

// AppendResting appends the resting orders to dst in Walk order, and
// returns it. On a large book it is several times faster than Walk: a
// level's orders are a linked list in the pool, one cache miss after
// another, so it follows several levels at once, each order written to its
// place from the levels' counts, and their misses overlap.
func (b *Book) AppendResting(dst []Resting) []Resting {
	pos := len(dst)
	dst = slices.Grow(dst, b.resting)[:pos+b.resting]
	s, off := Buy, b.sides[Buy].best
	// nextLevel starts a lane on the next level in Walk order.
	nextLevel := func(l *restingLane) bool {
		for off < 0 {
			if s == Sell {
				return false
			}
			s, off = Sell, b.sides[Sell].best
		}
		lv := &b.levels[b.sides[s].slot[off]]
		l.i, l.at = lv.head, pos
		pos += int(lv.count)
		off = b.nextOff(s, off)
		return true
	}
	var lanes [restingLanes]restingLane
	n := 0
	for n < len(lanes) && nextLevel(&lanes[n]) {
		n++
	}
	for n > 0 {
		for k := 0; k < n; {
			l := &lanes[k]
			i := l.i
			o := &b.orders[i]
			r := Resting{User: o.user, Visible: o.visible, OrigQty: o.orig}
			if o.flags&flagCold != 0 {
				r.FilledQty, r.CancelledQty = b.colds[i].filled, b.colds[i].cancelled
			}
			dst[l.at] = r
			l.at++
			if l.i = b.links[i].next; l.i == 0 && !nextLevel(l) {
				n--
				lanes[k] = lanes[n]
				continue
			}
			k++
		}
	}
	return dst
}

type restingLane struct {
	i  int32 // the next order
	at int   // its place in dst
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// StateHash digests the phase and every resting order's state in Walk order
// (FNV-1a over 64-bit words). Two books with the same hash hold, with
// overwhelming likelihood, the same orders in the same priority.
func (b *Book) StateHash() uint64 {
	h := uint64(fnvOffset)
	mix := func(v uint64) { h = (h ^ v) * fnvPrime }
	mix(uint64(b.phase))
	for s := Buy; s <= Sell; s++ {
		for off := b.sides[s].best; off >= 0; off = b.nextOff(s, off) {
			for i := b.levels[b.sides[s].slot[off]].head; i != 0; i = b.links[i].next {
				o := &b.orders[i]
				flags := uint64(o.side) | uint64(o.tif)<<8 | uint64(o.stp)<<16
				if o.flags&flagPostOnly != 0 {
					flags |= 1 << 24
				}
				mix(uint64(o.id))
				mix(uint64(o.participant))
				mix(o.user)
				mix(flags)
				mix(uint64(o.price))
				mix(uint64(o.leaves))
				mix(uint64(o.visible))
				mix(uint64(b.display(i)))
				mix(uint64(o.orig))
				mix(uint64(b.filled(i)))
				mix(uint64(b.cancelled(i)))
			}
		}
	}
	mix(uint64(b.resting))
	return h
}

// Restore appends an order, as read by Walk, to the back of its price level
// without matching and without events. Restoring every order of a Walk, in
// order, into a new empty book in the same phase (call StartAuction first
// for a book in collection) rebuilds an identical book.
func (b *Book) Restore(st OrderState) error {
	bad := func(why string) error { return fmt.Errorf("%w %d: %s", ErrRestore, st.ID, why) }
	switch {
	case st.Side > Sell:
		return bad("invalid side")
	case !st.TIF.rests():
		return bad("TIF does not rest")
	case st.STP > STPDecrement:
		return bad("invalid STP mode")
	case st.Price < b.minPrice || st.Price > b.maxPrice:
		return bad("price out of band")
	case st.Qty <= 0 || st.Qty > MaxQty || st.Visible <= 0 || st.Visible > st.Qty || st.DisplayQty < 0:
		return bad("invalid quantities")
	case st.DisplayQty == 0 && st.Visible != st.Qty, st.DisplayQty > 0 && st.Visible > st.DisplayQty:
		return bad("shown quantity does not match display size")
	case st.FilledQty < 0 || st.CancelledQty < 0 || st.OrigQty != st.FilledQty+st.Qty+st.CancelledQty:
		return bad("accounting does not add up")
	case b.ids.get(st.ID) != 0:
		return bad("duplicate id")
	case b.resting >= b.maxOrders:
		return bad("book full")
	case b.phase == PhaseContinuous && b.crossesAt(st.Side, st.Price):
		return bad("would cross the book")
	}
	i := b.allocOrder()
	b.orders[i] = order{side: st.Side, tif: st.TIF, stp: st.STP, id: st.ID, participant: st.Participant,
		price: st.Price, leaves: st.Qty, visible: st.Visible, orig: st.OrigQty, user: st.User, flags: flagCold}
	b.colds[i] = cold{display: st.DisplayQty, filled: st.FilledQty, cancelled: st.CancelledQty}
	if st.PostOnly {
		b.orders[i].flags |= flagPostOnly
	}
	if st.DisplayQty > 0 {
		b.orders[i].flags |= flagIceberg
	}
	b.ids.put(st.ID, i)
	b.link(i)
	b.resting++
	return nil
}

// CheckInvariants verifies every structural and accounting invariant of the
// book and returns the first violation found. It walks the whole book and
// price band; it is meant for tests and debug checks, not the hot path.
func (b *Book) CheckInvariants() error {
	seen := 0
	for s := Buy; s <= Sell; s++ {
		sd := &b.sides[s]
		// Bitmap summaries agree with the level array.
		for off, li := range sd.slot {
			if (li != 0) != sd.bits.has(off) {
				return fmt.Errorf("%v offset %d: level %d but bit %v", s, off, li, sd.bits.has(off))
			}
		}
		for w, word := range sd.bits.l0 {
			if (word != 0) != (sd.bits.l1[w>>6]&(1<<(uint(w)&63)) != 0) {
				return fmt.Errorf("%v: l1 summary wrong for word %d", s, w)
			}
		}
		for w, word := range sd.bits.l1 {
			if (word != 0) != (sd.bits.l2[w>>6]&(1<<(uint(w)&63)) != 0) {
				return fmt.Errorf("%v: l2 summary wrong for word %d", s, w)
			}
		}
		want := sd.bits.next(0)
		if s == Buy {
			want = sd.bits.prev(len(sd.slot) - 1)
		}
		if sd.best != want {
			return fmt.Errorf("%v: cached best offset %d, want %d", s, sd.best, want)
		}
		for off := sd.best; off >= 0; off = b.nextOff(s, off) {
			li := sd.slot[off]
			lv := &b.levels[li]
			if lv.price != b.minPrice+int64(off) {
				return fmt.Errorf("%v level at offset %d has price %d", s, off, lv.price)
			}
			var count int32
			var total, visible int64
			prev := int32(0)
			for i := lv.head; i != 0; i = b.links[i].next {
				o := &b.orders[i]
				if err := b.checkOrder(i, s, li, lv.price, prev); err != nil {
					return err
				}
				count++
				total += o.leaves
				visible += o.visible
				prev = i
				seen++
				if seen > b.resting {
					return fmt.Errorf("more linked orders than %d resting", b.resting)
				}
			}
			if prev != lv.tail || count == 0 {
				return fmt.Errorf("%v level %d: tail %d, last %d, count %d", s, lv.price, lv.tail, prev, count)
			}
			if count != lv.count || total != lv.total || visible != lv.visible {
				return fmt.Errorf("%v level %d: cached count/total/visible %d/%d/%d, orders sum to %d/%d/%d",
					s, lv.price, lv.count, lv.total, lv.visible, count, total, visible)
			}
		}
	}
	if seen != b.resting || b.ids.n != b.resting {
		return fmt.Errorf("resting %d, linked %d, indexed %d", b.resting, seen, b.ids.n)
	}
	if b.phase == PhaseContinuous {
		bid, _, okb := b.BestBid()
		ask, _, oka := b.BestAsk()
		if okb && oka && bid >= ask {
			return fmt.Errorf("book crossed: bid %d >= ask %d", bid, ask)
		}
	}
	// Free lists account for every other slot.
	free := 0
	for i := b.freeOrder; i != 0; i = b.links[i].next {
		free++
		if free > len(b.orders) {
			return errors.New("order free list loops")
		}
	}
	if free+b.resting != len(b.orders)-1 {
		return fmt.Errorf("order pool: %d free + %d resting != %d", free, b.resting, len(b.orders)-1)
	}
	return nil
}

func (b *Book) checkOrder(i int32, s Side, li int32, price int64, prev int32) error {
	o := &b.orders[i]
	display, filled, cancelled := b.display(i), b.filled(i), b.cancelled(i)
	switch {
	case o.side != s || o.lvl != li || o.price != price || b.links[i].prev != prev:
		return fmt.Errorf("order %d: side/level/price/prev %v/%d/%d/%d, want %v/%d/%d/%d",
			o.id, o.side, o.lvl, o.price, b.links[i].prev, s, li, price, prev)
	case o.leaves <= 0 || o.visible <= 0 || o.visible > o.leaves:
		return fmt.Errorf("order %d: open %d shown %d", o.id, o.leaves, o.visible)
	case display == 0 && o.visible != o.leaves:
		return fmt.Errorf("order %d: not an iceberg but shows %d of %d", o.id, o.visible, o.leaves)
	case display > 0 && o.visible > display:
		return fmt.Errorf("order %d: shows %d above display %d", o.id, o.visible, display)
	case filled < 0 || cancelled < 0 || o.orig != filled+o.leaves+cancelled:
		return fmt.Errorf("order %d: orig %d != filled %d + open %d + cancelled %d",
			o.id, o.orig, filled, o.leaves, cancelled)
	case !o.tif.rests():
		return fmt.Errorf("order %d: resting with TIF %d", o.id, o.tif)
	}
	if j := b.ids.get(o.id); j != i {
		return fmt.Errorf("order %d: id index points to slot %d", o.id, j)
	}
	return nil
}
