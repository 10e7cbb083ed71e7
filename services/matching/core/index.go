package core

import "github.com/bcx-exchange/bcx/pkg/prefault"

// Indexes on the hot path. Neither is part of the canonical state: both
// are rebuilt from the orders and the client order id log on Load, and
// nothing iterates them.

// idIndexBits sizes the direct-mapped order id table (4 MiB).
const idIndexBits = 20

// idIndex maps order ids to order slots. Ids are consecutive, so id modulo
// the table size almost always lands on a free entry; an order whose entry
// is still held by an older live order (one that outlived 2^20 newer ones)
// goes to a small map instead. A lookup is one array read and one compare.
type idIndex struct {
	slots []int32 // id & mask -> slot + 1; 0 is free
	over  map[int64]int32
	n     int
}

func newIDIndex() idIndex {
	return idIndex{slots: make([]int32, 1<<idIndexBits), over: map[int64]int32{}}
}

func (c *Core) lookup(id int64) (int32, bool) {
	x := &c.ids
	if s := x.slots[id&(1<<idIndexBits-1)]; s != 0 && c.orders.peek(s-1).id == id {
		return s - 1, true
	}
	if len(x.over) > 0 {
		s, ok := x.over[id]
		return s, ok
	}
	return 0, false
}

func (c *Core) index(id int64, slot int32) {
	x := &c.ids
	i := id & (1<<idIndexBits - 1)
	if x.slots[i] != 0 {
		x.over[id] = slot
	} else {
		x.slots[i] = slot + 1
	}
	x.n++
}

func (c *Core) unindex(id int64, slot int32) {
	x := &c.ids
	i := id & (1<<idIndexBits - 1)
	if x.slots[i] == slot+1 {
		x.slots[i] = 0
	} else {
		delete(x.over, id)
	}
	x.n--
}

// cloidIndex keeps a day's client order ids: a log in insertion order (the
// canonical order for snapshots) and an index by a 64-bit hash of the key,
// with keys whose hash is already taken in a map of their own, so a
// collision is never a false match.
type cloidIndex struct {
	log    paged[cloidEntry]
	byHash hashSlots
	over   map[cloidKey]int32
	live   int
	bytes  int // the ids' length over the log, dead ones too (for SnapshotSizeHint)
}

func newCloidIndex() cloidIndex {
	return cloidIndex{byHash: newHashSlots(1 << 12), over: map[cloidKey]int32{}}
}

// cloidHash is the index's hash; tests replace it to force collisions.
var cloidHash = hashCloid

func hashCloid(k cloidKey) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037) ^ uint64(k.part)
	h *= prime
	for i := 0; i < len(k.cloid); i++ {
		h = (h ^ uint64(k.cloid[i])) * prime
	}
	return h
}

func (x *cloidIndex) get(k cloidKey) (*cloidEntry, bool) {
	if i, ok := x.byHash.get(cloidHash(k)); ok {
		if e := x.log.at(i); e.key == k {
			return e, true
		}
	}
	if len(x.over) > 0 {
		if i, ok := x.over[k]; ok {
			return x.log.at(i), true
		}
	}
	return nil, false
}

func (x *cloidIndex) add(e cloidEntry) {
	i := x.log.add()
	*x.log.at(i) = e
	x.bytes += len(e.key.cloid)
	if !x.byHash.insert(cloidHash(e.key), i) {
		x.over[e.key] = i
	}
	x.live++
}

func (x *cloidIndex) remove(i int32) {
	e := x.log.at(i)
	e.dead = true
	h := cloidHash(e.key)
	if j, ok := x.byHash.get(h); ok && j == i {
		x.byHash.remove(h)
	} else {
		delete(x.over, e.key)
	}
	x.live--
}

// compact drops dead entries from the log, keeping the order.
func (x *cloidIndex) compact() {
	old := x.log
	*x = newCloidIndex()
	for i := range int32(old.len()) {
		if e := old.at(i); !e.dead {
			x.add(*e)
		}
	}
}

// hashSlots maps distinct 64-bit hashes to int32 values: open addressing
// with linear probing and backward-shift deletion, at most half full. One
// probe usually touches one cache line, where a Go map touches a control
// word and a slot. Nothing iterates it.
//
// Growth is incremental: a full rehash of a day's client order ids (two
// million, 64 MB) stalled the sequencer for 150 ms. The table doubles into
// cur and keeps the previous one as old, and every insert moves the next
// few of old's entries into cur, leaving a tombstone so that old's probe
// runs stay intact; a hash is in exactly one of the two. Moving
// migrateStep slots per insert empties old before cur is half full.
type hashSlots struct {
	cur slotTable
	old slotTable // being moved into cur; ent is nil when not growing
	mig int       // old's slots before mig have been moved
	n   int       // hashes held, in both tables
	// next is cur's successor, asked for once cur is 3/8 full: it grows
	// at half, and is a quarter full just after growing (asking then would
	// hold a table twice cur's size for all of cur's life).
	next prefault.Spare[hashEnt]
}

