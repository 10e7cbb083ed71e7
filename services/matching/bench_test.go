package matching

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
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
			[]string{"stream_orders_per_sec", "unary_orders_per_sec", "p50_ms", "p99_ms", "stream_only_p99_ms", "unary_only_p99_ms"}},
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

// The gRPC bench client encodes its requests and reads its answers itself;
// check both against the protobuf messages.
func TestBenchGRPCClientWire(t *testing.T) {
	var gen orderGen
	rng := rand.New(rand.NewPCG(1, 7))
	// Requests 0..99 one to a message, 100..199 in one batch.
	var batch []byte
	for i := range 200 {
		req := &tradingv1.OrderEntryRequest{}
		if i < 100 {
			if err := proto.Unmarshal(gen.appendEntry(nil, uint64(i), rng), req); err != nil {
				t.Fatal(err)
			}
		} else {
			batch = gen.appendBatchEntry(batch, uint64(i), rng)
			var b tradingv1.OrderEntryBatchRequest
			if err := proto.Unmarshal(batch, &b); err != nil || len(b.Requests) != i-99 {
				t.Fatalf("batch of %d: %v %v", i-99, &b, err)
			}
			req = b.Requests[i-100]
		}
		p := req.GetPlace()
		price, err := strconv.ParseFloat(p.GetPrice().GetAmount(), 64)
		if req.CorrelationId != uint64(i) || p.ClientOrderId != "g"+strconv.FormatInt(int64(i+1), 36) || p.Symbol != "BENCH" ||
			(p.Side != typev1.Side_SIDE_BUY && p.Side != typev1.Side_SIDE_SELL) ||
			p.TimeInForce != tradingv1.TimeInForce_TIME_IN_FORCE_GOOD_TILL_CANCELLED || p.Price.Currency != "CNY" ||
			err != nil || price < 655.26 || price > 655.46 || (p.Quantity != "1" && p.Quantity != "2" && p.Quantity != "3") {
			t.Fatalf("request %d: %v", i, req)
		}
	}
	codec := newBenchCodec()
	for _, tc := range []struct {
		resp   *tradingv1.OrderEntryResponse
		fields uint64
		errMsg string
	}{
		{&tradingv1.OrderEntryResponse{CorrelationId: 9, Result: &tradingv1.OrderEntryResponse_Place{Place: &tradingv1.PlaceOrderResponse{
			Order: &tradingv1.Order{OrderId: 3}}}}, 1 << 2, ""},
		{&tradingv1.OrderEntryResponse{CorrelationId: 1 << 40, Result: &tradingv1.OrderEntryResponse_Error{Error: &tradingv1.CommandError{
			Code: 9, Message: "the instrument's book is full"}}}, 1 << 6, "book is full"},
	} {
		b, err := proto.Marshal(tc.resp)
		if err != nil {
			t.Fatal(err)
		}
		var m benchMsg
		if err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b[:3]), mem.SliceBuffer(b[3:])}, &m); err != nil {
			t.Fatal(err)
		}
		if m.correlation != tc.resp.CorrelationId || m.fields != tc.fields || !strings.Contains(m.errMsg, tc.errMsg) {
			t.Fatalf("read %+v from %v", m, tc.resp)
		}
		// The same answer three times in a batch.
		b, err = proto.Marshal(&tradingv1.OrderEntryBatchResponse{Responses: []*tradingv1.OrderEntryResponse{tc.resp, tc.resp, tc.resp}})
		if err != nil {
			t.Fatal(err)
		}
		m = benchMsg{batch: true}
		if err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &m); err != nil {
			t.Fatal(err)
		}
		if len(m.answers) != 3 {
			t.Fatalf("read %d answers of 3", len(m.answers))
		}
		for _, a := range m.answers {
			if a.correlation != tc.resp.CorrelationId || a.fields != tc.fields || !strings.Contains(a.errMsg, tc.errMsg) {
				t.Fatalf("read %+v from a batch of %v", a, tc.resp)
			}
		}
	}
}
