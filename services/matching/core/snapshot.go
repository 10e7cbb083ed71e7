package core

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"sync"

	"github.com/bcx-exchange/bcx/pkg/orderbook"
)

// A snapshot is the core's state in a canonical encoding: everything in an
// order that depends only on the commands applied (definition order,
// participant order, deposit order, book priority order, FIFO order,
// insertion order), never on map iteration or memory layout. So the
// snapshot of a core rebuilt by replaying a journal from empty is byte for
// byte the snapshot of a core restored from a snapshot and replayed from
// there, and StateHash is a digest of it.

// snapMagic starts every snapshot written. Older formats still load:
// BCXCORE1 has no FX state at all; BCXCORE2 has rates without their
// numbers, funding preferences without versions and fills without FX legs.
// BCXCORE3 has no listings, BCXCORE4 no one-sided auctions. Up to
// BCXCORE5 each participant's last executions follow its pools; they are
// read and dropped (the execution history is the service's now), and
// instruments have no day start (read as 0: the journal's beginning).
const snapMagic = "BCXCORE6"

var snapVersions = map[string]int{"BCXCORE1": 1, "BCXCORE2": 2, "BCXCORE3": 3, "BCXCORE4": 4, "BCXCORE5": 5, snapMagic: snapVersionCurrent}

const snapVersionCurrent = 6

// AppendSnapshot appends the core's canonical encoding to b.
func (c *Core) AppendSnapshot(b []byte) []byte {
	b = c.appendFinished(c.appendSnapshotHead(b))
	return c.appendLogs(c.appendOpenListings(b))
}

// appendLogs appends the client order id and key logs, the tail's end.
func (c *Core) appendLogs(b []byte) []byte {
	x := &c.cloids
	l := SnapshotRest{logPages: x.log.pages, logN: x.log.len(), live: x.live, keys: c.keyLog}
	return l.appendLogs(b)
}

// SnapshotParts encodes what AppendSnapshot does, head followed by tail,
// appended to the buffers given, in half the time on two cores: the head
// (reference data, participants, books, finished orders) here and the
// tail (open listings and auctions, client order ids, keys) on another
// goroutine. The core must not change meanwhile: the sequencer waits.
// SnapshotRest.Encode splits a snapshot the same way.
func (c *Core) SnapshotParts(head, tail []byte) ([]byte, []byte) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tail = c.appendLogs(c.appendOpenListings(tail))
	}()
	head = c.appendFinished(c.appendSnapshotHead(head))
	<-done
	return head, tail
}

// SnapshotPartsDeferred is SnapshotParts leaving the bulk of the snapshot
// to rest.Encode, on any goroutine, after the core has moved on. Here (on
// the caller's goroutine, which the core must wait for) it encodes only
// pre, the head but for the books' orders, and tailPre, the open listings
// and auctions; rest keeps the rest as it was:
//
//   - The books' resting orders and the finished orders still kept. Only
//     their slots are taken now, and from the books their places (a walk
//     of the books); the orders themselves are read later from a frozen
//     view of the order store (see orderStore).
//   - The day's client order id and idempotency key logs. Within a trading
//     day both only grow, and their entries up to now are never written
//     again; the next end of a day, which forgets client order ids, waits
//     for rest.Encode to be past them, or rest.Release, or for abandon to
//     be closed (nobody will encode them: the caller's encoder has
//     stopped, and will not read them again).
func (c *Core) SnapshotPartsDeferred(pre, tailPre []byte, abandon <-chan struct{}) ([]byte, []byte, *SnapshotRest) {
	r := &SnapshotRest{done: make(chan struct{}), abandon: abandon}
	if l := c.lastRest; l != nil && l.orders.store.Load() == nil {
		// That snapshot's encoder is done with them.
		r.entries, r.finished = l.entries[:0], l.finished[:0]
	}
	if e, ok := c.snapEntries.TryTake(); ok && cap(e) > cap(r.entries) {
		r.entries = e[:0]
	}
	r.entries = slices.Grow(r.entries, c.resting()) // at once, if it must
	c.lastRest = r
	pre = c.appendHeadWith(pre, func(b []byte, in *instrument) []byte {
		r.cuts = append(r.cuts, len(b))
		r.entries = in.book.AppendResting(r.entries)
		r.ends = append(r.ends, len(r.entries))
		return b
	})
	r.finished = slices.Grow(r.finished, c.finished.len())
	for k := range c.finished.len() {
		r.finished = append(r.finished, c.finished.at(k))
	}
	tailPre = c.appendOpenListings(tailPre)
	r.orders = c.orders.freeze()
	r.pools = slices.Clone(c.pools)
	x := &c.cloids
	r.logPages, r.logN, r.live = slices.Clone(x.log.pages), x.log.len(), x.live
	r.keys = c.keyLog[:len(c.keyLog):len(c.keyLog)]
	c.logReaders = append(c.logReaders, r)
	return pre, tailPre, r
}

