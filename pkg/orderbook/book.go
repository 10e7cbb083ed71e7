package orderbook

import (
	"errors"
	"fmt"
)

// Config sizes a Book. All memory is allocated by New; nothing grows later.
type Config struct {
	// MinPrice and MaxPrice bound every price, in ticks (1 <= MinPrice <=
	// MaxPrice <= 2^62, at most MaxBandTicks prices). Orders outside are rejected
	// with ReasonPriceOutOfBand.
	MinPrice, MaxPrice int64
	// MaxOrders is the most orders that can rest at once (>= 1). A Submit
	// while the book is full is rejected with ReasonBookFull.
	MaxOrders int
	// MarketProtectionTicks, if > 0, tightens the protection limit of a
	// market order to at most this many ticks beyond the opposite best price
	// at entry.
	MarketProtectionTicks int64
}

// MaxBandTicks is the widest price band a Book accepts.
const MaxBandTicks = 1 << 24

// MaxQty is the largest quantity of one order, in lots. With at most 2^28
// orders it keeps every sum of quantities far from overflowing int64.
const MaxQty = 1 << 32

// ErrPhase is returned by phase changes that do not apply in the current
// phase.
var ErrPhase = errors.New("orderbook: wrong phase")

// ErrRestore is wrapped by the errors of Restore.
var ErrRestore = errors.New("orderbook: cannot restore order")

// order is the hot part of a pool entry: what matching, events and a new
// order's entry touch, exactly one cache line. The FIFO links and the rarely
// needed fields live in parallel arrays (links, colds), so unlinking an
// order touches its neighbours' 8-byte links rather than their entries, and
// entering a plain order writes one line.
type order struct {
	id          int64
	participant int64
	price       int64
	leaves      int64 // open quantity, shown and hidden
	visible     int64 // shown part of leaves
	orig        int64 // original quantity plus Replace increases
	user        uint64
	lvl         int32 // level index, 0 when not linked
	side        Side
	tif         TIF
	stp         STPMode
	flags       uint8
}

const (
	flagPostOnly uint8 = 1 << iota
	flagIceberg        // cold.display is set
	flagCold           // cold.filled and cold.cancelled are set (else 0)
)

// link is an order's place in its level's FIFO; next doubles as the
// free-list link.
type link struct{ prev, next int32 }

// cold holds what few operations need: the iceberg display size, valid if
// flagIceberg, and the accounting (orig == filled + leaves + cancelled),
// valid if flagCold and zero otherwise. The flags let a new order skip this
// line. The accounting is kept while the order rests; a finished order's
// slot is freed and its counters are no longer maintained.
type cold struct{ display, filled, cancelled int64 }

// level is a price level: an intrusive FIFO of orders with cached totals.
type level struct {
	head, tail int32 // head doubles as free-list link
	count      int32
	price      int64
	total      int64 // sum of leaves
	visible    int64 // sum of visible
}

// ladder is one side of the book: a dense array of level indexes over the
// price band, a bitmap of occupied prices and the cached best offset.
type ladder struct {
	slot []int32
	bits bitset
	best int // offset of the best level from MinPrice, -1 if empty
}

// Book is a limit order book for one instrument. It is not safe for
// concurrent use.
type Book struct {
	minPrice  int64
	maxPrice  int64
	protTicks int64
	maxOrders int
	sink      Sink
	phase     Phase

	orders    []order // pool; index 0 is the nil order
	links     []link  // parallel to orders
	colds     []cold  // parallel to orders
	freeOrder int32
	levels    []level // pool; index 0 is the nil level
	freeLevel int32
	sides     [2]ladder
	ids       idIndex
	resting   int

	ev Event // scratch event handed to the sink
}

type discardSink struct{}

func (discardSink) OnEvent(*Event) {}

