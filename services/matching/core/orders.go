package core

import (
	"math"
	"math/bits"
	"slices"

	"github.com/bcx-exchange/bcx/pkg/orderbook"
)

// mulOK returns a*b and whether it fits an int64 (a, b >= 0).
func mulOK(a, b int64) (int64, bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	return int64(lo), true
}

// mulDiv returns a*b/d rounded down, half up or up (a, b >= 0, d > 0), and
// whether it fits an int64.
func mulDiv(a, b, d int64, round int) (int64, bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	var add uint64
	switch round {
	case roundHalfUp:
		add = uint64(d / 2)
	case roundUp:
		add = uint64(d - 1)
	}
	var carry uint64
	lo, carry = bits.Add64(lo, add, 0)
	hi += carry
	if hi >= uint64(d) {
		return 0, false
	}
	q, _ := bits.Div64(hi, lo, uint64(d))
	if q > math.MaxInt64 {
		return 0, false
	}
	return int64(q), true
}

const (
	roundDown = iota
	roundHalfUp
	roundUp
)

// fee is what one fill of lots with the given notional (minor units) pays
// under rule r: the rate times the notional rounded half up to the minor
// unit (0.5 fen rounds to 1 fen), or the amount per lot, and at least the
// minimum.
func (r *FeeRule) fee(notional, lots int64) int64 {
	var f int64
	switch r.Basis {
	case FeeRate:
		f, _ = mulDiv(notional, r.RateE12, RateScale, roundHalfUp)
	case FeePerLot:
		f = r.PerLotMinor * lots
	}
	return max(f, r.MinMinor)
}

// maxFee bounds what the fills of lots lots with a total notional of at
// most notional can pay under r, whatever the partial fills: the rate part
// rounded up on the whole, plus the per-lot part, plus the minimum for each
// lot (every fill is at least one lot and pays at least the minimum), plus
// one minor unit per lot for the half-up rounding of each fill. The second
// result is false on overflow.
func (r *FeeRule) maxFee(notional, lots int64) (int64, bool) {
	var f int64
	ok := true
	switch r.Basis {
	case FeeRate:
		f, ok = mulDiv(notional, r.RateE12, RateScale, roundUp)
		f += lots
	case FeePerLot:
		f, ok = mulOK(r.PerLotMinor, lots)
	}
	m, ok2 := mulOK(r.MinMinor, lots)
	if !ok || !ok2 || f > math.MaxInt64/2 || m > math.MaxInt64/2 {
		return 0, false
	}
	return f + m, true
}

// canFundBuy checks that participant pi can reserve a new buy of qty lots
// at price in instrument in (in its funding currency when fx is set), and
// refuses res otherwise.
func (c *Core) canFundBuy(pi int32, known bool, in *instrument, fx, fxCur int32, price, qty int64, res *Result) bool {
	r, ok := c.buyReserve(&c.defs[in.def], in.fee, price, qty)
	cur := c.defCur[in.def]
	if ok && fx != 0 {
		cur = fxCur
		r, ok = c.convert(&c.rates[fx-1], c.defCur[in.def], r, true)
	}
	if !ok {
		res.refuse(StatusInvalid, RejectTooLarge, "quantity")
		return false
	}
	if !known || c.availableFunds(pi, cur) < r {
		res.refuse(StatusRefused, RejectInsufficientFunds, "")
		return false
	}
	return true
}

// weightOf is a participant's available weight for an instrument, 0 for
// one the core has never seen.
func (c *Core) weightOf(pi int32, known bool, d *InstrumentDef) int64 {
	if !known {
		return 0
	}
	return c.availableWeight(pi, d.Number)
}

// canFundSell checks that a new sell of qty lots is covered by avail
// micro-units of the participant's weight (and, FX-funded, that its
// proceeds convert), and refuses res otherwise.
func (c *Core) canFundSell(pi int32, known bool, in *instrument, fx int32, avail, qty int64, res *Result) bool {
	if !known || avail < qty*c.defs[in.def].LotMicro {
		res.refuse(StatusRefused, RejectInsufficientPosition, "")
		return false
	}
	if fx != 0 && !c.sellFXFits(fx, in.def, 0, qty) {
		res.refuse(StatusInvalid, RejectTooLarge, "quantity")
		return false
	}
	return true
}

