package receipts_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"github.com/bcx-exchange/bcx/pkg/money"
	"github.com/bcx-exchange/bcx/pkg/server"
	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
	receiptsv1 "github.com/bcx-exchange/bcx/proto/bcx/receipts/v1"
	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/listing"
	"github.com/bcx-exchange/bcx/services/receipts"
	"github.com/bcx-exchange/bcx/services/settlement"
	"github.com/bcx-exchange/bcx/services/settlement/coretest"
)

// fakeSettlement is settlement's internal service as the registry sees it: it
// counts every call, answers with queued failures first, and acknowledges
// (or passes the call on to a real settlement, see forwardTo).
type fakeSettlement struct {
	mu     sync.Mutex
	calls  map[int64]int
	acked  map[int64][]*settlementv1.RecordReceiptsLegRequest
	fail   []error         // answers for the next calls
	down   error           // while set, the answer to every call
	refuse map[int64]error // the answer to every call for a trade
	next   receipts.Settlement
}

func newFakeSettlement() *fakeSettlement {
	return &fakeSettlement{calls: map[int64]int{}, acked: map[int64][]*settlementv1.RecordReceiptsLegRequest{}, refuse: map[int64]error{}}
}

var _ receipts.Settlement = (*fakeSettlement)(nil)

func (f *fakeSettlement) RecordReceiptsLeg(ctx context.Context, in *settlementv1.RecordReceiptsLegRequest, opts ...grpc.CallOption) (*settlementv1.RecordReceiptsLegResponse, error) {
	f.mu.Lock()
	f.calls[in.TradeId]++
	var err error
	switch {
	case f.refuse[in.TradeId] != nil:
		err = f.refuse[in.TradeId]
	case f.down != nil:
		err = f.down
	case len(f.fail) > 0:
		err, f.fail = f.fail[0], f.fail[1:]
	}
	next := f.next
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	resp := &settlementv1.RecordReceiptsLegResponse{}
	if next != nil {
		if resp, err = next.RecordReceiptsLeg(ctx, in, opts...); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	f.acked[in.TradeId] = append(f.acked[in.TradeId], proto.Clone(in).(*settlementv1.RecordReceiptsLegRequest))
	f.mu.Unlock()
	return resp, nil
}

func (f *fakeSettlement) failNext(n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.fail = append(f.fail, err)
	}
}

func (f *fakeSettlement) setDown(err error) { f.mu.Lock(); f.down = err; f.mu.Unlock() }

func (f *fakeSettlement) setRefuse(id int64, err error) {
	f.mu.Lock()
	f.refuse[id] = err
	f.mu.Unlock()
}

func (f *fakeSettlement) forwardTo(s receipts.Settlement) { f.mu.Lock(); f.next = s; f.mu.Unlock() }

// sent returns how many calls were made for a trade and the legs acknowledged.
func (f *fakeSettlement) sent(id int64) (int, []*settlementv1.RecordReceiptsLegRequest) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id], append([]*settlementv1.RecordReceiptsLegRequest(nil), f.acked[id]...)
}

func (f *fakeSettlement) tradesCalled() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int64
	for id := range f.calls {
		out = append(out, id)
	}
	return out
}

// waitAcked waits until settlement has acknowledged a trade's leg and the
// registry has marked it sent, and returns the leg.
func (e *env) waitAcked(id int64) *settlementv1.RecordReceiptsLegRequest {
	e.t.Helper()
	waitFor(e.t, "the goods leg of trade "+itoa(id), func() bool {
		_, acked := e.stl.sent(id)
		return len(acked) > 0 && e.legState(id).state == "sent"
	})
	_, acked := e.stl.sent(id)
	return acked[0]
}

type legRow struct {
	state, weight, reference, lastError string
	attempts                            int
}

