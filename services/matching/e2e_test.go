package matching_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/money"
	"github.com/bcx-exchange/bcx/pkg/server"
	"github.com/bcx-exchange/bcx/pkg/sqlstore/sqlstoretest"
	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
	marketdatav1 "github.com/bcx-exchange/bcx/proto/bcx/marketdata/v1"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/listing"
	"github.com/bcx-exchange/bcx/services/matching"
)

const cotton = "CF3128B-QD"

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// shanghai returns a time on Wednesday 2026-11-25 in the exchange's zone.
func shanghai(hh, mm int) time.Time {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return time.Date(2026, 11, 25, hh, mm, 0, 0, loc)
}

// env is the listing service seeded with the demo market and the matching
// service, both behind the real interceptors over bufconn, and a client per
// demo participant.
type env struct {
	svc      *matching.Service
	clock    *clock
	creds    *listing.DevCredentials
	dial     func(token string, extra ...grpc.DialOption) *grpc.ClientConn
	operator *grpc.ClientConn
	alpha    *grpc.ClientConn
	beta     *grpc.ClientConn
	cancel   context.CancelFunc
	done     chan error
}

func (e *env) trading(c *grpc.ClientConn) tradingv1.TradingServiceClient {
	return tradingv1.NewTradingServiceClient(c)
}
func (e *env) coreSvc() tradingv1.CoreServiceClient {
	return tradingv1.NewCoreServiceClient(e.operator)
}
func (e *env) md(c *grpc.ClientConn) marketdatav1.MarketDataServiceClient {
	return marketdatav1.NewMarketDataServiceClient(c)
}