// New returns an empty book in continuous trading. A nil sink discards
// events.
func New(cfg Config, sink Sink) (*Book, error) {
	if cfg.MinPrice < 1 || cfg.MaxPrice < cfg.MinPrice || cfg.MaxPrice > 1<<62 || cfg.MaxPrice-cfg.MinPrice >= MaxBandTicks {
		return nil, fmt.Errorf("orderbook: price band [%d, %d] must satisfy 1 <= min <= max and span at most %d ticks", cfg.MinPrice, cfg.MaxPrice, MaxBandTicks)
	}
	if cfg.MaxOrders < 1 || cfg.MaxOrders > 1<<28 {
		return nil, fmt.Errorf("orderbook: MaxOrders %d out of range [1, %d]", cfg.MaxOrders, 1<<28)
	}
	if cfg.MarketProtectionTicks < 0 || cfg.MarketProtectionTicks > MaxBandTicks {
		return nil, fmt.Errorf("orderbook: MarketProtectionTicks %d out of range [0, %d]", cfg.MarketProtectionTicks, MaxBandTicks)
	}
	if sink == nil {
		sink = discardSink{}
	}
	width := int(cfg.MaxPrice - cfg.MinPrice + 1)
	b := &Book{
		minPrice:  cfg.MinPrice,
		maxPrice:  cfg.MaxPrice,
		protTicks: cfg.MarketProtectionTicks,
		maxOrders: cfg.MaxOrders,
		sink:      sink,
		levels:    make([]level, cfg.MaxOrders+1),
	}
	// One slot more than MaxOrders for the incoming order while it matches.
	b.orders = make([]order, cfg.MaxOrders+2)
	b.links = make([]link, len(b.orders))
	b.colds = make([]cold, len(b.orders))
	b.ids = newIDIndex(cfg.MaxOrders, b.orders)
	for i := range b.sides {
		b.sides[i] = ladder{slot: make([]int32, width), bits: newBitset(width), best: -1}
	}
	b.prefault()
	b.resetFreeLists()
	return b, nil
}

// prefault writes to every page of the arrays resetFreeLists does not
// touch, so the first orders at new prices do not take page faults on the
// hot path.
func (b *Book) prefault() {
	const step = 512 // elements; at most one page for elements of 8 bytes or less
	for i := 0; i < len(b.ids.e); i += step {
		b.ids.e[i] = idEntry{}
	}
	for s := range b.sides {
		sd := &b.sides[s]
		for i := 0; i < len(sd.slot); i += step {
			sd.slot[i] = 0
		}
		for _, words := range [][]uint64{sd.bits.l0, sd.bits.l1, sd.bits.l2} {
			for i := 0; i < len(words); i += step {
				words[i] = 0
			}
		}
	}
}

func (b *Book) resetFreeLists() {
	b.freeOrder = 0
	for i := len(b.orders) - 1; i >= 1; i-- {
		b.orders[i] = order{}
		b.colds[i] = cold{}
		b.links[i] = link{next: b.freeOrder}
		b.freeOrder = int32(i)
	}
	b.freeLevel = 0
	for i := len(b.levels) - 1; i >= 1; i-- {
		b.levels[i] = level{head: b.freeLevel}
		b.freeLevel = int32(i)
	}
}

// Phase returns the current trading phase.
func (b *Book) Phase() Phase { return b.phase }

// Len returns the number of resting orders.
func (b *Book) Len() int { return b.resting }

func (b *Book) allocOrder() int32 {
	i := b.freeOrder
	b.freeOrder = b.links[i].next
	return i
}

func (b *Book) freeOrderSlot(i int32) {
	b.orders[i].lvl = 0
	b.links[i] = link{next: b.freeOrder}
	b.freeOrder = i
}

// display returns the iceberg display size of order i, 0 if none.
func (b *Book) display(i int32) int64 {
	if b.orders[i].flags&flagIceberg != 0 {
		return b.colds[i].display
	}
	return 0
}

// filled and cancelled read order i's accounting.
func (b *Book) filled(i int32) int64 {
	if b.orders[i].flags&flagCold != 0 {
		return b.colds[i].filled
	}
	return 0
}