// legState is a trade's goods_legs row (state "" if there is none).
func (e *env) legState(id int64) legRow {
	e.t.Helper()
	var l legRow
	err := e.db.QueryRowContext(ctx, `SELECT state, delivered_weight, reference, last_error, attempts FROM goods_legs WHERE trade_id = $1`, id).
		Scan(&l.state, &l.weight, &l.reference, &l.lastError, &l.attempts)
	if err != nil && !strings.Contains(err.Error(), "no rows") {
		e.t.Fatal(err)
	}
	return l
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// idle lets the forwarder run a few passes (its poll is 75 ms in tests).
func idle() { time.Sleep(400 * time.Millisecond) }

// TestGoodsLegs: each trade whose allocations were all delivered reaches
// settlement once, with the net weight of the pieces delivered over all its
// allocations; a trade with a break, or with nothing delivered, does not.
func TestGoodsLegs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.issue(cotton("G-1", "5", "5.1", "4.9", "5.05", "4.95", "5")) // 30 t
		e.deposit(e.alpha, "G-1")
		e.issue(cotton("G-2")) // 5, 5.01, 4.99, 5: 20 t
		e.deposit(e.alpha, "G-2")

		e.trade(1, "10", "G-1", "10")             // B1+B2: 10.1 t
		e.trade(2, "15", "G-1", "5", "G-2", "10") // G-1's B3 (4.9 t) and G-2's B1+B2 (10.01 t)
		// Breaks: an allocation the registry could not honour (the other was
		// delivered); nothing honoured; allocations short of the quantity.
		e.trade(3, "10", "G-2", "5", "NOPE-1", "5")
		e.trade(4, "5", "NOPE-2", "5")
		e.trade(5, "10", "G-1", "5")
		e.trade(6, "0") // no allocations
		e.trade(7, "5", "G-2", "5")

		for _, c := range []struct {
			id     int64
			weight string
		}{{1, "10.1"}, {2, "14.91"}, {7, "5"}} {
			leg := e.waitAcked(c.id)
			if leg.DeliveredWeight != c.weight || leg.Reference != "receipts/trade/"+itoa(c.id) {
				t.Errorf("trade %d: leg %v, want weight %s", c.id, leg, c.weight)
			}
		}
		if n := e.count(`SELECT COUNT(*) FROM deliveries WHERE trade_id IN (3, 5)`); n != 2 {
			t.Fatalf("the broken trades delivered %d allocations, want 2", n)
		}
		if n := e.count(`SELECT COUNT(DISTINCT trade_id) FROM breaks WHERE trade_id IN (3, 4, 5)`); n != 3 {
			t.Fatalf("%d of the broken trades have breaks", n)
		}
		idle()
		for _, id := range []int64{1, 2, 7} {
			if calls, acked := e.stl.sent(id); calls != 1 || len(acked) != 1 {
				t.Errorf("trade %d: %d calls, %d acknowledged; want exactly one", id, calls, len(acked))
			}
		}
		if got := e.stl.tradesCalled(); len(got) != 3 {
			t.Errorf("legs sent for trades %v, want 1, 2 and 7 only", got)
		}
		if n := e.count(`SELECT COUNT(*) FROM goods_legs`); n != 3 {
			t.Errorf("%d goods legs recorded, want 3", n)
		}
	})
}

// TestGoodsLegRetriesAndRestarts: a leg settlement does not acknowledge is
// sent again until it is; one left unacknowledged when the process stops is
// sent by the next; an acknowledged one is never sent again, and a restart
// against a core that replays its whole log records no new legs.
func TestGoodsLegRetriesAndRestarts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.issue(cotton("G-1", "5", "5.1", "4.9", "5.05", "4.95", "5"))
		e.deposit(e.alpha, "G-1")

		e.stl.failNext(3, status.Error(codes.Unavailable, "settlement restarting"))
		e.trade(1, "10", "G-1", "10")
		e.waitAcked(1)
		if calls, acked := e.stl.sent(1); calls != 4 || len(acked) != 1 {
			t.Fatalf("trade 1: %d calls, %d acknowledged; want 4 and 1", calls, len(acked))
		}
		if l := e.legState(1); l.attempts != 4 || l.lastError != "" {
			t.Fatalf("trade 1's leg %+v", l)
		}

		// Settlement is down: the leg waits, and survives the process.
		e.stl.setDown(status.Error(codes.Unavailable, "connection refused"))
		e.trade(2, "5", "G-1", "5")
		waitFor(t, "a failed send", func() bool { return e.legState(2).attempts >= 2 })
		if l := e.legState(2); l.state != "pending" || !strings.Contains(l.lastError, "connection refused") {
			t.Fatalf("trade 2's leg %+v", l)
		}
		e.stopRun()
		e.stl.setDown(nil)
		e.stopRun = e.run(e.newSrv(e.core))
		if leg := e.waitAcked(2); leg.DeliveredWeight != "4.9" {
			t.Fatalf("trade 2's leg %v", leg)
		}
		e.trade(3, "5", "G-1", "5")
		e.waitAcked(3)
		idle()
		if calls, acked := e.stl.sent(1); calls != 4 || len(acked) != 1 {
			t.Fatalf("after a restart trade 1 has %d calls, %d acknowledged", calls, len(acked))
		}
		for _, id := range []int64{2, 3} {
			if _, acked := e.stl.sent(id); len(acked) != 1 {
				t.Fatalf("trade %d acknowledged %d times", id, len(acked))
			}
		}

		// A restart against a core that redelivers everything.
		e.stopRun()
		e.core.ReplayAll = true
		e.stopRun = e.run(e.newSrv(e.core))
		e.trade(1000, "0")
		idle()
		if n := e.count(`SELECT COUNT(*) FROM goods_legs`); n != 3 {
			t.Fatalf("%d goods legs after redelivery", n)
		}
		for id, want := range map[int64]int{1: 4, 2: -1, 3: 1} {
			calls, acked := e.stl.sent(id)
			if len(acked) != 1 || (want >= 0 && calls != want) {
				t.Fatalf("after redelivery trade %d has %d calls, %d acknowledged", id, calls, len(acked))
			}
		}
	})
}

