package journal

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// A durable acknowledgement waits for an fdatasync, so the disk's sync
// latency bounds order latency from below; and since every order that
// arrives during a slow sync waits for it, a rare slow sync reaches far
// more orders than its share of syncs. The journal keeps a histogram of
// its batch syncs so that benchmarks can report both views.

// syncSubBits sub-buckets split each power of two: a bucket's upper bound
// is at most 12.5% above any value in it.
const (
	syncSubBits  = 3
	syncBuckets  = (64 - syncSubBits + 1) << syncSubBits // up to 2^64 ns
	syncSubCount = 1 << syncSubBits
)

// syncBucket returns the bucket of a duration in nanoseconds.
func syncBucket(ns uint64) int {
	if ns < syncSubCount {
		return int(ns)
	}
	e := bits.Len64(ns) - 1 // ns in [2^e, 2^(e+1))
	sub := (ns >> (e - syncSubBits)) & (syncSubCount - 1)
	return (e-syncSubBits+1)<<syncSubBits | int(sub)
}

// syncBucketHigh is the largest duration in bucket i.
func syncBucketHigh(i int) uint64 {
	if i < syncSubCount {
		return uint64(i)
	}
	e := i>>syncSubBits + syncSubBits - 1
	sub := uint64(i & (syncSubCount - 1))
	return (1<<e | sub<<(e-syncSubBits)) + 1<<(e-syncSubBits) - 1
}

// syncHist counts batch syncs by duration (written by the flusher, read by
// Stats; each counter is atomic).
type syncHist struct {
	n   [syncBuckets]atomic.Uint64
	max atomic.Uint64
}

func (h *syncHist) add(d time.Duration) {
	ns := uint64(max(d, 0))
	h.n[syncBucket(ns)].Add(1)
	for {
		m := h.max.Load()
		if ns <= m || h.max.CompareAndSwap(m, ns) {
			return
		}
	}
}

func (h *syncHist) snapshot() SyncHistogram {
	var s SyncHistogram
	for i := range h.n {
		s.counts[i] = h.n[i].Load()
	}
	s.max = h.max.Load()
	return s
}

// SyncHistogram is a copy of the journal's batch sync durations, to about
// 12.5%.
type SyncHistogram struct {
	counts [syncBuckets]uint64
	max    uint64
}

// Count is the number of syncs.
func (s SyncHistogram) Count() uint64 {
	var n uint64
	for _, c := range s.counts {
		n += c
	}
	return n
}

// Sub returns the syncs of s that are not in earlier, a snapshot taken
// before it (Max stays s's: the maximum of a difference is not known).
func (s SyncHistogram) Sub(earlier SyncHistogram) SyncHistogram {
	for i := range s.counts {
		s.counts[i] -= earlier.counts[i]
	}
	return s
}

// Max is the longest sync.
func (s SyncHistogram) Max() time.Duration { return time.Duration(s.max) }

// Quantile returns the duration that a fraction q of syncs took at most
// (the upper bound of its bucket; 0 with no syncs).
func (s SyncHistogram) Quantile(q float64) time.Duration {
	return s.quantile(q, func(i int, c uint64) float64 { return float64(c) })
}

// TimeQuantile returns the duration d such that a fraction q of all time
// spent syncing was spent in syncs no longer than d. An order's wait is
// about proportional to the sync it lands on, so this is near the sync
// latency that a fraction 1-q of orders see, where Quantile counts syncs.
func (s SyncHistogram) TimeQuantile(q float64) time.Duration {
	return s.quantile(q, func(i int, c uint64) float64 { return float64(c) * float64(syncBucketHigh(i)) })
}

func (s SyncHistogram) quantile(q float64, weight func(i int, c uint64) float64) time.Duration {
	var total float64
	for i, c := range s.counts {
		total += weight(i, c)
	}
	if total == 0 {
		return 0
	}
	var acc float64
	for i, c := range s.counts {
		if acc += weight(i, c); acc >= q*total {
			return time.Duration(min(syncBucketHigh(i), s.max))
		}
	}
	return time.Duration(s.max)
}