func (b *Book) cancelled(i int32) int64 {
	if b.orders[i].flags&flagCold != 0 {
		return b.colds[i].cancelled
	}
	return 0
}

// account returns order i's accounting for update.
func (b *Book) account(i int32) *cold {
	o, c := &b.orders[i], &b.colds[i]
	if o.flags&flagCold == 0 {
		c.filled, c.cancelled = 0, 0
		o.flags |= flagCold
	}
	return c
}

// freshVisible is the part of order i to show when it joins the back of a
// level.
func (b *Book) freshVisible(i int32) int64 {
	o := &b.orders[i]
	if o.flags&flagIceberg != 0 && b.colds[i].display < o.leaves {
		return b.colds[i].display
	}
	return o.leaves
}

// The emit functions store each field of b.ev in place: assigning a
// composite literal builds it on the stack and copies it in 16-byte moves
// that stall on store forwarding, which showed up in profiles.

func (b *Book) emitOrder(kind EventKind, r Reason, o *order, qty int64) {
	e := &b.ev
	e.Kind, e.Reason, e.Side = kind, r, o.side
	e.OrderID, e.Participant, e.User = o.id, o.participant, o.user
	e.Price, e.Qty, e.Remaining = o.price, qty, o.leaves
	e.ContraID, e.ContraParticipant, e.ContraUser, e.ContraRemaining = 0, 0, 0, 0
	b.sink.OnEvent(e)
}

func (b *Book) emitReject(r Reason, side Side, id, participant int64, user uint64, price, qty int64) {
	e := &b.ev
	e.Kind, e.Reason, e.Side = EventReject, r, side
	e.OrderID, e.Participant, e.User = id, participant, user
	e.Price, e.Qty, e.Remaining = price, qty, 0
	e.ContraID, e.ContraParticipant, e.ContraUser, e.ContraRemaining = 0, 0, 0, 0
	b.sink.OnEvent(e)
}

func (b *Book) emitFill(side Side, t *order, m *order, price, q int64) {
	e := &b.ev
	e.Kind, e.Reason, e.Side = EventFill, ReasonNone, side
	e.OrderID, e.Participant, e.User = t.id, t.participant, t.user
	e.Price, e.Qty, e.Remaining = price, q, t.leaves
	e.ContraID, e.ContraParticipant, e.ContraUser, e.ContraRemaining = m.id, m.participant, m.user, m.leaves
	b.sink.OnEvent(e)
}

// link appends order i to the back of the level at its price, creating the
// level if needed.
func (b *Book) link(i int32) {
	o := &b.orders[i]
	sd := &b.sides[o.side]
	off := int(o.price - b.minPrice)
	li := sd.slot[off]
	if li == 0 {
		li = b.freeLevel
		b.freeLevel = b.levels[li].head
		b.levels[li] = level{price: o.price}
		sd.slot[off] = li
		sd.bits.set(off)
		if sd.best < 0 || (o.side == Buy && off > sd.best) || (o.side == Sell && off < sd.best) {
			sd.best = off
		}
	}
	lv := &b.levels[li]
	o.lvl = li
	b.links[i] = link{prev: lv.tail}
	if lv.tail != 0 {
		b.links[lv.tail].next = i
	} else {
		lv.head = i
	}
	lv.tail = i
	lv.count++
	lv.total += o.leaves
	lv.visible += o.visible
}

// unlink takes order i out of its level, removing the level if it empties.
func (b *Book) unlink(i int32) {
	o := &b.orders[i]
	li := o.lvl
	lv := &b.levels[li]
	l := b.links[i]
	if l.prev != 0 {
		b.links[l.prev].next = l.next
	} else {
		lv.head = l.next
	}
	if l.next != 0 {
		b.links[l.next].prev = l.prev
	} else {
		lv.tail = l.prev
	}
	lv.count--
	lv.total -= o.leaves
	lv.visible -= o.visible
	o.lvl = 0
	b.links[i] = link{}
	if lv.count == 0 {
		sd := &b.sides[o.side]
		off := int(lv.price - b.minPrice)
		sd.slot[off] = 0
		sd.bits.clear(off)
		if sd.best == off {
			if o.side == Buy {
				sd.best = sd.bits.prev(off - 1)
			} else {
				sd.best = sd.bits.next(off + 1)
			}
		}
		*lv = level{head: b.freeLevel}
		b.freeLevel = li
	}
}

