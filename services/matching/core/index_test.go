package core

import (
	"fmt"
	"testing"
)

// TestCloidIndexCollisions forces every key onto one hash: lookups must
// still find exactly their own entries through adds, removes and compaction.
func TestCloidIndexCollisions(t *testing.T) {
	cloidHash = func(cloidKey) uint64 { return 42 }
	defer func() { cloidHash = hashCloid }()
	x := newCloidIndex()
	for i := range 10 {
		x.add(cloidEntry{key: cloidKey{1, fmt.Sprint("k", i)}, orderID: int64(i)})
	}
	for i := 0; i < 10; i += 3 {
		e, _ := x.get(cloidKey{1, fmt.Sprint("k", i)})
		for j := range int32(x.log.len()) {
			if x.log.at(j) == e {
				x.remove(j)
			}
		}
	}
	check := func() {
		for i := range 10 {
			e, ok := x.get(cloidKey{1, fmt.Sprint("k", i)})
			if removed := i%3 == 0; ok == removed || (ok && e.orderID != int64(i)) {
				t.Fatalf("k%d: found %v %+v", i, ok, e)
			}
		}
		if _, ok := x.get(cloidKey{2, "k1"}); ok {
			t.Fatal("another participant's key matched")
		}
	}
	check()
	x.compact()
	check()
	if x.live != 6 || x.log.len() != 6 {
		t.Fatalf("live %d, log %d", x.live, x.log.len())
	}
}

// TestIDIndexOverflow keeps an order alive while 2^20 newer ids pass, so
// a newer id lands on its entry and must go to the overflow map.
func TestIDIndexOverflow(t *testing.T) {
	c := New(Limits{})
	a, b := c.allocOrder(), c.allocOrder()
	old, young := int64(7), int64(7+1<<idIndexBits)
	c.orders.at(a).id, c.orders.at(b).id = old, young
	c.index(old, a)
	c.index(young, b)
	if s, ok := c.lookup(old); !ok || s != a {
		t.Fatal("old id lost")
	}
	if s, ok := c.lookup(young); !ok || s != b {
		t.Fatal("young id not in the overflow")
	}
	c.unindex(old, a)
	if _, ok := c.lookup(old); ok {
		t.Fatal("removed id found")
	}
	if s, ok := c.lookup(young); !ok || s != b {
		t.Fatal("young id lost when the old one left")
	}
	c.unindex(young, b)
	if c.ids.n != 0 || len(c.ids.over) != 0 {
		t.Fatalf("index not empty: %d, %d", c.ids.n, len(c.ids.over))
	}
}

// TestHashSlots checks the open-addressing table against a map through
// random inserts, removes and growth: few distinct hashes (long runs, many
// collisions) and a growing set, checked while growth is moving entries
// between the two tables.
func TestHashSlots(t *testing.T) {
	for _, tc := range []struct {
		name     string
		distinct uint64
		removeIn uint64 // one in removeIn steps removes
	}{{"collisions", 5000, 3}, {"growing", 1 << 40, 5}} {
		t.Run(tc.name, func(t *testing.T) {
			tab := newHashSlots(4)
			ref := map[uint64]int32{}
			var keys []uint64
			rng := uint64(1)
			next := func() uint64 { rng = rng*6364136223846793005 + 1442695040888963407; return rng >> 20 }
			sawMigration := false
			check := func(step int32) {
				for _, k := range keys {
					v, ok := tab.get(k)
					if rv, rok := ref[k]; ok != rok || v != rv {
						t.Fatalf("step %d: get %d = %d %v, want %d %v", step, k, v, ok, rv, rok)
					}
				}
				if tab.len() != len(ref) {
					t.Fatalf("step %d: len %d, want %d", step, tab.len(), len(ref))
				}
			}
			for i := range int32(200_000) {
				h := next() % tc.distinct
				if next()%tc.removeIn == 0 && len(keys) > 0 {
					h = keys[next()%uint64(len(keys))] // present or removed before
					tab.remove(h)
					delete(ref, h)
				} else {
					_, taken := ref[h]
					if ok := tab.insert(h, i); ok == taken {
						t.Fatalf("insert %d: %v, taken %v", h, ok, taken)
					}
					if !taken {
						ref[h] = i
						keys = append(keys, h)
					}
				}
				if tab.old.ent != nil {
					sawMigration = true
				}
				if i%4999 == 0 || (tab.old.ent != nil && i%293 == 0) {
					check(i)
				}
			}
			check(-1)
			if !sawMigration {
				t.Fatal("the table never grew")
			}
		})
	}
}

// TestHashSlotsSpareTiming: the next table is asked for between a quarter
// and half full, not right after a grow (when the table is a quarter full
// already), so no twice-larger table is held for a table's whole life.
func TestHashSlotsSpareTiming(t *testing.T) {
	h := newHashSlots(1 << 4)
	size := len(h.cur.ent)
	for i := range 1 << 16 {
		h.insert(uint64(i)*0x9E3779B97F4A7C15+1, int32(i))
		if len(h.cur.ent) != size {
			// Just grown: nothing asked for yet.
			size = len(h.cur.ent)
			if h.next.Pending() {
				t.Fatalf("after growing to %d slots (%d held), the next table is already asked for", size, h.n)
			}
		}
		if asked, want := h.next.Pending(), 8*h.n > 3*size; asked != want {
			t.Fatalf("%d of %d slots held: next table asked for %v, want %v", h.n, size, asked, want)
		}
	}
}
