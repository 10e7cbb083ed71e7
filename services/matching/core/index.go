package core

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
	if s := x.slots[id&(1<<idIndexBits-1)]; s != 0 && c.orders.at(s-1).id == id {
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
	byHash map[uint64]int32
	over   map[cloidKey]int32
	live   int
}

func newCloidIndex() cloidIndex {
	return cloidIndex{byHash: map[uint64]int32{}, over: map[cloidKey]int32{}}
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
	if i, ok := x.byHash[cloidHash(k)]; ok {
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
	h := cloidHash(e.key)
	if _, taken := x.byHash[h]; taken {
		x.over[e.key] = i
	} else {
		x.byHash[h] = i
	}
	x.live++
}

func (x *cloidIndex) remove(i int32) {
	e := x.log.at(i)
	e.dead = true
	h := cloidHash(e.key)
	if j, ok := x.byHash[h]; ok && j == i {
		delete(x.byHash, h)
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