// SnapshotRest is what SnapshotPartsDeferred leaves to encode, as it was
// when that was called.
type SnapshotRest struct {
	// The books' orders: entries[ends[k-1]:ends[k]] go at pre[cuts[k]].
	// They and the finished orders are read from orders (frozen), their
	// sell reservations' receipts from pools (a copy).
	cuts, ends []int
	entries    []bookEntry
	finished   []int32
	orders     *frozenOrders
	pools      []pool

	logPages [][]cloidEntry
	logN     int
	live     int
	keys     []keyEntry
	once     sync.Once
	done     chan struct{}   // closed once the logs are released; nil: not the core's to wait for
	abandon  <-chan struct{} // closed when nobody will encode them
}

// Encode appends the snapshot to head and tail, from pre and tailPre as
// SnapshotPartsDeferred returned them: the books' orders and the finished
// orders to head (after pre; a snapshot is head then tail, wherever the two
// meet), the open listings and the logs to tail, on another goroutine at
// the same time. Each part releases what it read as soon as it is done:
// the frozen orders, which the sequencer copies a page at a time until
// then, and the logs, which an end of day waits for. It is called once,
// and not after Release.
func (r *SnapshotRest) Encode(head, tail, pre, tailPre []byte) ([]byte, []byte) {
	logs := make(chan struct{})
	go func() {
		defer close(logs)
		tail = r.appendLogs(append(tail, tailPre...))
		r.releaseLogs()
	}()
	defer func() {
		<-logs // (again, on the way out: also if the orders' part panics)
		r.Release()
	}()
	var sink int64
	from, e := 0, 0
	for k, cut := range r.cuts {
		head = append(head, pre[from:cut]...)
		head = appendBookEntries(head, r.entries[e:r.ends[k]], r.orders.at, r.pools, &sink)
		from, e = cut, r.ends[k]
	}
	head = append(head, pre[from:]...)
	head = appendUvarint(head, uint64(len(r.finished)))
	for _, s := range r.finished {
		head = appendOrderOf(head, r.orders.at(s), r.pools)
	}
	r.orders.release()
	<-logs
	return head, tail
}

func (r *SnapshotRest) appendLogs(b []byte) []byte {
	b = appendUvarint(b, uint64(r.live))
	for i := range r.logN {
		e := &r.logPages[i>>pageBits][i&(1<<pageBits-1)]
		if e.dead {
			continue
		}
		b = appendVarint(b, e.key.part)
		b = appendString(b, e.key.cloid)
		b = appendVarint(b, e.orderID)
		b = appendUvarint(b, e.hash)
		b = appendVarint(b, int64(e.inst))
	}
	b = appendUvarint(b, uint64(len(r.keys)))
	for i := range r.keys {
		e := &r.keys[i]
		b = appendString(b, e.key)
		b = appendUvarint(b, e.hash)
		b = appendUvarint(b, e.seq)
	}
	return b
}

// Release lets the core change what the rest would have read, without
// encoding it.
func (r *SnapshotRest) Release() {
	r.orders.release()
	r.releaseLogs()
	// The core keeps the last rest for its buffers (lastRest): not what it
	// would have read.
	r.logPages, r.keys, r.pools = nil, nil, nil
}

func (r *SnapshotRest) releaseLogs() {
	if r.done != nil {
		r.once.Do(func() { close(r.done) })
	}
}

// waitLogReaders waits until every snapshot's deferred logs taken so far
// are encoded, released or abandoned: the client order id log is about to
// be written.
func (c *Core) waitLogReaders() {
	for _, l := range c.logReaders {
		select {
		case <-l.done:
		case <-l.abandon:
		}
	}
	clear(c.logReaders)
	c.logReaders = c.logReaders[:0]
}

