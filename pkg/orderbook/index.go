package orderbook

import "math"

// idIndex maps order ids to pool slots: open addressing with linear probing
// and backward-shift deletion (no tombstones), at most half full so probes
// stay short. An entry is 8 bytes, a 32-bit fingerprint of the id's hash and
// the slot, so the table stays small enough for the cache; a fingerprint
// match is confirmed against the order itself, which callers read next
// anyway. The fingerprint is the top 32 bits of the hash and the home
// position its top bits, so deletion can find an entry's home without
// touching the order. Slot 0 marks an empty entry.
type idIndex struct {
	e      []idEntry
	orders []order // the pool, to confirm fingerprint matches
	mask   uint64
	bits   uint // log2(len(e)), at most 32
	n      int
	// max is at least every id ever put: an id above it is absent without
	// a probe. Callers that number orders upwards (the matching core)
	// check a new order's id for a duplicate without a cache miss.
	max int64
}

type idEntry struct {
	fp   uint32
	slot int32
}

func newIDIndex(capacity int, orders []order) idIndex {
	size, bits := 16, uint(4)
	for size < 2*capacity {
		size <<= 1
		bits++
	}
	return idIndex{e: make([]idEntry, size), orders: orders, mask: uint64(size - 1), bits: bits, max: math.MinInt64}
}

// fingerprint is the top half of a multiplicative hash of id.
func fingerprint(id int64) uint32 {
	return uint32((uint64(id) * 0x9E3779B97F4A7C15) >> 32)
}

func (x *idIndex) home(fp uint32) uint64 { return uint64(fp) >> (32 - x.bits) }

// get returns the slot of id, or 0.
func (x *idIndex) get(id int64) int32 {
	if id > x.max {
		return 0
	}
	fp := fingerprint(id)
	for i := x.home(fp); ; i = (i + 1) & x.mask {
		e := x.e[i]
		if e.slot == 0 {
			return 0
		}
		if e.fp == fp && x.orders[e.slot].id == id {
			return e.slot
		}
	}
}

// put adds id, which must not be present.
func (x *idIndex) put(id int64, slot int32) {
	fp := fingerprint(id)
	i := x.home(fp)
	for x.e[i].slot != 0 {
		i = (i + 1) & x.mask
	}
	x.e[i] = idEntry{fp: fp, slot: slot}
	x.n++
	x.max = max(x.max, id)
}

// del removes the entry of slot, which must be present with id.
func (x *idIndex) del(id int64, slot int32) {
	fp := fingerprint(id)
	i := x.home(fp)
	for x.e[i].slot != slot {
		i = (i + 1) & x.mask
	}
	for {
		j := (i + 1) & x.mask
		for {
			if x.e[j].slot == 0 {
				x.e[i] = idEntry{}
				x.n--
				return
			}
			h := x.home(x.e[j].fp)
			// The entry at j may move back to i unless its home lies
			// cyclically in (i, j].
			if (j-h)&x.mask >= (j-i)&x.mask {
				break
			}
			j = (j + 1) & x.mask
		}
		x.e[i] = x.e[j]
		i = j
	}
}
