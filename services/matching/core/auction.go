package core

import (
	"cmp"
	"slices"

	"github.com/bcx-exchange/bcx/pkg/orderbook"
)

// One-sided auctions (竞买). A seller offers one lot (Qty lots, from the
// receipts it names or any of its receipts for the instrument) for a time
// window from a reserve price. Buyers bid up: a bid is at least the
// reserve and beats the best bid so far by the minimum increment; a bid
// within the extension of the end moves the end to the bid's time plus
// the extension. When the window ends (CmdExpireListings, sent by the
// service's scheduler) the best bids win at their own prices, highest
// first and earlier first at a price, until the lot is sold; the rest of
// the lot and of the bids is released. Like listings, the lot and the bids
// are orders outside the book that reserve as orders do, and the results
// are filled by the book's fill, so fees, FX, deliveries and trade events
// are the same (trades name the auction, with no aggressor). Auctions are
// started and bid on in the instrument's session phase; one whose window
// ends during a halt closes when the halt ends. They are not FX-funded: a
// window may outlast the day a rate is valid for.

// Bounds on an auction's terms, so that no sum overflows and no auction
// outlives its reason.
const (
	maxAuctionWindow    = 30 * 24 * int64(3600e9)
	maxAuctionExtension = int64(3600e9)
	maxAuctionBids      = 10_000
)

type auctionInfo struct {
	minInc, ext  int64
	starts, ends int64
	best         int64   // best bid, ticks; 0: none yet
	bids         []int32 // open bids' order slots, in bid order
	receipts     []string
	closed       bool
	cancelled    bool   // closed without a sale (amendment, delisting)
	results      []Fill // the seller's fills at the close
}

func (c *Core) startAuction(cmd *Command, res *Result) {
	ii, ok := c.instrumentFor(cmd, res)
	if !ok {
		return
	}
	in := &c.insts[ii]
	d := &c.defs[in.def]
	a := AuctionSpec{}
	if cmd.Auction != nil {
		a = *cmd.Auction
	}
	if a.Starts == 0 {
		a.Starts = c.ts // at entry
	}
	var receipts []string
	if cmd.Listing != nil {
		receipts = cmd.Listing.Receipts
	}
	switch {
	case cmd.Qty <= 0:
		res.refuse(StatusInvalid, RejectQuantityNotPositive, "quantity")
		return
	case cmd.Price <= 0 || !c.inBand(d, cmd.Price):
		res.refuse(StatusInvalid, RejectPriceOutsideBand, "reserve_price")
		return
	case a.MinIncrement < 0 || a.MinIncrement > 2*d.BandTicks+1:
		res.refuse(StatusInvalid, RejectInvalid, "min_increment")
		return
	case a.Starts < c.ts-maxAuctionWindow || a.Starts > c.ts+maxAuctionWindow:
		res.refuse(StatusInvalid, RejectInvalid, "starts_at")
		return
	case a.Ends <= a.Starts || a.Ends <= c.ts || a.Ends-a.Starts > maxAuctionWindow:
		res.refuse(StatusInvalid, RejectInvalid, "ends_at")
		return
	case a.Extension < 0 || a.Extension > maxAuctionExtension:
		res.refuse(StatusInvalid, RejectInvalid, "extension_seconds")
		return
	case cmd.ClientOrderID == "":
		res.refuse(StatusInvalid, RejectInvalid, "client_order_id")
		return
	}
	key := cloidKey{cmd.Participant, cmd.ClientOrderID}
	hash := hashOrder(cmd)
	if c.repeatOrder(key, hash, res) {
		return
	}
	if !c.outsideBookOpen(in, d, d.OneSided, cmd.Qty, res) {
		return
	}
	pi, known := c.partIndex(cmd.Participant)
	if known && c.fundingOf(pi, c.defCur[in.def]) >= 0 {
		res.refuse(StatusRefused, RejectModeNotAllowed, "funding")
		return
	}
	pools, avail, ok := c.namedPools(pi, known, d, receipts, res)
	if !ok {
		return
	}
	if !known || avail < cmd.Qty*d.LotMicro {
		res.refuse(StatusRefused, RejectInsufficientPosition, "")
		return
	}
	slot := c.enterOutsideBook(order{partNum: cmd.Participant, inst: ii, part: pi, def: in.def, side: orderbook.Sell, typ: orderbook.Limit,
		tif: orderbook.GTC, price: cmd.Price, qty: cmd.Qty, fee: in.fee, cloid: cmd.ClientOrderID,
		auc: &auctionInfo{minInc: max(a.MinIncrement, 1), ext: a.Extension, starts: a.Starts, ends: a.Ends, receipts: slices.Clone(receipts)}},
		pools, key, hash)
	c.auctions = append(c.auctions, slot)
	in.listed++
	c.touch(slot)
	c.answerNew(slot, res)
}