// PrepareDeferredSnapshot gets ready, off the caller's goroutine, what
// the next SnapshotPartsDeferred will need while its rest is encoded: pages
// for the order store's copies on write.
func (c *Core) PrepareDeferredSnapshot() {
	c.orders.prepareCopies()
	// And room for the books' walk: the last snapshot's, if it will do,
	// else a new buffer faulted in (8 MB for 200k resting orders: some
	// 2,000 page faults on the sequencer otherwise). Books can double
	// between here, halfway, and the snapshot (bench grpc's did).
	n := c.resting()
	if l := c.lastRest; (l == nil || cap(l.entries) < 2*n) && !c.snapEntries.Pending() {
		c.snapEntries.Prepare(2*n + 1024)
	}
}

// resting is how many orders rest in the books.
func (c *Core) resting() int {
	n := 0
	for i := range c.insts {
		n += c.insts[i].book.Len()
	}
	return n
}

// SnapshotSizeHint is about the sizes of a scheduled snapshot's head and
// tail as SnapshotRest.Encode makes them (the finished orders at the
// head's end), from above, for a caller to have buffers ready. An order is taken at 128
// bytes (some 25 varints, two nanosecond times, a reservation) plus the
// day's mean client order id, an id in the log at 32 bytes (a 64-bit hash
// among them) plus its length. TestSnapshotSizeHint and the property test
// check it is above; below, the buffers grow.
func (c *Core) SnapshotSizeHint() (head, tail int) {
	x := &c.cloids
	avg := 0
	if n := x.log.len(); n > 0 {
		avg = x.bytes / n
	}
	order := 128 + avg
	head = 4<<10 + 256*(len(c.parts)+len(c.pools)+len(c.defs)+len(c.rates))
	for i := range c.insts {
		head += order*c.insts[i].book.Len() + (96+2*avg)*c.insts[i].trades.len()
	}
	head += order * c.finished.len()
	tail = 4<<10 + (order+256)*len(c.listings) + 32*x.log.len() + x.bytes + 96*len(c.keyLog)
	for _, s := range c.auctions {
		a := c.orders.peek(s).auc
		tail += order + 256 + order*len(a.bids) + (96+avg)*len(a.results)
	}
	return head, tail
}

func (c *Core) appendSnapshotHead(b []byte) []byte {
	var es []bookEntry // one book's at a time
	var sink int64
	b = c.appendHeadWith(b, func(b []byte, in *instrument) []byte {
		es = in.book.AppendResting(es[:0])
		return appendBookEntries(b, es, c.orders.peek, c.pools, &sink)
	})
	c.snapSink += sink
	return b
}

