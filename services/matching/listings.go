package matching

import (
	"context"
	"strconv"
	"time"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/matching/core"
)

// Listing mode (挂牌/摘牌): see core/listing.go for the rules. The catalog
// shows who posted a listing only to the poster: counterparties see the
// goods, the price and the quantity, and learn the counterparty as for
// any trade, in settlement.

const maxAttr = 64

func postListingCommand(p auth.Principal, reg *registry, req *tradingv1.PostListingRequest, cmd *core.Command) error {
	if err := checkClientOrderID("client_order_id", req.ClientOrderId, true); err != nil {
		return err
	}
	d, _, ok := reg.instrument(req.Symbol)
	if !ok {
		return unknownInstrument(req.Symbol)
	}
	side, err := sideFrom(req.Side)
	if err != nil {
		return err
	}
	qty, err := parseLots("quantity", req.Quantity, d)
	if err != nil {
		return err
	}
	minTake, err := parseOptionalLots("min_take_quantity", req.MinTakeQuantity, d)
	if err != nil {
		return err
	}
	price, err := parsePrice("price", req.Price, d)
	if err != nil {
		return err
	}
	spec := &core.ListingSpec{Grade: req.Grade, Brand: req.Brand, Warehouse: req.Warehouse, ProductionDate: req.ProductionDate}
	for name, v := range map[string]string{"grade": req.Grade, "brand": req.Brand, "warehouse": req.Warehouse, "production_date": req.ProductionDate} {
		if len(v) > maxAttr {
			return rpcerr.Invalid(name, "at most %d bytes", maxAttr)
		}
	}
	if err := checkReceiptNumbers(req.ReceiptNumbers); err != nil {
		return err
	}
	spec.Receipts = req.ReceiptNumbers
	var expires int64
	if req.ExpiresAt != nil {
		if err := req.ExpiresAt.CheckValid(); err != nil || !unixNanoFits(req.ExpiresAt.AsTime()) {
			return rpcerr.Invalid("expires_at", "not a valid time")
		}
		expires = req.ExpiresAt.AsTime().UnixNano()
	}
	*cmd = core.Command{Kind: core.CmdPostListing, Participant: p.Number, ParticipantID: p.ParticipantID, Instrument: d.Number,
		DefVersion: d.Version, ClientOrderID: req.ClientOrderId, Side: side, Price: price, Qty: qty, MinQty: minTake,
		ValidUntil: expires, Listing: spec}
	return nil
}

func checkReceiptNumbers(rcs []string) error {
	if len(rcs) > 100 {
		return rpcerr.Invalid("receipt_numbers", "at most 100 receipts")
	}
	for _, rc := range rcs {
		if rc == "" || len(rc) > maxAttr {
			return rpcerr.Invalid("receipt_numbers", "a receipt number is 1 to %d bytes", maxAttr)
		}
	}
	return nil
}

func takeListingCommand(p auth.Principal, reg *registry, req *tradingv1.TakeListingRequest, cmd *core.Command) error {
	if err := checkClientOrderID("client_order_id", req.ClientOrderId, true); err != nil {
		return err
	}
	if req.ListingId <= 0 {
		return rpcerr.Invalid("listing_id", "is required")
	}
	// Quantities are in the listing's instrument's lots: the core knows
	// the instrument, so the weight is converted against every current
	// definition's lot only after the lookup below.
	*cmd = core.Command{Kind: core.CmdTakeListing, Participant: p.Number, ParticipantID: p.ParticipantID,
		ClientOrderID: req.ClientOrderId, OrderID: req.ListingId}
	return nil
}

func withdrawListingCommand(p auth.Principal, _ *registry, req *tradingv1.WithdrawListingRequest, cmd *core.Command) error {
	if req.ListingId <= 0 {
		return rpcerr.Invalid("listing_id", "is required")
	}
	*cmd = core.Command{Kind: core.CmdWithdrawListing, Participant: p.Number, ParticipantID: p.ParticipantID, OrderID: req.ListingId}
	return nil
}