// dropResting removes a finished resting order from the book.
func (b *Book) dropResting(i int32) {
	b.unlink(i)
	b.ids.del(b.orders[i].id, i)
	b.resting--
	b.freeOrderSlot(i)
}

// cancelResting cancels all of resting order i.
func (b *Book) cancelResting(i int32, r Reason) {
	o := &b.orders[i]
	q := o.leaves
	b.levels[o.lvl].total -= q
	b.levels[o.lvl].visible -= o.visible
	o.leaves, o.visible = 0, 0 // accounting no longer kept: the order is finished
	b.emitOrder(EventCancel, r, o, q)
	b.dropResting(i)
}

// shrink lowers the open quantity of order i (resting or not) by d, taking
// hidden quantity first.
func (b *Book) shrink(i int32, d int64) {
	o := &b.orders[i]
	o.leaves -= d
	b.account(i).cancelled += d
	var dv int64
	if o.visible > o.leaves {
		dv = o.visible - o.leaves
		o.visible = o.leaves
	}
	if o.lvl != 0 {
		lv := &b.levels[o.lvl]
		lv.total -= d
		lv.visible -= dv
	}
}

// crossesAt reports whether an order on side s with the given limit would
// trade with the opposite best price.
func (b *Book) crossesAt(s Side, limit int64) bool {
	c := &b.sides[s^1]
	if c.best < 0 {
		return false
	}
	p := b.minPrice + int64(c.best)
	if s == Buy {
		return p <= limit
	}
	return p >= limit
}

func (b *Book) validate(o *Order) Reason {
	switch {
	case o.Side > Sell:
		return ReasonInvalidSide
	case o.Type > Market:
		return ReasonInvalidType
	case o.TIF > FOK:
		return ReasonInvalidTIF
	case o.STP > STPDecrement:
		return ReasonInvalidSTP
	case o.Qty <= 0 || o.Qty > MaxQty:
		return ReasonInvalidQty
	case o.Price < b.minPrice || o.Price > b.maxPrice:
		return ReasonPriceOutOfBand
	case o.Type == Market && o.TIF.rests():
		return ReasonMarketTIF
	case o.DisplayQty < 0:
		return ReasonInvalidDisplayQty
	case o.DisplayQty > 0 && o.DisplayQty < o.Qty && (o.Type == Market || !o.TIF.rests()):
		return ReasonIcebergNotResting
	case o.MinQty < 0 || o.MinQty > o.Qty:
		return ReasonInvalidMinQty
	case o.PostOnly && (o.Type == Market || !o.TIF.rests()):
		return ReasonPostOnlyTIF
	case o.PostOnly && o.MinQty > 0:
		return ReasonPostOnlyMinQty
	case b.ids.get(o.ID) != 0:
		return ReasonDuplicateID
	case b.phase == PhaseAuction && (o.Type == Market || !o.TIF.rests()):
		return ReasonAuctionOrderType
	case b.phase == PhaseAuction && o.MinQty > 0:
		return ReasonAuctionMinQty
	case b.resting >= b.maxOrders:
		return ReasonBookFull
	}
	return ReasonNone
}

// marketLimit applies Config.MarketProtectionTicks to a market order's
// protection limit.
func (b *Book) marketLimit(s Side, limit int64) int64 {
	c := &b.sides[s^1]
	if b.protTicks == 0 || c.best < 0 {
		return limit
	}
	p := b.minPrice + int64(c.best)
	if s == Buy {
		return min(limit, p+b.protTicks)
	}
	return max(limit, p-b.protTicks)
}