// migrateStep is old's slots moved per insert: growth starts a quarter
// full (n = len(old)/2 = len(cur)/4) and ends after len(old)/migrateStep
// inserts, at most 3/8 full.
const migrateStep = 4

type slotTable struct {
	ent   []hashEnt // power-of-two length
	shift uint8     // 64 - log2(len(ent))
}

type hashEnt struct {
	h uint64
	v int32 // value + 1; 0 is free, tombstone (old table only) moved or removed
}

const tombstone = -1

func newSlotTable(size int) slotTable {
	bits := uint8(1)
	for 1<<bits < size {
		bits++
	}
	return slotTable{ent: make([]hashEnt, 1<<bits), shift: 64 - bits}
}

func newHashSlots(size int) hashSlots { return hashSlots{cur: newSlotTable(size)} }

// home is where a hash's probe starts (Fibonacci hashing: the high bits of
// the product, so weak low bits of h do not cluster).
func (t *slotTable) home(h uint64) int { return int((h * 0x9E3779B97F4A7C15) >> t.shift) }

// find returns the position of h, or -1.
func (t *slotTable) find(h uint64) int {
	mask := len(t.ent) - 1
	for p := t.home(h); ; p = (p + 1) & mask {
		e := &t.ent[p]
		if e.v == 0 {
			return -1
		}
		if e.h == h && e.v > 0 {
			return p
		}
	}
}

// put stores h, which the table must not hold, in its first free slot.
func (t *slotTable) put(e hashEnt) {
	mask := len(t.ent) - 1
	p := t.home(e.h)
	for t.ent[p].v != 0 {
		p = (p + 1) & mask
	}
	t.ent[p] = e
}

// len is the number of hashes held.
func (t *hashSlots) len() int { return t.n }

func (t *hashSlots) get(h uint64) (int32, bool) {
	if p := t.cur.find(h); p >= 0 {
		return t.cur.ent[p].v - 1, true
	}
	if t.old.ent != nil {
		if p := t.old.find(h); p >= 0 {
			return t.old.ent[p].v - 1, true
		}
	}
	return 0, false
}

// insert adds h -> v and reports true, or reports false if h is taken.
func (t *hashSlots) insert(h uint64, v int32) bool {
	if 2*(t.n+1) > len(t.cur.ent) {
		t.grow()
	} else if 8*(t.n+1) > 3*len(t.cur.ent) {
		t.next.Prepare(2 * len(t.cur.ent))
	}
	if t.old.ent != nil {
		if t.old.find(h) >= 0 {
			return false
		}
		t.migrate(migrateStep)
	}
	mask := len(t.cur.ent) - 1
	for p := t.cur.home(h); ; p = (p + 1) & mask {
		e := &t.cur.ent[p]
		if e.v == 0 {
			*e = hashEnt{h: h, v: v + 1}
			t.n++
			return true
		}
		if e.h == h {
			return false
		}
	}
}

// grow doubles cur, keeping the present table as old to be moved over.
func (t *hashSlots) grow() {
	if t.old.ent != nil {
		// Unreachable by the bound above; finish the move rather than lose
		// entries.
		t.migrate(len(t.old.ent))
	}
	t.old = t.cur
	t.cur = slotTable{ent: t.next.Take(2 * len(t.old.ent)), shift: t.old.shift - 1}
	t.mig = 0
	if t.n == 0 {
		t.old = slotTable{}
	}
}

// migrate moves up to k of old's slots into cur.
func (t *hashSlots) migrate(k int) {
	end := min(t.mig+k, len(t.old.ent))
	for ; t.mig < end; t.mig++ {
		e := &t.old.ent[t.mig]
		if e.v > 0 {
			t.cur.put(*e)
		}
		if e.v != 0 {
			e.v = tombstone
		}
	}
	if t.mig == len(t.old.ent) {
		t.old = slotTable{}
	}
}

// remove deletes h if present.
func (t *hashSlots) remove(h uint64) {
	if t.old.ent != nil {
		if p := t.old.find(h); p >= 0 {
			// A tombstone: shifting old's entries back could move one
			// into the part already moved.
			t.old.ent[p].v = tombstone
			t.n--
			return
		}
	}
	if t.cur.remove(h) {
		t.n--
	}
}

// remove deletes h if present, shifting later entries of its probe run
// back so that lookups never need tombstones.
func (t *slotTable) remove(h uint64) bool {
	p := t.find(h)
	if p < 0 {
		return false
	}
	mask := len(t.ent) - 1
	for q := p; ; {
		t.ent[p] = hashEnt{}
		for {
			q = (q + 1) & mask
			e := t.ent[q]
			if e.v == 0 {
				return true
			}
			// e may move to p unless its home lies cyclically in (p, q].
			hm := t.home(e.h)
			if (p <= q && (hm <= p || hm > q)) || (p > q && hm <= p && hm > q) {
				t.ent[p] = e
				p = q
				break
			}
		}
	}
}