func (t *tradingServer) PostListing(ctx context.Context, req *tradingv1.PostListingRequest) (*tradingv1.PostListingResponse, error) {
	var spec core.ListingSpec
	var minTake, expires int64
	resp, err := orderCommand(ctx, t, req, func(p auth.Principal, reg *registry, req *tradingv1.PostListingRequest, cmd *core.Command) error {
		err := postListingCommand(p, reg, req, cmd)
		if err == nil {
			spec, minTake, expires = *cmd.Listing, max(cmd.MinQty, 1), cmd.ValidUntil
		}
		return err
	}, func(reg *registry, res *core.Result) *tradingv1.PostListingResponse {
		v := core.ListingView{Order: res.Order, MinTake: minTake, Expires: expires, Spec: spec}
		return &tradingv1.PostListingResponse{Listing: reg.listing(&v, "")}
	})
	if err != nil {
		return nil, err
	}
	if p, _ := member(ctx); resp.Listing != nil {
		resp.Listing.ParticipantId = p.ParticipantID
	}
	return resp, nil
}

func (t *tradingServer) TakeListing(ctx context.Context, req *tradingv1.TakeListingRequest) (*tradingv1.TakeListingResponse, error) {
	p, err := member(ctx)
	if err != nil {
		return nil, err
	}
	// The quantity is a weight in the listing's instrument's lots.
	lv, found, err := t.listingOf(ctx, req.ListingId)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, rpcerr.NotFound("listing", strconv.FormatInt(req.ListingId, 10))
	}
	d := t.s.registry().def(lv.Order.Def)
	qty, err := parseLots("quantity", req.Quantity, d)
	if err != nil {
		return nil, err
	}
	resp, err := orderCommand(ctx, t, req, func(p auth.Principal, reg *registry, req *tradingv1.TakeListingRequest, cmd *core.Command) error {
		if err := takeListingCommand(p, reg, req, cmd); err != nil {
			return err
		}
		cmd.Qty = qty
		return nil
	}, func(reg *registry, res *core.Result) *tradingv1.TakeListingResponse {
		return &tradingv1.TakeListingResponse{Executions: reg.executions(res.Fills)}
	})
	if err != nil {
		return nil, err
	}
	if resp.Listing, err = t.listingFor(ctx, req.ListingId, p.ParticipantID); err != nil {
		return nil, err
	}
	return resp, nil
}

