package server

import (
	"bufio"
	"bytes"
	"os"
	"path"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
)

// GCPercent is the garbage collector's target that TuneGC sets: the heap
// may grow to five times what is live before a collection, against twice
// by Go's default. An exchange keeps a large live heap (books, the day's
// client order ids and executions) and allocates per request, so with the
// default it collected about once a second, and each mark phase (40-80 ms
// on 2 cores) took a quarter of the CPU from matching and answers. bench
// grpc --phases paced,paced-stream --no-snapshots, two alternating pairs:
// streams alone at 125k orders/s p99 5.7-6.8 ms against 22-27 ms, both
// kinds at once 18-21 ms against 35 ms; 800 did no better than 400, 200
// half as well.
const GCPercent = 400

// memoryShare is the part of the machine's (or container's) memory the
// collector is asked to keep the heap under, whatever GCPercent allows.
const memoryShare = 0.75

// TuneGC sets the collector for a server process: GCPercent, and a soft
// memory limit of three quarters of the memory available, so that the
// larger target never runs the process out of memory (near the limit the
// collector works harder instead). The GOGC and GOMEMLIMIT environment
// variables, when set, are the operator's choice and are left alone;
// GOGC=off leaves the limit alone too (no collection was asked for). It
// returns what it set, for the log (-1: left alone, or for the limit, the
// memory available unknown).
func TuneGC() (percent int, limit int64) {
	percent, limit = -1, -1
	gogc := os.Getenv("GOGC")
	if gogc == "" {
		debug.SetGCPercent(GCPercent)
		percent = GCPercent
	}
	if os.Getenv("GOMEMLIMIT") == "" && gogc != "off" {
		if avail := availableMemory(os.ReadFile); avail > 0 {
			limit = int64(float64(avail) * memoryShare)
			debug.SetMemoryLimit(limit)
		}
	}
	return percent, limit
}

// availableMemory is the least of the machine's memory and the memory
// limits of the process's cgroup (v2, or v1's memory controller), else 0
// (unknown: not Linux). read reads a file (os.ReadFile but in tests).
func availableMemory(read func(string) ([]byte, error)) int64 {
	avail := int64(0)
	if b, err := read("/proc/meminfo"); err == nil {
		avail = memTotal(b)
	}
	if b, err := read("/proc/self/cgroup"); err == nil {
		for _, f := range cgroupLimitFiles(b) {
			if b, err := read(f); err == nil {
				if n, ok := cgroupMax(b); ok && (avail == 0 || n < avail) {
					avail = n
				}
			}
		}
	}
	return avail
}

// cgroupLimitFiles lists the memory limit files that apply to a process
// whose /proc/self/cgroup is b: for cgroup v2 its cgroup's memory.max and
// its ancestors' (a limit set on a parent, such as a systemd slice, binds
// too), for v1 the memory controller's memory.limit_in_bytes.
func cgroupLimitFiles(b []byte) []string {
	var files []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// hierarchy-ID:controllers:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "/") {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			for p := path.Clean(parts[2]); ; p = path.Dir(p) {
				files = append(files, path.Join("/sys/fs/cgroup", p, "memory.max"))
				if p == "/" {
					break
				}
			}
		case slices.Contains(strings.Split(parts[1], ","), "memory"):
			files = append(files, path.Join("/sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes"))
		}
	}
	return files
}

// memTotal parses MemTotal from /proc/meminfo, in bytes (0 if absent).
func memTotal(meminfo []byte) int64 {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "MemTotal:" && f[2] == "kB" {
			if n, err := strconv.ParseInt(f[1], 10, 64); err == nil && n > 0 {
				return n << 10
			}
		}
	}
	return 0
}

// cgroupMax parses a cgroup memory limit: a byte count, or "max" (v2)
// for none. v1 writes a huge count for none, which the machine's memory
// then undercuts.
func cgroupMax(b []byte) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n, err == nil && n > 0
}