// TestGoodsLegRefused: a leg settlement refuses for good is not sent again;
// it becomes a break for operators, and the legs after it still go.
func TestGoodsLegRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.issue(cotton("G-1", "5", "5.1", "4.9", "5.05", "4.95", "5"))
		e.deposit(e.alpha, "G-1")
		e.stl.setRefuse(1, status.Error(codes.InvalidArgument, "delivered_weight: outside the commodity's tolerance"))
		e.trade(1, "10", "G-1", "10")
		e.trade(2, "5", "G-1", "5")
		e.waitAcked(2)
		waitFor(t, "the refusal", func() bool { return e.legState(1).state == "refused" })
		idle()
		if calls, _ := e.stl.sent(1); calls != 1 {
			t.Fatalf("a refused leg was sent %d times", calls)
		}
		var reason string
		if err := e.db.QueryRowContext(ctx, `SELECT reason FROM breaks WHERE trade_id = 1`).Scan(&reason); err != nil ||
			!strings.Contains(reason, "settlement refused") || !strings.Contains(reason, "tolerance") {
			t.Fatalf("break %q, %v", reason, err)
		}
	})
}

// TestGoodsLegsWithoutSettlement: a registry without a settlement client
// keeps the legs; one with a client sends them later.
func TestGoodsLegsWithoutSettlement(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.issue(cotton("G-1"))
		e.deposit(e.alpha, "G-1")
		e.stopRun()
		cfg := e.cfg
		cfg.Core, cfg.Settlement = e.core, nil
		s, err := receipts.New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		e.stopRun = e.run(s)
		e.trade(1, "10", "G-1", "10")
		idle()
		if l := e.legState(1); l.state != "pending" || l.weight != "10.01" {
			t.Fatalf("leg %+v", l)
		}
		if calls, _ := e.stl.sent(1); calls != 0 {
			t.Fatalf("%d calls without a client", calls)
		}
		e.stopRun()
		e.stopRun = e.run(e.newSrv(e.core))
		if leg := e.waitAcked(1); leg.DeliveredWeight != "10.01" {
			t.Fatalf("leg %v", leg)
		}
	})
}

