package core

import (
	"slices"

	"github.com/bcx-exchange/bcx/pkg/orderbook"
)

// Listing mode (挂牌/摘牌). A participant posts a listing of specific goods
// at a price, with a minimum take; counterparties take all or part of it at
// that price. A listing is an order that does not rest in the book: it
// reserves like one (a sell listing the weight of its receipts, a buy
// listing its notional and maximum fee, FX-funded or not), and a take is
// an immediate order filled against it by the same fill as the book's, so
// fees, FX, deliveries, executions and trade events are the same as in
// continuous trading. Rules:
//   - the instrument must allow listing mode and be in its continuous
//     (session) phase to post or take; a listing can be withdrawn any time;
//   - a take is at least the minimum take, unless it takes all that is
//     left; a participant cannot take its own listing;
//   - a listing expires at its expiry (CmdExpireListings, sent by the
//     service's scheduler; a take after the expiry is refused even before
//     that) or, without one, at the instrument's end of day; an FX-funded
//     listing must be a day listing (its rate is the day's);
//   - an amendment that restarts the book, or a delisting, withdraws the
//     instrument's listings as it cancels its orders.

type listingInfo struct {
	minTake int64
	expires int64 // unix ns; 0: the end of the trading day
	spec    ListingSpec
}

func (c *Core) postListing(cmd *Command, res *Result) {
	ii, ok := c.instrumentFor(cmd, res)
	if !ok {
		return
	}
	in := &c.insts[ii]
	d := &c.defs[in.def]
	spec := cmd.Listing
	if spec == nil {
		spec = &ListingSpec{}
	}
	switch {
	case cmd.Side > orderbook.Sell:
		res.refuse(StatusInvalid, RejectInvalid, "side")
		return
	case cmd.Qty <= 0:
		res.refuse(StatusInvalid, RejectQuantityNotPositive, "quantity")
		return
	case cmd.MinQty < 0 || cmd.MinQty > cmd.Qty:
		res.refuse(StatusInvalid, RejectInvalid, "min_take_quantity")
		return
	case cmd.Price <= 0 || !c.inBand(d, cmd.Price):
		res.refuse(StatusInvalid, RejectPriceOutsideBand, "price")
		return
	case cmd.ClientOrderID == "":
		res.refuse(StatusInvalid, RejectInvalid, "client_order_id")
		return
	case cmd.ValidUntil != 0 && cmd.ValidUntil <= c.ts:
		res.refuse(StatusInvalid, RejectInvalid, "expires_at")
		return
	case cmd.Side == orderbook.Buy && len(spec.Receipts) > 0:
		res.refuse(StatusInvalid, RejectInvalid, "receipt_numbers")
		return
	}
	key := cloidKey{cmd.Participant, cmd.ClientOrderID}
	hash := hashOrder(cmd)
	if c.repeatOrder(key, hash, res) {
		return
	}
	if !c.outsideBookOpen(in, d, d.Listing, cmd.Qty, res) {
		return
	}
	pi, known := c.partIndex(cmd.Participant)
	tif := orderbook.Day
	if cmd.ValidUntil != 0 {
		tif = orderbook.GTC
	}
	fx, fxCur, ok := c.fxCheck(pi, known, c.defCur[in.def], tif, res)
	if !ok {
		if res.Field == "time_in_force" {
			res.Field = "expires_at"
		}
		return
	}
	var pools []int32
	if cmd.Side == orderbook.Buy {
		if !c.canFundBuy(pi, known, in, fx, fxCur, cmd.Price, cmd.Qty, res) {
			return
		}
	} else {
		var avail int64
		if pools, avail, ok = c.namedPools(pi, known, d, spec.Receipts, res); !ok {
			return
		}
		if !c.canFundSell(pi, known, in, fx, avail, cmd.Qty, res) {
			return
		}
	}
	lst := &listingInfo{minTake: max(cmd.MinQty, 1), expires: cmd.ValidUntil, spec: *spec}
	lst.spec.Receipts = slices.Clone(spec.Receipts)
	slot := c.enterOutsideBook(order{partNum: cmd.Participant, inst: ii, part: pi, def: in.def, side: cmd.Side, typ: orderbook.Limit,
		tif: tif, price: cmd.Price, qty: cmd.Qty, minQty: cmd.MinQty, fee: in.fee, cloid: cmd.ClientOrderID, fx: fx, fxCur: fxCur,
		lst: lst}, pools, key, hash)
	c.listings = append(c.listings, slot)
	in.listed++
	c.touch(slot)
	c.answerNew(slot, res)
}