// appendHeadWith appends the head, each book's orders appended by orders
// after the book's phase and length.
func (c *Core) appendHeadWith(b []byte, orders func([]byte, *instrument) []byte) []byte {
	b = append(b, snapMagic...)
	b = appendUvarint(b, c.lastSeq)
	b = appendVarint(b, c.lastTime)
	b = appendVarint(b, c.nextOrderID)
	b = appendVarint(b, c.nextTradeID)
	b = appendUvarint(b, uint64(len(c.currencies)))
	for i, cu := range c.currencies {
		b = appendString(b, cu.Code)
		b = appendVarint(b, int64(cu.Exp))
		b = appendVarint(b, c.credits[i])
		b = appendVarint(b, c.debits[i])
		b = appendVarint(b, c.feesPaid[i])
		b = appendVarint(b, c.fxNet[i])
	}
	b = appendUvarint(b, uint64(len(c.rates)))
	for i := range c.rates {
		r := &c.rates[i]
		b = appendString(b, r.key)
		b = appendVarint(b, r.num)
		b = appendVarint(b, int64(r.base))
		b = appendVarint(b, int64(r.quote))
		b = appendVarint(b, r.coef)
		b = appendVarint(b, r.from)
		b = appendVarint(b, r.until)
	}
	b = appendVarint(b, c.weightIn)
	b = appendVarint(b, c.weightOut)
	b = appendVarint(b, c.weightSold)
	b = appendUvarint(b, uint64(len(c.defs)))
	for i := range c.defs {
		b = appendDef(b, &c.defs[i])
	}
	b = appendUvarint(b, uint64(len(c.fees)))
	for i := range c.fees {
		b = appendFeeRule(b, &c.fees[i].Buyer)
		b = appendFeeRule(b, &c.fees[i].Seller)
	}
	b = appendUvarint(b, uint64(len(c.parts)))
	for i := range c.parts {
		p := &c.parts[i]
		b = appendVarint(b, p.number)
		b = appendString(b, p.id)
		b = appendUvarint(b, uint64(len(p.funds)))
		for _, f := range p.funds {
			b = appendVarint(b, f.total)
			b = appendVarint(b, f.reserved)
		}
		b = appendUvarint(b, uint64(len(p.funding)))
		for _, f := range p.funding {
			b = appendVarint(b, int64(f.trade))
			b = appendVarint(b, int64(f.funding))
			b = appendVarint(b, f.version)
		}
		b = appendUvarint(b, uint64(len(p.pools)))
		for _, s := range p.pools {
			pl := &c.pools[s]
			b = appendString(b, pl.receipt)
			b = appendUvarint(b, uint64(len(pl.insts)))
			for _, n := range pl.insts {
				b = appendVarint(b, n)
			}
			b = appendVarint(b, pl.total)
			b = appendVarint(b, pl.reserved)
		}
	}
	b = appendUvarint(b, uint64(len(c.insts)))
	for i := range c.insts {
		in := &c.insts[i]
		b = appendVarint(b, int64(in.def))
		b = append(b, byte(in.phase))
		b = appendBool(b, in.dayOpen)
		b = appendUvarint(b, in.dayFrom)
		b = appendVarint(b, int64(in.fee))
		b = appendVarint(b, in.lastPrice)
		b = appendVarint(b, in.lastQty)
		b = appendVarint(b, in.volume)
		b = appendUvarint(b, uint64(in.trades.len()))
		for k := range in.trades.len() {
			t := in.trades.at(k)
			b = append(b, byte(EvTrade))
			b = appendTrade(b, &t, nil)
		}
		b = append(b, byte(in.book.Phase()))
		b = appendUvarint(b, uint64(in.book.Len()))
		b = orders(b, in)
	}
	return b
}

// bookEntry is what a snapshot encodes of a resting order from its book;
// its user value is the slot of the rest.
type bookEntry = orderbook.Resting

// appendBookEntries appends a book's orders, their orders read by at,
// snapBlock at a time: a block's orders are read first in a loop of
// independent loads, which the processor overlaps, rather than one cache
// miss after another as each is encoded (the books' order is not the
// slots'); sink keeps those loads.
func appendBookEntries(b []byte, es []bookEntry, at func(int32) *order, pools []pool, sink *int64) []byte {
	for len(es) > 0 {
		blk := es[:min(len(es), snapBlock)]
		es = es[len(blk):]
		var s int64
		for k := range blk {
			o := at(int32(blk[k].User))
			// A field in each of its cache lines that appendOrderOf reads
			// (fields at most 64 bytes apart).
			s += o.id + o.price + o.notional + o.fxDone + int64(o.w0.pool) + int64(len(o.cloid)) + int64(o.cloidN) + int64(o.seq)
		}
		*sink += s
		for k := range blk {
			e := &blk[k]
			b = appendVarint(b, e.Visible)
			b = appendVarint(b, e.OrigQty)
			b = appendVarint(b, e.FilledQty)
			b = appendVarint(b, e.CancelledQty)
			b = appendOrderOf(b, at(int32(e.User)), pools)
		}
	}
	return b
}

// snapBlock is how many of a book's orders the snapshot head reads ahead.
const snapBlock = 32

// appendFinished appends the finished orders still kept (the head's end).
func (c *Core) appendFinished(b []byte) []byte {
	b = appendUvarint(b, uint64(c.finished.len()))
	for k := range c.finished.len() {
		b = c.appendOrder(b, c.finished.at(k))
	}
	return b
}

// appendOpenListings appends the open listings and auctions (the tail's
// start).
func (c *Core) appendOpenListings(b []byte) []byte {
	b = appendUvarint(b, uint64(len(c.listings)))
	for _, s := range c.listings {
		b = c.appendOrder(b, s)
	}
	b = appendUvarint(b, uint64(len(c.auctions)))
	for _, s := range c.auctions {
		b = c.appendOrder(b, s)
		bids := c.orders.peek(s).auc.bids
		b = appendUvarint(b, uint64(len(bids)))
		for _, bs := range bids {
			b = c.appendOrder(b, bs)
		}
	}
	return b
}