// TestGoodsLegSettlesTrade: the registry and the real settlement service
// (on its own database, behind the real interceptors, reached with a
// ROLE_SERVICE token), each consuming the same trades. A trade is SETTLED,
// with the over/under-weight settled in cash, whichever service sees it first;
// a delivery settlement refuses (outside the tolerance) becomes a break.
func TestGoodsLegSettlesTrade(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		sctx, cancel := context.WithCancel(ctx)
		svcToken := e.newToken("SVC-RECEIPTS", typev1.Role_ROLE_SERVICE)
		stlCore := coretest.New()
		svc, err := settlement.New(ctx, settlement.Config{DB: e.backend.Open(t), Core: stlCore, Currencies: money.NewRegistry(),
			Listing: listingv1.NewListingServiceClient(e.listingConn(svcToken)), Logger: e.logger,
			OutboxInterval: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		srv := server.New(e.logger, e.verifier, settlement.Policy())
		svc.Register(srv.GRPC)
		lis := bufconn.Listen(1 << 20)
		go func() { _ = srv.GRPC.Serve(lis) }()
		done := make(chan struct{})
		go func() { _ = svc.Run(sctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done; srv.GRPC.Stop() })
		conn := dialer(t, lis)(svcToken)
		e.stl.forwardTo(settlementv1.NewSettlementInternalServiceClient(conn))
		reader := settlementv1.NewSettlementServiceClient(conn)
		status := func(id int64) *settlementv1.TradeSettlement {
			resp, err := reader.GetTradeSettlement(ctx, &settlementv1.GetTradeSettlementRequest{TradeId: id})
			if err != nil {
				return nil
			}
			return resp.Settlement
		}
		settled := func(id int64, adjustment string) {
			t.Helper()
			waitFor(t, "trade "+itoa(id)+" settled", func() bool {
				ts := status(id)
				return ts != nil && ts.Status == settlementv1.SettlementStatus_SETTLEMENT_STATUS_SETTLED
			})
			if ts := status(id); ts.WeightAdjustment.GetAmount() != adjustment {
				t.Fatalf("trade %d: %v, want adjustment %s", id, ts, adjustment)
			}
		}
		cottonTrade := func(id int64, qty string, lots int64, receipt, weight string) *tradingv1.TradeEvent {
			return &tradingv1.TradeEvent{TradeId: id, Symbol: "CF3128B-QD", Price: &typev1.Money{Currency: "CNY", Amount: "15235"},
				Quantity: qty, Lots: lots, SellerParticipantId: listing.DemoMemberA, BuyerParticipantId: listing.DemoMemberB,
				Allocations: []*tradingv1.ReceiptAllocation{{ReceiptNumber: receipt, Weight: weight}}}
		}
		both := func(first string, tr *tradingv1.TradeEvent) {
			t.Helper()
			toSettlement := func() {
				stlCore.PushTrades(time.Now(), proto.Clone(tr).(*tradingv1.TradeEvent))
				waitFor(t, "trade booked", func() bool { return status(tr.TradeId) != nil })
			}
			toReceipts := func() {
				seq := e.core.Trade(proto.Clone(tr).(*tradingv1.TradeEvent))
				waitFor(t, "trade delivered", func() bool { return e.position() >= seq })
			}
			if first == "settlement" {
				toSettlement()
				toReceipts()
			} else {
				toReceipts()
				e.waitAcked(tr.TradeId) // kept by settlement until it books the trade
				toSettlement()
			}
		}

		e.issue(cotton("G-1", "5", "5.1", "4.9", "5.05", "4.95", "5"))
		e.deposit(e.alpha, "G-1")
		// Booked, then delivered: 10.1 t for 10 t, the buyer pays 0.1 x 15,235.
		both("settlement", cottonTrade(1, "10", 2, "G-1", "10"))
		settled(1, "1523.50")
		// Delivered first: 4.9 t for 5 t, the seller pays 0.1 x 15,235.
		both("receipts", cottonTrade(2, "5", 1, "G-1", "5"))
		settled(2, "-1523.50")

		// A 30 t tank lot delivered for 10 t: far outside the tolerance, refused.
		e.issue(&receiptsv1.Receipt{ReceiptNumber: "O-1", Warehouse: "QD-TANK01", Commodity: "LCO", Grade: "S1200", ProductionDate: "2026-01-05",
			InspectionCertificate: "CIQ-LCO", ExpiryDate: date(60), HolderParticipantId: listing.DemoMemberA, NetWeight: "60",
			Pieces: []*receiptsv1.Piece{{Number: "TK1-LOT1", NetWeight: "30"}, {Number: "TK1-LOT2", NetWeight: "30"}}})
		e.deposit(e.alpha, "O-1")
		both("settlement", &tradingv1.TradeEvent{TradeId: 3, Symbol: "LCO-QD", Quantity: "10", Lots: 1,
			Price: &typev1.Money{Currency: "CNY", Amount: "5600"}, SellerParticipantId: listing.DemoMemberA, BuyerParticipantId: listing.DemoMemberB,
			Allocations: []*tradingv1.ReceiptAllocation{{ReceiptNumber: "O-1", Weight: "10"}}})
		waitFor(t, "the refusal", func() bool { return e.legState(3).state == "refused" })
		if l := e.legState(3); !strings.Contains(l.lastError, "InvalidArgument") || e.count(`SELECT COUNT(*) FROM breaks WHERE trade_id = 3`) != 1 {
			t.Fatalf("trade 3's leg %+v", l)
		}
		if ts := status(3); ts.Status != settlementv1.SettlementStatus_SETTLEMENT_STATUS_PARTIAL {
			t.Fatalf("trade 3: %v", ts)
		}
	})
}
