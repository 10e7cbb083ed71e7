// Package latency keeps histograms of durations: log-linear buckets to
// 12.5%, recorded without locks, copied and subtracted cheaply so that a
// benchmark can take the part of a run it measures.
package latency

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// subBits sub-buckets split each power of two: a bucket's upper bound is
// at most 12.5% above any value in it.
const (
	subBits  = 3
	buckets  = (64 - subBits + 1) << subBits // up to 2^64 ns
	subCount = 1 << subBits
)

// bucket returns the bucket of a duration in nanoseconds.
func bucket(ns uint64) int {
	if ns < subCount {
		return int(ns)
	}
	e := bits.Len64(ns) - 1 // ns in [2^e, 2^(e+1))
	sub := (ns >> (e - subBits)) & (subCount - 1)
	return (e-subBits+1)<<subBits | int(sub)
}

// bucketHigh is the largest duration in bucket i.
func bucketHigh(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	e := i>>subBits + subBits - 1
	sub := uint64(i & (subCount - 1))
	return (1<<e | sub<<(e-subBits)) + 1<<(e-subBits) - 1
}

// Recorder counts durations. Add and Snapshot may run concurrently.
type Recorder struct {
	n   [buckets]atomic.Uint64
	max atomic.Uint64
}

// Add records one duration (negative counts as 0).
func (h *Recorder) Add(d time.Duration) {
	ns := uint64(max(d, 0))
	// The maximum first: a Snapshot that sees the count then sees it.
	for {
		m := h.max.Load()
		if ns <= m || h.max.CompareAndSwap(m, ns) {
			break
		}
	}
	h.n[bucket(ns)].Add(1)
}

// Snapshot returns a copy of what was recorded so far.
func (h *Recorder) Snapshot() Histogram {
	var s Histogram
	for i := range h.n {
		s.counts[i] = h.n[i].Load()
	}
	s.max = h.max.Load()
	return s
}

// Histogram is a copy of a Recorder's counts.
type Histogram struct {
	counts [buckets]uint64
	max    uint64
}

// Count is the number of durations.
func (s Histogram) Count() uint64 {
	var n uint64
	for _, c := range s.counts {
		n += c
	}
	return n
}

// Sub returns the durations of s that are not in earlier, a snapshot of
// the same Recorder taken before it. Its Max is the top of its highest
// bucket, clamped to s's (the exact maximum of a difference is not known).
func (s Histogram) Sub(earlier Histogram) Histogram {
	top := -1
	for i := range s.counts {
		if s.counts[i] -= earlier.counts[i]; s.counts[i] > 0 {
			top = i
		}
	}
	if top < 0 {
		s.max = 0
	} else {
		s.max = min(bucketHigh(top), s.max)
	}
	return s
}

// Max is the longest duration.
func (s Histogram) Max() time.Duration { return time.Duration(s.max) }

// Quantile returns the duration that a fraction q of the durations are at
// most (the upper bound of its bucket, clamped to Max; 0 when empty).
func (s Histogram) Quantile(q float64) time.Duration {
	return s.quantile(q, func(i int, c uint64) float64 { return float64(c) })
}

// TimeQuantile returns the duration d such that a fraction q of the total
// time was spent in durations no longer than d. For an fsync that every
// order arriving meanwhile waits for, the orders a sync holds up grow with
// its length: this is then near the sync latency that a fraction 1-q of
// orders see, where Quantile counts syncs.
func (s Histogram) TimeQuantile(q float64) time.Duration {
	return s.quantile(q, func(i int, c uint64) float64 { return float64(c) * float64(bucketHigh(i)) })
}

func (s Histogram) quantile(q float64, weight func(i int, c uint64) float64) time.Duration {
	var total float64
	for i, c := range s.counts {
		total += weight(i, c)
	}
	if total == 0 {
		return 0
	}
	var acc float64
	for i, c := range s.counts {
		if acc += weight(i, c); c > 0 && acc >= q*total {
			return time.Duration(min(bucketHigh(i), s.max))
		}
	}
	return time.Duration(s.max)
}
