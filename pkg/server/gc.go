package server

import (
	"bufio"
	"bytes"
	"os"
	"runtime/debug"
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
// variables, when set, are the operator's choice and are left alone. It
// returns what it set, for the log (-1: left alone).
func TuneGC() (percent int, limit int64) {
	percent, limit = -1, -1
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
		percent = GCPercent
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		if avail := availableMemory(); avail > 0 {
			limit = int64(float64(avail) * memoryShare)
			debug.SetMemoryLimit(limit)
		}
	}
	return percent, limit
}

// availableMemory is the container's memory limit (cgroup v2), else the
// machine's memory, else 0 (unknown: not Linux).
func availableMemory() int64 {
	total := int64(0)
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		total = memTotal(b)
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if n, ok := cgroupMax(b); ok && (total == 0 || n < total) {
			return n
		}
	}
	return total
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

// cgroupMax parses a cgroup v2 memory.max: a byte count, or "max" for
// none.
func cgroupMax(b []byte) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n, err == nil && n > 0
}
