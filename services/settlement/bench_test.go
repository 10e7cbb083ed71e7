package settlement_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/bcx-exchange/bcx/services/settlement"
)

// TestBenchMain runs the benchmark small, on the embedded engine, to keep
// `bcx bench settlement` working.
func TestBenchMain(t *testing.T) {
	var out bytes.Buffer
	if err := settlement.BenchMain([]string{"-trades", "2000", "-entries", "2000", "-runs", "1", "-postgres-url", ""}, &out); err != nil {
		t.Fatal(err)
	}
	var r settlement.BenchResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if r.TradesPerSec <= 0 || r.P99Ms <= 0 || r.ReconSeconds <= 0 || len(r.Runs) != 1 || r.Runs[0].Matched < 1700 {
		t.Fatalf("bench result %s", out.String())
	}
}
