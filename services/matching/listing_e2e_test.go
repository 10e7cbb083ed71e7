package matching_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/listing"
)

// TestListingTrade: over gRPC, a seller lists 20 t of a named receipt with
// a 10 t minimum take; the catalog shows it (without the seller's name to
// others); a take below the minimum is refused with its reason; a 10 t
// take trades at the listed price, reported as the listing's trade in the
// event log; the rest is withdrawn (twice: the same answer), and an
// expiring listing leaves the catalog at its expiry.
func TestListingTrade(t *testing.T) {
	e := newEnv(t, shanghai(10, 0))
	ctx := context.Background()
	e.waitPhase(t, cotton, tradingv1.InstrumentPhase_INSTRUMENT_PHASE_CONTINUOUS)
	e.fund(t)
	seller, buyer := e.trading(e.beta), e.trading(e.alpha)

	_, err := seller.PostListing(ctx, &tradingv1.PostListingRequest{ClientOrderId: "L-bad", Symbol: cotton, Side: typev1.Side_SIDE_SELL,
		Price: cny("15100"), Quantity: "20", MinTakeQuantity: "10", ReceiptNumbers: []string{"WR-NOT-MINE"}})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
	posted, err := seller.PostListing(ctx, &tradingv1.PostListingRequest{ClientOrderId: "L-1", Symbol: cotton, Side: typev1.Side_SIDE_SELL,
		Price: cny("15100"), Quantity: "20", MinTakeQuantity: "10", ReceiptNumbers: []string{"WR-1"}, Grade: "3128B", Warehouse: "QD-CF01"})
	if err != nil {
		t.Fatal(err)
	}
	l := posted.Listing
	if l.Status != tradingv1.ListingStatus_LISTING_STATUS_OPEN || l.OpenQuantity != "20" || l.MinTakeQuantity != "10" ||
		l.ParticipantId != listing.DemoMemberB || l.Price.Amount != "15100.00" {
		t.Fatalf("posted %v", l)
	}
	found, err := buyer.SearchListings(ctx, &tradingv1.SearchListingsRequest{Symbol: cotton, Grade: "3128B", Side: typev1.Side_SIDE_SELL})
	if err != nil || len(found.Listings) != 1 || found.Listings[0].ListingId != l.ListingId || found.Listings[0].ParticipantId != "" {
		t.Fatalf("catalog %v %v", found, err)
	}
	if none, err := buyer.SearchListings(ctx, &tradingv1.SearchListingsRequest{Warehouse: "ELSEWHERE"}); err != nil || len(none.Listings) != 0 {
		t.Fatalf("filtered catalog %v %v", none, err)
	}
	_, err = buyer.TakeListing(ctx, &tradingv1.TakeListingRequest{ClientOrderId: "T-1", ListingId: l.ListingId, Quantity: "5"})
	wantStatus(t, err, codes.InvalidArgument, "REJECT_REASON_MIN_QUANTITY_UNFILLED")
	_, err = buyer.TakeListing(ctx, &tradingv1.TakeListingRequest{ClientOrderId: "T-1", ListingId: 999, Quantity: "10"})
	wantStatus(t, err, codes.NotFound, "")

	events, err := e.coreSvc().SubscribeEvents(ctx, &tradingv1.SubscribeEventsRequest{FromSequence: 1})
	if err != nil {
		t.Fatal(err)
	}
	took, err := buyer.TakeListing(ctx, &tradingv1.TakeListingRequest{ClientOrderId: "T-1", ListingId: l.ListingId, Quantity: "10"})
	if err != nil {
		t.Fatal(err)
	}
	if len(took.Executions) != 1 || took.Executions[0].Price.Amount != "15100.00" || took.Executions[0].Quantity != "10" ||
		took.Listing.OpenQuantity != "10" || took.Listing.ParticipantId != "" {
		t.Fatalf("take %v", took)
	}
	for {
		ev, err := events.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if tr := ev.GetTrade(); tr != nil {
			if tr.ListingId != l.ListingId || tr.BuyerParticipantId != listing.DemoMemberA || len(tr.Allocations) != 1 ||
				tr.Allocations[0].ReceiptNumber != "WR-1" {
				t.Fatalf("trade event %v", tr)
			}
			break
		}
	}
	bal, err := buyer.GetBalances(ctx, &tradingv1.GetBalancesRequest{})
	if err != nil || bal.Funds[0].Total != "849000.00" {
		t.Fatalf("buyer paid %v %v", bal, err)
	}

	w, err := seller.WithdrawListing(ctx, &tradingv1.WithdrawListingRequest{IdempotencyKey: "w-1", ListingId: l.ListingId})
	if err != nil || w.Listing.Status != tradingv1.ListingStatus_LISTING_STATUS_WITHDRAWN || w.Listing.OpenQuantity != "0" {
		t.Fatalf("withdraw %v %v", w, err)
	}
	if w, err = seller.WithdrawListing(ctx, &tradingv1.WithdrawListingRequest{IdempotencyKey: "w-1", ListingId: l.ListingId}); err != nil ||
		w.Listing.Status != tradingv1.ListingStatus_LISTING_STATUS_WITHDRAWN {
		t.Fatalf("second withdraw %v %v", w, err)
	}
	_, err = buyer.WithdrawListing(ctx, &tradingv1.WithdrawListingRequest{IdempotencyKey: "w-2", ListingId: l.ListingId})
	wantStatus(t, err, codes.NotFound, "")

	// A buy listing expiring a minute from now leaves the catalog then.
	bl, err := buyer.PostListing(ctx, &tradingv1.PostListingRequest{ClientOrderId: "L-2", Symbol: cotton, Side: typev1.Side_SIDE_BUY,
		Price: cny("15000"), Quantity: "5", ExpiresAt: timestamppb.New(e.clock.Now().Add(time.Minute))})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Set(e.clock.Now().Add(2 * time.Minute))
	deadline := time.Now().Add(5 * time.Second)
	for {
		found, err := buyer.SearchListings(ctx, &tradingv1.SearchListingsRequest{Side: typev1.Side_SIDE_BUY})
		if err == nil && len(found.Listings) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("expired listing %d still listed: %v %v", bl.Listing.ListingId, found, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if bal, err := buyer.GetBalances(ctx, &tradingv1.GetBalancesRequest{}); err != nil || bal.Funds[0].Reserved != "0.00" {
		t.Fatalf("expired listing still reserves: %v %v", bal, err)
	}
}

// TestListingCatalogAndRejects: the catalog pages in listing id order and
// filters by commodity; takes and bids in quantities that are not whole
// lots, or bids off the tick, are refused naming the field.
func TestListingCatalogAndRejects(t *testing.T) {
	e := newEnv(t, shanghai(10, 0))
	ctx := context.Background()
	e.waitPhase(t, cotton, tradingv1.InstrumentPhase_INSTRUMENT_PHASE_CONTINUOUS)
	e.fund(t)
	seller, buyer := e.trading(e.beta), e.trading(e.alpha)
	var ids []int64
	for i, p := range []string{"15100", "15105", "15110"} {
		l, err := seller.PostListing(ctx, &tradingv1.PostListingRequest{ClientOrderId: "CAT-" + p, Symbol: cotton,
			Side: typev1.Side_SIDE_SELL, Price: cny(p), Quantity: "5"})
		if err != nil {
			t.Fatalf("listing %d: %v", i, err)
		}
		ids = append(ids, l.Listing.ListingId)
	}
	var got []int64
	token := ""
	for {
		page, err := buyer.SearchListings(ctx, &tradingv1.SearchListingsRequest{Commodity: "CF", PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range page.Listings {
			got = append(got, l.ListingId)
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	if len(got) != 3 || got[0] != ids[0] || got[2] != ids[2] {
		t.Fatalf("catalog pages %v, want %v", got, ids)
	}
	if none, err := buyer.SearchListings(ctx, &tradingv1.SearchListingsRequest{Commodity: "NR"}); err != nil || len(none.Listings) != 0 {
		t.Fatalf("rubber listings %v %v", none, err)
	}
	_, err := buyer.TakeListing(ctx, &tradingv1.TakeListingRequest{ClientOrderId: "T-x", ListingId: ids[0], Quantity: "2.5"})
	wantStatus(t, err, codes.InvalidArgument, "")
	a, err := seller.StartAuction(ctx, &tradingv1.StartAuctionRequest{ClientOrderId: "AU-x", Symbol: cotton, Quantity: "5",
		ReservePrice: cny("15000"), EndsAt: timestamppb.New(e.clock.Now().Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	_, err = buyer.PlaceAuctionBid(ctx, &tradingv1.PlaceAuctionBidRequest{ClientOrderId: "B-x", AuctionId: a.Auction.AuctionId,
		Price: cny("15002"), Quantity: "5"})
	wantStatus(t, err, codes.InvalidArgument, "")
	_, err = buyer.PlaceAuctionBid(ctx, &tradingv1.PlaceAuctionBidRequest{ClientOrderId: "B-y", AuctionId: a.Auction.AuctionId,
		Price: cny("15000"), Quantity: "7"})
	wantStatus(t, err, codes.InvalidArgument, "")
	if got, err := buyer.GetAuction(ctx, &tradingv1.GetAuctionRequest{AuctionId: a.Auction.AuctionId}); err != nil ||
		got.Auction.SellerParticipantId != "" || got.Auction.BestBid != nil {
		t.Fatalf("auction seen by a bidder %v %v", got, err)
	}
}
