package prefault

import (
	"testing"
	"time"
)

func TestSpare(t *testing.T) {
	var s Spare[entry]
	s.Prepare(1 << 16)
	s.Prepare(1 << 10) // already asked for: ignored
	deadline := time.Now().Add(10 * time.Second)
	for len(s.ch) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the spare was never prepared")
		}
		time.Sleep(time.Millisecond)
	}
	prepared := s.ch
	x := s.Take(1 << 16)
	if len(x) != 1<<16 {
		t.Fatalf("took %d entries, want %d", len(x), 1<<16)
	}
	for i, e := range x {
		if e != (entry{}) {
			t.Fatalf("entry %d of a spare is %+v, want zero", i, e)
		}
	}
	if s.ch != nil || len(prepared) != 0 {
		t.Fatal("take left the prepared slice behind")
	}

	// Nothing asked for, or asked for at another length: a new slice.
	if y := s.Take(8); len(y) != 8 {
		t.Fatalf("took %d entries, want 8", len(y))
	}
	s.Prepare(16)
	if y := s.Take(32); len(y) != 32 || s.ch != nil {
		t.Fatalf("took %d entries (spare %v), want 32 and the spare dropped", len(y), s.ch)
	}
}

func TestSpareTryTake(t *testing.T) {
	var s Spare[entry]
	if _, ok := s.TryTake(); ok || s.Ready() {
		t.Fatal("took a spare never asked for")
	}
	s.Prepare(1 << 10)
	for deadline := time.Now().Add(10 * time.Second); !s.Ready(); time.Sleep(time.Millisecond) {
		if !s.Pending() {
			t.Fatal("a spare not ready was dropped")
		}
		if time.Now().After(deadline) {
			t.Fatal("the spare was never prepared")
		}
	}
	x, ok := s.TryTake()
	if !ok || len(x) != 1<<10 || s.Pending() || s.Ready() {
		t.Fatalf("took %d entries (ok %v, pending %v), want %d and nothing pending", len(x), ok, s.Pending(), 1<<10)
	}
}

func TestTouchPagesSizes(t *testing.T) {
	type big struct{ b [5000]byte } // larger than a page: every element
	TouchPages(make([]big, 3))
	TouchPages([]struct{}{{}, {}})
	TouchPages([]int64(nil))
	TouchPages(make([]byte, 1))
}

// entry is the shape of a hash table's entry.
type entry struct {
	h uint64
	v int32
}
