package matching

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/latency"
	"github.com/bcx-exchange/bcx/pkg/server"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/matching/core"
)

// benchVerifier accepts the tokens "m<n>" for member n (1..1000); the
// benchmark measures order entry, not token lookups.
type benchVerifier struct{}

func (benchVerifier) Verify(_ context.Context, token string) (auth.Principal, error) {
	if len(token) < 2 || token[0] != 'm' {
		return auth.Principal{}, auth.ErrInvalidToken
	}
	n, err := strconv.ParseInt(token[1:], 10, 64)
	if err != nil || n < 1 || n > benchParticipants {
		return auth.Principal{}, auth.ErrInvalidToken
	}
	return auth.Principal{ParticipantID: "M-" + token[1:], Number: n, Role: typev1.Role_ROLE_MEMBER}, nil
}

// BenchGRPCResult is what `bcx bench grpc` prints.
type BenchGRPCResult struct {
	StreamOrdersPerSec int64 `json:"stream_orders_per_sec"`
	// StreamBatch is the most orders a stream message carries in the
	// stream and paced phases (1: one to a message, on OrderEntry).
	StreamBatch int `json:"stream_batch"`
	// StreamSinglePerSec is streams of one order to a message (OrderEntry).
	StreamSinglePerSec int64   `json:"stream_single_orders_per_sec"`
	UnaryOrdersPerSec  int64   `json:"unary_orders_per_sec"`
	P50Ms              float64 `json:"p50_ms"`
	P99Ms              float64 `json:"p99_ms"`
	StreamP99Ms        float64 `json:"stream_p99_ms"`
	UnaryP99Ms         float64 `json:"unary_p99_ms"`
	PacedStreamRate    int     `json:"paced_stream_rate"`
	PacedUnaryRate     int     `json:"paced_unary_rate"`
	PacedAchieved      int64   `json:"paced_achieved_per_sec"`
	// Each kind alone at its paced rate (phases paced-stream and
	// paced-unary, after the mixed paced phase).
	StreamOnlyP50Ms float64 `json:"stream_only_p50_ms"`
	StreamOnlyP99Ms float64 `json:"stream_only_p99_ms"`
	UnaryOnlyP50Ms  float64 `json:"unary_only_p50_ms"`
	UnaryOnlyP99Ms  float64 `json:"unary_only_p99_ms"`
	// The server's share of those latencies: enqueue to durable answer
	// (Service.AnswerLatency), in the mixed paced phase and each kind
	// alone. The rest is the transport, the client and the scheduling of
	// their goroutines.
	ServerP50Ms           float64 `json:"server_p50_ms"`
	ServerP99Ms           float64 `json:"server_p99_ms"`
	StreamOnlyServerP99Ms float64 `json:"stream_only_server_p99_ms"`
	UnaryOnlyServerP99Ms  float64 `json:"unary_only_server_p99_ms"`
	Conns                 int     `json:"conns"`
	Streams               int     `json:"streams"`
	UnaryClients          int     `json:"unary_clients"`
	DurationSec           float64 `json:"duration_sec"`
	Fsyncs                uint64  `json:"fsyncs"`
	benchFsyncs
	benchSnapshots
	Note string `json:"note"`
}

