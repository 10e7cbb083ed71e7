package latency

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	// Every value lies in its bucket, within 12.5% of the bucket's top, and
	// buckets are contiguous and ascending.
	prevHigh := uint64(0)
	for i := range buckets {
		hi := bucketHigh(i)
		if i > 0 && hi <= prevHigh {
			t.Fatalf("bucket %d high %d not above bucket %d's %d", i, hi, i-1, prevHigh)
		}
		if i > 0 && bucket(prevHigh+1) != i {
			t.Fatalf("bucket of %d = %d, want %d", prevHigh+1, bucket(prevHigh+1), i)
		}
		if bucket(hi) != i {
			t.Fatalf("bucket of %d (high of %d) = %d", hi, i, bucket(hi))
		}
		prevHigh = hi
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		v := rng.Uint64N(1 << uint(rng.IntN(50)+1))
		hi := bucketHigh(bucket(v))
		if hi < v || float64(hi) > float64(v)*1.125+7 {
			t.Fatalf("value %d in bucket with high %d", v, hi)
		}
	}
}

func TestQuantiles(t *testing.T) {
	var h Recorder
	// 990 syncs of 200 µs and 10 of 10 ms: the 99th percentile sync is
	// fast, but a third of the time is spent in slow ones.
	for range 990 {
		h.Add(200 * time.Microsecond)
	}
	before := h.Snapshot()
	for range 10 {
		h.Add(10 * time.Millisecond)
	}
	s := h.Snapshot()
	near := func(got, want time.Duration) bool { return got >= want && float64(got) <= float64(want)*1.125 }
	if got := s.Quantile(0.5); !near(got, 200*time.Microsecond) {
		t.Errorf("p50 = %v", got)
	}
	if got := s.Quantile(0.99); !near(got, 200*time.Microsecond) {
		t.Errorf("p99 = %v, want ~200µs", got)
	}
	if got := s.Quantile(0.995); got != 10*time.Millisecond {
		t.Errorf("p99.5 = %v, want 10ms (clamped to the max)", got)
	}
	if got := s.TimeQuantile(0.5); !near(got, 200*time.Microsecond) {
		t.Errorf("time p50 = %v", got)
	}
	if got := s.TimeQuantile(0.99); got != 10*time.Millisecond {
		t.Errorf("time p99 = %v, want 10ms", got)
	}
	if s.Count() != 1000 || s.Max() != 10*time.Millisecond {
		t.Errorf("count %d max %v", s.Count(), s.Max())
	}
	d := s.Sub(before)
	if d.Count() != 10 || d.Quantile(0.01) != 10*time.Millisecond {
		t.Errorf("difference: count %d p1 %v", d.Count(), d.Quantile(0.01))
	}
	// A difference's maximum is its own, not the Recorder's.
	if d := before.Sub(Histogram{}); !near(d.Max(), 200*time.Microsecond) {
		t.Errorf("max of the first 990 = %v, want ~200µs", d.Max())
	}
	var late Recorder
	late.Add(25 * time.Millisecond)
	mark := late.Snapshot()
	late.Add(300 * time.Microsecond)
	if got := late.Snapshot().Sub(mark); !near(got.Max(), 300*time.Microsecond) || got.Count() != 1 {
		t.Errorf("after a slow one, then a fast one: count %d max %v, want 1, ~300µs", got.Count(), got.Max())
	}
	if (Histogram{}).Sub(Histogram{}).Max() != 0 {
		t.Error("an empty difference has a maximum")
	}
	if got := s.Quantile(0); !near(got, 200*time.Microsecond) {
		t.Errorf("p0 = %v, want the smallest, ~200µs", got)
	}
	if (Histogram{}).Quantile(0.99) != 0 {
		t.Error("empty histogram has a quantile")
	}
}
