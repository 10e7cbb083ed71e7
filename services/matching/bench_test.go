package matching

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestBenchMains runs each benchmark entry point on a tiny workload and
// checks it prints one JSON line with its figures. BCX_MATCHING_BENCH runs
// one for real instead, e.g. BCX_MATCHING_BENCH="matching --ops 1000000".
func TestBenchMains(t *testing.T) {
	if args := strings.Fields(os.Getenv("BCX_MATCHING_BENCH")); len(args) > 0 {
		mains := map[string]func([]string, *bytes.Buffer) error{
			"matching": func(a []string, b *bytes.Buffer) error { return BenchMatchingMain(a, b) },
			"recovery": func(a []string, b *bytes.Buffer) error { return BenchRecoveryMain(a, b) },
			"grpc":     func(a []string, b *bytes.Buffer) error { return BenchGRPCMain(a, b) },
		}
		var out bytes.Buffer
		if err := mains[args[0]](args[1:], &out); err != nil {
			t.Fatal(err)
		}
		t.Log(strings.TrimSpace(out.String()))
		return
	}
	if testing.Short() {
		t.Skip("runs the benchmarks on a small scale")
	}
	for _, c := range []struct {
		name string
		run  func([]string, *bytes.Buffer) error
		args []string
		keys []string
	}{
		{"matching", func(a []string, b *bytes.Buffer) error { return BenchMatchingMain(a, b) }, []string{"--ops", "30000", "--batch", "1024"},
			[]string{"cmds_per_sec", "p50_us", "p99_us", "fsyncs"}},
		{"recovery", func(a []string, b *bytes.Buffer) error { return BenchRecoveryMain(a, b) }, []string{"--ops", "30000", "--snapshot-every", "10000"},
			[]string{"recover_seconds"}},
		{"grpc", func(a []string, b *bytes.Buffer) error { return BenchGRPCMain(a, b) }, []string{"--duration", "1s"},
			[]string{"stream_orders_per_sec", "unary_orders_per_sec", "p50_ms", "p99_ms"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := c.run(c.args, &out); err != nil {
				t.Fatal(err)
			}
			if strings.Count(out.String(), "\n") != 1 {
				t.Fatalf("want one line, got %q", out.String())
			}
			var m map[string]any
			if err := json.Unmarshal(out.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
			total := 0.0
			for _, k := range c.keys {
				v, ok := m[k].(float64)
				if !ok || v < 0 {
					t.Fatalf("%s = %v in %s", k, m[k], out.String())
				}
				total += v
			}
			// Something must have been measured (a slow machine, or the race
			// detector, may leave one phase of a short run at zero).
			if total == 0 {
				t.Fatalf("nothing measured: %s", out.String())
			}
		})
	}
}
