package orderbook

import (
	"math/rand/v2"
	"testing"
)

// TestBitsetAgainstBruteForce checks next and prev against a linear scan on
// sizes that exercise one, two and three bitmap levels, including a level-2
// summary of several words.
func TestBitsetAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 63, 64, 65, 4095, 4097, 300_000} {
		b := newBitset(n)
		ref := make([]bool, n)
		check := func(i int) {
			t.Helper()
			wantNext, wantPrev := -1, -1
			for j := max(i, 0); j < n; j++ {
				if ref[j] {
					wantNext = j
					break
				}
			}
			for j := min(i, n-1); j >= 0; j-- {
				if ref[j] {
					wantPrev = j
					break
				}
			}
			if got := b.next(i); got != wantNext {
				t.Fatalf("n=%d next(%d) = %d, want %d", n, i, got, wantNext)
			}
			if got := b.prev(i); got != wantPrev {
				t.Fatalf("n=%d prev(%d) = %d, want %d", n, i, got, wantPrev)
			}
		}
		for round := 0; round < 300; round++ {
			// Sparse sets make the searches cross many empty words.
			k := rng.IntN(n)
			if ref[k] {
				b.clear(k)
			} else {
				b.set(k)
			}
			ref[k] = !ref[k]
			if b.has(k) != ref[k] {
				t.Fatalf("has(%d) wrong", k)
			}
			for _, i := range []int{-1, 0, k - 1, k, k + 1, rng.IntN(n), n - 1, n} {
				check(i)
			}
		}
		// Very sparse sets at word and summary boundaries, where the
		// searches climb to the upper levels.
		edge := func() int {
			unit := []int{1, 64, 4096, 262144}[rng.IntN(4)]
			v := (rng.IntN(n/unit+1))*unit + rng.IntN(3) - 1
			return min(max(v, 0), n-1)
		}
		b = newBitset(n)
		ref = make([]bool, n)
		for round := 0; round < 400; round++ {
			var on []int
			for j := rng.IntN(3); j >= 0; j-- {
				k := edge()
				if !ref[k] {
					b.set(k)
					ref[k] = true
					on = append(on, k)
				}
			}
			for j := 0; j < 6; j++ {
				check(edge())
			}
			for _, k := range on {
				b.clear(k)
				ref[k] = false
			}
		}
	}
}

func TestIDIndexAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const capacity = 500
	orders := make([]order, capacity+1)
	x := newIDIndex(capacity, orders)
	want := map[int64]int32{}
	var free []int32
	for i := int32(capacity); i >= 1; i-- {
		free = append(free, i)
	}
	for step := 0; step < 200_000; step++ {
		// Ids drawn from a small range collide often, including in the
		// fingerprint's home bits.
		id := int64(rng.IntN(2000)) << uint(rng.IntN(3)*20)
		slot, ok := want[id]
		if got := x.get(id); got != slot {
			t.Fatalf("get(%d) = %d, want %d", id, got, slot)
		}
		switch {
		case ok:
			x.del(id, slot)
			delete(want, id)
			orders[slot] = order{}
			free = append(free, slot)
		case len(free) > 0:
			s := free[len(free)-1]
			free = free[:len(free)-1]
			orders[s].id = id
			x.put(id, s)
			want[id] = s
		}
		if x.n != len(want) {
			t.Fatalf("n = %d, want %d", x.n, len(want))
		}
	}
	for id, slot := range want {
		if got := x.get(id); got != slot {
			t.Fatalf("get(%d) = %d, want %d", id, got, slot)
		}
	}
}