func appendFill(b []byte, f Fill) []byte {
	b = appendVarint(b, f.TradeID)
	b = appendVarint(b, f.OrderID)
	b = appendString(b, f.ClientID)
	b = appendVarint(b, int64(f.Def))
	b = append(b, byte(f.Side))
	b = appendVarint(b, f.Price)
	b = appendVarint(b, f.Qty)
	b = appendBool(b, f.Maker)
	b = appendVarint(b, f.FeeMinor)
	b = appendUvarint(b, f.Seq)
	b = appendVarint(b, f.TimeNanos)
	b = appendVarint(b, int64(f.FX.Rate))
	if f.FX.Rate != 0 {
		b = appendVarint(b, int64(f.FX.Currency))
		b = appendVarint(b, f.FX.Amount)
	}
	return b
}

// decodeFill reads a fill; snapshots before version 3 have no FX leg.
func decodeFill(d *decoder, version int) Fill {
	f := Fill{TradeID: d.varint(), OrderID: d.varint(), ClientID: d.string(), Def: d.i32(), Side: Side(d.byte()),
		Price: d.varint(), Qty: d.varint(), Maker: d.bool(), FeeMinor: d.varint(), Seq: d.uvarint(), TimeNanos: d.varint()}
	if version >= 3 {
		if f.FX.Rate = d.i32(); f.FX.Rate != 0 {
			f.FX.Currency, f.FX.Amount = d.i32(), d.varint()
		}
	}
	return f
}

func (c *Core) appendOrder(b []byte, slot int32) []byte {
	return appendOrderOf(b, c.orders.peek(slot), c.pools)
}

// appendOrderOf appends order o, its sell reservations' receipts read from
// pools.
func appendOrderOf(b []byte, o *order, pools []pool) []byte {
	b = appendVarint(b, o.id)
	b = appendVarint(b, int64(o.inst))
	b = appendVarint(b, int64(o.part))
	b = appendVarint(b, int64(o.def))
	flags := uint64(o.side) | uint64(o.typ)<<1 | uint64(o.tif)<<2 | uint64(o.stp)<<5
	if o.postOnly {
		flags |= 1 << 8
	}
	if o.expired {
		flags |= 1 << 9
	}
	if o.fx != 0 {
		flags |= 1 << 10
	}
	if o.lst != nil {
		flags |= 1 << 11
	}
	if o.auc != nil {
		flags |= 1 << 12
	}
	if o.bidOf != 0 {
		flags |= 1 << 13
	}
	b = appendUvarint(b, flags)
	b = appendVarint(b, o.price)
	b = appendVarint(b, o.qty)
	b = appendVarint(b, o.display)
	b = appendVarint(b, o.minQty)
	b = appendVarint(b, o.filled)
	b = appendVarint(b, o.open)
	b = appendVarint(b, o.cancelled)
	b = appendVarint(b, o.notional)
	b = appendVarint(b, o.reserved)
	b = appendVarint(b, int64(o.fee))
	if o.fx != 0 {
		b = appendVarint(b, int64(o.fx))
		b = appendVarint(b, int64(o.fxCur))
		b = appendVarint(b, o.fxBase)
		b = appendVarint(b, o.fxDone)
	}
	if l := o.lst; l != nil {
		b = appendVarint(b, l.minTake)
		b = appendVarint(b, l.expires)
		b = appendUvarint(b, uint64(len(l.spec.Receipts)))
		for _, r := range l.spec.Receipts {
			b = appendString(b, r)
		}
		b = appendString(b, l.spec.Grade)
		b = appendString(b, l.spec.Brand)
		b = appendString(b, l.spec.Warehouse)
		b = appendString(b, l.spec.ProductionDate)
	}
	if a := o.auc; a != nil {
		b = appendVarint(b, a.minInc)
		b = appendVarint(b, a.ext)
		b = appendVarint(b, a.starts)
		b = appendVarint(b, a.ends)
		b = appendVarint(b, a.best)
		b = appendBool(b, a.closed)
		b = appendBool(b, a.cancelled)
		b = appendUvarint(b, uint64(len(a.receipts)))
		for _, r := range a.receipts {
			b = appendString(b, r)
		}
		b = appendUvarint(b, uint64(len(a.results)))
		for _, f := range a.results {
			b = appendFill(b, f)
		}
	}
	if o.bidOf != 0 {
		b = appendVarint(b, o.bidOf)
	}
	n := o.wresLen()
	b = appendUvarint(b, uint64(n))
	for i := range n {
		r := o.wresAt(i)
		b = appendString(b, pools[r.pool].receipt)
		b = appendVarint(b, r.weight)
	}
	if n := int(o.cloidN) - 1; n >= 0 {
		b = appendUvarint(b, uint64(n))
		b = append(b, o.cloidIn[:n]...)
	} else {
		b = appendString(b, o.cloid)
	}
	b = appendVarint(b, o.created)
	b = appendVarint(b, o.updated)
	return appendUvarint(b, o.seq)
}