// instrumentFor resolves the instrument a new order, listing or auction
// names: listed and not delisted, and (if the caller converted with one)
// at the definition version it converted with.
func (c *Core) instrumentFor(cmd *Command, res *Result) (int32, bool) {
	ii, ok := c.instByNum[cmd.Instrument]
	if !ok || c.defs[c.insts[ii].def].Delisted {
		res.refuse(StatusInvalid, RejectUnknownInstrument, "symbol")
		return 0, false
	}
	if d := &c.defs[c.insts[ii].def]; cmd.DefVersion != 0 && cmd.DefVersion != d.Version {
		res.refuse(StatusRefused, RejectInstrumentAmended, "symbol")
		return 0, false
	}
	return ii, true
}

// outsideBookOpen checks that a listing or auction (allowed: the
// instrument allows its mode) of qty lots may open now: in the session
// phase, within the instrument's bound on open listings and auctions.
func (c *Core) outsideBookOpen(in *instrument, d *InstrumentDef, allowed bool, qty int64, res *Result) bool {
	switch {
	case !allowed:
		res.refuse(StatusRefused, RejectModeNotAllowed, "")
	case in.phase != PhaseContinuous:
		res.refuse(StatusRefused, RejectWrongPhase, "")
	case in.listed >= c.lim.MaxOrdersPerBook:
		res.refuse(StatusRefused, RejectBookFull, "")
	default:
		if _, ok := mulOK(qty, d.LotMicro); ok {
			return true
		}
		res.refuse(StatusInvalid, RejectTooLarge, "quantity")
	}
	return false
}

// enterOutsideBook makes o (a listing, auction lot, take or bid: an order
// that does not rest in the book) live under the next order id: indexed,
// its reservation taken (from pools only, when set: reservations outside
// the book only shrink afterwards, so the filter is needed here alone),
// and its client order id recorded.
func (c *Core) enterOutsideBook(o order, pools []int32, key cloidKey, hash uint64) int32 {
	slot := c.allocOrder()
	o.id, o.live, o.open, o.created, o.w0 = c.nextOrderID, true, o.qty, c.ts, wres{pool: -1}
	*c.orders.at(slot) = o
	c.nextOrderID++
	c.index(o.id, slot)
	c.reserveFrom = pools
	c.rereserve(slot)
	c.reserveFrom = nil
	c.cloids.add(cloidEntry{key: key, orderID: o.id, hash: hash, inst: o.inst})
	return slot
}

// answerNew answers a command that entered the order in slot.
func (c *Core) answerNew(slot int32, res *Result) {
	res.Changed, res.HasOrder = true, true
	res.Order = c.view(slot)
	res.Order.Seq = c.seq
}

// repeatOrder applies the client order id rule: a repeat of the same
// content answers the original (true), different content is refused
// (true); a new id returns false.
func (c *Core) repeatOrder(key cloidKey, hash uint64, res *Result) bool {
	e, dup := c.cloids.get(key)
	if !dup {
		return false
	}
	if e.hash != hash {
		res.refuse(StatusInvalid, RejectDuplicateClientID, "client_order_id")
		return true
	}
	res.Duplicate = true
	if s, ok := c.lookup(e.orderID); ok {
		res.HasOrder, res.Order = true, c.view(s)
		res.Seq = res.Order.Seq
	} else {
		res.Order.ID = e.orderID
	}
	return true
}

// openListing resolves the listing a take or withdrawal names.
func (c *Core) openListing(id int64, res *Result) (int32, bool) {
	s, ok := c.lookup(id)
	if !ok || c.orders.at(s).lst == nil {
		res.refuse(StatusNotFound, RejectUnknownOrder, "listing_id")
		return 0, false
	}
	return s, true
}

