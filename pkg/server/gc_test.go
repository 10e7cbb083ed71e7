package server

import (
	"io/fs"
	"math"
	"os"
	"runtime/debug"
	"slices"
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
	if avail := availableMemory(os.ReadFile); avail > 0 {
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

	// GOGC=off asks for no collection: no limit either.
	t.Setenv("GOGC", "off")
	t.Setenv("GOMEMLIMIT", "")
	debug.SetMemoryLimit(math.MaxInt64)
	if percent, limit := TuneGC(); percent != -1 || limit != -1 || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Fatalf("TuneGC with GOGC=off: set %d, %d; want the collector left alone", percent, limit)
	}
}

func TestCgroupLimitFiles(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"v2 nested", "0::/system.slice/bcx.service\n", []string{
			"/sys/fs/cgroup/system.slice/bcx.service/memory.max", "/sys/fs/cgroup/system.slice/memory.max", "/sys/fs/cgroup/memory.max"}},
		{"v2 namespaced", "0::/\n", []string{"/sys/fs/cgroup/memory.max"}},
		{"v1", "5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n1:name=systemd:/docker/abc\n",
			[]string{"/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes"}},
		{"hybrid", "4:memory:/a\n0::/b\n", []string{"/sys/fs/cgroup/memory/a/memory.limit_in_bytes", "/sys/fs/cgroup/b/memory.max", "/sys/fs/cgroup/memory.max"}},
		{"none", "", nil},
	} {
		if got := cgroupLimitFiles([]byte(tc.in)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: cgroupLimitFiles = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestAvailableMemory(t *testing.T) {
	const gib = 1 << 30
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			if s, ok := m[name]; ok {
				return []byte(s), nil
			}
			return nil, fs.ErrNotExist
		}
	}
	meminfo := "MemTotal:       25165824 kB\n" // 24 GiB
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  int64
	}{
		{"machine", map[string]string{"/proc/meminfo": meminfo}, 24 * gib},
		{"a parent's limit binds", map[string]string{"/proc/meminfo": meminfo, "/proc/self/cgroup": "0::/a/b\n",
			"/sys/fs/cgroup/a/b/memory.max": "max\n", "/sys/fs/cgroup/a/memory.max": "8589934592\n"}, 8 * gib},
		{"v1 unlimited", map[string]string{"/proc/meminfo": meminfo, "/proc/self/cgroup": "3:memory:/x\n",
			"/sys/fs/cgroup/memory/x/memory.limit_in_bytes": "9223372036854771712\n"}, 24 * gib},
		{"v1 limited", map[string]string{"/proc/meminfo": meminfo, "/proc/self/cgroup": "3:memory:/x\n",
			"/sys/fs/cgroup/memory/x/memory.limit_in_bytes": "2147483648\n"}, 2 * gib},
		{"limit, no meminfo", map[string]string{"/proc/self/cgroup": "0::/\n", "/sys/fs/cgroup/memory.max": "1073741824\n"}, gib},
		{"nothing", map[string]string{}, 0},
	} {
		if got := availableMemory(files(tc.files)); got != tc.want {
			t.Errorf("%s: availableMemory = %d, want %d", tc.name, got, tc.want)
		}
	}
}
