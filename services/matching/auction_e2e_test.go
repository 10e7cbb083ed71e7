package matching_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	"github.com/bcx-exchange/bcx/services/listing"
)

// TestOneSidedAuctionTrade: over gRPC, a seller auctions 10 t from a
// reserve; a bid below it is refused with its reason; the best bid wins at
// its price when the window ends, and the seller alone sees the results.
func TestOneSidedAuctionTrade(t *testing.T) {
	e := newEnv(t, shanghai(10, 0))
	ctx := context.Background()
	e.waitPhase(t, cotton, tradingv1.InstrumentPhase_INSTRUMENT_PHASE_CONTINUOUS)
	e.fund(t)
	seller, buyer := e.trading(e.beta), e.trading(e.alpha)
	started, err := seller.StartAuction(ctx, &tradingv1.StartAuctionRequest{ClientOrderId: "AU-1", Symbol: cotton, Quantity: "10",
		ReservePrice: cny("15000"), MinIncrement: cny("10"), EndsAt: timestamppb.New(e.clock.Now().Add(time.Minute)),
		ExtensionSeconds: 30, ReceiptNumbers: []string{"WR-1"}})
	if err != nil {
		t.Fatal(err)
	}
	a := started.Auction
	if a.Status != tradingv1.AuctionStatus_AUCTION_STATUS_OPEN || a.SellerParticipantId != listing.DemoMemberB || a.ReservePrice.Amount != "15000.00" {
		t.Fatalf("started %v", a)
	}
	_, err = buyer.PlaceAuctionBid(ctx, &tradingv1.PlaceAuctionBidRequest{ClientOrderId: "BID-0", AuctionId: a.AuctionId, Price: cny("14995"), Quantity: "10"})
	wantStatus(t, err, codes.InvalidArgument, "REJECT_REASON_BID_TOO_LOW")
	bid, err := buyer.PlaceAuctionBid(ctx, &tradingv1.PlaceAuctionBidRequest{ClientOrderId: "BID-1", AuctionId: a.AuctionId, Price: cny("15050"), Quantity: "10"})
	if err != nil {
		t.Fatal(err)
	}
	if bid.Auction.BestBid.GetAmount() != "15050.00" || bid.Auction.SellerParticipantId != "" {
		t.Fatalf("after the bid %v", bid.Auction)
	}
	e.clock.Set(e.clock.Now().Add(2 * time.Minute))
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := seller.GetAuction(ctx, &tradingv1.GetAuctionRequest{AuctionId: a.AuctionId})
		if err == nil && got.Auction.Status == tradingv1.AuctionStatus_AUCTION_STATUS_CLOSED {
			if len(got.Auction.Results) != 1 || got.Auction.Results[0].Price.Amount != "15050.00" || got.Auction.Results[0].Quantity != "10" {
				t.Fatalf("results %v", got.Auction.Results)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("auction never closed: %v %v", got, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got, err := buyer.GetAuction(ctx, &tradingv1.GetAuctionRequest{AuctionId: a.AuctionId}); err != nil || len(got.Auction.Results) != 0 {
		t.Fatalf("a bidder sees the seller's results: %v %v", got, err)
	}
	bal, err := buyer.GetBalances(ctx, &tradingv1.GetBalancesRequest{})
	if err != nil || bal.Funds[0].Total != "849500.00" || bal.Funds[0].Reserved != "0.00" {
		t.Fatalf("buyer %v %v", bal, err)
	}
	_, err = buyer.GetAuction(ctx, &tradingv1.GetAuctionRequest{AuctionId: 424242})
	wantStatus(t, err, codes.NotFound, "")
}