// StateHash digests the canonical encoding (FNV-1a, 64 bits).
func (c *Core) StateHash() uint64 {
	h := fnv.New64a()
	h.Write(c.AppendSnapshot(nil))
	return h.Sum64()
}

// WriteSnapshot writes the canonical encoding to w.
func (c *Core) WriteSnapshot(w io.Writer) error {
	_, err := w.Write(c.AppendSnapshot(nil))
	return err
}

// ErrSnapshot is wrapped by the errors of Load.
var ErrSnapshot = errors.New("core: bad snapshot")

// Load rebuilds a core from a snapshot's bytes.
func Load(p []byte, lim Limits) (*Core, error) {
	c := New(lim)
	if len(p) < len(snapMagic) || snapVersions[string(p[:len(snapMagic)])] == 0 {
		return nil, fmt.Errorf("%w: magic", ErrSnapshot)
	}
	version := snapVersions[string(p[:len(snapMagic)])]
	v1 := version == 1
	d := &decoder{b: p[len(snapMagic):]}
	c.lastSeq = d.uvarint()
	c.lastTime = d.varint()
	c.nextOrderID = d.varint()
	c.nextTradeID = d.varint()
	for range d.count(1 << 16) {
		i := c.ensureCurrency(d.string(), d.i32())
		c.credits[i] = d.varint()
		c.debits[i] = d.varint()
		c.feesPaid[i] = d.varint()
		if !v1 {
			c.fxNet[i] = d.varint()
		}
	}
	if !v1 {
		for range d.count(1 << 28) {
			r := fxRate{key: d.string(), num: int64(len(c.rates) + 1)}
			if version >= 3 {
				r.num = d.varint()
			}
			r.base, r.quote, r.coef, r.from, r.until = d.i32(), d.i32(), d.varint(), d.varint(), d.varint()
			if d.err != nil || r.base < 0 || int(r.base) >= len(c.currencies) || r.quote < 0 || int(r.quote) >= len(c.currencies) || r.coef <= 0 {
				return nil, fmt.Errorf("%w: FX rate %q", ErrSnapshot, r.key)
			}
			c.addRate(r)
		}
	}
	c.weightIn, c.weightOut, c.weightSold = d.varint(), d.varint(), d.varint()
	for range d.count(1 << 24) {
		var def InstrumentDef
		decodeDef(d, &def)
		cur, ok := c.curByCode[def.Currency]
		if !ok && d.err == nil {
			return nil, fmt.Errorf("%w: instrument %s in unknown currency %q", ErrSnapshot, def.Symbol, def.Currency)
		}
		c.defs = append(c.defs, def)
		c.defCur = append(c.defCur, cur)
	}
	c.fees = c.fees[:0]
	for range d.count(1 << 24) {
		var f FeeSchedule
		d.feeRule(&f.Buyer)
		d.feeRule(&f.Seller)
		c.fees = append(c.fees, f)
	}
	for range d.count(1 << 28) {
		pi := c.ensurePart(d.varint(), d.string())
		p := &c.parts[pi]
		for range d.count(1 << 16) {
			p.funds = append(p.funds, funds{total: d.varint(), reserved: d.varint()})
		}
		if !v1 {
			for range d.count(1 << 16) {
				f := fundingPref{trade: d.i32(), funding: d.i32()}
				if version >= 3 {
					f.version = d.varint()
				}
				if f.trade < 0 || int(f.trade) >= len(c.currencies) || f.funding < -1 || int(f.funding) >= len(c.currencies) {
					return nil, fmt.Errorf("%w: participant %s funding %+v", ErrSnapshot, p.id, f)
				}
				p.funding = append(p.funding, f)
			}
		}
		for range d.count(1 << 24) {
			pl := pool{receipt: d.string(), part: pi, live: true}
			for range d.count(1 << 16) {
				pl.insts = append(pl.insts, d.varint())
			}
			pl.total, pl.reserved = d.varint(), d.varint()
			slot := int32(len(c.pools))
			c.pools = append(c.pools, pl)
			c.poolByRc[pl.receipt] = slot
			p.pools = append(p.pools, slot)
		}
		if version <= 5 {
			for range d.count(1 << 24) {
				decodeFill(d, version)
			}
		}
	}
	for range d.count(1 << 24) {
		if d.err != nil {
			break
		}
		di := d.i32()
		if di < 0 || int(di) >= len(c.defs) {
			return nil, fmt.Errorf("%w: definition index %d", ErrSnapshot, di)
		}
		ii := int32(len(c.insts))
		c.insts = append(c.insts, instrument{def: di, trades: newRing[Trade](c.lim.TradeHistory)})
		in := &c.insts[ii]
		in.sink = &bookSink{c: c, inst: ii}
		in.phase = Phase(d.byte())
		in.dayOpen = d.bool()
		if version >= 6 {
			in.dayFrom = d.uvarint()
		}
		in.fee = d.i32()
		in.lastPrice, in.lastQty, in.volume = d.varint(), d.varint(), d.varint()
		var tmp Events
		for range d.count(1 << 24) {
			tmp.Reset()
			tmp.decodeEvent(d)
			var t Trade
			if e := &tmp.List[0]; e.Kind == EvTrade {
				t = *tmp.Trade(e)
			}
			in.trades.push(t)
		}
		def := &c.defs[di]
		c.instByNum[def.Number] = ii
		in.book = c.newBook(ii, def)
		if orderbook.Phase(d.byte()) == orderbook.PhaseAuction {
			_ = in.book.StartAuction()
		}
		for range d.count(1 << 28) {
			visible, orig, filled, cancelled := d.varint(), d.varint(), d.varint(), d.varint()
			slot, err := c.decodeOrder(d)
			if err != nil {
				return nil, err
			}
			o := c.orders.at(slot)
			if err := in.book.Restore(orderbook.OrderState{ID: o.id, Participant: c.parts[o.part].number,
				User: uint64(slot), Side: o.side, TIF: o.tif, STP: o.stp, PostOnly: o.postOnly, Price: o.price,
				Qty: o.open, Visible: visible, DisplayQty: o.display, OrigQty: orig, FilledQty: filled,
				CancelledQty: cancelled}); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrSnapshot, err)
			}
		}
	}
	for range d.count(1 << 28) {
		slot, err := c.decodeOrder(d)
		if err != nil {
			return nil, err
		}
		// With a smaller limit than the snapshot was taken with, the oldest
		// finished orders are dropped, as they would have been.
		if ev, evicted := c.finished.push(slot); evicted {
			c.freeOrder(ev)
		}
	}
	if version >= 4 {
		for range d.count(1 << 28) {
			slot, err := c.decodeOrder(d)
			if err != nil {
				return nil, err
			}
			if c.orders.at(slot).lst == nil || c.orders.at(slot).open == 0 {
				return nil, fmt.Errorf("%w: order %d listed as an open listing", ErrSnapshot, c.orders.at(slot).id)
			}
			c.listings = append(c.listings, slot)
			c.insts[c.orders.at(slot).inst].listed++
		}
	}
	if version >= 5 {
		for range d.count(1 << 24) {
			slot, err := c.decodeOrder(d)
			if err != nil {
				return nil, err
			}
			a := c.orders.at(slot).auc
			if a == nil || a.closed || c.orders.at(slot).open == 0 {
				return nil, fmt.Errorf("%w: order %d listed as an open auction", ErrSnapshot, c.orders.at(slot).id)
			}
			for range d.count(1 << 24) {
				bs, err := c.decodeOrder(d)
				if err != nil {
					return nil, err
				}
				a.bids = append(a.bids, bs)
			}
			c.auctions = append(c.auctions, slot)
			c.insts[c.orders.at(slot).inst].listed++
		}
	}
	for range d.count(1 << 30) {
		e := cloidEntry{key: cloidKey{part: d.varint(), cloid: d.string()}, orderID: d.varint(), hash: d.uvarint(), inst: d.i32()}
		c.cloids.add(e)
	}
	for range d.count(1 << 30) {
		e := keyEntry{key: d.string(), hash: d.uvarint(), seq: d.uvarint()}
		c.keys[e.key] = int32(len(c.keyLog))
		c.keyLog = append(c.keyLog, e)
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSnapshot, d.err)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrSnapshot, len(d.b))
	}
	if err := c.CheckInvariants(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSnapshot, err)
	}
	return c, nil
}