// Submit enters a new order. It returns ReasonNone if the order was
// accepted (it may then have traded, rested or been cancelled), or the
// rejection reason, which is also sent as an EventReject.
func (b *Book) Submit(o Order) Reason {
	if r := b.validate(&o); r != ReasonNone {
		b.emitReject(r, o.Side, o.ID, o.Participant, o.User, o.Price, o.Qty)
		return r
	}
	limit := o.Price
	if o.Type == Market {
		limit = b.marketLimit(o.Side, limit)
	}
	if b.phase == PhaseContinuous {
		if o.PostOnly && b.crossesAt(o.Side, limit) {
			b.emitReject(ReasonPostOnlyWouldTake, o.Side, o.ID, o.Participant, o.User, o.Price, o.Qty)
			return ReasonPostOnlyWouldTake
		}
		need, r := int64(0), ReasonNone
		if o.TIF == FOK {
			need, r = o.Qty, ReasonFOKNotFillable
		} else if o.MinQty > 0 {
			need, r = o.MinQty, ReasonMinQtyNotMet
		}
		if need > 0 && b.executable(o.Side, limit, o.Participant, o.STP, need) < need {
			b.emitReject(r, o.Side, o.ID, o.Participant, o.User, o.Price, o.Qty)
			return r
		}
	}
	ti := b.allocOrder()
	t := &b.orders[ti]
	// Field by field, not a composite literal: see emitOrder.
	t.id, t.participant, t.price, t.leaves, t.visible, t.orig, t.user = o.ID, o.Participant, limit, o.Qty, 0, o.Qty, o.User
	t.lvl, t.side, t.tif, t.stp, t.flags = 0, o.Side, o.TIF, o.STP, 0
	if o.PostOnly {
		t.flags |= flagPostOnly
	}
	if o.DisplayQty > 0 && o.DisplayQty < o.Qty {
		t.flags |= flagIceberg
		b.colds[ti].display = o.DisplayQty
	}
	b.emitOrder(EventAccepted, ReasonNone, t, o.Qty)
	if b.phase == PhaseContinuous && b.crossesAt(o.Side, limit) {
		b.match(ti)
	}
	switch {
	case t.leaves == 0:
	case o.Type == Market:
		b.cancelTaker(ti, ReasonMarketRemainder)
	case !o.TIF.rests():
		b.cancelTaker(ti, ReasonIOCRemainder)
	default:
		t.visible = b.freshVisible(ti)
		b.ids.put(t.id, ti)
		b.link(ti)
		b.resting++
		b.emitOrder(EventRested, ReasonNone, t, t.leaves)
		return ReasonNone
	}
	b.freeOrderSlot(ti)
	return ReasonNone
}

func (b *Book) cancelTaker(ti int32, r Reason) {
	t := &b.orders[ti]
	q := t.leaves
	t.leaves = 0 // accounting no longer kept: the order is finished
	b.emitOrder(EventCancel, r, t, q)
}

// executable returns how much an order on side s with the given limit,
// participant and STP mode would trade immediately, counting until need
// is reached. Same-participant orders are skipped under STPCancelResting
// and end the count under the other STP modes.
func (b *Book) executable(s Side, limit, participant int64, stp STPMode, need int64) int64 {
	c := &b.sides[s^1]
	var acc int64
	for off := c.best; off >= 0; {
		p := b.minPrice + int64(off)
		if (s == Buy && p > limit) || (s == Sell && p < limit) {
			break
		}
		lv := &b.levels[c.slot[off]]
		switch stp {
		case STPNone:
			acc += lv.total
		case STPCancelResting:
			for i := lv.head; i != 0; i = b.links[i].next {
				if o := &b.orders[i]; o.participant != participant {
					acc += o.leaves
				}
			}
		default:
			// The incoming order takes the shown part of each order ahead of
			// the first own order (icebergs replenish behind it) and stops
			// there; a level without own orders gives all it has.
			var shown int64
			for i := lv.head; i != 0; i = b.links[i].next {
				o := &b.orders[i]
				if o.participant == participant {
					return acc + shown
				}
				shown += o.visible
			}
			acc += lv.total
		}
		if acc >= need {
			return acc
		}
		if s == Buy {
			off = c.bits.next(off + 1)
		} else {
			off = c.bits.prev(off - 1)
		}
	}
	return acc
}