// BenchGRPCMain starts the real server (interceptors, fsync on) on
// loopback and drives it in six phases of --duration each: order entry
// streams as fast as they go (each with --window orders in flight, up to
// --stream-batch orders to a message), the same one order to a message,
// unary PlaceOrder calls as fast as they go, then both at once paced at
// --stream-rate and --unary-rate (defaults: half the targets), then
// streams alone and unary calls alone at those rates, to measure latency
// from each order's scheduled send time to its answer. Orders are GTC
// limits of 1 to 3 lots on random sides within ten ticks of the middle, so
// about half trade. Client and server share the machine.
func BenchGRPCMain(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("grpc", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dur := fs.Duration("duration", 5*time.Second, "length of each phase")
	conns := fs.Int("conns", 4, "client connections (one member each)")
	streams := fs.Int("streams", 8, "order entry streams")
	window := fs.Int("window", 512, "orders in flight per stream")
	batch := fs.Int("stream-batch", 64, "orders per stream message at most (1: OrderEntry, one order to a message; more: OrderEntryBatch)")
	unary := fs.Int("unary", 128, "concurrent unary clients")
	streamRate := fs.Int("stream-rate", 125_000, "paced phase: stream orders per second (0: none)")
	unaryRate := fs.Int("unary-rate", 15_000, "paced phase: unary orders per second (0: none)")
	dir := fs.String("dir", "", "data directory (default: a temporary one)")
	noSnap := fs.Bool("no-snapshots", false, "disable the scheduled snapshots (diagnosis only)")
	snapMode := fs.String("snapshots", "auto", "where scheduled snapshots are encoded: auto, sequencer or replica (see Config.Snapshots)")
	noSync := fs.Bool("no-sync", false, "skip fsync (diagnosis only: the result is not the benchmark)")
	phases := fs.String("phases", "stream,stream-single,unary,paced,paced-stream,paced-unary", "phases to run, comma-separated")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the phases run here; samples carry the label side=server or side=client")
	tracePath := fs.String("trace", "", "write an execution trace of the phases run here (go tool trace)")
	memProfile := fs.String("memprofile", "", "write a heap profile here after the phases (what is live after a collection: go tool pprof -sample_index=inuse_space)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	run := map[string]bool{}
	for _, p := range strings.Split(*phases, ",") {
		switch p = strings.TrimSpace(p); p {
		case "stream", "stream-single", "unary", "paced-stream", "paced-unary", "paced":
			run[p] = true
		default:
			return fmt.Errorf("bench grpc: unknown phase %q", p)
		}
	}
	d, cleanup, err := benchDir(*dir)
	if err != nil {
		return err
	}
	defer cleanup()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	// About a fifth of the orders rest (GTC): a fast run leaves over a
	// million in the book (a refusal ends the run), and the paced phases
	// run on that book.
	mode, err := ParseSnapshotMode(*snapMode)
	if err != nil {
		return err
	}
	cfg := Config{DataDir: d, Logger: logger, ScheduleTick: -1, Limits: core.Limits{MaxOrdersPerBook: 1 << 22},
		QueueSize: 1 << 17, NoSync: *noSync, Snapshots: mode}
	if *noSnap {
		cfg.SnapshotEvery = 1 << 62
	}
	s, err := New(cfg)
	if err != nil {
		return err
	}
	if err := benchSetup(s); err != nil {
		s.Close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		return err
	}
	// Goroutines inherit their creator's profiler labels: everything the
	// server starts is side=server, everything the client side starts
	// (including its connections' transport goroutines) side=client.
	pprof.SetGoroutineLabels(pprof.WithLabels(ctx, pprof.Labels("side", "server")))
	runDone := make(chan error, 1)
	srv := server.New(logger, benchVerifier{}, Policy(), server.ProcessOptions()...)
	s.Register(srv.GRPC)
	go func() { runDone <- s.Run(ctx) }()
	go func() { _ = srv.GRPC.Serve(lis) }()
	pprof.SetGoroutineLabels(pprof.WithLabels(ctx, pprof.Labels("side", "client")))
	defer pprof.SetGoroutineLabels(context.Background())
	defer func() {
		srv.GRPC.Stop()
		cancel()
		<-runDone
		s.Close()
	}()

	clients := make([]*grpc.ClientConn, *conns)
	for i := range clients {
		// Fixed windows, as the server's (see server.ProcessOptions).
		cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithInitialWindowSize(1<<20), grpc.WithInitialConnWindowSize(4<<20),
			grpc.WithPerRPCCredentials(auth.BearerCredentials{Token: "m" + strconv.Itoa(i+1), Insecure: true}))
		if err != nil {
			return err
		}
		defer cc.Close()
		clients[i] = cc
	}
	var gen orderGen
	before, snapsBefore := s.j.Stats(), s.SnapshotStalls()
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	stopTrace, err := startTrace(*tracePath)
	if err != nil {
		return err
	}
	defer stopTrace()

	var streamCount, singleCount, unaryCount int64
	if run["stream"] {
		if streamCount, _, err = runStreams(clients, *streams, *window, *batch, *dur, 0, &gen); err != nil {
			return err
		}
	}
	if run["stream-single"] {
		if singleCount, _, err = runStreams(clients, *streams, *window, 1, *dur, 0, &gen); err != nil {
			return err
		}
	}
	if run["unary"] {
		if unaryCount, _, err = runUnary(clients, *unary, *dur, 0, &gen); err != nil {
			return err
		}
	}
	// Paced phase: both kinds at once.
	var sLat, uLat []float64
	var sN, uN int64
	// phaseServer is the server's answer latency over the phase run by f.
	phaseServer := func(f func() error) (latency.Histogram, error) {
		before := s.AnswerLatency()
		err := f()
		return s.AnswerLatency().Sub(before), err
	}
	var pacedServer, streamServer, unaryServer latency.Histogram
	if run["paced"] {
		if pacedServer, err = phaseServer(func() error {
			var wg sync.WaitGroup
			var sErr, uErr error
			wg.Add(2)
			go func() {
				defer wg.Done()
				if *streamRate > 0 {
					sN, sLat, sErr = runStreams(clients, *streams, *window, *batch, *dur, *streamRate, &gen)
				}
			}()
			go func() {
				defer wg.Done()
				if *unaryRate > 0 {
					uN, uLat, uErr = runUnary(clients, max(*unary, 256), *dur, *unaryRate, &gen)
				}
			}()
			wg.Wait()
			return errors.Join(sErr, uErr)
		}); err != nil {
			return err
		}
	}
	// Each kind alone at its paced rate.
	var soLat, uoLat []float64
	if run["paced-stream"] && *streamRate > 0 {
		if streamServer, err = phaseServer(func() (err error) {
			_, soLat, err = runStreams(clients, *streams, *window, *batch, *dur, *streamRate, &gen)
			return err
		}); err != nil {
			return err
		}
	}
	if run["paced-unary"] && *unaryRate > 0 {
		if unaryServer, err = phaseServer(func() (err error) {
			_, uoLat, err = runUnary(clients, max(*unary, 256), *dur, *unaryRate, &gen)
			return err
		}); err != nil {
			return err
		}
	}
	after := s.j.Stats()
	if err := writeHeapProfile(*memProfile); err != nil {
		return err
	}
	all := append(slices.Clone(sLat), uLat...)
	return json.NewEncoder(stdout).Encode(BenchGRPCResult{
		StreamOrdersPerSec: int64(float64(streamCount) / dur.Seconds()),
		StreamBatch:        *batch,
		StreamSinglePerSec: int64(float64(singleCount) / dur.Seconds()),
		UnaryOrdersPerSec:  int64(float64(unaryCount) / dur.Seconds()),
		P50Ms:              pctMs(all, 0.50), P99Ms: pctMs(all, 0.99),
		StreamP99Ms: pctMs(sLat, 0.99), UnaryP99Ms: pctMs(uLat, 0.99),
		PacedStreamRate: *streamRate, PacedUnaryRate: *unaryRate,
		PacedAchieved:   int64(float64(sN+uN) / dur.Seconds()),
		StreamOnlyP50Ms: pctMs(soLat, 0.50), StreamOnlyP99Ms: pctMs(soLat, 0.99),
		UnaryOnlyP50Ms: pctMs(uoLat, 0.50), UnaryOnlyP99Ms: pctMs(uoLat, 0.99),
		ServerP50Ms: histMs(pacedServer, 0.50), ServerP99Ms: histMs(pacedServer, 0.99),
		StreamOnlyServerP99Ms: histMs(streamServer, 0.99), UnaryOnlyServerP99Ms: histMs(unaryServer, 0.99),
		Conns: *conns, Streams: *streams, UnaryClients: *unary, DurationSec: dur.Seconds(),
		Fsyncs: after.Fsyncs - before.Fsyncs, benchFsyncs: fsyncStats(before, after),
		benchSnapshots: snapshotStats(snapsBefore, s.SnapshotStalls()),
		Note:           "orders are PlaceOrder commands; client and server on the same machine; latency from scheduled send to answer",
	})
}

// histMs is a quantile of h in milliseconds (to 12.5%, see pkg/latency).
func histMs(h latency.Histogram, q float64) float64 {
	return float64(h.Quantile(q).Microseconds()) / 1000
}

func pctMs(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	v := xs[int(q*float64(len(xs)-1))]
	return float64(int(v*1000)) / 1000
}

// The client side shares the machine with the server, so it is kept cheap,
// the way a high-rate client would be: it encodes its requests directly in
// their wire form and reads of each answer only what it acts on (the
// correlation id, and the error if it is one, decoded in full), through
// benchCodec. Everything still goes through gRPC over loopback TCP, the
// server's interceptors and its protobuf decoding.

// benchCodec passes benchMsg values through as raw bytes and leaves every
// other message to the protobuf codec. Its name is "proto": the server sees
// an ordinary application/grpc+proto call.
type benchCodec struct{ proto encoding.CodecV2 }

func newBenchCodec() benchCodec { return benchCodec{proto: encoding.GetCodecV2("proto")} }

func (benchCodec) Name() string { return "proto" }

// benchMsg is a request's wire form (sending) or what the client reads of
// an answer (receiving).
type benchMsg struct {
	out []byte // to send; owned by the transport once sent
	benchAnswer
	// batch, set by the receiver, reads an OrderEntryBatchResponse: its
	// answers go to answers.
	batch   bool
	answers []benchAnswer
}

// benchAnswer is what the client reads of one answer.
type benchAnswer struct {
	// fields has bit n set for each message field n of the answer: for an
	// OrderEntryResponse 2 is a place, 6 an error (errMsg set); for a
	// PlaceOrderResponse 1 is the order.
	fields      uint64
	correlation uint64
	errMsg      string
}

var benchPool = mem.DefaultBufferPool()

func (c benchCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*benchMsg)
	if !ok {
		return c.proto.Marshal(v)
	}
	return mem.BufferSlice{mem.NewBuffer(&m.out, benchPool)}, nil
}