// namedPools resolves the receipts a sell listing or auction names: the
// participant's own, qualifying for the instrument, each once. It returns
// their pools (nil: none named, any qualifying pool) and the weight
// available in them.
func (c *Core) namedPools(pi int32, known bool, d *InstrumentDef, receipts []string, res *Result) ([]int32, int64, bool) {
	if !known {
		return nil, 0, true
	}
	if len(receipts) == 0 {
		return nil, c.availableWeight(pi, d.Number), true
	}
	var pools []int32
	var avail int64
	for _, rc := range receipts {
		ps, ok := c.poolByRc[rc]
		if !ok || c.pools[ps].part != pi || !containsInt64(c.pools[ps].insts, d.Number) || slices.Contains(pools, ps) {
			// Another member's receipt answers as a missing one.
			res.refuse(StatusInvalid, RejectInvalid, "receipt_numbers")
			return nil, 0, false
		}
		pools = append(pools, ps)
		avail += c.pools[ps].total - c.pools[ps].reserved
	}
	return pools, avail, true
}

func (c *Core) auctionBid(cmd *Command, res *Result) {
	key, hash, ok := c.enterAgainst(cmd, res, "auction_id")
	if !ok {
		return
	}
	as, ok := c.lookup(cmd.OrderID)
	if !ok || c.orders.at(as).auc == nil {
		res.refuse(StatusNotFound, RejectUnknownOrder, "auction_id")
		return
	}
	ao := c.orders.at(as)
	a := ao.auc
	ii := ao.inst
	in := &c.insts[ii]
	d := &c.defs[in.def]
	switch {
	case a.closed || c.ts < a.starts || c.ts >= a.ends || in.phase != PhaseContinuous:
		res.refuse(StatusRefused, RejectWrongPhase, "auction_id")
		return
	case ao.partNum == cmd.Participant:
		res.refuse(StatusRefused, RejectSelfTrade, "auction_id")
		return
	case cmd.Qty > ao.qty:
		res.refuse(StatusInvalid, RejectTooLarge, "quantity")
		return
	case cmd.Price < ao.price || (a.best != 0 && cmd.Price-a.best < a.minInc):
		res.refuse(StatusInvalid, RejectBidTooLow, "price")
		return
	case len(a.bids) >= maxAuctionBids:
		res.refuse(StatusRefused, RejectBookFull, "")
		return
	case !c.inBand(d, cmd.Price):
		res.refuse(StatusInvalid, RejectPriceOutsideBand, "price")
		return
	case d.Delisted || !d.OneSided:
		res.refuse(StatusRefused, RejectModeNotAllowed, "")
		return
	}
	pi, known := c.partIndex(cmd.Participant)
	cur := c.defCur[in.def]
	if known && c.fundingOf(pi, cur) >= 0 {
		res.refuse(StatusRefused, RejectModeNotAllowed, "funding")
		return
	}
	r, ok := c.buyReserve(d, in.fee, cmd.Price, cmd.Qty)
	if !ok {
		res.refuse(StatusInvalid, RejectTooLarge, "quantity")
		return
	}
	if !known || c.availableFunds(pi, cur) < r {
		res.refuse(StatusRefused, RejectInsufficientFunds, "")
		return
	}
	slot := c.enterOutsideBook(order{partNum: cmd.Participant, inst: ii, part: pi, def: in.def, side: orderbook.Buy, typ: orderbook.Limit,
		tif: orderbook.GTC, price: cmd.Price, qty: cmd.Qty, fee: in.fee, cloid: cmd.ClientOrderID, bidOf: ao.id}, nil, key, hash)
	a.bids = append(a.bids, slot)
	a.best = cmd.Price
	if a.ends-c.ts < a.ext {
		a.ends = c.ts + a.ext
	}
	c.touch(slot)
	c.touch(as)
	c.answerNew(slot, res)
}

