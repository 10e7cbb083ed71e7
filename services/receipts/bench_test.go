package receipts_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/bcx-exchange/bcx/services/receipts"
)

// The benchmark checks its own outcome (every trade delivered, no breaks), so
// running it small is a test of the whole issue-deposit-trade-deliver path.
func TestBenchMainSmall(t *testing.T) {
	var out bytes.Buffer
	if err := receipts.BenchMain([]string{"-receipts", "40", "-workers", "4", "-batch", "16"}, &out); err != nil {
		t.Fatal(err)
	}
	var res receipts.BenchResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	// 40 issues, 40 deposits, 120 partial deliveries (3 events each... 2 chain
	// events), 40 whole transfers (1 event each).
	if res.Transfers != 160 || res.IssuedPerSec <= 0 || res.TransfersPerSec <= 0 || res.P99Ms <= 0 {
		t.Fatalf("result %+v", res)
	}
	if want := int64(40 + 40 + 120*2 + 40); res.ChainEvents != want {
		t.Fatalf("chain has %d events, want %d", res.ChainEvents, want)
	}
}