func (c benchCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*benchMsg)
	if !ok {
		return c.proto.Unmarshal(data, v)
	}
	var b []byte
	if len(data) == 1 {
		b = data[0].ReadOnlyData()
	} else {
		b = data.Materialize()
	}
	if !m.batch {
		return m.benchAnswer.read(b)
	}
	m.answers = m.answers[:0]
	// An OrderEntryBatchResponse's answers are its field 1, as a batch
	// request's requests are.
	return eachBatchRequest(b, func(v []byte) error {
		m.answers = append(m.answers, benchAnswer{})
		return m.answers[len(m.answers)-1].read(v)
	})
}

func (a *benchAnswer) read(b []byte) error {
	*a = benchAnswer{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			a.correlation, n = protowire.ConsumeVarint(b)
		case typ == protowire.BytesType:
			var field []byte
			field, n = protowire.ConsumeBytes(b)
			if n >= 0 && num < 64 {
				a.fields |= 1 << num
				if num == 6 {
					var ce tradingv1.CommandError
					if err := proto.Unmarshal(field, &ce); err != nil {
						return err
					}
					a.errMsg = fmt.Sprintf("%v", &ce)
				}
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
	}
	return nil
}

// orderGen makes unique client order ids and random prices.
type orderGen struct{ n atomic.Int64 }

// appendPlace appends a PlaceOrderRequest's fields: a GTC limit order of 1
// to 3 lots on a random side within ten ticks of the middle.
func (g *orderGen) appendPlace(b []byte, rng *rand.Rand) []byte {
	n := g.n.Add(1)
	side := typev1.Side_SIDE_BUY
	if rng.IntN(2) == 0 {
		side = typev1.Side_SIDE_SELL
	}
	price := 1<<16 - 10 + rng.IntN(21) // ticks of 0.01
	var buf [24]byte
	b = protowire.AppendTag(b, 1, protowire.BytesType) // client_order_id
	b = protowire.AppendBytes(b, strconv.AppendInt(append(buf[:0], 'g'), n, 36))
	b = protowire.AppendTag(b, 2, protowire.BytesType) // symbol
	b = protowire.AppendString(b, "BENCH")
	b = protowire.AppendTag(b, 3, protowire.VarintType) // side
	b = protowire.AppendVarint(b, uint64(side))
	b = protowire.AppendTag(b, 5, protowire.VarintType) // time_in_force
	b = protowire.AppendVarint(b, uint64(tradingv1.TimeInForce_TIME_IN_FORCE_GOOD_TILL_CANCELLED))
	var abuf [16]byte // "655.36"
	amount := strconv.AppendInt(abuf[:0], int64(price/100), 10)
	amount = append(amount, '.', byte('0'+price/10%10), byte('0'+price%10))
	b = protowire.AppendTag(b, 6, protowire.BytesType) // price: Money
	b = protowire.AppendVarint(b, uint64(2+len("CNY")+2+len(amount)))
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, "CNY")
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, amount)
	b = protowire.AppendTag(b, 7, protowire.BytesType) // quantity
	return protowire.AppendBytes(b, strconv.AppendInt(buf[:0], int64(1+rng.IntN(3)), 10))
}