// buyReserve is what an open buy of lots at priceTicks must hold: its
// notional at that price plus its maximum fee.
func (c *Core) buyReserve(def *InstrumentDef, fee int32, priceTicks, lots int64) (int64, bool) {
	unit, ok := mulOK(priceTicks, def.TickLotMinor)
	if !ok {
		return 0, false
	}
	n, ok := mulOK(unit, lots)
	if !ok || n > math.MaxInt64/4 {
		return 0, false
	}
	f, ok := c.fees[fee].Buyer.maxFee(n, lots)
	if !ok || f > math.MaxInt64/4 {
		return 0, false
	}
	return n + f, true
}

func rejectFor(r orderbook.Reason) (Status, Reject, string) {
	switch r {
	case orderbook.ReasonPostOnlyWouldTake:
		return StatusRefused, RejectPostOnlyWouldTake, ""
	case orderbook.ReasonFOKNotFillable:
		return StatusRefused, RejectFOKUnfilled, ""
	case orderbook.ReasonMinQtyNotMet:
		return StatusRefused, RejectMinQtyUnfilled, ""
	case orderbook.ReasonAuctionOrderType, orderbook.ReasonAuctionMinQty:
		return StatusRefused, RejectWrongPhase, ""
	case orderbook.ReasonBookFull:
		return StatusRefused, RejectBookFull, ""
	case orderbook.ReasonUnknownOrder:
		return StatusNotFound, RejectUnknownOrder, "order_id"
	case orderbook.ReasonReplaceNoChange:
		return StatusInvalid, RejectNoChange, "quantity"
	case orderbook.ReasonPriceOutOfBand:
		return StatusInvalid, RejectPriceOutsideBand, "price"
	case orderbook.ReasonInvalidQty:
		return StatusInvalid, RejectQuantityNotPositive, "quantity"
	case orderbook.ReasonInvalidDisplayQty, orderbook.ReasonIcebergNotResting:
		return StatusInvalid, RejectInvalid, "display_quantity"
	case orderbook.ReasonInvalidMinQty:
		return StatusInvalid, RejectInvalid, "min_quantity"
	case orderbook.ReasonPostOnlyTIF, orderbook.ReasonPostOnlyMinQty:
		return StatusInvalid, RejectInvalid, "post_only"
	case orderbook.ReasonMarketTIF:
		return StatusInvalid, RejectInvalid, "time_in_force"
	case orderbook.ReasonInvalidSTP:
		return StatusInvalid, RejectInvalid, "self_trade_prevention"
	case orderbook.ReasonInvalidTIF:
		return StatusInvalid, RejectInvalid, "time_in_force"
	case orderbook.ReasonInvalidType:
		return StatusInvalid, RejectInvalid, "order_type"
	case orderbook.ReasonInvalidSide:
		return StatusInvalid, RejectInvalid, "side"
	}
	return StatusRefused, RejectInvalid, ""
}

// tradable checks the instrument's phase and modes for entering or
// amending an order.
func (c *Core) tradable(in *instrument, d *InstrumentDef, res *Result) bool {
	switch in.phase {
	case PhasePreOpen:
		if !d.CallAuction {
			res.refuse(StatusRefused, RejectModeNotAllowed, "")
			return false
		}
	case PhaseContinuous:
		if !d.Continuous {
			res.refuse(StatusRefused, RejectModeNotAllowed, "")
			return false
		}
	default:
		res.refuse(StatusRefused, RejectWrongPhase, "")
		return false
	}
	return true
}

func (c *Core) inBand(d *InstrumentDef, p int64) bool {
	return p >= max(1, d.ReferenceTicks-d.BandTicks) && p <= d.ReferenceTicks+d.BandTicks
}

