package obbench

import (
	"testing"

	"github.com/bcx-exchange/bcx/pkg/orderbook"
)

// Benchmark runs a workload (standard or adds) as a Go benchmark: the book is
// prefilled outside the timer, commands are generated in chunks outside it,
// and only their execution is timed. pkg/orderbook's and this package's
// benchmarks both call it.
func Benchmark(b *testing.B, mix string) {
	w, err := NewWorkload(mix, 1)
	if err != nil {
		b.Fatal(err)
	}
	sink := &tradeCounter{}
	book, err := orderbook.New(w.Config(), sink)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range w.Prefill() {
		Exec(book, &c)
	}
	chunk := make([]Cmd, ChunkSize)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		b.StopTimer()
		cmds := w.Next(chunk[:min(ChunkSize, b.N-done)])
		b.StartTimer()
		for i := range cmds {
			Exec(book, &cmds[i])
		}
		done += len(cmds)
	}
}