// match trades order ti (not linked into the book) against the opposite side
// up to its price.
func (b *Book) match(ti int32) {
	t := &b.orders[ti]
	c := &b.sides[t.side^1]
	var filled int64
	for t.leaves > 0 {
		off := c.best
		if off < 0 {
			break
		}
		price := b.minPrice + int64(off)
		if (t.side == Buy && price > t.price) || (t.side == Sell && price < t.price) {
			break
		}
		li := c.slot[off]
		lv := &b.levels[li]
		mi := lv.head
		m := &b.orders[mi]
		if m.participant == t.participant && t.stp != STPNone {
			if b.selfTrade(ti, mi) {
				break
			}
			continue
		}
		q := min(t.leaves, m.visible)
		t.leaves -= q
		filled += q
		m.leaves -= q
		m.visible -= q
		lv.total -= q
		lv.visible -= q
		b.emitFill(t.side, t, m, price, q)
		if m.leaves == 0 {
			b.dropResting(mi)
			continue
		}
		b.account(mi).filled += q
		if m.visible == 0 {
			// Iceberg: show a new part at the back of the level.
			m.visible = b.freshVisible(mi)
			lv.visible += m.visible
			if next := b.links[mi].next; next != 0 {
				lv.head = next
				b.links[next].prev = 0
				b.links[mi] = link{prev: lv.tail}
				b.links[lv.tail].next = mi
				lv.tail = mi
			}
		}
	}
	if filled > 0 && t.leaves > 0 { // it may rest: keep its accounting
		b.account(ti).filled += filled
	}
}

// selfTrade applies the incoming order's STP mode against resting order mi
// of the same participant. It reports whether the incoming order is done.
func (b *Book) selfTrade(ti, mi int32) bool {
	t := &b.orders[ti]
	switch t.stp {
	case STPCancelIncoming:
		b.cancelTaker(ti, ReasonSTPCancelIncoming)
		return true
	case STPCancelResting:
		b.cancelResting(mi, ReasonSTPCancelResting)
		return false
	case STPCancelBoth:
		b.cancelResting(mi, ReasonSTPCancelBoth)
		b.cancelTaker(ti, ReasonSTPCancelBoth)
		return true
	}
	// STPDecrement
	m := &b.orders[mi]
	d := min(t.leaves, m.leaves)
	if d == m.leaves {
		b.cancelResting(mi, ReasonSTPDecrement)
	} else {
		b.shrink(mi, d)
		b.emitOrder(EventReduce, ReasonSTPDecrement, m, d)
	}
	if d == t.leaves {
		b.cancelTaker(ti, ReasonSTPDecrement)
		return true
	}
	b.shrink(ti, d)
	b.emitOrder(EventReduce, ReasonSTPDecrement, t, d)
	return false
}

// Cancel cancels resting order id.
func (b *Book) Cancel(id int64) Reason {
	i := b.ids.get(id)
	if i == 0 {
		b.emitReject(ReasonUnknownOrder, 0, id, 0, 0, 0, 0)
		return ReasonUnknownOrder
	}
	b.cancelResting(i, ReasonCancelled)
	return ReasonNone
}

