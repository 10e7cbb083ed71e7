package matching

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/journal"
	"github.com/bcx-exchange/bcx/pkg/journal/crashtest"
	"github.com/bcx-exchange/bcx/pkg/server"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/matching/core"
)

const roleChild = "matching-child"

// staticVerifier maps fixed tokens to principals: "m1".."m4" are members
// 1..4, "svc" is a bcx service.
type staticVerifier struct{}

func (staticVerifier) Verify(_ context.Context, token string) (auth.Principal, error) {
	if token == "svc" {
		return auth.Principal{ParticipantID: "SVC", Number: 99, Role: typev1.Role_ROLE_SERVICE}, nil
	}
	var n int64
	if _, err := fmt.Sscanf(token, "m%d", &n); err != nil || n < 1 || n > 1000 {
		return auth.Principal{}, auth.ErrInvalidToken
	}
	return auth.Principal{ParticipantID: fmt.Sprint("M-", n), Number: n, Role: typev1.Role_ROLE_MEMBER}, nil
}

func resolveStatic(_ context.Context, id string) (int64, error) {
	var n int64
	if _, err := fmt.Sscanf(id, "M-%d", &n); err != nil {
		return 0, err
	}
	return n, nil
}

// serveChild runs the service on loopback with the test market, reports
// its address and serves until killed.
func serveChild() {
	dir := os.Getenv("MATCHING_DIR")
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := New(Config{DataDir: dir, Logger: logger, ScheduleTick: -1, ResolveParticipant: resolveStatic,
		Limits: core.Limits{FinishedOrders: 1 << 20}, SnapshotEvery: 3000})
	if err != nil {
		crashtest.Fatal("new: %v", err)
	}
	rec := s.Recovery()
	go func() {
		if err := s.Run(context.Background()); err != nil {
			crashtest.Fatal("run: %v", err)
		}
	}()
	ctx := context.Background()
	if err := s.DefineInstrument(ctx, testDef()); err != nil {
		crashtest.Fatal("define: %v", err)
	}
	if _, err := s.command(ctx, core.Command{Kind: core.CmdSetPhase, Instrument: 1, Phase: core.PhaseContinuous,
		PhaseSource: core.SourceOperator}); err != nil {
		crashtest.Fatal("phase: %v", err)
	}
	for p := int64(1); p <= 4; p++ {
		id := fmt.Sprint("M-", p)
		for _, cmd := range []core.Command{
			{Kind: core.CmdCreditFunds, Participant: p, ParticipantID: id, Key: "fund/" + id, Currency: "CNY", CurrencyExp: 2, Amount: 1e13},
			{Kind: core.CmdCreditPosition, Participant: p, ParticipantID: id, Key: "rc/" + id, Receipt: "WR-" + id, Symbols: []int64{1}, WeightMicro: 1e15},
		} {
			if _, err := s.command(ctx, cmd); err != nil {
				crashtest.Fatal("fund: %v", err)
			}
		}
	}
	srv := server.New(logger, staticVerifier{}, Policy())
	s.Register(srv.GRPC)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		crashtest.Fatal("listen: %v", err)
	}
	crashtest.Report("ADDR " + lis.Addr().String())
	crashtest.Report(fmt.Sprintf("RECOVERY %+v", rec))
	if err := srv.GRPC.Serve(lis); err != nil {
		crashtest.Fatal("serve: %v", err)
	}
}

type ack struct {
	participant int64
	cloid       string
	orderID     int64
	trades      []int64
}

