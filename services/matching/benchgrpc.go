package matching

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bcx-exchange/bcx/pkg/auth"
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
	StreamOrdersPerSec int64   `json:"stream_orders_per_sec"`
	UnaryOrdersPerSec  int64   `json:"unary_orders_per_sec"`
	P50Ms              float64 `json:"p50_ms"`
	P99Ms              float64 `json:"p99_ms"`
	StreamP99Ms        float64 `json:"stream_p99_ms"`
	UnaryP99Ms         float64 `json:"unary_p99_ms"`
	PacedStreamRate    int     `json:"paced_stream_rate"`
	PacedUnaryRate     int     `json:"paced_unary_rate"`
	PacedAchieved      int64   `json:"paced_achieved_per_sec"`
	Conns              int     `json:"conns"`
	Streams            int     `json:"streams"`
	UnaryClients       int     `json:"unary_clients"`
	DurationSec        float64 `json:"duration_sec"`
	Fsyncs             uint64  `json:"fsyncs"`
	Note               string  `json:"note"`
}

// BenchGRPCMain starts the real server (interceptors, fsync on) on
// loopback and drives it in three phases of --duration each: order entry
// streams as fast as they go (each with --window orders in flight), unary
// PlaceOrder calls as fast as they go, then both paced at --stream-rate and
// --unary-rate (default half the targets) to measure latency from each
// order's scheduled send time to its answer. Orders are GTC limits of 1 to
// 3 lots on random sides within ten ticks of the middle, so about half
// trade. Client and server share the machine.
func BenchGRPCMain(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("grpc", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dur := fs.Duration("duration", 5*time.Second, "length of each phase")
	conns := fs.Int("conns", 4, "client connections (one member each)")
	streams := fs.Int("streams", 8, "order entry streams")
	window := fs.Int("window", 512, "orders in flight per stream")
	unary := fs.Int("unary", 128, "concurrent unary clients")
	streamRate := fs.Int("stream-rate", 125_000, "paced phase: stream orders per second")
	unaryRate := fs.Int("unary-rate", 15_000, "paced phase: unary orders per second")
	dir := fs.String("dir", "", "data directory (default: a temporary one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	d, cleanup, err := benchDir(*dir)
	if err != nil {
		return err
	}
	defer cleanup()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := New(Config{DataDir: d, Logger: logger, ScheduleTick: -1, Limits: core.Limits{MaxOrdersPerBook: 1 << 18},
		QueueSize: 1 << 17})
	if err != nil {
		return err
	}
	if err := benchSetup(s); err != nil {
		s.Close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- s.Run(ctx) }()
	srv := server.New(logger, benchVerifier{}, Policy())
	s.Register(srv.GRPC)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		return err
	}
	go func() { _ = srv.GRPC.Serve(lis) }()
	defer func() {
		srv.GRPC.Stop()
		cancel()
		<-runDone
		s.Close()
	}()

	clients := make([]tradingv1.TradingServiceClient, *conns)
	for i := range clients {
		cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(auth.BearerCredentials{Token: "m" + strconv.Itoa(i+1), Insecure: true}))
		if err != nil {
			return err
		}
		defer cc.Close()
		clients[i] = tradingv1.NewTradingServiceClient(cc)
	}
	var gen orderGen
	before := s.j.Stats()

	streamCount, _, err := runStreams(clients, *streams, *window, *dur, 0, &gen)
	if err != nil {
		return err
	}
	unaryCount, _, err := runUnary(clients, *unary, *dur, 0, &gen)
	if err != nil {
		return err
	}
	// Paced phase: both kinds at once.
	var wg sync.WaitGroup
	var sLat, uLat []float64
	var sN, uN int64
	var sErr, uErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		sN, sLat, sErr = runStreams(clients, *streams, *window, *dur, *streamRate, &gen)
	}()
	go func() { defer wg.Done(); uN, uLat, uErr = runUnary(clients, max(*unary, 256), *dur, *unaryRate, &gen) }()
	wg.Wait()
	if sErr != nil {
		return sErr
	}
	if uErr != nil {
		return uErr
	}
	after := s.j.Stats()
	all := append(slices.Clone(sLat), uLat...)
	return json.NewEncoder(stdout).Encode(BenchGRPCResult{
		StreamOrdersPerSec: int64(float64(streamCount) / dur.Seconds()),
		UnaryOrdersPerSec:  int64(float64(unaryCount) / dur.Seconds()),
		P50Ms:              pctMs(all, 0.50), P99Ms: pctMs(all, 0.99),
		StreamP99Ms: pctMs(sLat, 0.99), UnaryP99Ms: pctMs(uLat, 0.99),
		PacedStreamRate: *streamRate, PacedUnaryRate: *unaryRate,
		PacedAchieved: int64(float64(sN+uN) / dur.Seconds()),
		Conns:         *conns, Streams: *streams, UnaryClients: *unary, DurationSec: dur.Seconds(),
		Fsyncs: after.Fsyncs - before.Fsyncs,
		Note:   "orders are PlaceOrder commands; client and server on the same machine; latency from scheduled send to answer",
	})
}

