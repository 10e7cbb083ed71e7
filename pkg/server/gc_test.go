package server

import (
	"runtime/debug"
	"testing"
)

func TestMemTotal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"MemTotal:       24532004 kB\nMemFree:        1000 kB\n", 24532004 << 10},
		{"MemFree:        1000 kB\nMemTotal: 2048 kB\n", 2048 << 10},
		{"MemFree:        1000 kB\n", 0},
		{"MemTotal: lots kB\n", 0},
		{"MemTotal: 2048 MB\n", 0}, // not the unit the kernel writes
		{"", 0},
	} {
		if got := memTotal([]byte(tc.in)); got != tc.want {
			t.Errorf("memTotal(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestCgroupMax(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"max\n", 0, false},
		{"1073741824\n", 1 << 30, true},
		{"0\n", 0, false},
		{"", 0, false},
	} {
		if got, ok := cgroupMax([]byte(tc.in)); got != tc.want || ok != tc.ok {
			t.Errorf("cgroupMax(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// TestTuneGC: the defaults are set, and the operator's GOGC and GOMEMLIMIT
// win over them. (Not parallel: it changes the process's collector.)
func TestTuneGC(t *testing.T) {
	prevPercent := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(prevPercent)
		debug.SetMemoryLimit(prevLimit)
	})

	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	percent, limit := TuneGC()
	if percent != GCPercent || debug.SetGCPercent(100) != GCPercent {
		t.Fatalf("TuneGC set percent %d, want %d", percent, GCPercent)
	}
	if avail := availableMemory(); avail > 0 {
		want := int64(float64(avail) * memoryShare)
		if limit != want || debug.SetMemoryLimit(-1) != want {
			t.Fatalf("TuneGC set limit %d, want %d (of %d available)", limit, want, avail)
		}
	}

	t.Setenv("GOGC", "150")
	t.Setenv("GOMEMLIMIT", "1GiB")
	debug.SetGCPercent(150)
	debug.SetMemoryLimit(1 << 30)
	if percent, limit := TuneGC(); percent != -1 || limit != -1 {
		t.Fatalf("TuneGC with GOGC and GOMEMLIMIT set: set %d, %d; want both left alone", percent, limit)
	}
	if p, l := debug.SetGCPercent(150), debug.SetMemoryLimit(1<<30); p != 150 || l != 1<<30 {
		t.Fatalf("after TuneGC: percent %d, limit %d; want the operator's 150 and 1 GiB", p, l)
	}
}