// Reduce lowers the open quantity of resting order id to qty (0 < qty <
// open quantity), keeping its time priority. An iceberg loses hidden
// quantity first.
func (b *Book) Reduce(id, qty int64) Reason {
	i := b.ids.get(id)
	if i == 0 {
		b.emitReject(ReasonUnknownOrder, 0, id, 0, 0, 0, qty)
		return ReasonUnknownOrder
	}
	o := &b.orders[i]
	r := ReasonNone
	if qty <= 0 {
		r = ReasonInvalidQty
	} else if qty >= o.leaves {
		r = ReasonReduceNotLower
	}
	if r != ReasonNone {
		b.emitReject(r, o.side, id, o.participant, o.user, o.price, qty)
		return r
	}
	d := o.leaves - qty
	b.shrink(i, d)
	b.emitOrder(EventReduce, ReasonNone, o, d)
	return ReasonNone
}

// Replace gives resting order id a new price and open quantity. The order
// keeps its time priority if the price is unchanged and qty is not larger
// than its open quantity; otherwise it moves to the back of the level at
// price and, in continuous trading, trades first if it crosses (a post-only
// order is rejected instead). An iceberg keeps its display size and, on
// losing priority, shows a fresh part.
func (b *Book) Replace(id, price, qty int64) Reason {
	i := b.ids.get(id)
	if i == 0 {
		b.emitReject(ReasonUnknownOrder, 0, id, 0, 0, price, qty)
		return ReasonUnknownOrder
	}
	o := &b.orders[i]
	r := ReasonNone
	switch {
	case qty <= 0 || qty > MaxQty:
		r = ReasonInvalidQty
	case price < b.minPrice || price > b.maxPrice:
		r = ReasonPriceOutOfBand
	case price == o.price && qty == o.leaves:
		r = ReasonReplaceNoChange
	case o.flags&flagPostOnly != 0 && b.phase == PhaseContinuous && b.crossesAt(o.side, price):
		r = ReasonPostOnlyWouldTake
	}
	if r != ReasonNone {
		b.emitReject(r, o.side, id, o.participant, o.user, price, qty)
		return r
	}
	if price == o.price && qty < o.leaves {
		b.shrink(i, o.leaves-qty)
		b.emitOrder(EventReplace, ReasonNone, o, qty)
		return ReasonNone
	}
	b.unlink(i)
	if qty > o.leaves {
		o.orig += qty - o.leaves
	} else if qty < o.leaves {
		b.account(i).cancelled += o.leaves - qty
	}
	o.leaves = qty
	o.price = price
	b.emitOrder(EventReplace, ReasonNone, o, qty)
	if b.phase == PhaseContinuous && b.crossesAt(o.side, price) {
		b.match(i)
		if o.leaves == 0 {
			b.ids.del(id, i)
			b.resting--
			b.freeOrderSlot(i)
			return ReasonNone
		}
	}
	o.visible = b.freshVisible(i)
	b.link(i)
	return ReasonNone
}

// nextOff returns the offset of the next worse level after off on side s.
func (b *Book) nextOff(s Side, off int) int {
	if s == Buy {
		return b.sides[Buy].bits.prev(off - 1)
	}
	return b.sides[Sell].bits.next(off + 1)
}

// cancelWhere cancels, in Walk order, every resting order for which match
// returns true, and returns how many it cancelled.
func (b *Book) cancelWhere(r Reason, match func(o *order) bool) int {
	n := 0
	for s := Buy; s <= Sell; s++ {
		for off := b.sides[s].best; off >= 0; off = b.nextOff(s, off) {
			for i := b.levels[b.sides[s].slot[off]].head; i != 0; {
				next := b.links[i].next
				if match(&b.orders[i]) {
					b.cancelResting(i, r)
					n++
				}
				i = next
			}
		}
	}
	return n
}

// CancelParticipant cancels every resting order of participant, in Walk
// order, with ReasonMassCancel, and returns how many it cancelled.
func (b *Book) CancelParticipant(participant int64) int {
	return b.cancelWhere(ReasonMassCancel, func(o *order) bool { return o.participant == participant })
}

// ExpireDayOrders cancels every resting Day order, in Walk order, with
// ReasonDayExpired, and returns how many it cancelled.
func (b *Book) ExpireDayOrders() int {
	return b.cancelWhere(ReasonDayExpired, func(o *order) bool { return o.tif == Day })
}
