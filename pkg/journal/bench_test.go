package journal

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// BenchmarkAppendSync is the group-commit path with real fdatasync: one op is one
// batch of `batch` records of 100 bytes followed by Sync.
func BenchmarkAppendSync(b *testing.B) {
	for _, batch := range []int{64, 256, 1024, 4096} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			benchBatches(b, batch, false, false)
		})
	}
}

// BenchmarkAppendSyncAsync pipelines: the next batch is appended while the previous
// one is being synced.
func BenchmarkAppendSyncAsync(b *testing.B) {
	for _, batch := range []int{64, 1024, 4096} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			benchBatches(b, batch, true, false)
		})
	}
}

// BenchmarkAppendNoSync measures the CPU cost of encoding and writing alone
// (Options.NoSync: nothing is durable).
func BenchmarkAppendNoSync(b *testing.B) {
	benchBatches(b, 1024, false, true)
}

func benchBatches(b *testing.B, batch int, async, noSync bool) {
	j, err := Open(b.TempDir(), Options{NoSync: noSync})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	payload := make([]byte, 100)
	for i := range payload {
		payload[i] = byte(i)
	}
	before := j.Stats()
	b.SetBytes(int64(batch * (recHeaderSize + len(payload))))
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		for range batch {
			if _, err := j.Append(1, 1, payload); err != nil {
				b.Fatal(err)
			}
		}
		if async {
			_, err = j.SyncAsync()
		} else {
			err = j.Sync()
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := j.Sync(); err != nil {
		b.Fatal(err)
	}
	sec := time.Since(start).Seconds()
	st := j.Stats()
	b.ReportMetric(float64(st.Records-before.Records)/sec, "records/s")
	b.ReportMetric(float64(st.Fsyncs-before.Fsyncs)/sec, "fsyncs/s")
	b.ReportMetric(0, "ns/op") // per-batch time is misleading next to records/s
}

// BenchmarkFdatasync is the floor under every commit on this machine: overwrite one
// 4 KiB block and fdatasync it, and append 4 KiB and fdatasync it.
func BenchmarkFdatasync(b *testing.B) {
	for _, appendMode := range []bool{false, true} {
		b.Run(map[bool]string{false: "overwrite", true: "append"}[appendMode], func(b *testing.B) {
			f, err := os.Create(b.TempDir() + "/f")
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, 4096)
			var off int64
			for b.Loop() {
				if _, err := f.WriteAt(buf, off); err != nil {
					b.Fatal(err)
				}
				if appendMode {
					off += int64(len(buf))
				}
				if err := datasync(f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReplay reads records back through a Reader, as recovery and subscribers do.
func BenchmarkReplay(b *testing.B) {
	dir := b.TempDir()
	j, err := Open(dir, Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	payload := make([]byte, 100)
	const n = 200000
	for range n / 1000 {
		for range 1000 {
			j.Append(1, 1, payload)
		}
		j.Sync()
	}
	b.SetBytes(n * (recHeaderSize + 100))
	b.ReportAllocs()
	for b.Loop() {
		r, err := j.NewReader(1)
		if err != nil {
			b.Fatal(err)
		}
		for range n {
			if _, err := r.Next(); err != nil {
				b.Fatal(err)
			}
		}
		r.Close()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkOpen is recovery's verification scan: every record of every segment.
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	j, err := Open(dir, Options{NoSync: true, SegmentSize: 16 << 20})
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 100)
	const n = 500000
	for range n / 1000 {
		for range 1000 {
			j.Append(1, 1, payload)
		}
		j.Sync()
	}
	j.Close()
	b.SetBytes(n * (recHeaderSize + 100))
	for b.Loop() {
		j, err := Open(dir, Options{NoSync: true, SegmentSize: 16 << 20})
		if err != nil {
			b.Fatal(err)
		}
		j.Close()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkSyncBesideSnapshot times the journal's batch syncs while 70 MB
// snapshots are saved back to back (a 0.7 s pause between them), with the
// snapshot written back whole at its fsync or spread in chunks. Run it
// alone: go test -run X -bench SyncBesideSnapshot -benchtime 8s ./pkg/journal/
func BenchmarkSyncBesideSnapshot(b *testing.B) {
	if testing.Short() {
		b.Skip("writes hundreds of MB")
	}
	payload := make([]byte, 200)
	snap := make([]byte, 70<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range snap {
		snap[i] = byte(rng.Uint32())
	}
	for _, spread := range []bool{false, true} {
		name := "whole"
		if spread {
			name = "spread"
		}
		b.Run(name, func(b *testing.B) {
			spreadSnapshots = spread
			defer func() { spreadSnapshots = true }()
			j := openT(b, b.TempDir(), Options{})
			defer j.Close()
			stop, done := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(done)
				for seq := uint64(1); ; seq++ {
					select {
					case <-stop:
						return
					case <-time.After(700 * time.Millisecond):
					}
					if err := j.SaveSnapshot(seq, func(w io.Writer) error {
						_, err := w.Write(snap)
						return err
					}); err != nil {
						b.Error(err)
						return
					}
				}
			}()
			before := j.Stats().Syncs
			for b.Loop() {
				for range 50 {
					j.Append(1, 1, payload)
				}
				if err := j.Sync(); err != nil {
					b.Fatal(err)
				}
			}
			close(stop)
			<-done
			h := j.Stats().Syncs.Sub(before)
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			b.ReportMetric(ms(h.Quantile(0.5)), "p50-ms")
			b.ReportMetric(ms(h.Quantile(0.99)), "p99-ms")
			b.ReportMetric(ms(h.Quantile(0.999)), "p99.9-ms")
			b.ReportMetric(ms(h.Max()), "max-ms")
			b.ReportMetric(ms(h.TimeQuantile(0.99)), "time-p99-ms")
		})
	}
}