func pctMs(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	v := xs[int(q*float64(len(xs)-1))]
	return float64(int(v*1000)) / 1000
}

// orderGen makes unique client order ids and random prices.
type orderGen struct{ n atomic.Int64 }

func (g *orderGen) next(rng *rand.Rand) *tradingv1.PlaceOrderRequest {
	n := g.n.Add(1)
	side := typev1.Side_SIDE_BUY
	if rng.IntN(2) == 0 {
		side = typev1.Side_SIDE_SELL
	}
	price := 1<<16 - 10 + rng.IntN(21) // ticks of 0.01
	return &tradingv1.PlaceOrderRequest{ClientOrderId: "g" + strconv.FormatInt(n, 36), Symbol: "BENCH", Side: side,
		TimeInForce: tradingv1.TimeInForce_TIME_IN_FORCE_GOOD_TILL_CANCELLED,
		Price:       &typev1.Money{Currency: "CNY", Amount: formatFixed(int64(price), 2, false)},
		Quantity:    strconv.Itoa(1 + rng.IntN(3))}
}

// runStreams drives order entry streams for d. rate 0 sends as fast as the
// window allows; otherwise each stream paces its share of rate and the
// latency of each order is measured from its scheduled send time.
func runStreams(clients []tradingv1.TradingServiceClient, n, window int, d time.Duration, rate int, gen *orderGen) (int64, []float64, error) {
	var total atomic.Int64
	var mu sync.Mutex
	var lats []float64
	errs := make(chan error, n)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			st, err := clients[i%len(clients)].OrderEntry(ctx)
			if err != nil {
				errs <- err
				return
			}
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			sem := make(chan struct{}, window)
			sentAt := make([]time.Time, window)
			var local []float64
			recvDone := make(chan error, 1)
			go func() {
				for {
					r, err := st.Recv()
					if err != nil {
						if err == io.EOF {
							err = nil
						}
						recvDone <- err
						return
					}
					if e := r.GetError(); e != nil {
						recvDone <- fmt.Errorf("order refused: %v", e)
						return
					}
					now := time.Now()
					if !now.After(end) {
						total.Add(1)
					}
					if rate > 0 {
						local = append(local, float64(now.Sub(sentAt[r.CorrelationId%uint64(window)]).Nanoseconds())/1e6)
					}
					<-sem
				}
			}()
			perStream := float64(rate) / float64(n)
			var sent uint64
			for {
				now := time.Now()
				if now.After(end) {
					break
				}
				when := now
				if rate > 0 {
					due := start.Add(time.Duration(float64(sent) / perStream * float64(time.Second)))
					if due.After(now) {
						time.Sleep(min(due.Sub(now), time.Millisecond))
						continue
					}
					when = due
				}
				sem <- struct{}{}
				sentAt[sent%uint64(window)] = when
				if err := st.Send(&tradingv1.OrderEntryRequest{CorrelationId: sent,
					Command: &tradingv1.OrderEntryRequest_Place{Place: gen.next(rng)}}); err != nil {
					errs <- err
					return
				}
				sent++
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
func runUnary(clients []tradingv1.TradingServiceClient, n int, d time.Duration, rate int, gen *orderGen) (int64, []float64, error) {
	var total atomic.Int64
	var mu sync.Mutex
	var lats []float64
	errs := make(chan error, n)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
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
				if _, err := c.PlaceOrder(context.Background(), gen.next(rng)); err != nil {
					errs <- err
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
