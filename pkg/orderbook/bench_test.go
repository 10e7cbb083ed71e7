package orderbook_test

import (
	"testing"

	"github.com/bcx-exchange/bcx/pkg/orderbook/obbench"
)

// The standard workload (go run ./cmd/bcx bench orderbook measures it with
// latency percentiles): about 1,000 resting orders over about 750 levels;
// 82% replace, 9% new GTC, 6% cancel, 3% IOC.
func BenchmarkStandard(b *testing.B) { obbench.Benchmark(b, "standard") }

// BenchmarkAdds adds and cancels orders in a book of 50,000.
func BenchmarkAdds(b *testing.B) { obbench.Benchmark(b, "adds") }
