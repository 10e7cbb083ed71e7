package core

import (
	"testing"
	"time"
)

func TestSpare(t *testing.T) {
	var s spare[hashEnt]
	s.prepare(1 << 16)
	s.prepare(1 << 10) // already asked for: ignored
	deadline := time.Now().Add(10 * time.Second)
	for len(s.ch) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the spare was never prepared")
		}
		time.Sleep(time.Millisecond)
	}
	prepared := s.ch
	x := s.take(1 << 16)
	if len(x) != 1<<16 {
		t.Fatalf("took %d entries, want %d", len(x), 1<<16)
	}
	for i, e := range x {
		if e != (hashEnt{}) {
			t.Fatalf("entry %d of a spare is %+v, want zero", i, e)
		}
	}
	if s.ch != nil || len(prepared) != 0 {
		t.Fatal("take left the prepared slice behind")
	}

	// Nothing asked for, or asked for at another length: a new slice.
	if y := s.take(8); len(y) != 8 {
		t.Fatalf("took %d entries, want 8", len(y))
	}
	s.prepare(16)
	if y := s.take(32); len(y) != 32 || s.ch != nil {
		t.Fatalf("took %d entries (spare %v), want 32 and the spare dropped", len(y), s.ch)
	}
}

func TestTouchPagesSizes(t *testing.T) {
	type big struct{ b [5000]byte } // larger than a page: every element
	touchPages(make([]big, 3))
	touchPages([]struct{}{{}, {}})
	touchPages([]int64(nil))
	touchPages(make([]byte, 1))
}