// placeMsg is a unary PlaceOrderRequest.
func (g *orderGen) placeMsg(rng *rand.Rand) *benchMsg {
	return &benchMsg{out: g.appendPlace((*benchPool.Get(64))[:0], rng)}
}

// appendEntry appends an order entry request placing an order.
func (g *orderGen) appendEntry(b []byte, correlation uint64, rng *rand.Rand) []byte {
	var place [64]byte
	p := g.appendPlace(place[:0], rng)
	if correlation != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, correlation)
	}
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	return protowire.AppendBytes(b, p)
}

// appendBatchEntry appends an order entry request placing an order as one
// of an OrderEntryBatchRequest's requests.
func (g *orderGen) appendBatchEntry(b []byte, correlation uint64, rng *rand.Rand) []byte {
	var entry [96]byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	return protowire.AppendBytes(b, g.appendEntry(entry[:0], correlation, rng))
}

// runStreams drives order entry streams for d. rate 0 sends as fast as the
// window allows; otherwise each stream paces its share of rate and the
// latency of each order is measured from its scheduled send time. batch 1
// uses OrderEntry, one order to a message; more uses OrderEntryBatch, up
// to batch orders to a message: as many as the window has room for or,
// paced, as are due.
func runStreams(clients []*grpc.ClientConn, n, window, batch int, d time.Duration, rate int, gen *orderGen) (int64, []float64, error) {
	var total atomic.Int64
	var mu sync.Mutex
	var lats []float64
	errs := make(chan error, n)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	codec := grpc.ForceCodecV2(newBenchCodec())
	batch = max(batch, 1)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			client := tradingv1.NewTradingServiceClient(clients[i%len(clients)])
			var st grpc.ClientStream
			var err error
			if batch > 1 {
				st, err = client.OrderEntryBatch(ctx, codec)
			} else {
				st, err = client.OrderEntry(ctx, codec)
			}
			if err != nil {
				errs <- err
				return
			}
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			sem := make(chan struct{}, window)
			sentAt := make([]time.Time, window)
			var local []float64
			recvDone := make(chan error, 1)
			recvStopped := make(chan struct{}) // the sender must not wait for room then
			go func() {
				defer close(recvStopped)
				r := benchMsg{batch: batch > 1}
				for {
					if err := st.RecvMsg(&r); err != nil {
						if err == io.EOF {
							err = nil
						}
						recvDone <- err
						return
					}
					answers := r.answers
					if !r.batch {
						answers = []benchAnswer{r.benchAnswer}
					}
					now := time.Now()
					for _, a := range answers {
						if a.fields&(1<<6) != 0 {
							recvDone <- fmt.Errorf("order refused: %s", a.errMsg)
							return
						}
						if a.fields&(1<<2) == 0 {
							recvDone <- fmt.Errorf("answer %d is not a place", a.correlation)
							return
						}
						if !now.After(end) {
							total.Add(1)
						}
						if rate > 0 {
							local = append(local, float64(now.Sub(sentAt[a.correlation%uint64(window)]).Nanoseconds())/1e6)
						}
						<-sem
					}
				}
			}()
			perStream := float64(rate) / float64(n)
			scheduled := func(k uint64) time.Time {
				return start.Add(time.Duration(float64(k) / perStream * float64(time.Second)))
			}
			var sent uint64
			for {
				now := time.Now()
				if now.After(end) {
					break
				}
				due := batch
				if rate > 0 {
					if next := scheduled(sent); next.After(now) {
						time.Sleep(min(next.Sub(now), time.Millisecond))
						continue
					}
					// Orders sent..sent+due-1 are due by now.
					due = min(batch, int(float64(now.Sub(start))*perStream/float64(time.Second))+1-int(sent))
					due = max(due, 1)
				}
				b := (*benchPool.Get(due * 64))[:0]
				k := 0
			fill:
				for k < due {
					if k == 0 {
						// The first order of a message waits for room in the
						// window; the others take only what is free.
						select {
						case sem <- struct{}{}:
						case <-recvStopped:
							err := <-recvDone
							if err == nil {
								err = errors.New("order entry stream ended before the client closed it")
							}
							errs <- err
							return
						}
					} else {
						select {
						case sem <- struct{}{}:
						default:
							break fill
						}
					}
					c := sent + uint64(k)
					sentAt[c%uint64(window)] = now
					if rate > 0 {
						sentAt[c%uint64(window)] = scheduled(c)
					}
					if batch == 1 {
						b = gen.appendEntry(b, c, rng)
					} else {
						b = gen.appendBatchEntry(b, c, rng)
					}
					k++
				}
				if err := st.SendMsg(&benchMsg{out: b}); err != nil {
					errs <- err
					return
				}
				sent += uint64(k)
			}
			st.CloseSend()
			if err := <-recvDone; err != nil {
				errs <- err
				return
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return 0, nil, err
	}
	return total.Load(), lats, nil
}