func newEnv(t *testing.T, start time.Time, opts ...func(*matching.Config)) *env {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := listing.NewStore(ctx, sqlstoretest.OpenSQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	verifier := listing.NewVerifier(store, time.Minute)
	listingSrv := listing.NewServer(store, money.NewRegistry(), verifier, logger)
	creds, err := listing.SeedDemo(ctx, listingSrv, true)
	if err != nil {
		t.Fatal(err)
	}
	policy := listing.Policy().Merge(matching.Policy())
	srv := server.New(logger, verifier, policy)
	listingv1.RegisterListingServiceServer(srv.GRPC, listingSrv)
	lis := bufconn.Listen(1 << 20)
	e := &env{clock: &clock{t: start}, creds: creds}
	e.dial = func(token string, extra ...grpc.DialOption) *grpc.ClientConn {
		opts := []grpc.DialOption{
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
		}
		if token != "" {
			opts = append(opts, grpc.WithPerRPCCredentials(auth.BearerCredentials{Token: token, Insecure: true}))
		}
		conn, err := grpc.NewClient("passthrough:///bufnet", append(opts, extra...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	e.operator = e.dial(creds.Operator.Token)
	e.alpha = e.dial(creds.Members[0].Token)
	e.beta = e.dial(creds.Members[1].Token)
	cfg := matching.Config{DataDir: t.TempDir(), Listing: listingv1.NewListingServiceClient(e.operator),
		Logger: logger, Clock: e.clock.Now, ScheduleTick: 20 * time.Millisecond, NoSync: true}
	for _, o := range opts {
		o(&cfg)
	}
	svc, err := matching.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	svc.Register(srv.GRPC)
	go func() { _ = srv.GRPC.Serve(lis) }()
	runCtx, cancel := context.WithCancel(ctx)
	e.svc, e.cancel, e.done = svc, cancel, make(chan error, 1)
	go func() { e.done <- svc.Run(runCtx) }()
	t.Cleanup(func() {
		e.cancel()
		<-e.done
		srv.GRPC.Stop()
		svc.Close()
	})
	select {
	case <-svc.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("matching service not ready")
	}
	return e
}

// waitPhase polls the ticker until the instrument is in the phase.
func (e *env) waitPhase(t *testing.T, symbol string, phase tradingv1.InstrumentPhase) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		tk, err := e.md(e.alpha).GetTicker(context.Background(), &marketdatav1.GetTickerRequest{Symbol: symbol})
		if err == nil && tk.Ticker.Phase == phase {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never reached %v", symbol, phase)
}

func cny(s string) *typev1.Money { return &typev1.Money{Currency: "CNY", Amount: s} }

func wantStatus(t *testing.T, err error, code codes.Code, reason string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("got %v (%v), want %v", st.Code(), err, code)
	}
	if reason == "" {
		return
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			if info.Reason != reason {
				t.Fatalf("reason %q, want %q (%v)", info.Reason, reason, err)
			}
			return
		}
	}
	t.Fatalf("no ErrorInfo in %v, want reason %q", err, reason)
}

func (e *env) fund(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.coreSvc().CreditFunds(ctx, &tradingv1.CreditFundsRequest{IdempotencyKey: "bank/dep/1",
		ParticipantId: listing.DemoMemberA, Amount: cny("1000000.00")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.coreSvc().CreditPosition(ctx, &tradingv1.CreditPositionRequest{IdempotencyKey: "wr/WR-1/1",
		ParticipantId: listing.DemoMemberB, ReceiptNumber: "WR-1", Symbols: []string{cotton}, Weight: "40"}); err != nil {
		t.Fatal(err)
	}
}

func TestEndToEndTrade(t *testing.T) {
	e := newEnv(t, shanghai(10, 0))
	ctx := context.Background()
	e.waitPhase(t, cotton, tradingv1.InstrumentPhase_INSTRUMENT_PHASE_CONTINUOUS)
	e.fund(t)
	// Idempotent credit: the same key again changes nothing.
	again, err := e.coreSvc().CreditFunds(ctx, &tradingv1.CreditFundsRequest{IdempotencyKey: "bank/dep/1",
		ParticipantId: listing.DemoMemberA, Amount: cny("1000000.00")})
	if err != nil || !again.Duplicate {
		t.Fatalf("repeat credit: %v %v", again, err)
	}
	events, err := e.coreSvc().SubscribeEvents(ctx, &tradingv1.SubscribeEventsRequest{FromSequence: 1})
	if err != nil {
		t.Fatal(err)
	}
	mdStream, err := e.md(e.beta).StreamMarketData(ctx, &marketdatav1.StreamMarketDataRequest{Symbol: cotton, DepthLevels: 5})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := mdStream.Recv()
	if err != nil || snap.GetSnapshot() == nil {
		t.Fatalf("first market data message: %v %v", snap, err)
	}

	buy, err := e.trading(e.alpha).PlaceOrder(ctx, &tradingv1.PlaceOrderRequest{ClientOrderId: "A-1", Symbol: cotton,
		Side: typev1.Side_SIDE_BUY, TimeInForce: tradingv1.TimeInForce_TIME_IN_FORCE_GOOD_TILL_CANCELLED,
		Price: cny("15000"), Quantity: "10"})
	if err != nil {
		t.Fatal(err)
	}
	if buy.Order.Status != tradingv1.OrderStatus_ORDER_STATUS_NEW || buy.Order.OpenQuantity != "10" || buy.Order.ParticipantId != listing.DemoMemberA {
		t.Fatalf("buy %v", buy.Order)
	}
	sell, err := e.trading(e.beta).PlaceOrder(ctx, &tradingv1.PlaceOrderRequest{ClientOrderId: "B-1", Symbol: cotton,
		Side: typev1.Side_SIDE_SELL, TimeInForce: tradingv1.TimeInForce_TIME_IN_FORCE_DAY, Price: cny("14990"), Quantity: "10"})
	if err != nil {
		t.Fatal(err)
	}
	if sell.Order.Status != tradingv1.OrderStatus_ORDER_STATUS_FILLED || len(sell.Executions) != 1 {
		t.Fatalf("sell %v", sell)
	}
	ex := sell.Executions[0]
	if ex.Price.Amount != "15000.00" || ex.Quantity != "10" || ex.Maker || ex.Side != typev1.Side_SIDE_SELL {
		t.Fatalf("execution %v", ex)
	}
	// The trade appears in both members' executions.
	for _, c := range []*grpc.ClientConn{e.alpha, e.beta} {
		le, err := e.trading(c).ListExecutions(ctx, &tradingv1.ListExecutionsRequest{Symbol: cotton})
		if err != nil || len(le.Executions) != 1 || le.Executions[0].TradeId != ex.TradeId {
			t.Fatalf("executions %v %v", le, err)
		}
	}
	got, err := e.trading(e.alpha).GetOrder(ctx, &tradingv1.GetOrderRequest{ClientOrderId: "A-1"})
	if err != nil || got.Order.Status != tradingv1.OrderStatus_ORDER_STATUS_FILLED || got.Order.AveragePrice.GetAmount() != "15000.00" {
		t.Fatalf("buy after the trade: %v %v", got, err)
	}
	// Balances: alpha paid 10 t x 15000; beta's receipt lost 10 t.
	bal, err := e.trading(e.alpha).GetBalances(ctx, &tradingv1.GetBalancesRequest{})
	if err != nil || len(bal.Funds) != 1 || bal.Funds[0].Total != "850000.00" || bal.Funds[0].Reserved != "0.00" {
		t.Fatalf("alpha balances %v %v", bal, err)
	}
	bal, err = e.trading(e.beta).GetBalances(ctx, &tradingv1.GetBalancesRequest{})
	if err != nil || len(bal.Positions) != 1 || bal.Positions[0].Total != "30" || bal.Funds[0].Total != "150000.00" {
		t.Fatalf("beta balances %v %v", bal, err)
	}

	// The event log has the funding, both orders and the trade with its
	// receipt allocation.
	var trade *tradingv1.TradeEvent
	var sawFunds, sawPosition bool
	for trade == nil {
		ev, err := events.Recv()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case ev.GetTrade() != nil:
			trade = ev.GetTrade()
		case ev.GetFunds() != nil:
			sawFunds = ev.GetFunds().Amount.Amount == "1000000.00"
		case ev.GetPosition() != nil:
			sawPosition = ev.GetPosition().ReceiptNumber == "WR-1"
		}
	}
	if !sawFunds || !sawPosition || trade.BuyerParticipantId != listing.DemoMemberA || trade.SellerParticipantId != listing.DemoMemberB ||
		trade.Lots != 2 || len(trade.Allocations) != 1 || trade.Allocations[0].ReceiptNumber != "WR-1" || trade.Allocations[0].Weight != "10" ||
		trade.AggressorSide != typev1.Side_SIDE_SELL {
		t.Fatalf("trade event %v (funds %v position %v)", trade, sawFunds, sawPosition)
	}

	// Market data: the stream carries the trade, the ticker shows it.
	deadline := time.After(5 * time.Second)
	prev := snap.Sequence
	for {
		m, err := mdStream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if m.Sequence != prev+1 {
			t.Fatalf("market data sequence %d after %d", m.Sequence, prev)
		}
		prev = m.Sequence
		if tr := m.GetTrade(); tr != nil {
			if tr.TradeId != ex.TradeId || tr.Price.Amount != "15000.00" {
				t.Fatalf("market data trade %v", tr)
			}
			break
		}
		select {
		case <-deadline:
			t.Fatal("no trade on the market data stream")
		default:
		}
	}
	// Alpha's execution stream: from the start it has alpha's orders and
	// executions only; resuming from the trade's sequence starts there.
	xs, err := e.trading(e.alpha).StreamExecutions(ctx, &tradingv1.StreamExecutionsRequest{FromSequence: 1})
	if err != nil {
		t.Fatal(err)
	}
	var sawExec bool
	for !sawExec {
		m, err := xs.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if o := m.GetOrder(); o != nil && o.ParticipantId != listing.DemoMemberA {
			t.Fatalf("alpha's stream carries %s's order", o.ParticipantId)
		}
		if x := m.GetExecution(); x != nil {
			if x.TradeId != ex.TradeId || x.Side != typev1.Side_SIDE_BUY || !x.Maker || x.ClientOrderId != "A-1" {
				t.Fatalf("alpha's execution %v", x)
			}
			sawExec = true
		}
	}
	resumed, err := e.trading(e.beta).StreamExecutions(ctx, &tradingv1.StreamExecutionsRequest{FromSequence: ex.Sequence})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := resumed.Recv(); err != nil || m.Sequence != ex.Sequence {
		t.Fatalf("resumed stream starts with %v %v, want sequence %d", m, err, ex.Sequence)
	}
	tk, err := e.md(e.beta).GetTicker(ctx, &marketdatav1.GetTickerRequest{Symbol: cotton})
	if err != nil || tk.Ticker.LastPrice.GetAmount() != "15000.00" || tk.Ticker.Volume != "10" {
		t.Fatalf("ticker %v %v", tk, err)
	}
	trades, err := e.md(e.beta).ListTrades(ctx, &marketdatav1.ListTradesRequest{Symbol: cotton})
	if err != nil || len(trades.Trades) != 1 {
		t.Fatalf("trades %v %v", trades, err)
	}
}

func TestIsolationAndRejects(t *testing.T) {
	e := newEnv(t, shanghai(10, 0))
	ctx := context.Background()
	e.waitPhase(t, cotton, tradingv1.InstrumentPhase_INSTRUMENT_PHASE_CONTINUOUS)
	e.fund(t)
	a, b := e.trading(e.alpha), e.trading(e.beta)
	place := func(c tradingv1.TradingServiceClient, id, price, qty string, side typev1.Side) (*tradingv1.PlaceOrderResponse, error) {
		return c.PlaceOrder(ctx, &tradingv1.PlaceOrderRequest{ClientOrderId: id, Symbol: cotton, Side: side,
			TimeInForce: tradingv1.TimeInForce_TIME_IN_FORCE_GOOD_TILL_CANCELLED, Price: cny(price), Quantity: qty})
	}
	mine, err := place(a, "A-1", "14900", "5", typev1.Side_SIDE_BUY)
	if err != nil {
		t.Fatal(err)
	}
	id := mine.Order.OrderId
	// Another member's order is exactly like a missing one.
	_, err = b.GetOrder(ctx, &tradingv1.GetOrderRequest{OrderId: id})
	wantStatus(t, err, codes.NotFound, "")
	_, err = b.GetOrder(ctx, &tradingv1.GetOrderRequest{OrderId: id + 1000})
	wantStatus(t, err, codes.NotFound, "")
	_, err = b.CancelOrder(ctx, &tradingv1.CancelOrderRequest{OrderId: id})
	wantStatus(t, err, codes.NotFound, "")
	_, err = b.ReplaceOrder(ctx, &tradingv1.ReplaceOrderRequest{OrderId: id, Symbol: cotton, Price: cny("14905")})
	wantStatus(t, err, codes.NotFound, "")
	if l, err := b.ListOrders(ctx, &tradingv1.ListOrdersRequest{}); err != nil || len(l.Orders) != 0 {
		t.Fatalf("beta sees %v %v", l, err)
	}
	if _, err := a.GetOrder(ctx, &tradingv1.GetOrderRequest{OrderId: id}); err != nil {
		t.Fatal(err)
	}

	// Repeating a client order id with the same content returns the order;
	// with different content it is refused.
	rep, err := place(a, "A-1", "14900", "5", typev1.Side_SIDE_BUY)
	if err != nil || rep.Order.OrderId != id {
		t.Fatalf("repeat: %v %v", rep, err)
	}
	_, err = place(a, "A-1", "14905", "5", typev1.Side_SIDE_BUY)
	wantStatus(t, err, codes.InvalidArgument, "REJECT_REASON_DUPLICATE_CLIENT_ORDER_ID")

	for _, c := range []struct {
		name, price, qty, symbol string
		code                     codes.Code
		reason                   string
	}{
		{"off tick", "14901", "5", cotton, codes.InvalidArgument, "REJECT_REASON_PRICE_OFF_TICK"},
		{"outside band", "16000", "5", cotton, codes.InvalidArgument, "REJECT_REASON_PRICE_OUTSIDE_BAND"},
		{"not whole lots", "15000", "7", cotton, codes.InvalidArgument, "REJECT_REASON_QUANTITY_NOT_WHOLE_LOTS"},
		{"zero", "15000", "0", cotton, codes.InvalidArgument, "REJECT_REASON_QUANTITY_NOT_POSITIVE"},
		{"negative", "15000", "-5", cotton, codes.InvalidArgument, "REJECT_REASON_QUANTITY_NOT_POSITIVE"},
		{"unknown instrument", "15000", "5", "NOPE", codes.InvalidArgument, "REJECT_REASON_UNKNOWN_INSTRUMENT"},
		{"insufficient funds", "15000", "500", cotton, codes.FailedPrecondition, "REJECT_REASON_INSUFFICIENT_FUNDS"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := a.PlaceOrder(ctx, &tradingv1.PlaceOrderRequest{ClientOrderId: "R-" + c.name, Symbol: c.symbol,
				Side: typev1.Side_SIDE_BUY, Price: cny(c.price), Quantity: c.qty})
			wantStatus(t, err, c.code, c.reason)
		})
	}
	_, err = a.PlaceOrder(ctx, &tradingv1.PlaceOrderRequest{ClientOrderId: "R-usd", Symbol: cotton, Side: typev1.Side_SIDE_BUY,
		Price: &typev1.Money{Currency: "USD", Amount: "15000"}, Quantity: "5"})
	wantStatus(t, err, codes.InvalidArgument, "REJECT_REASON_WRONG_CURRENCY")
	_, err = a.PlaceOrder(ctx, &tradingv1.PlaceOrderRequest{ClientOrderId: "S-1", Symbol: cotton, Side: typev1.Side_SIDE_SELL,
		Price: cny("15000"), Quantity: "5"})
	wantStatus(t, err, codes.FailedPrecondition, "REJECT_REASON_INSUFFICIENT_POSITION")

	// Halted: order entry refused, cancels work.
	if _, err := e.coreSvc().SetInstrumentPhase(ctx, &tradingv1.SetInstrumentPhaseRequest{Symbol: cotton,
		Phase: tradingv1.InstrumentPhase_INSTRUMENT_PHASE_HALTED}); err != nil {
		t.Fatal(err)
	}
	_, err = place(a, "A-2", "14900", "5", typev1.Side_SIDE_BUY)
	wantStatus(t, err, codes.FailedPrecondition, "REJECT_REASON_WRONG_PHASE")
	time.Sleep(60 * time.Millisecond) // scheduler ticks do not resume a halt
	_, err = place(a, "A-2", "14900", "5", typev1.Side_SIDE_BUY)
	wantStatus(t, err, codes.FailedPrecondition, "REJECT_REASON_WRONG_PHASE")
	if c, err := a.CancelOrder(ctx, &tradingv1.CancelOrderRequest{ClientOrderId: "A-1"}); err != nil ||
		c.Order.Status != tradingv1.OrderStatus_ORDER_STATUS_CANCELLED {
		t.Fatalf("cancel while halted: %v %v", c, err)
	}
	// Members may not call the core service; the operator's phase call is
	// operator-only.
	_, err = tradingv1.NewCoreServiceClient(e.alpha).CreditFunds(ctx, &tradingv1.CreditFundsRequest{IdempotencyKey: "x",
		ParticipantId: listing.DemoMemberA, Amount: cny("1")})
	wantStatus(t, err, codes.PermissionDenied, "")
}

func TestOrderEntryStream(t *testing.T) {
	e := newEnv(t, shanghai(10, 0))
	ctx := context.Background()
	e.waitPhase(t, cotton, tradingv1.InstrumentPhase_INSTRUMENT_PHASE_CONTINUOUS)
	e.fund(t)
	st, err := e.trading(e.alpha).OrderEntry(ctx)
	if err != nil {
		t.Fatal(err)
	}
	send := func(id uint64, req *tradingv1.OrderEntryRequest) {
		req.CorrelationId = id
		if err := st.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	place := func(cloid, price string) *tradingv1.OrderEntryRequest {
		return &tradingv1.OrderEntryRequest{Command: &tradingv1.OrderEntryRequest_Place{Place: &tradingv1.PlaceOrderRequest{
			ClientOrderId: cloid, Symbol: cotton, Side: typev1.Side_SIDE_BUY, Price: cny(price), Quantity: "5"}}}
	}
	send(1, place("S-1", "14900"))
	send(2, place("S-2", "14903")) // off tick: an error, the stream stays open
	send(3, place("S-3", "14905"))
	send(4, &tradingv1.OrderEntryRequest{Command: &tradingv1.OrderEntryRequest_MassCancel{MassCancel: &tradingv1.MassCancelRequest{}}})
	got := map[uint64]*tradingv1.OrderEntryResponse{}
	for len(got) < 4 {
		r, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		got[r.CorrelationId] = r
	}
	if got[1].GetPlace() == nil || got[3].GetPlace() == nil {
		t.Fatalf("places: %v %v", got[1], got[3])
	}
	if ce := got[2].GetError(); ce == nil || ce.Reason != tradingv1.RejectReason_REJECT_REASON_PRICE_OFF_TICK ||
		codes.Code(ce.Code) != codes.InvalidArgument || ce.Field != "price" {
		t.Fatalf("error response %v", got[2])
	}
	if mc := got[4].GetMassCancel(); mc == nil || mc.Cancelled != 2 {
		t.Fatalf("mass cancel %v", got[4])
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after close: %v", err)
	}
}

// TestOrderEntryBatchStream sends requests many to a message: each is
// handled as if sent alone, answered in order, several answers to a
// message; a message that does not decode ends the stream and changes
// nothing.
func TestOrderEntryBatchStream(t *testing.T) {
	e := newEnv(t, shanghai(10, 0))
	ctx := context.Background()
	e.waitPhase(t, cotton, tradingv1.InstrumentPhase_INSTRUMENT_PHASE_CONTINUOUS)
	e.fund(t)
	st, err := e.trading(e.alpha).OrderEntryBatch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	place := func(id uint64, cloid, price string) *tradingv1.OrderEntryRequest {
		return &tradingv1.OrderEntryRequest{CorrelationId: id, Command: &tradingv1.OrderEntryRequest_Place{Place: &tradingv1.PlaceOrderRequest{
			ClientOrderId: cloid, Symbol: cotton, Side: typev1.Side_SIDE_BUY, Price: cny(price), Quantity: "5"}}}
	}
	// An empty message is answered with nothing: the first answer is to
	// the next message's first request.
	if err := st.Send(&tradingv1.OrderEntryBatchRequest{}); err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&tradingv1.OrderEntryBatchRequest{Requests: []*tradingv1.OrderEntryRequest{
		place(1, "B-1", "14900"),
		place(2, "B-2", "14903"), // off tick: an error, the stream stays open
		place(3, "B-3", "14905"),
		{CorrelationId: 4},       // no command
		place(5, "B-1", "14900"), // the same client order id: the original result
	}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&tradingv1.OrderEntryBatchRequest{Requests: []*tradingv1.OrderEntryRequest{
		{CorrelationId: 6, Command: &tradingv1.OrderEntryRequest_MassCancel{MassCancel: &tradingv1.MassCancelRequest{}}},
	}}); err != nil {
		t.Fatal(err)
	}
	var got []*tradingv1.OrderEntryResponse
	for len(got) < 6 {
		r, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Responses) == 0 {
			t.Fatal("an answer message without answers")
		}
		got = append(got, r.Responses...)
	}
	for i, r := range got {
		if r.CorrelationId != uint64(i+1) {
			t.Fatalf("answer %d has correlation id %d: answers must come in request order", i, r.CorrelationId)
		}
	}
	if got[0].GetPlace() == nil || got[2].GetPlace() == nil {
		t.Fatalf("places: %v %v", got[0], got[2])
	}
	if ce := got[1].GetError(); ce == nil || ce.Reason != tradingv1.RejectReason_REJECT_REASON_PRICE_OFF_TICK ||
		codes.Code(ce.Code) != codes.InvalidArgument || ce.Field != "price" {
		t.Fatalf("off tick: %v", got[1])
	}
	if ce := got[3].GetError(); ce == nil || codes.Code(ce.Code) != codes.InvalidArgument || ce.Field != "command" {
		t.Fatalf("no command: %v", got[3])
	}
	if p := got[4].GetPlace(); p == nil || p.Order.OrderId != got[0].GetPlace().Order.OrderId {
		t.Fatalf("resubmitted client order id: %v, first %v", got[4], got[0])
	}
	if mc := got[5].GetMassCancel(); mc == nil || mc.Cancelled != 2 {
		t.Fatalf("mass cancel %v", got[5])
	}
	// Many refusals in one message (answered by the receiver, not the
	// sequencer) between places: still every answer in order.
	var many tradingv1.OrderEntryBatchRequest
	for i := range 300 {
		req := &tradingv1.OrderEntryRequest{CorrelationId: uint64(100 + i)}
		if i%50 == 0 {
			req = place(uint64(100+i), fmt.Sprint("M-", i), "14900")
		}
		many.Requests = append(many.Requests, req)
	}
	if err := st.Send(&many); err != nil {
		t.Fatal(err)
	}
	for want := uint64(100); want < 400; {
		r, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range r.Responses {
			if a.CorrelationId != want || (want%50 == 0) != (a.GetPlace() != nil) {
				t.Fatalf("answer %v, want correlation id %d", a, want)
			}
			want++
		}
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after close: %v", err)
	}

	// A message whose second request does not decode: the stream ends
	// with the status gRPC gives an undecodable message, and the first
	// request was not placed either.
	raw, err := e.trading(e.alpha).OrderEntryBatch(ctx, grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		t.Fatal(err)
	}
	good, err := proto.Marshal(place(7, "B-7", "14900"))
	if err != nil {
		t.Fatal(err)
	}
	var msg []byte
	msg = protowire.AppendTag(msg, 1, protowire.BytesType)
	msg = protowire.AppendBytes(msg, good)
	msg = protowire.AppendTag(msg, 1, protowire.BytesType)
	msg = protowire.AppendBytes(msg, []byte{0x12, 0x05, 0x0a}) // a place cut short
	if err := raw.SendMsg(&msg); err != nil {
		t.Fatal(err)
	}
	var answer []byte
	if err := raw.RecvMsg(&answer); status.Code(err) != codes.Internal {
		t.Fatalf("undecodable batch: %v", err)
	}
	_, err = e.trading(e.alpha).GetOrder(ctx, &tradingv1.GetOrderRequest{ClientOrderId: "B-7"})
	wantStatus(t, err, codes.NotFound, "")

	// More requests in one message than a stream may have in flight: the
	// stream ends with InvalidArgument on "requests", none placed.
	over, err := e.trading(e.alpha).OrderEntryBatch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var big tradingv1.OrderEntryBatchRequest
	for i := range 1025 {
		big.Requests = append(big.Requests, place(uint64(i), fmt.Sprint("O-", i), "14900"))
	}
	if err := over.Send(&big); err != nil {
		t.Fatal(err)
	}
	_, err = over.Recv()
	wantStatus(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
	if !wantBadField(err, "requests") {
		t.Fatalf("no field violation on requests: %v", err)
	}
	_, err = e.trading(e.alpha).GetOrder(ctx, &tradingv1.GetOrderRequest{ClientOrderId: "O-0"})
	wantStatus(t, err, codes.NotFound, "")
}

// wantBadField reports whether err carries a BadRequest naming field.
func wantBadField(err error, field string) bool {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.FieldViolations {
				if v.Field == field {
					return true
				}
			}
		}
	}
	return false
}

// rawCodec sends and receives messages as their wire bytes (*[]byte).
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func TestScheduleDrivesPhases(t *testing.T) {
	e := newEnv(t, shanghai(8, 50))
	ctx := context.Background()
	e.waitPhase(t, cotton, tradingv1.InstrumentPhase_INSTRUMENT_PHASE_CLOSED)
	e.fund(t)
	e.clock.Set(shanghai(8, 56))
	e.waitPhase(t, cotton, tradingv1.InstrumentPhase_INSTRUMENT_PHASE_PRE_OPEN)
	a, b := e.trading(e.alpha), e.trading(e.beta)
	if _, err := a.PlaceOrder(ctx, &tradingv1.PlaceOrderRequest{ClientOrderId: "A", Symbol: cotton, Side: typev1.Side_SIDE_BUY,
		Price: cny("15100"), Quantity: "10", TimeInForce: tradingv1.TimeInForce_TIME_IN_FORCE_DAY}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.PlaceOrder(ctx, &tradingv1.PlaceOrderRequest{ClientOrderId: "B", Symbol: cotton, Side: typev1.Side_SIDE_SELL,
		Price: cny("14950"), Quantity: "5", TimeInForce: tradingv1.TimeInForce_TIME_IN_FORCE_DAY}); err != nil {
		t.Fatal(err)
	}
	// The ticker shows the indicative uncross.
	deadline := time.Now().Add(5 * time.Second)
	for {
		tk, err := e.md(e.alpha).GetTicker(ctx, &marketdatav1.GetTickerRequest{Symbol: cotton})
		if err == nil && tk.Ticker.IndicativeQuantity == "5" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no indicative price: %v %v", tk, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// 09:00: continuous, the auction uncrosses.
	e.clock.Set(shanghai(9, 1))
	e.waitPhase(t, cotton, tradingv1.InstrumentPhase_INSTRUMENT_PHASE_CONTINUOUS)
	o, err := b.GetOrder(ctx, &tradingv1.GetOrderRequest{ClientOrderId: "B"})
	if err != nil || o.Order.Status != tradingv1.OrderStatus_ORDER_STATUS_FILLED {
		t.Fatalf("seller after the uncross: %v %v", o, err)
	}
	// After the close the buyer's day order has expired.
	e.clock.Set(shanghai(15, 30))
	e.waitPhase(t, cotton, tradingv1.InstrumentPhase_INSTRUMENT_PHASE_CLOSED)
	deadline = time.Now().Add(5 * time.Second)
	for {
		l, err := a.ListOrders(ctx, &tradingv1.ListOrdersRequest{OpenOnly: true})
		if err == nil && len(l.Orders) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("day order still open after the close: %v %v", l, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	bal, err := a.GetBalances(ctx, &tradingv1.GetBalancesRequest{})
	if err != nil || bal.Funds[0].Reserved != "0.00" || !strings.HasPrefix(bal.Funds[0].Total, "9") {
		t.Fatalf("balances after the close %v %v", bal, err)
	}
}

// TestSlowSubscriberCutOff: a market data subscriber that stops reading is
// cut off with RESOURCE_EXHAUSTED once its buffer overflows, while order
// entry goes on unhindered.
func TestSlowSubscriberCutOff(t *testing.T) {
	e := newEnv(t, shanghai(10, 0))
	ctx := context.Background()
	e.waitPhase(t, cotton, tradingv1.InstrumentPhase_INSTRUMENT_PHASE_CONTINUOUS)
	e.fund(t)
	if _, err := e.coreSvc().CreditFunds(ctx, &tradingv1.CreditFundsRequest{IdempotencyKey: "bank/dep/big",
		ParticipantId: listing.DemoMemberA, Amount: cny("10000000000.00")}); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// A fixed 64 KiB flow control window: the client's transport buffers
	// little, so the server-side buffer is what fills.
	slow := e.dial(e.creds.Members[1].Token, grpc.WithInitialWindowSize(1<<16), grpc.WithInitialConnWindowSize(1<<16))
	stream, err := e.md(slow).StreamMarketData(sctx, &marketdatav1.StreamMarketDataRequest{Symbol: cotton})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	// Do not read while thousands of book changes are published, one per
	// call (each call is its own batch, so nothing coalesces).
	a := e.trading(e.alpha)
	for i := range 9000 {
		price := fmt.Sprint(15100 + 5*(i%100)) // within the published 100 levels
		if _, err := a.PlaceOrder(ctx, &tradingv1.PlaceOrderRequest{ClientOrderId: fmt.Sprint("slow-", i), Symbol: cotton,
			Side: typev1.Side_SIDE_BUY, TimeInForce: tradingv1.TimeInForce_TIME_IN_FORCE_GOOD_TILL_CANCELLED,
			Price: cny(price), Quantity: "5"}); err != nil {
			t.Fatalf("order %d: %v", i, err)
		}
	}
	// Now read: the buffered messages, then the cut-off.
	for got := 0; ; got++ {
		_, err := stream.Recv()
		if err != nil {
			t.Logf("%d messages before the end", got)
			wantStatus(t, err, codes.ResourceExhausted, "SLOW_CONSUMER")
			return
		}
	}
}

// TestLocalListing runs the matching service on an in-process listing
// server (as bcx dev may): the demo instruments are defined in the core.
func TestLocalListing(t *testing.T) {
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := listing.NewStore(ctx, sqlstoretest.OpenSQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := listing.NewServer(store, money.NewRegistry(), listing.NewVerifier(store, time.Minute), logger)
	if _, err := listing.SeedDemo(ctx, srv, false); err != nil {
		t.Fatal(err)
	}
	client := matching.LocalListing(srv, auth.Principal{ParticipantID: "SVC-MATCHING", Role: typev1.Role_ROLE_SERVICE})
	svc, err := matching.New(matching.Config{DataDir: t.TempDir(), Listing: client, ScheduleTick: -1, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(rctx) }()
	defer func() { cancel(); <-done; svc.Close() }()
	select {
	case <-svc.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	if err := svc.SyncInstruments(ctx); err != nil {
		t.Fatal(err)
	}
	seq, hash, err := svc.TakeSnapshot(ctx)
	if err != nil || seq < 3 || hash == 0 {
		t.Fatalf("after syncing the demo instruments: seq %d hash %x %v", seq, hash, err)
	}
}