func (t *tradingServer) WithdrawListing(ctx context.Context, req *tradingv1.WithdrawListingRequest) (*tradingv1.WithdrawListingResponse, error) {
	p, err := member(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := orderCommand(ctx, t, req, withdrawListingCommand, func(reg *registry, res *core.Result) *tradingv1.WithdrawListingResponse {
		return &tradingv1.WithdrawListingResponse{}
	})
	if err != nil {
		return nil, err
	}
	if resp.Listing, err = t.listingFor(ctx, req.ListingId, p.ParticipantID); err != nil {
		return nil, err
	}
	return resp, nil
}

// listingOf reads a listing from the core.
func (t *tradingServer) listingOf(ctx context.Context, id int64) (core.ListingView, bool, error) {
	var lv core.ListingView
	var found bool
	err := t.s.query(ctx, func(c *core.Core) { lv, found = c.Listing(id) })
	return lv, found, err
}

// listingFor renders a listing's state now for viewer (nil if it is gone).
func (t *tradingServer) listingFor(ctx context.Context, id int64, viewer string) (*tradingv1.Listing, error) {
	lv, found, err := t.listingOf(ctx, id)
	if err != nil || !found {
		return nil, err
	}
	return t.s.registry().listing(&lv, viewer), nil
}

// SearchListings pages through the open listings, optionally of one
// instrument or commodity, grade, warehouse or side, in listing id order.
func (t *tradingServer) SearchListings(ctx context.Context, req *tradingv1.SearchListingsRequest) (*tradingv1.SearchListingsResponse, error) {
	p, err := member(ctx)
	if err != nil {
		return nil, err
	}
	size, after, err := pageArgs(req.PageSize, req.PageToken)
	if err != nil {
		return nil, err
	}
	reg := t.s.registry()
	inst, err := instrumentFilter(reg, req.Symbol)
	if err != nil {
		return nil, err
	}
	var side core.Side
	if req.Side != typev1.Side_SIDE_UNSPECIFIED {
		if side, err = sideFrom(req.Side); err != nil {
			return nil, err
		}
	}
	commodity := t.s.commodities()
	var vs []core.ListingView
	keep := func(v *core.ListingView) bool {
		d := reg.def(v.Order.Def)
		return (inst == 0 || d.Number == inst) && (req.Side == typev1.Side_SIDE_UNSPECIFIED || v.Order.Side == side) &&
			(req.Commodity == "" || commodity[d.Symbol] == req.Commodity) && (req.Grade == "" || v.Spec.Grade == req.Grade) &&
			(req.Warehouse == "" || v.Spec.Warehouse == req.Warehouse)
	}
	if err := t.s.query(ctx, func(c *core.Core) { vs = c.Listings(after, size+1, keep) }); err != nil {
		return nil, err
	}
	reg = t.s.registry()
	resp := &tradingv1.SearchListingsResponse{}
	for i := range vs[:min(size, len(vs))] {
		resp.Listings = append(resp.Listings, reg.listing(&vs[i], p.ParticipantID))
	}
	if len(vs) > size {
		resp.NextPageToken = strconv.FormatInt(vs[size-1].Order.ID, 10)
	}
	return resp, nil
}

// listing renders a listing; the poster's id only to the poster.
func (r *registry) listing(v *core.ListingView, viewer string) *tradingv1.Listing {
	d := r.def(v.Order.Def)
	l := &tradingv1.Listing{ListingId: v.Order.ID, Symbol: d.Symbol, Side: sideTo(v.Order.Side), Price: priceMoney(d, v.Order.Price),
		Quantity: lotsWeight(d, v.Order.Qty), OpenQuantity: lotsWeight(d, v.Order.Open), MinTakeQuantity: lotsWeight(d, v.MinTake),
		Grade: v.Spec.Grade, Brand: v.Spec.Brand, Warehouse: v.Spec.Warehouse, ProductionDate: v.Spec.ProductionDate,
		ReceiptNumbers: v.Spec.Receipts, Sequence: int64(v.Order.Seq)}
	if owner := r.participant(v.Order.Participant); owner == viewer {
		l.ParticipantId = owner
	}
	switch v.Order.Status {
	case core.StatusNew, core.StatusPartiallyFilled:
		l.Status = tradingv1.ListingStatus_LISTING_STATUS_OPEN
	case core.StatusFilled:
		l.Status = tradingv1.ListingStatus_LISTING_STATUS_FILLED
	case core.StatusExpired:
		l.Status = tradingv1.ListingStatus_LISTING_STATUS_EXPIRED
	default:
		l.Status = tradingv1.ListingStatus_LISTING_STATUS_WITHDRAWN
	}
	if v.Expires != 0 {
		l.ExpiresAt = ts(v.Expires)
	}
	return l
}

// listingExpiryLoop ends listings whose expiry has come: every tick it asks
// the core for the earliest expiry and, once it has passed, sends the
// sequenced expiry command (the core decides by the command's time).
func (s *Service) listingExpiryLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.ScheduleTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var next int64
		if err := s.query(ctx, func(c *core.Core) { next = c.NextListingExpiry() }); err != nil {
			continue
		}
		if next != 0 && next <= s.cfg.Clock().UnixNano() {
			if _, err := s.command(ctx, core.Command{Kind: core.CmdExpireListings}); err != nil && ctx.Err() == nil {
				s.log.Warn("listing expiry failed; retrying", "error", err)
			}
		}
	}
}