func (c *Core) decodeOrder(d *decoder) (int32, error) {
	slot := c.allocOrder()
	o := c.orders.at(slot)
	o.id = d.varint()
	o.inst, o.part, o.def = d.i32(), d.i32(), d.i32()
	if o.part >= 0 && int(o.part) < len(c.parts) {
		o.partNum = c.parts[o.part].number
	}
	f := d.uvarint()
	o.side, o.typ, o.tif, o.stp = Side(f&1), OrderType(f>>1&1), TIF(f>>2&7), STPMode(f>>5&7)
	o.postOnly, o.expired = f&(1<<8) != 0, f&(1<<9) != 0
	o.price, o.qty, o.display, o.minQty = d.varint(), d.varint(), d.varint(), d.varint()
	o.filled, o.open, o.cancelled, o.notional = d.varint(), d.varint(), d.varint(), d.varint()
	o.reserved = d.varint()
	o.fee = d.i32()
	if f&(1<<10) != 0 {
		o.fx, o.fxCur, o.fxBase, o.fxDone = d.i32(), d.i32(), d.varint(), d.varint()
		if o.fx <= 0 || int(o.fx) > len(c.rates) || o.fxCur < 0 || int(o.fxCur) >= len(c.currencies) {
			return 0, fmt.Errorf("%w: order %d has a bad FX rate", ErrSnapshot, o.id)
		}
	}
	if f&(1<<11) != 0 {
		l := &listingInfo{minTake: d.varint(), expires: d.varint()}
		for range d.count(1 << 16) {
			l.spec.Receipts = append(l.spec.Receipts, d.string())
		}
		l.spec.Grade, l.spec.Brand, l.spec.Warehouse, l.spec.ProductionDate = d.string(), d.string(), d.string(), d.string()
		o.lst = l
	}
	if f&(1<<12) != 0 {
		a := &auctionInfo{minInc: d.varint(), ext: d.varint(), starts: d.varint(), ends: d.varint(), best: d.varint(),
			closed: d.bool(), cancelled: d.bool()}
		for range d.count(1 << 16) {
			a.receipts = append(a.receipts, d.string())
		}
		for range d.count(1 << 20) {
			a.results = append(a.results, decodeFill(d, snapVersionCurrent))
		}
		o.auc = a
	}
	if f&(1<<13) != 0 {
		o.bidOf = d.varint()
	}
	o.w0 = wres{pool: -1}
	for range d.count(1 << 16) {
		rc, w := d.string(), d.varint()
		ps, ok := c.poolByRc[rc]
		if !ok {
			return 0, fmt.Errorf("%w: order %d reserves unknown receipt %q", ErrSnapshot, o.id, rc)
		}
		c.addWres(o, ps, w)
	}
	o.setCloid(d.string())
	o.created, o.updated, o.seq = d.varint(), d.varint(), d.uvarint()
	if d.err != nil {
		return 0, fmt.Errorf("%w: %v", ErrSnapshot, d.err)
	}
	if o.inst < 0 || int(o.inst) >= len(c.insts) || o.part < 0 || int(o.part) >= len(c.parts) ||
		o.def < 0 || int(o.def) >= len(c.defs) || o.fee < 0 || int(o.fee) >= len(c.fees) {
		return 0, fmt.Errorf("%w: order %d has a bad index", ErrSnapshot, o.id)
	}
	if _, dup := c.lookup(o.id); dup {
		return 0, fmt.Errorf("%w: order %d twice", ErrSnapshot, o.id)
	}
	o.live = true
	c.index(o.id, slot)
	return slot, nil
}
