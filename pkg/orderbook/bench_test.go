package orderbook_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/bcx-exchange/bcx/pkg/orderbook"
	"github.com/bcx-exchange/bcx/pkg/orderbook/obbench"
)

// The standard workload (go run ./cmd/bcx bench orderbook measures it with
// latency percentiles): about 1,000 resting orders over about 750 levels;
// 82% replace, 9% new GTC, 6% cancel, 3% IOC.
func BenchmarkStandard(b *testing.B) { obbench.Benchmark(b, "standard") }

// BenchmarkAdds adds and cancels orders in a book of 50,000.
func BenchmarkAdds(b *testing.B) { obbench.Benchmark(b, "adds") }

// BenchmarkResting reads every resting order of a book of a million, their
// pool slots scattered by cancels, with Walk and with AppendResting (what
// a snapshot does with the sequencer stopped): on 4,000 levels, and on 20
// (bench grpc's orders are within ten ticks of the middle).
func BenchmarkResting(b *testing.B) {
	if testing.Short() {
		b.Skip("builds books of a million orders")
	}
	for _, spread := range []int64{2000, 10} {
		book, err := orderbook.New(orderbook.Config{MinPrice: 1, MaxPrice: 10_000, MaxOrders: 1 << 21}, nil)
		if err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		id := int64(0)
		for book.Len() < 1_000_000 {
			id++
			side, price := orderbook.Buy, 3000-rng.Int64N(spread)
			if id%2 == 0 {
				side, price = orderbook.Sell, 3001+rng.Int64N(spread)
			}
			book.Submit(orderbook.Order{ID: id, Participant: 1 + id%16, User: uint64(id), Side: side, TIF: orderbook.GTC, Price: price, Qty: 1 + rng.Int64N(9)})
			if rng.IntN(3) == 0 {
				book.Cancel(1 + rng.Int64N(id))
			}
		}
		b.Run(fmt.Sprintf("levels=%d/walk", 2*spread), func(b *testing.B) {
			var dst []orderbook.Resting
			for b.Loop() {
				dst = dst[:0]
				book.Walk(func(st orderbook.OrderState) bool {
					dst = append(dst, orderbook.Resting{User: st.User, Visible: st.Visible, OrigQty: st.OrigQty, FilledQty: st.FilledQty, CancelledQty: st.CancelledQty})
					return true
				})
			}
		})
		b.Run(fmt.Sprintf("levels=%d/append", 2*spread), func(b *testing.B) {
			var dst []orderbook.Resting
			for b.Loop() {
				dst = book.AppendResting(dst[:0])
			}
		})
	}
}
