package matching

import (
	"context"
	"strconv"
	"time"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	"github.com/bcx-exchange/bcx/services/matching/core"
)

// One-sided auctions (竞买): see core/auction.go for the rules. Any member
// may read an auction (it is public, like the catalog); the seller's id is
// shown to the seller only, and the results (executions) too.

func startAuctionCommand(p auth.Principal, reg *registry, req *tradingv1.StartAuctionRequest, cmd *core.Command) error {
	if err := checkClientOrderID("client_order_id", req.ClientOrderId, true); err != nil {
		return err
	}
	d, _, ok := reg.instrument(req.Symbol)
	if !ok {
		return unknownInstrument(req.Symbol)
	}
	qty, err := parseLots("quantity", req.Quantity, d)
	if err != nil {
		return err
	}
	reserve, err := parsePrice("reserve_price", req.ReservePrice, d)
	if err != nil {
		return err
	}
	var inc int64 = 1
	if req.MinIncrement != nil && req.MinIncrement.Amount != "" {
		if inc, err = parsePrice("min_increment", req.MinIncrement, d); err != nil {
			return err
		}
	}
	var starts int64 // 0: when the core takes it, so a retry is the same request
	if req.StartsAt != nil {
		if err := req.StartsAt.CheckValid(); err != nil || !unixNanoFits(req.StartsAt.AsTime()) {
			return rpcerr.Invalid("starts_at", "not a valid time")
		}
		starts = req.StartsAt.AsTime().UnixNano()
	}
	if req.EndsAt == nil || req.EndsAt.CheckValid() != nil || !unixNanoFits(req.EndsAt.AsTime()) {
		return rpcerr.Invalid("ends_at", "is required")
	}
	if req.ExtensionSeconds < 0 || req.ExtensionSeconds > 3600 {
		return rpcerr.Invalid("extension_seconds", "from 0 to 3600")
	}
	if err := checkReceiptNumbers(req.ReceiptNumbers); err != nil {
		return err
	}
	*cmd = core.Command{Kind: core.CmdStartAuction, Participant: p.Number, ParticipantID: p.ParticipantID, Instrument: d.Number,
		DefVersion: d.Version, ClientOrderID: req.ClientOrderId, Price: reserve, Qty: qty,
		Auction: &core.AuctionSpec{MinIncrement: inc, Starts: starts, Ends: req.EndsAt.AsTime().UnixNano(),
			Extension: int64(req.ExtensionSeconds) * int64(time.Second)},
		Listing: &core.ListingSpec{Receipts: req.ReceiptNumbers}}
	return nil
}

func (t *tradingServer) StartAuction(ctx context.Context, req *tradingv1.StartAuctionRequest) (*tradingv1.StartAuctionResponse, error) {
	var id int64
	_, err := orderCommand(ctx, t, req, func(p auth.Principal, reg *registry, req *tradingv1.StartAuctionRequest, cmd *core.Command) error {
		return startAuctionCommand(p, reg, req, cmd)
	}, func(_ *registry, res *core.Result) struct{} { id = res.Order.ID; return struct{}{} })
	if err != nil {
		return nil, err
	}
	a, err := t.auction(ctx, id)
	if err != nil {
		return nil, err
	}
	return &tradingv1.StartAuctionResponse{Auction: a}, nil
}

func (t *tradingServer) PlaceAuctionBid(ctx context.Context, req *tradingv1.PlaceAuctionBidRequest) (*tradingv1.PlaceAuctionBidResponse, error) {
	if req.AuctionId <= 0 {
		return nil, rpcerr.Invalid("auction_id", "is required")
	}
	// Price and quantity are in the auction's instrument's units.
	v, err := t.auctionOf(ctx, req.AuctionId)
	if err != nil {
		return nil, err
	}
	d := t.s.registry().def(v.Lot.Def)
	qty, err := parseLots("quantity", req.Quantity, d)
	if err != nil {
		return nil, err
	}
	price, err := parsePrice("price", req.Price, d)
	if err != nil {
		return nil, err
	}
	_, err = orderCommand(ctx, t, req, func(p auth.Principal, _ *registry, req *tradingv1.PlaceAuctionBidRequest, cmd *core.Command) error {
		if err := checkClientOrderID("client_order_id", req.ClientOrderId, true); err != nil {
			return err
		}
		*cmd = core.Command{Kind: core.CmdAuctionBid, Participant: p.Number, ParticipantID: p.ParticipantID,
			ClientOrderID: req.ClientOrderId, OrderID: req.AuctionId, Price: price, Qty: qty}
		return nil
	}, func(*registry, *core.Result) struct{} { return struct{}{} })
	if err != nil {
		return nil, err
	}
	a, err := t.auction(ctx, req.AuctionId)
	if err != nil {
		return nil, err
	}
	return &tradingv1.PlaceAuctionBidResponse{Auction: a}, nil
}

func (t *tradingServer) GetAuction(ctx context.Context, req *tradingv1.GetAuctionRequest) (*tradingv1.GetAuctionResponse, error) {
	a, err := t.auction(ctx, req.AuctionId)
	if err != nil {
		return nil, err
	}
	return &tradingv1.GetAuctionResponse{Auction: a}, nil
}

// auctionOf reads an auction from the core; a missing one is NotFound.
func (t *tradingServer) auctionOf(ctx context.Context, id int64) (core.AuctionView, error) {
	var v core.AuctionView
	var found bool
	if err := t.s.query(ctx, func(c *core.Core) { v, found = c.Auction(id) }); err != nil {
		return v, err
	}
	if !found {
		return v, rpcerr.NotFound("auction", strconv.FormatInt(id, 10))
	}
	return v, nil
}

// auction reads and renders an auction for the calling member.
func (t *tradingServer) auction(ctx context.Context, id int64) (*tradingv1.Auction, error) {
	p, err := member(ctx)
	if err != nil {
		return nil, err
	}
	v, err := t.auctionOf(ctx, id)
	if err != nil {
		return nil, err
	}
	reg := t.s.registry()
	d := reg.def(v.Lot.Def)
	a := &tradingv1.Auction{AuctionId: v.Lot.ID, Symbol: d.Symbol, Quantity: lotsWeight(d, v.Lot.Qty),
		ReservePrice: priceMoney(d, v.Lot.Price), MinIncrement: priceMoney(d, v.MinIncrement), StartsAt: ts(v.Starts),
		EndsAt: ts(v.Ends), ExtensionSeconds: int32(v.Extension / int64(time.Second)), Status: tradingv1.AuctionStatus_AUCTION_STATUS_OPEN}
	if v.Best != 0 {
		a.BestBid = priceMoney(d, v.Best)
	}
	switch {
	case v.Cancelled:
		a.Status = tradingv1.AuctionStatus_AUCTION_STATUS_CANCELLED
	case v.Closed:
		a.Status = tradingv1.AuctionStatus_AUCTION_STATUS_CLOSED
	}
	if reg.participant(v.Lot.Participant) == p.ParticipantID {
		a.SellerParticipantId = p.ParticipantID
		a.Results = reg.executions(v.Results)
	}
	return a, nil
}