// enterAgainst checks what a take of a listing and a bid in an auction
// share: the target (named by idField), a quantity and a client order id
// not used before for other content. It returns false when cmd is refused
// or is a repeat (res says which).
func (c *Core) enterAgainst(cmd *Command, res *Result, idField string) (cloidKey, uint64, bool) {
	switch {
	case cmd.OrderID <= 0:
		res.refuse(StatusInvalid, RejectInvalid, idField)
		return cloidKey{}, 0, false
	case cmd.Qty <= 0:
		res.refuse(StatusInvalid, RejectQuantityNotPositive, "quantity")
		return cloidKey{}, 0, false
	case cmd.ClientOrderID == "":
		res.refuse(StatusInvalid, RejectInvalid, "client_order_id")
		return cloidKey{}, 0, false
	}
	key := cloidKey{cmd.Participant, cmd.ClientOrderID}
	hash := hashOrder(cmd)
	if c.repeatOrder(key, hash, res) {
		return cloidKey{}, 0, false
	}
	return key, hash, true
}

func (c *Core) takeListing(cmd *Command, res *Result) {
	key, hash, ok := c.enterAgainst(cmd, res, "listing_id")
	if !ok {
		return
	}
	ls, ok := c.openListing(cmd.OrderID, res)
	if !ok {
		return
	}
	lo := c.orders.at(ls)
	ii := lo.inst
	in := &c.insts[ii]
	d := &c.defs[in.def]
	switch {
	case lo.open == 0 || (lo.lst.expires != 0 && c.ts >= lo.lst.expires):
		res.refuse(StatusRefused, RejectUnknownOrder, "listing_id")
		return
	case lo.partNum == cmd.Participant:
		res.refuse(StatusRefused, RejectSelfTrade, "listing_id")
		return
	case cmd.Qty > lo.open:
		res.refuse(StatusInvalid, RejectTooLarge, "quantity")
		return
	case cmd.Qty < lo.lst.minTake && cmd.Qty != lo.open:
		res.refuse(StatusInvalid, RejectMinQtyUnfilled, "quantity")
		return
	case d.Delisted || !d.Listing:
		res.refuse(StatusRefused, RejectModeNotAllowed, "")
		return
	case in.phase != PhaseContinuous:
		res.refuse(StatusRefused, RejectWrongPhase, "")
		return
	}
	side := orderbook.Buy
	if lo.side == orderbook.Buy {
		side = orderbook.Sell
	}
	pi, known := c.partIndex(cmd.Participant)
	fx, fxCur, ok := c.fxCheck(pi, known, c.defCur[in.def], orderbook.IOC, res)
	if !ok {
		return
	}
	if side == orderbook.Buy {
		if !c.canFundBuy(pi, known, in, fx, fxCur, lo.price, cmd.Qty, res) {
			return
		}
	} else if !c.canFundSell(pi, known, in, fx, c.weightOf(pi, known, d), cmd.Qty, res) {
		return
	}
	// The take is an immediate order: it reserves, fills against the
	// listing at the listing's price, and is done.
	slot := c.enterOutsideBook(order{partNum: cmd.Participant, inst: ii, part: pi, def: in.def, side: side, typ: orderbook.Limit,
		tif: orderbook.IOC, price: lo.price, qty: cmd.Qty, fee: in.fee, cloid: cmd.ClientOrderID, fx: fx, fxCur: fxCur}, nil, key, hash)
	c.incoming = slot
	c.listingTrade = lo.id
	c.fill(ii, &orderbook.Event{Kind: orderbook.EventFill, User: uint64(slot), ContraUser: uint64(ls), Side: side,
		Price: lo.price, Qty: cmd.Qty, Remaining: 0, ContraRemaining: lo.open - cmd.Qty})
	c.listingTrade = 0
	if lo = c.orders.at(ls); lo.open == 0 {
		c.dropListing(ls)
	}
	c.answerNew(slot, res)
}

