package obbench

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// BenchmarkStandard is the standard workload: about 1,000 resting orders
// over about 750 levels; 82% replace, 9% new GTC, 6% cancel, 3% IOC.
func BenchmarkStandard(b *testing.B) { Benchmark(b, "standard") }

// BenchmarkAdds adds and cancels orders in a book of 50,000.
func BenchmarkAdds(b *testing.B) { Benchmark(b, "adds") }

// TestWorkloadShape checks that the generators produce what their names
// promise: the command mix and the depth of the book.
func TestWorkloadShape(t *testing.T) {
	cases := []struct {
		mix                  string
		ops                  int
		orders, levels       [2]int
		replace, add, cancel [2]float64
	}{
		{"standard", 400_000, [2]int{850, 1150}, [2]int{650, 850}, [2]float64{.81, .83}, [2]float64{.085, .095}, [2]float64{.055, .065}},
		{"adds", 200_000, [2]int{45_000, 55_000}, [2]int{4500, 5001}, [2]float64{0, 0}, [2]float64{.45, .55}, [2]float64{.45, .55}},
	}
	for _, c := range cases {
		w, err := NewWorkload(c.mix, 3)
		if err != nil {
			t.Fatal(err)
		}
		w.Prefill()
		count := map[Op]int{}
		chunk := make([]Cmd, ChunkSize)
		for done := 0; done < c.ops; done += ChunkSize {
			for _, cmd := range w.Next(chunk) {
				count[cmd.Op]++
			}
		}
		n := float64(count[OpNew] + count[OpReplace] + count[OpCancel] + count[OpIOC])
		in := func(v float64, r [2]float64) bool { return v >= r[0] && v <= r[1] }
		if !in(float64(count[OpReplace])/n, c.replace) || !in(float64(count[OpNew])/n, c.add) || !in(float64(count[OpCancel])/n, c.cancel) {
			t.Errorf("%s: mix %v", c.mix, count)
		}
		if c.mix == "standard" && !in(float64(count[OpIOC])/n, [2]float64{.025, .035}) {
			t.Errorf("%s: IOC share %v", c.mix, count)
		}
		orders, levels := w.Shape()
		t.Logf("%s: %d orders on %d levels, mix %v", c.mix, orders, levels, count)
		if orders < c.orders[0] || orders > c.orders[1] || levels < c.levels[0] || levels > c.levels[1] {
			t.Errorf("%s: %d orders on %d levels", c.mix, orders, levels)
		}
	}
}

// TestMainJSON runs Main briefly and checks its one line of output.
func TestMainJSON(t *testing.T) {
	for _, mix := range Mixes {
		var out bytes.Buffer
		if err := Main([]string{"--mix", mix, "--ops", "100000", "--seed", "7"}, &out); err != nil {
			t.Fatal(err)
		}
		if strings.Count(out.String(), "\n") != 1 {
			t.Fatalf("want one line, got %q", out.String())
		}
		var fields map[string]any
		if err := json.Unmarshal(out.Bytes(), &fields); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"workload", "ops", "ops_per_sec", "p50_ns", "p99_ns", "p999_ns", "p9999_ns", "allocs_per_op", "trades", "noop_p50_ns", "noop_p9999_ns"} {
			if _, ok := fields[k]; !ok {
				t.Errorf("%s: field %q missing in %s", mix, k, out.String())
			}
		}
		if len(fields) != 11 {
			t.Errorf("%s: want 11 fields, got %s", mix, out.String())
		}
		var res Result
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatal(err)
		}
		if res.Workload != mix || res.Ops != 100000 || res.OpsPerSec <= 0 || res.P50Ns > res.P99Ns || res.P99Ns > res.P9999Ns {
			t.Errorf("implausible result %+v", res)
		}
		if mix == "standard" && res.Trades == 0 {
			t.Errorf("standard mix made no trades: %+v", res)
		}
		if res.AllocsPerOp > 0.001 {
			t.Errorf("%s: %v allocs/op", mix, res.AllocsPerOp)
		}
	}
	if err := Main([]string{"--mix", "nope"}, os.Stdout); err == nil {
		t.Error("unknown mix accepted")
	}
	if err := Main([]string{"--bogus"}, os.Stdout); err == nil {
		t.Error("unknown flag accepted")
	}
}