// runUnary drives n concurrent PlaceOrder callers for d, as fast as they go
// (rate 0) or paced at rate in total.
func runUnary(clients []*grpc.ClientConn, n int, d time.Duration, rate int, gen *orderGen) (int64, []float64, error) {
	var total atomic.Int64
	var mu sync.Mutex
	var lats []float64
	errs := make(chan error, n)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	codec := grpc.ForceCodecV2(newBenchCodec())
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 11))
			c := clients[i%len(clients)]
			var local []float64
			interval := time.Duration(0)
			if rate > 0 {
				interval = time.Duration(float64(n) / float64(rate) * float64(time.Second))
			}
			next := start.Add(time.Duration(rng.Int64N(int64(max(interval, 1)))))
			var resp benchMsg
			for {
				now := time.Now()
				if now.After(end) {
					break
				}
				when := now
				if rate > 0 {
					if next.After(now) {
						time.Sleep(next.Sub(now))
					}
					when = next
					next = next.Add(interval)
				}
				if err := c.Invoke(context.Background(), tradingv1.TradingService_PlaceOrder_FullMethodName, gen.placeMsg(rng), &resp, codec); err != nil {
					errs <- err
					return
				}
				if resp.fields&(1<<1) == 0 {
					errs <- errors.New("PlaceOrder answered without an order")
					return
				}
				done := time.Now()
				if !done.After(end) {
					total.Add(1)
				}
				if rate > 0 {
					local = append(local, float64(done.Sub(when).Nanoseconds())/1e6)
				}
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return 0, nil, err
	}
	return total.Load(), lats, nil
}
