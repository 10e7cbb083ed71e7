//go:build !race

package prefault

import (
	"syscall"
	"testing"
)

// TestTouchPagesFaultsAhead checks the point of a spare: once touched, a
// fresh slice is written without page faults. (Not under the race
// detector: its shadow memory takes faults of its own.)
func TestTouchPagesFaultsAhead(t *testing.T) {
	const size = 64 << 20
	faults := func() int64 {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return ru.Minflt
	}
	write := func(x []entry) int64 {
		f0 := faults()
		for i := range x {
			x[i].v = 1
		}
		return faults() - f0
	}
	pages := int64(size / pageSize)
	untouched := write(make([]entry, size/16))
	x := make([]entry, size/16)
	TouchPages(x)
	touched := write(x)
	t.Logf("writing %d MiB: %d page faults fresh, %d after touchPages", size>>20, untouched, touched)
	if untouched < pages/64 {
		// Transparent huge pages (or memory the process already had)
		// leave nothing to measure.
		t.Skipf("fresh memory took only %d faults for %d pages", untouched, pages)
	}
	if touched > untouched/20 {
		t.Fatalf("%d page faults writing a touched slice, %d writing a fresh one", touched, untouched)
	}
}