func (c *Core) place(cmd *Command, res *Result) {
	ii, ok := c.instrumentFor(cmd, res)
	if !ok {
		return
	}
	in := &c.insts[ii]
	d := &c.defs[in.def]
	priceField := "price"
	if cmd.Type == orderbook.Market {
		priceField = "protection_price"
	}
	switch {
	case cmd.Side > orderbook.Sell:
		res.refuse(StatusInvalid, RejectInvalid, "side")
		return
	case cmd.Qty <= 0:
		res.refuse(StatusInvalid, RejectQuantityNotPositive, "quantity")
		return
	case cmd.Price <= 0:
		res.refuse(StatusInvalid, RejectInvalid, priceField)
		return
	case !c.inBand(d, cmd.Price):
		res.refuse(StatusInvalid, RejectPriceOutsideBand, priceField)
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
	if !c.tradable(in, d, res) {
		return
	}
	if _, ok := mulOK(cmd.Qty, d.LotMicro); !ok {
		res.refuse(StatusInvalid, RejectTooLarge, "quantity")
		return
	}
	pi, known := c.partIndex(cmd.Participant)
	fx, fxCur, ok := c.fxCheck(pi, known, c.defCur[in.def], cmd.TIF, res)
	if !ok {
		return
	}
	if cmd.Side == orderbook.Buy {
		if !c.canFundBuy(pi, known, in, fx, fxCur, cmd.Price, cmd.Qty, res) {
			return
		}
	} else if !c.canFundSell(pi, known, in, fx, c.weightOf(pi, known, d), cmd.Qty, res) {
		return
	}
	slot := c.allocOrder()
	o := c.orders.at(slot)
	*o = order{id: c.nextOrderID, partNum: cmd.Participant, inst: ii, part: pi, def: in.def, side: cmd.Side, typ: cmd.Type, tif: cmd.TIF,
		stp: cmd.STP, postOnly: cmd.PostOnly, price: cmd.Price, qty: cmd.Qty, display: cmd.DisplayQty,
		minQty: cmd.MinQty, fee: in.fee, created: c.ts, w0: wres{pool: -1}, fx: fx, fxCur: fxCur}
	o.setCloid(cmd.ClientOrderID)
	c.pending = slot
	c.incoming = slot
	r := in.book.Submit(orderbook.Order{ID: o.id, Participant: cmd.Participant, User: uint64(slot), Side: cmd.Side,
		Type: cmd.Type, TIF: cmd.TIF, STP: cmd.STP, PostOnly: cmd.PostOnly, Price: cmd.Price, Qty: cmd.Qty,
		DisplayQty: cmd.DisplayQty, MinQty: cmd.MinQty})
	c.pending = -1
	if r != orderbook.ReasonNone {
		c.incoming = -1
		(*c.orders.at(slot)) = order{}
		c.orderFree = append(c.orderFree, slot)
		st, rej, f := rejectFor(r)
		if f == "price" {
			f = priceField
		}
		res.refuse(st, rej, f)
		return
	}
	c.nextOrderID++
	c.cloids.add(cloidEntry{key: key, orderID: o.id, hash: hash, inst: ii})
	c.answerNew(slot, res)
}

func (c *Core) allocOrder() int32 {
	if n := len(c.orderFree); n > 0 {
		s := c.orderFree[n-1]
		c.orderFree = c.orderFree[:n-1]
		return s
	}
	return c.orders.add()
}

// findOpen resolves the order of a cancel or replace: by id or client order
// id, the caller's own, open, and in the named instrument if one is named.
func (c *Core) findOpen(cmd *Command, res *Result) (int32, bool) {
	var slot int32 = -1
	field := "order_id"
	if cmd.OrderID != 0 {
		if s, ok := c.lookup(cmd.OrderID); ok {
			slot = s
		}
	} else if cmd.OrigClientOrderID != "" {
		field = "client_order_id"
		if cmd.Kind == CmdReplace {
			field = "orig_client_order_id"
		}
		if e, ok := c.cloids.get(cloidKey{cmd.Participant, cmd.OrigClientOrderID}); ok {
			if s, ok := c.lookup(e.orderID); ok {
				slot = s
			}
		}
	} else {
		res.refuse(StatusInvalid, RejectInvalid, "order_id")
		return 0, false
	}
	if slot < 0 || c.orders.peek(slot).partNum != cmd.Participant ||
		(cmd.Instrument != 0 && c.defs[c.insts[c.orders.peek(slot).inst].def].Number != cmd.Instrument) {
		res.refuse(StatusNotFound, RejectUnknownOrder, field)
		return 0, false
	}
	if (*c.orders.at(slot)).open == 0 {
		res.refuse(StatusRefused, RejectUnknownOrder, field)
		res.HasOrder, res.Order = true, c.view(slot)
		return 0, false
	}
	if o := c.orders.at(slot); o.lst != nil || o.auc != nil || o.bidOf != 0 {
		// Not in the book: a listing is withdrawn, an auction's lot and
		// bids stand until its close.
		res.refuse(StatusRefused, RejectModeNotAllowed, field)
		return 0, false
	}
	return slot, true
}

func (c *Core) cancel(cmd *Command, res *Result) {
	slot, ok := c.findOpen(cmd, res)
	if !ok {
		return
	}
	o := c.orders.at(slot)
	c.insts[o.inst].book.Cancel(o.id)
	res.Changed = true
	res.HasOrder = true
	res.Order = c.view(slot)
}

func (c *Core) replace(cmd *Command, res *Result) {
	slot, ok := c.findOpen(cmd, res)
	if !ok {
		return
	}
	o := c.orders.at(slot)
	in := &c.insts[o.inst]
	d := &c.defs[in.def]
	if cmd.DefVersion != 0 && cmd.DefVersion != d.Version {
		res.refuse(StatusRefused, RejectInstrumentAmended, "symbol")
		return
	}
	price, open := o.price, o.open
	if cmd.Price != 0 {
		price = cmd.Price
	}
	switch {
	case cmd.Qty < 0:
		res.refuse(StatusInvalid, RejectQuantityNotPositive, "quantity")
		return
	case cmd.Qty > 0 && cmd.OpenQty:
		open = cmd.Qty
	case cmd.Qty > 0:
		open = cmd.Qty - o.filled
	}
	switch {
	case open <= 0:
		res.refuse(StatusInvalid, RejectQuantityNotPositive, "quantity")
		return
	case price < 0:
		res.refuse(StatusInvalid, RejectInvalid, "price")
		return
	case !c.inBand(d, price):
		res.refuse(StatusInvalid, RejectPriceOutsideBand, "price")
		return
	case price == o.price && open == o.open:
		res.refuse(StatusInvalid, RejectNoChange, "quantity")
		return
	}
	var hash uint64
	if cmd.ClientOrderID != "" {
		hash = hashOrder(cmd)
		if e, dup := c.cloids.get(cloidKey{cmd.Participant, cmd.ClientOrderID}); dup {
			if e.orderID != o.id || e.hash != hash {
				res.refuse(StatusInvalid, RejectDuplicateClientID, "client_order_id")
				return
			}
			res.Duplicate, res.HasOrder, res.Order = true, true, c.view(slot)
			res.Seq = res.Order.Seq
			return
		}
	}
	if !c.tradable(in, d, res) {
		return
	}
	if _, ok := mulOK(open+o.filled, d.LotMicro); !ok {
		res.refuse(StatusInvalid, RejectTooLarge, "quantity")
		return
	}
	if o.side == orderbook.Buy {
		need, ok := c.buyReserve(d, o.fee, price, open)
		if ok && o.fx != 0 {
			need, ok = c.fxNeed(o, need)
		}
		if !ok {
			res.refuse(StatusInvalid, RejectTooLarge, "quantity")
			return
		}
		if need-o.reserved > c.availableFunds(o.part, c.fundCur(o)) {
			res.refuse(StatusRefused, RejectInsufficientFunds, "")
			return
		}
	} else if open > o.open && c.availableWeight(o.part, d.Number) < (open-o.open)*d.LotMicro {
		res.refuse(StatusRefused, RejectInsufficientPosition, "")
		return
	} else if o.fx != 0 && !c.sellFXFits(o.fx, o.def, o.fxBase, open) {
		res.refuse(StatusInvalid, RejectTooLarge, "quantity")
		return
	}
	c.incoming = slot
	if r := in.book.Replace(o.id, price, open); r != orderbook.ReasonNone {
		c.incoming = -1
		st, rej, f := rejectFor(r)
		res.refuse(st, rej, f)
		return
	}
	if cmd.ClientOrderID != "" {
		key := cloidKey{cmd.Participant, cmd.ClientOrderID}
		c.cloids.add(cloidEntry{key: key, orderID: o.id, hash: hash, inst: o.inst})
		o.setCloid(cmd.ClientOrderID)
		c.touch(slot)
	}
	res.Changed = true
	res.HasOrder = true
	res.Order = c.view(slot)
}

func (c *Core) massCancel(cmd *Command, res *Result) {
	if _, known := c.partIndex(cmd.Participant); !known {
		return
	}
	for ii := range c.insts {
		in := &c.insts[ii]
		if cmd.Instrument != 0 && c.defs[in.def].Number != cmd.Instrument {
			continue
		}
		res.Count += int64(in.book.CancelParticipant(cmd.Participant))
	}
	res.Changed = res.Count > 0
}

// bookSink applies an instrument's book events to orders and balances.
type bookSink struct {
	c    *Core
	inst int32
}

func (s *bookSink) OnEvent(e *orderbook.Event) {
	c := s.c
	switch e.Kind {
	case orderbook.EventAccepted:
		c.accepted(int32(e.User), e)
	case orderbook.EventFill:
		c.fill(s.inst, e)
	case orderbook.EventCancel:
		slot := int32(e.User)
		o := c.orders.at(slot)
		o.cancelled += e.Qty
		o.open = 0
		o.expired = e.Reason == orderbook.ReasonDayExpired
		c.rereserve(slot)
		c.touch(slot)
	case orderbook.EventReduce:
		slot := int32(e.User)
		o := c.orders.at(slot)
		o.cancelled += e.Qty
		o.open = e.Remaining
		c.rereserve(slot)
		c.touch(slot)
	case orderbook.EventReplace:
		slot := int32(e.User)
		o := c.orders.at(slot)
		if e.Qty > o.open {
			o.qty += e.Qty - o.open
		} else {
			o.cancelled += o.open - e.Qty
		}
		o.open, o.price = e.Qty, e.Price
		c.rereserve(slot)
		c.touch(slot)
	}
}

// accepted makes a submitted order live and reserves what it needs.
func (c *Core) accepted(slot int32, e *orderbook.Event) {
	o := c.orders.at(slot)
	o.open = e.Qty
	o.price = e.Price
	o.live = true
	c.index(o.id, slot)
	c.rereserve(slot)
	c.touch(slot)
}

// rereserve sets an order's reservation to exactly what its open quantity
// needs, releasing or taking the difference, so nothing drifts.
func (c *Core) rereserve(slot int32) {
	o := c.orders.at(slot)
	d := &c.defs[o.def]
	if o.side == orderbook.Buy {
		var need int64
		if o.open > 0 {
			var ok bool
			need, ok = c.buyReserve(d, o.fee, o.price, o.open)
			if ok && o.fx != 0 {
				need, ok = c.fxNeed(o, need)
			}
			if !ok {
				panic("core: reservation overflow after the entry checks")
			}
		}
		f := c.parts[o.part].fundsOf(c.fundCur(o))
		f.reserved += need - o.reserved
		o.reserved = need
		return
	}
	c.setWeight(o, o.open*d.LotMicro, d.Number)
}

func (o *order) wresAt(i int) *wres {
	if i == 0 {
		return &o.w0
	}
	return &o.wn[i-1]
}

func (o *order) wresLen() int {
	if o.w0.pool < 0 {
		return 0
	}
	return 1 + len(o.wn)
}

func (o *order) reservedWeight() int64 {
	var w int64
	for i := range o.wresLen() {
		w += o.wresAt(i).weight
	}
	return w
}

// setWeight makes a sell order hold exactly need micro-units: more is taken
// from the seller's qualifying pools oldest deposit first, less is given
// back newest reservation first, so deliveries come from the oldest.
func (c *Core) setWeight(o *order, need int64, instNum int64) {
	have := o.reservedWeight()
	for have > need {
		n := o.wresLen()
		r := o.wresAt(n - 1)
		give := min(r.weight, have-need)
		r.weight -= give
		c.pools[r.pool].reserved -= give
		have -= give
		if r.weight == 0 {
			c.dropLastWres(o)
		}
	}
	if have == need {
		return
	}
	for _, ps := range c.parts[o.part].pools {
		p := &c.pools[ps]
		if p.total == p.reserved || !containsInt64(p.insts, instNum) {
			continue
		}
		if c.reserveFrom != nil && !slices.Contains(c.reserveFrom, ps) {
			continue // a listing or auction reserves the receipts it names
		}
		take := min(p.total-p.reserved, need-have)
		p.reserved += take
		have += take
		c.addWres(o, ps, take)
		if have == need {
			return
		}
	}
	panic("core: sell reservation beyond the checked position")
}

func containsInt64(s []int64, v int64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func (c *Core) addWres(o *order, ps int32, w int64) {
	for i := range o.wresLen() {
		if r := o.wresAt(i); r.pool == ps {
			r.weight += w
			return
		}
	}
	if o.w0.pool < 0 {
		o.w0 = wres{pool: ps, weight: w}
		return
	}
	o.wn = append(o.wn, wres{pool: ps, weight: w})
}

func (c *Core) dropLastWres(o *order) {
	if n := len(o.wn); n > 0 {
		o.wn = o.wn[:n-1]
		return
	}
	o.w0 = wres{pool: -1}
}

// fill settles one fill between two orders of an instrument.
func (c *Core) fill(ii int32, e *orderbook.Event) {
	in := &c.insts[ii]
	d := &c.defs[in.def]
	a, b := int32(e.User), int32(e.ContraUser)
	buy, sell := a, b
	aggressor := uint8(1)
	if e.Side == orderbook.Sell {
		buy, sell = b, a
		aggressor = 2
	}
	if c.auction {
		aggressor = 0
	}
	bo, so := c.orders.at(buy), c.orders.at(sell)
	q, p := e.Qty, e.Price
	notional := p * d.TickLotMinor * q // fits: checked at entry against the order's limit
	buyerFee := c.fees[bo.fee].Buyer.fee(notional, q)
	sellerFee := min(c.fees[so.fee].Seller.fee(notional, q), notional)
	cur := c.defCur[in.def]

	// Open quantities after the fill, from the book.
	if buy == a {
		bo.open, so.open = e.Remaining, e.ContraRemaining
	} else {
		so.open, bo.open = e.Remaining, e.ContraRemaining
	}
	bo.filled += q
	so.filled += q
	bo.notional += p * q
	so.notional += p * q

	// Buyer: pay notional and fee out of the reservation, which is then
	// recomputed for the open remainder.
	var buyerFX, sellerFX FXLeg
	if bo.fx != 0 {
		buyerFX = FXLeg{Rate: bo.fx, Currency: bo.fxCur, Amount: c.fxSettle(bo, notional+buyerFee)}
	} else {
		c.parts[bo.part].fundsOf(cur).total -= notional + buyerFee
	}
	c.rereserve(buy)
	// Seller: deliver weight from the reserved pools, oldest first.
	allocStart := int32(len(c.ev.Allocs))
	w := q * d.LotMicro
	for w > 0 {
		r := so.wresAt(0)
		take := min(r.weight, w)
		pl := &c.pools[r.pool]
		pl.total -= take
		pl.reserved -= take
		r.weight -= take
		w -= take
		c.ev.Allocs = append(c.ev.Allocs, Alloc{Receipt: pl.receipt, WeightMicro: take})
		if r.weight == 0 {
			// Shift the reservations down by one.
			if len(so.wn) > 0 {
				so.w0 = so.wn[0]
				copy(so.wn, so.wn[1:])
				so.wn = so.wn[:len(so.wn)-1]
			} else {
				so.w0 = wres{pool: -1}
			}
		}
	}
	c.weightSold += q * d.LotMicro
	if so.fx != 0 {
		sellerFX = FXLeg{Rate: so.fx, Currency: so.fxCur, Amount: c.fxSettle(so, notional-sellerFee)}
	} else {
		c.parts[so.part].fundsOf(cur).total += notional - sellerFee
	}
	c.rereserve(sell) // releases any rounding excess (none: weight is exact)
	c.feesPaid[cur] += buyerFee + sellerFee

	t := Trade{ID: c.nextTradeID, Def: in.def, Price: p, Qty: q, BuyOrder: bo.id, SellOrder: so.id,
		Buyer: bo.part, Seller: so.part, Aggressor: aggressor, BuyerFee: buyerFee, SellerFee: sellerFee,
		BuyClient: bo.cloid, SellClient: so.cloid, AllocsStart: allocStart, AllocsEnd: int32(len(c.ev.Allocs)),
		BuyerFX: buyerFX, SellerFX: sellerFX, Listing: c.listingTrade, Auction: c.auctionTrade}
	c.nextTradeID++
	c.ev.addTrade(&t)
	in.lastPrice, in.lastQty = p, q
	in.volume += q
	rt := t
	rt.AllocsStart, rt.AllocsEnd = 0, 0
	in.trades.push(rt)

	c.touch(buy)
	c.touch(sell)
	bfill := Fill{TradeID: t.ID, OrderID: bo.id, ClientID: bo.cloid, Def: in.def, Side: orderbook.Buy, Price: p, Qty: q,
		Maker: aggressor == 2, FeeMinor: buyerFee, Seq: c.seq, TimeNanos: c.ts, FX: buyerFX}
	sfill := Fill{TradeID: t.ID, OrderID: so.id, ClientID: so.cloid, Def: in.def, Side: orderbook.Sell, Price: p, Qty: q,
		Maker: aggressor == 1, FeeMinor: sellerFee, Seq: c.seq, TimeNanos: c.ts, FX: sellerFX}
	if c.auction {
		bfill.Maker, sfill.Maker = false, false
	}
	if c.res != nil && c.incoming >= 0 {
		if buy == c.incoming {
			c.res.Fills = append(c.res.Fills, bfill)
		} else if sell == c.incoming {
			c.res.Fills = append(c.res.Fills, sfill)
		}
	}
}

// retire files a finished order: it stays queryable until the finished
// FIFO evicts it or its trading day ends.
func (c *Core) retire(slot int32) {
	o := c.orders.at(slot)
	if o.reserved != 0 || o.wresLen() != 0 {
		panic("core: finished order still holds a reservation")
	}
	if !o.live {
		return
	}
	if ev, ok := c.finished.push(slot); ok {
		c.freeOrder(ev)
	}
}

func (c *Core) freeOrder(slot int32) {
	o := c.orders.at(slot)
	c.unindex(o.id, slot)
	*o = order{}
	c.orderFree = append(c.orderFree, slot)
}

func (o *order) status() OrderStatus {
	switch {
	case o.open > 0 && o.filled > 0:
		return StatusPartiallyFilled
	case o.open > 0:
		return StatusNew
	case o.filled == o.qty:
		return StatusFilled
	case o.expired:
		return StatusExpired
	}
	return StatusCancelled
}

func (c *Core) view(slot int32) OrderView {
	var v OrderView
	c.viewInto(slot, &v)
	return v
}

func (c *Core) viewInto(slot int32, v *OrderView) {
	o := c.orders.peek(slot) // read only: a query does not thaw a frozen page
	*v = OrderView{ID: o.id, Participant: o.part, Def: o.def, Side: o.side, Type: o.typ, TIF: o.tif, STP: o.stp,
		PostOnly: o.postOnly, Status: o.status(), Price: o.price, Qty: o.qty, Filled: o.filled, Open: o.open,
		Cancelled: o.cancelled, DisplayQty: o.display, MinQty: o.minQty, NotionalTicks: o.notional, ClientID: o.cloid,
		Created: o.created, Updated: o.updated, Seq: o.seq}
}