// closeAuctions closes the auctions whose window has ended, except during
// their instrument's halt (they close when it ends).
func (c *Core) closeAuctions(res *Result) {
	for i := 0; i < len(c.auctions); {
		s := c.auctions[i]
		o := c.orders.at(s)
		if o.auc.ends <= c.ts && c.insts[o.inst].phase != PhaseHalted {
			c.closeAuction(s, true) // removes it from c.auctions
			res.Changed = true
			continue
		}
		i++
	}
}

// cancelAuctions ends an instrument's auctions without a sale (amendment,
// delisting).
func (c *Core) cancelAuctions(ii int32) {
	for i := 0; i < len(c.auctions); {
		s := c.auctions[i]
		if c.orders.at(s).inst == ii {
			c.orders.at(s).auc.cancelled = true
			c.closeAuction(s, false)
			continue
		}
		i++
	}
}

// closeAuction fills the winning bids (sell is false: none) and releases
// the rest of the lot and of the bids.
func (c *Core) closeAuction(s int32, sell bool) {
	ao := c.orders.at(s)
	a := ao.auc
	bids := slices.Clone(a.bids)
	slices.SortStableFunc(bids, func(x, y int32) int {
		bx, by := c.orders.at(x), c.orders.at(y)
		if bx.price != by.price {
			return cmp.Compare(by.price, bx.price)
		}
		return cmp.Compare(bx.id, by.id)
	})
	evStart := len(c.ev.List)
	c.auction, c.auctionTrade, c.incoming = true, ao.id, -1
	for _, b := range bids {
		bo := c.orders.at(b)
		if q := min(bo.open, c.orders.at(s).open); sell && q > 0 {
			c.fill(ao.inst, &orderbook.Event{Kind: orderbook.EventFill, User: uint64(b), ContraUser: uint64(s), Side: orderbook.Buy,
				Price: bo.price, Qty: q, Remaining: bo.open - q, ContraRemaining: c.orders.at(s).open - q})
		}
		c.release(b)
	}
	c.auction, c.auctionTrade = false, 0
	c.release(s)
	ao = c.orders.at(s)
	ao.auc.closed, ao.auc.bids = true, nil
	for i := evStart; i < len(c.ev.List); i++ {
		if e := &c.ev.List[i]; e.Kind == EvTrade && c.ev.Trade(e).Auction == ao.id {
			t := c.ev.Trade(e)
			ao.auc.results = append(ao.auc.results, Fill{TradeID: t.ID, OrderID: ao.id, ClientID: ao.cloid, Def: t.Def,
				Side: orderbook.Sell, Price: t.Price, Qty: t.Qty, FeeMinor: t.SellerFee, Seq: c.seq, TimeNanos: c.ts, FX: t.SellerFX})
		}
	}
	if i := slices.Index(c.auctions, s); i >= 0 {
		c.auctions = slices.Delete(c.auctions, i, i+1)
		c.insts[ao.inst].listed--
	}
}

// release cancels what is left of an order outside the book.
func (c *Core) release(s int32) {
	o := c.orders.at(s)
	if o.open > 0 {
		o.cancelled += o.open
		o.open = 0
		c.rereserve(s)
	}
	c.touch(s)
}

// AuctionView is a one-sided auction's state for the service.
type AuctionView struct {
	Lot          OrderView // the seller's order: price is the reserve
	MinIncrement int64
	Starts, Ends int64
	Extension    int64
	Best         int64
	Closed       bool
	Cancelled    bool
	Receipts     []string
	Results      []Fill
}

// Auction returns an auction by id.
func (c *Core) Auction(id int64) (AuctionView, bool) {
	s, ok := c.lookup(id)
	if !ok || c.orders.at(s).auc == nil {
		return AuctionView{}, false
	}
	a := c.orders.at(s).auc
	return AuctionView{Lot: c.view(s), MinIncrement: a.minInc, Starts: a.starts, Ends: a.ends, Extension: a.ext, Best: a.best,
		Closed: a.closed, Cancelled: a.cancelled, Receipts: a.receipts, Results: slices.Clone(a.results)}, true
}
