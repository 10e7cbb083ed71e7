package obbench

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"

	"github.com/bcx-exchange/bcx/pkg/orderbook"
)

// Result is what one run measured. It is printed as one JSON line.
type Result struct {
	Workload    string  `json:"workload"`
	Ops         int64   `json:"ops"`
	OpsPerSec   int64   `json:"ops_per_sec"`
	P50Ns       int64   `json:"p50_ns"`
	P99Ns       int64   `json:"p99_ns"`
	P999Ns      int64   `json:"p999_ns"`
	P9999Ns     int64   `json:"p9999_ns"`
	AllocsPerOp float64 `json:"allocs_per_op"`
	Trades      int64   `json:"trades"`
	// NoopP50Ns and NoopP9999Ns time fixed arithmetic of about one operation's
	// length, sampled the same way right after the run: the floor the machine
	// itself (clock, interrupts, the hypervisor) puts under p9999_ns.
	NoopP50Ns   int64 `json:"noop_p50_ns"`
	NoopP9999Ns int64 `json:"noop_p9999_ns"`
}

const (
	// ChunkSize commands are generated, then executed on the timed book.
	ChunkSize = 4096
	// SampleEvery is how often an operation is timed on its own for the
	// latency percentiles.
	SampleEvery = 64
)

// DefaultOps is the number of measured operations per mix.
var DefaultOps = map[string]int64{"standard": 20_000_000, "adds": 20_000_000}

// tradeCounter is the timed book's sink: it counts fills, as a consumer
// that looks at every event would.
type tradeCounter struct{ trades int64 }

func (t *tradeCounter) OnEvent(e *orderbook.Event) {
	if e.Kind == orderbook.EventFill {
		t.trades++
	}
}

// Run measures ops operations of the named mix.
//
// The workload generates commands in chunks of ChunkSize by running them on
// its own shadow book; the chunk is then executed on the timed book, so the
// timed loop contains only book operations and the sink. Throughput is ops
// divided by the summed wall time of the chunk loops. Reading the clock
// costs about as much as a book operation here, so latency is sampled:
// every SampleEvery-th operation is timed on its own between two monotonic
// clock reads, and the median cost of an empty pair of reads, measured
// before the run, is subtracted. The sampled reads are inside the
// throughput time, so throughput includes their cost. allocs_per_op is the
// growth of runtime.MemStats.Mallocs over the whole loop, generation
// included, divided by ops.
func Run(mix string, seed uint64, ops int64) (Result, error) {
	if ops <= 0 {
		return Result{}, fmt.Errorf("obbench: ops must be > 0, got %d", ops)
	}
	w, err := NewWorkload(mix, seed)
	if err != nil {
		return Result{}, err
	}
	sink := &tradeCounter{}
	book, err := orderbook.New(w.Config(), sink)
	if err != nil {
		return Result{}, err
	}
	for _, c := range w.Prefill() {
		Exec(book, &c)
	}
	sink.trades = 0
	chunk := make([]Cmd, ChunkSize)
	samples := make([]int64, ops/SampleEvery+ChunkSize)
	for i := range samples {
		samples[i] = 1 // fault the pages in now, not while timing
	}
	ns := 0
	base := time.Now()
	overhead := clockOverhead(base)

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var total time.Duration
	for done := int64(0); done < ops; {
		cmds := w.Next(chunk[:min(ChunkSize, ops-done)])
		start := time.Since(base)
		for i := range cmds {
			if i%SampleEvery != 0 {
				Exec(book, &cmds[i])
				continue
			}
			t0 := time.Since(base)
			Exec(book, &cmds[i])
			samples[ns] = int64(time.Since(base) - t0)
			ns++
		}
		total += time.Since(base) - start
		done += int64(len(cmds))
	}
	runtime.ReadMemStats(&after)

	samples = samples[:ns]
	noop := noopTail(base, ns)
	slices.Sort(samples)
	pct := func(q float64) int64 {
		v := samples[int(q*float64(len(samples)-1))] - overhead
		return max(v, 0)
	}
	return Result{
		Workload:    mix,
		Ops:         ops,
		OpsPerSec:   int64(float64(ops) / total.Seconds()),
		P50Ns:       pct(0.50),
		P99Ns:       pct(0.99),
		P999Ns:      pct(0.999),
		P9999Ns:     pct(0.9999),
		AllocsPerOp: float64(after.Mallocs-before.Mallocs) / float64(ops),
		Trades:      sink.trades,
		NoopP50Ns:   max(0, noop[len(noop)/2]-overhead),
		NoopP9999Ns: max(0, noop[int(0.9999*float64(len(noop)-1))]-overhead),
	}, nil
}

// noopSink keeps the spin in noopTail from being optimized away.
var noopSink uint64

// noopTail samples a timed section that does fixed arithmetic of about one
// book operation's duration (no memory traffic, no branches that depend on
// data) n times, spinning between samples for about as long as the run spends
// between its samples, and returns its p99.99 above the clock overhead.
func noopTail(base time.Time, n int) []int64 {
	d := make([]int64, n)
	x := uint64(1)
	for i := range d {
		t0 := time.Since(base)
		for j := 0; j < 40; j++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
		d[i] = int64(time.Since(base) - t0)
		for j := 0; j < SampleEvery*8; j++ { // ~SampleEvery cheap book operations' worth of work
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	noopSink = x
	slices.Sort(d)
	return d
}

// clockOverhead is the median duration measured by two back-to-back clock
// reads.
func clockOverhead(base time.Time) int64 {
	d := make([]int64, 20_001)
	for i := range d {
		t0 := time.Since(base)
		d[i] = int64(time.Since(base) - t0)
	}
	slices.Sort(d)
	return d[len(d)/2]
}

// Main runs one benchmark as `bcx bench orderbook` does and prints one JSON
// line to stdout. Flags: --seed (default 1), --mix standard|adds (default
// standard), --ops (default DefaultOps of the mix).
func Main(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("orderbook", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	seed := fs.Uint64("seed", 1, "workload seed")
	mix := fs.String("mix", "standard", "workload: standard or adds")
	ops := fs.Int64("ops", 0, "measured operations (0: the mix's default)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("obbench: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("obbench: unexpected arguments %q", fs.Args())
	}
	n := *ops
	if n == 0 {
		def, ok := DefaultOps[*mix]
		if !ok {
			return fmt.Errorf("obbench: unknown mix %q (want standard or adds)", *mix)
		}
		n = def
	}
	res, err := Run(*mix, *seed, n)
	if err != nil {
		return err
	}
	line, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", line)
	return err
}
