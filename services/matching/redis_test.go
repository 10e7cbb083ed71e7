package matching_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/server"
	marketdatav1 "github.com/bcx-exchange/bcx/proto/bcx/marketdata/v1"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/matching"
	"github.com/bcx-exchange/bcx/services/matching/mdfeed"
)

// memberVerifier lets anyone with the token "reader" read market data.
type memberVerifier struct{}

func (memberVerifier) Verify(_ context.Context, token string) (auth.Principal, error) {
	if token != "reader" {
		return auth.Principal{}, auth.ErrInvalidToken
	}
	return auth.Principal{ParticipantID: "READER", Number: 500, Role: typev1.Role_ROLE_MEMBER}, nil
}

// TestRedisFanOut runs the matching service with the Redis feed and a
// separate gateway server whose MarketDataService reads from Redis only:
// a subscriber of the gateway sees the snapshot, then the trade made on the
// matching service, with gap-free sequence numbers.
func TestRedisFanOut(t *testing.T) {
	url := os.Getenv("BCX_TEST_REDIS_URL")
	if url == "" {
		t.Skip("BCX_TEST_REDIS_URL is not set; skipping the Redis fan-out test")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("bcxtest:%d:%d:", os.Getpid(), time.Now().UnixNano())
	e := newEnv(t, shanghai(10, 0), func(c *matching.Config) { c.Feed = mdfeed.NewRedis(redis.NewClient(opts), prefix) })
	ctx := context.Background()
	e.waitPhase(t, cotton, tradingv1.InstrumentPhase_INSTRUMENT_PHASE_CONTINUOUS)
	e.fund(t)

	// The gateway: another server, another Redis client, no matching core.
	gwFeed := mdfeed.NewRedis(redis.NewClient(opts), prefix)
	defer gwFeed.Close()
	gw := server.New(slog.New(slog.NewTextHandler(io.Discard, nil)), memberVerifier{}, matching.MarketDataPolicy())
	marketdatav1.RegisterMarketDataServiceServer(gw.GRPC, matching.NewMarketDataServer(gwFeed))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gw.GRPC.Serve(lis) }()
	defer gw.GRPC.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.BearerCredentials{Token: "reader", Insecure: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	md := marketdatav1.NewMarketDataServiceClient(conn)
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	stream, err := md.StreamMarketData(sctx, &marketdatav1.StreamMarketDataRequest{Symbol: cotton})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := stream.Recv()
	if err != nil || snap.GetSnapshot() == nil {
		t.Fatalf("snapshot: %v %v", snap, err)
	}
	if _, err := e.trading(e.alpha).PlaceOrder(ctx, &tradingv1.PlaceOrderRequest{ClientOrderId: "A", Symbol: cotton,
		Side: typev1.Side_SIDE_BUY, Price: cny("15010"), Quantity: "5"}); err != nil {
		t.Fatal(err)
	}
	sell, err := e.trading(e.beta).PlaceOrder(ctx, &tradingv1.PlaceOrderRequest{ClientOrderId: "B", Symbol: cotton,
		Side: typev1.Side_SIDE_SELL, Price: cny("15000"), Quantity: "5"})
	if err != nil || len(sell.Executions) != 1 {
		t.Fatalf("sell %v %v", sell, err)
	}
	prev := snap.Sequence
	for {
		m, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if m.Sequence != prev+1 {
			t.Fatalf("sequence %d after %d", m.Sequence, prev)
		}
		prev = m.Sequence
		if tr := m.GetTrade(); tr != nil {
			if tr.TradeId != sell.Executions[0].TradeId || tr.Price.Amount != "15010.00" {
				t.Fatalf("trade %v", tr)
			}
			break
		}
	}
	tk, err := md.GetTicker(ctx, &marketdatav1.GetTickerRequest{Symbol: cotton})
	if err != nil || tk.Ticker.LastPrice.GetAmount() != "15010.00" {
		t.Fatalf("gateway ticker %v %v", tk, err)
	}
}