func dialToken(t *testing.T, addr, token string) *grpc.ClientConn {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.BearerCredentials{Token: token, Insecure: true}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func childAddr(t *testing.T, c *crashtest.Child) string {
	c.WaitReports(2, 30*time.Second)
	addr, ok := strings.CutPrefix(c.Reports()[0], "ADDR ")
	if !ok {
		t.Fatalf("child reported %q", c.Reports()[0])
	}
	return addr
}

// TestKill9 runs the service in a child process under load from clients
// that record every acknowledged order, kills it with SIGKILL at a random
// moment, restarts it, and checks that every acknowledged order and trade
// is there and that nothing is there that was never sent.
func TestKill9(t *testing.T) {
	if crashtest.Role() == roleChild {
		serveChild()
		return
	}
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	var mu sync.Mutex
	var acks []ack
	sent := map[string]bool{}
	var history []string
	for round := range 3 {
		child := crashtest.Start(t, roleChild, "MATCHING_DIR="+dir)
		addr := childAddr(t, child)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for p := int64(1); p <= 4; p++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := tradingv1.NewTradingServiceClient(dialToken(t, addr, fmt.Sprint("m", p)))
				lrng := rand.New(rand.NewPCG(uint64(p), uint64(round)))
				place := func(i int) *tradingv1.PlaceOrderRequest {
					cloid := fmt.Sprintf("r%d-p%d-%d", round, p, i)
					side := typev1.Side(1 + lrng.IntN(2))
					price := fmt.Sprint(14950 + 5*lrng.IntN(21))
					mu.Lock()
					sent[cloid] = true
					mu.Unlock()
					return &tradingv1.PlaceOrderRequest{ClientOrderId: cloid, Symbol: "CF",
						Side: side, Price: &typev1.Money{Currency: "CNY", Amount: price}, Quantity: fmt.Sprint(5 * (1 + lrng.IntN(4))),
						TimeInForce: tradingv1.TimeInForce_TIME_IN_FORCE_GOOD_TILL_CANCELLED}
				}
				acked := func(cloid string, resp *tradingv1.PlaceOrderResponse) {
					a := ack{participant: p, cloid: cloid, orderID: resp.Order.OrderId}
					for _, e := range resp.Executions {
						a.trades = append(a.trades, e.TradeId)
					}
					mu.Lock()
					acks = append(acks, a)
					mu.Unlock()
				}
				if p == 4 {
					// Member 4 sends eight orders to a message on the batch stream.
					st, err := client.OrderEntryBatch(ctx)
					if err != nil {
						return
					}
					for i := 0; ctx.Err() == nil; i += 8 {
						var req tradingv1.OrderEntryBatchRequest
						var cloids []string
						for k := range 8 {
							pl := place(i + k)
							cloids = append(cloids, pl.ClientOrderId)
							req.Requests = append(req.Requests, &tradingv1.OrderEntryRequest{CorrelationId: uint64(k),
								Command: &tradingv1.OrderEntryRequest_Place{Place: pl}})
						}
						if err := st.Send(&req); err != nil {
							return // the server died
						}
						for got := 0; got < 8; {
							resp, err := st.Recv()
							if err != nil {
								return
							}
							for _, r := range resp.Responses {
								if r.GetPlace() == nil || r.CorrelationId >= 8 {
									return // refused: only a dying server refuses these
								}
								acked(cloids[r.CorrelationId], r.GetPlace())
								got++
							}
						}
					}
					return
				}
				for i := 0; ctx.Err() == nil; i++ {
					pl := place(i)
					resp, err := client.PlaceOrder(ctx, pl)
					if err != nil {
						return // the server died
					}
					acked(pl.ClientOrderId, resp)
				}
			}()
		}
		time.Sleep(time.Duration(200+rng.IntN(600)) * time.Millisecond)
		history = append(history, child.Kill()...)
		cancel()
		wg.Wait()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(acks) < 50 {
		t.Fatalf("only %d orders acknowledged: a weak test", len(acks))
	}
	if n := len(slices.DeleteFunc(slices.Clone(acks), func(a ack) bool { return a.participant != 4 })); n < 16 {
		t.Fatalf("only %d orders acknowledged on the batch stream: a weak test", n)
	}

	child := crashtest.Start(t, roleChild, "MATCHING_DIR="+dir)
	addr := childAddr(t, child)
	ctx := context.Background()
	// Acknowledged orders are there, with their ids (a sample through the
	// API; the event log check below covers all of them).
	for i, a := range acks {
		if i%25 != 0 {
			continue
		}
		client := tradingv1.NewTradingServiceClient(dialToken(t, addr, fmt.Sprint("m", a.participant)))
		o, err := client.GetOrder(ctx, &tradingv1.GetOrderRequest{ClientOrderId: a.cloid})
		if err != nil || o.Order.OrderId != a.orderID {
			t.Fatalf("acknowledged order %s (%d) after restart: %v %v (child: %v %v)", a.cloid, a.orderID, o, err, history, child.Reports())
		}
	}
	// The event log holds every acknowledged order and trade, and only
	// orders that were sent.
	events := tradingv1.NewCoreServiceClient(dialToken(t, addr, "svc"))
	// A sentinel at the end of the log: a credit, one record with one event.
	snap, err := events.CreditFunds(ctx, &tradingv1.CreditFundsRequest{IdempotencyKey: "sentinel", ParticipantId: "M-1",
		Amount: &typev1.Money{Currency: "CNY", Amount: "1.00"}})
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(ctx, 60*time.Second)
	defer scancel()
	stream, err := events.SubscribeEvents(sctx, &tradingv1.SubscribeEventsRequest{FromSequence: 1})
	if err != nil {
		t.Fatal(err)
	}
	logOrders := map[string]int64{}
	logTrades := map[int64]bool{}
	logFills := map[string]int{} // participant -> fills in the log
	for {
		ev, err := stream.Recv()
		if err != nil {
			t.Fatalf("event log: %v", err)
		}
		if o := ev.GetOrder(); o != nil {
			logOrders[o.Order.ClientOrderId] = o.Order.OrderId
		}
		if tr := ev.GetTrade(); tr != nil {
			logTrades[tr.TradeId] = true
			logFills[tr.BuyerParticipantId]++
			logFills[tr.SellerParticipantId]++
		}
		if ev.Sequence >= snap.Sequence {
			break // the whole log, up to the sentinel
		}
	}
	for _, a := range acks {
		if id, ok := logOrders[a.cloid]; !ok || id != a.orderID {
			var maxID int64
			for _, id := range logOrders {
				maxID = max(maxID, id)
			}
			child.Kill()
			t.Logf("journal: %s", describeJournal(dir))
			t.Fatalf("acknowledged order %s (%d) missing from the log (got %d, %v); log has %d orders up to id %d, last seq %d; %d acks; children: %v %v",
				a.cloid, a.orderID, id, ok, len(logOrders), maxID, snap.Sequence, len(acks), history, child.Reports())
		}
		for _, tr := range a.trades {
			if !logTrades[tr] {
				t.Fatalf("acknowledged trade %d missing from the log", tr)
			}
		}
	}
	for cloid := range logOrders {
		if !sent[cloid] {
			t.Fatalf("order %s in the log was never sent", cloid)
		}
	}
	// The execution history, rebuilt from the journal after the kills,
	// lists every member's fills in the log, acknowledged ones included.
	listed := map[int64]bool{}
	for p := int64(1); p <= 4; p++ {
		client := tradingv1.NewTradingServiceClient(dialToken(t, addr, fmt.Sprint("m", p)))
		n, token := 0, ""
		for {
			l, err := client.ListExecutions(ctx, &tradingv1.ListExecutionsRequest{PageSize: 1000, PageToken: token})
			if err != nil {
				t.Fatalf("member %d's executions after restart: %v", p, err)
			}
			for _, e := range l.Executions {
				listed[e.TradeId] = true
			}
			n += len(l.Executions)
			if token = l.NextPageToken; token == "" {
				break
			}
		}
		if want := logFills[fmt.Sprint("M-", p)]; n != want {
			t.Fatalf("member %d has %d executions listed after restart, %d fills in the log", p, n, want)
		}
	}
	for _, a := range acks {
		for _, tr := range a.trades {
			if !listed[tr] {
				t.Fatalf("acknowledged trade %d not listed after restart", tr)
			}
		}
	}
	t.Logf("%d acknowledged orders, %d orders and %d trades in the log", len(acks), len(logOrders), len(logTrades))
	child.Kill()
}

// describeJournal summarizes a journal directory for a failure message.
func describeJournal(dir string) string {
	j, err := journal.Open(filepath.Join(dir, "journal"), journal.Options{})
	if err != nil {
		return err.Error()
	}
	defer j.Close()
	r, err := j.NewReader(1)
	if err != nil {
		return err.Error()
	}
	defer r.Close()
	var n int
	var maxID int64
	var cmd core.Command
	var ev core.Events
	for {
		rec, err := r.Next()
		if err != nil {
			break
		}
		n++
		if core.DecodeRecord(rec.Payload, rec.Seq, rec.Time, &cmd, &ev) == nil {
			for i := range ev.List {
				if e := &ev.List[i]; e.Kind == core.EvOrder {
					maxID = max(maxID, ev.Order(e).ID)
				}
			}
		}
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "journal"))
	var files []string
	for _, e := range ents {
		info, _ := e.Info()
		files = append(files, fmt.Sprint(e.Name(), ":", info.Size()))
	}
	return fmt.Sprintf("%d records, max order id %d, recovery %+v, files %v", n, maxID, j.Recovery(), files)
}