func (c *Core) withdrawListing(cmd *Command, res *Result) {
	ls, ok := c.openListing(cmd.OrderID, res)
	if !ok {
		return
	}
	lo := c.orders.at(ls)
	if lo.partNum != cmd.Participant {
		res.refuse(StatusNotFound, RejectUnknownOrder, "listing_id")
		return
	}
	if lo.open == 0 {
		// Already withdrawn: the same answer again. Filled or expired:
		// nothing to withdraw.
		res.HasOrder, res.Order = true, c.view(ls)
		if lo.cancelled > 0 && !lo.expired {
			res.Duplicate, res.Seq = true, lo.seq
			return
		}
		res.refuse(StatusRefused, RejectUnknownOrder, "listing_id")
		return
	}
	c.endListing(ls, false)
	c.listings = slices.DeleteFunc(c.listings, func(s int32) bool { return s == ls })
	res.Changed, res.HasOrder = true, true
	res.Order = c.view(ls)
}

// expireListings ends the listings whose expiry has come.
func (c *Core) expireListings(_ *Command, res *Result) {
	if c.sweepListings(func(o *order) bool { return o.lst.expires != 0 && o.lst.expires <= c.ts }, true) {
		res.Changed = true
	}
}

// endListings ends an instrument's listings: its day listings, expired,
// at its end of day, or all of them, withdrawn (amendment, delisting).
func (c *Core) endListings(ii int32, dayOnly, expired bool) {
	c.sweepListings(func(o *order) bool { return o.inst == ii && (!dayOnly || o.lst.expires == 0) }, expired)
}

// sweepListings ends the open listings due says to, in one pass, and
// reports whether it ended any.
func (c *Core) sweepListings(due func(*order) bool, expired bool) bool {
	n := len(c.listings)
	c.listings = slices.DeleteFunc(c.listings, func(s int32) bool {
		o := c.orders.at(s)
		if !due(o) {
			return false
		}
		c.endListing(s, expired)
		return true
	})
	return len(c.listings) != n
}

// endListing takes an open listing off, withdrawn or expired; the caller
// removes it from c.listings.
func (c *Core) endListing(s int32, expired bool) {
	o := c.orders.at(s)
	o.cancelled += o.open
	o.open = 0
	o.expired = expired
	c.rereserve(s)
	c.touch(s)
	c.insts[o.inst].listed--
}

func (c *Core) dropListing(s int32) {
	if i := slices.Index(c.listings, s); i >= 0 {
		c.listings = slices.Delete(c.listings, i, i+1)
		c.insts[c.orders.at(s).inst].listed--
	}
}

// ListingView is a listing's state for the service.
type ListingView struct {
	Order   OrderView
	MinTake int64
	Expires int64
	Spec    ListingSpec
}

// Listing returns a listing by id (open or kept finished).
func (c *Core) Listing(id int64) (ListingView, bool) {
	s, ok := c.lookup(id)
	if !ok || c.orders.at(s).lst == nil {
		return ListingView{}, false
	}
	return c.listingView(s), true
}

func (c *Core) listingView(s int32) ListingView {
	o := c.orders.at(s)
	return ListingView{Order: c.view(s), MinTake: o.lst.minTake, Expires: o.lst.expires, Spec: o.lst.spec}
}

// Listings returns up to limit open listings with ids above afterID, in id
// order (c.listings is in posting order, which is id order), that keep
// says to.
func (c *Core) Listings(afterID int64, limit int, keep func(*ListingView) bool) []ListingView {
	var out []ListingView
	for _, s := range c.listings {
		o := c.orders.at(s)
		if o.id <= afterID || (o.lst.expires != 0 && o.lst.expires <= c.lastTime) {
			continue
		}
		v := c.listingView(s)
		if keep(&v) {
			if out = append(out, v); len(out) == limit {
				break
			}
		}
	}
	return out
}

// NextListingExpiry is the earliest expiry of an open listing or end of
// an open auction, or 0: the scheduler sends CmdExpireListings when it has
// come.
func (c *Core) NextListingExpiry() int64 {
	var next int64
	for _, s := range c.listings {
		if e := c.orders.at(s).lst.expires; e != 0 && (next == 0 || e < next) {
			next = e
		}
	}
	for _, s := range c.auctions {
		if e := c.orders.at(s).auc.ends; next == 0 || e < next {
			next = e
		}
	}
	return next
}
