package core

import (
	"fmt"
	"hash/fnv"
	"math"
	"slices"

	"github.com/bcx-exchange/bcx/pkg/orderbook"
	"github.com/bcx-exchange/bcx/pkg/prefault"
)

// Core is the deterministic trading state of the exchange. It is not safe
// for concurrent use: one goroutine (the sequencer) owns it.
type Core struct {
	lim Limits

	lastSeq     uint64
	lastTime    int64
	nextOrderID int64
	nextTradeID int64

	currencies []currency
	curByCode  map[string]int32

	defs      []InstrumentDef // every definition ever made, in order
	defCur    []int32         // each definition's currency index
	insts     []instrument
	instByNum map[int64]int32

	fees []FeeSchedule // index 0: no fees

	parts     []participant
	partByNum map[int64]int32

	pools    []pool
	poolFree []int32
	poolByRc map[string]int32

	orders    orderStore
	orderFree []int32
	ids       idIndex // order id -> slot, for open and kept finished orders
	finished  fifo    // slots of finished orders still queryable, oldest first

	cloids cloidIndex // the day's client order ids
	// logReaders are the snapshots whose client order id and key logs
	// may still be being encoded by other goroutines (see
	// SnapshotPartsDeferred): the next end of day waits for them.
	logReaders []*SnapshotRest
	// lastRest is the last deferred snapshot's rest: its entries are
	// reused once its encoder is done; snapEntries are new ones prepared
	// when they will not do (PrepareDeferredSnapshot).
	lastRest    *SnapshotRest
	snapEntries prefault.Spare[orderbook.Resting]
	// snapSink keeps the snapshot head's read-ahead loads from being
	// optimized away (written by the head's encoder only).
	snapSink int64

	// Open listings' and one-sided auctions' order slots, in posting order.
	listings, auctions []int32

	keys   map[string]int32 // idempotency key -> index in keyLog
	keyLog []keyEntry

	// FX rates published to the core, in order (never removed: orders
	// and trades refer to them by index); rateInfos is what the registry
	// shares (append-only); ratesByPair indexes them per currency pair,
	// sorted by valid-from and number.
	rates       []fxRate
	rateInfos   []FXRateInfo
	ratesByPair map[[2]int32][]int32

	// Conservation counters, per currency index and for weight. fxNet is
	// what FX conversions moved into members' funds (negative: out).
	credits, debits, feesPaid, fxNet []int64
	weightIn, weightOut, weightSold  int64

	// Per-command scratch.
	seq      uint64
	ts       int64
	gen      uint64  // increments per Apply; marks touched orders
	ev       *Events // the command's events: own, or the caller's (ApplyTo)
	own      Events
	touched  []int32
	res      *Result
	incoming int32 // slot of the order the command entered or replaced, -1 none
	auction  bool  // inside an uncross
	pending  int32 // slot of an order being submitted (not yet accepted)
	// listingTrade is the listing a take fills against, auctionTrade the
	// auction being closed, for their trades.
	listingTrade, auctionTrade int64
	// reserveFrom, while set, limits a sell reservation to these pools.
	reserveFrom []int32
	// Instruments whose day ended in this command: pruned once the
	// command's order events are out.
	pruneAfter []int32
}

type currency struct {
	Code string
	Exp  int32
}

type instrument struct {
	def     int32
	book    *orderbook.Book
	sink    *bookSink
	phase   Phase
	dayOpen bool
	// dayFrom is the first sequence number of the instrument's current
	// trading day: the record after its last end-of-day close, or the one
	// that defined it. What happened in it before is history.
	dayFrom uint64
	fee     int32
	listed  int // open listings and auctions, bounded like the book
	// Day statistics, reset when the day opens.
	lastPrice, lastQty, volume int64
	trades                     ring[Trade]
}

type funds struct{ total, reserved int64 }

type participant struct {
	number int64
	id     string
	funds  []funds // by currency index
	// funding: trades in one currency are funded from another.
	funding []fundingPref
	pools   []int32 // pool slots in deposit order
}

type pool struct {
	receipt  string
	part     int32
	insts    []int64
	total    int64 // micro-units
	reserved int64
	live     bool
}

type wres struct {
	pool   int32
	weight int64
}

type order struct {
	id        int64
	partNum   int64 // the participant's number, for ownership checks
	inst      int32
	part      int32
	def       int32
	side      Side
	typ       OrderType
	tif       TIF
	stp       STPMode
	postOnly  bool
	live      bool // indexed (open, or finished and kept)
	expired   bool
	price     int64
	qty       int64
	display   int64
	minQty    int64
	filled    int64
	open      int64
	cancelled int64
	notional  int64
	reserved  int64 // funds, buy orders (in the funding currency if fx)
	fee       int32
	// FX funding: fx is 1 + the locked rate's index (0: none), fxCur the
	// funding currency; fxBase is what the order's fills paid (buy) or
	// received (sell) in the trade currency, fxDone its conversion.
	fx, fxCur      int32
	fxBase, fxDone int64
	lst            *listingInfo // a listing (not in the book); nil for orders
	auc            *auctionInfo // a one-sided auction's lot (not in the book)
	bidOf          int64        // a bid's auction id (the bid is not in the book)
	w0             wres         // sell reservations: first pool inline, the rest in wn
	wn             []wres
	cloid          string
	// cloidIn holds cloid's bytes when cloidN (its length + 1) is set, so
	// that a snapshot encodes a resting order's client order id from the
	// order itself. The string's bytes are elsewhere on the heap, and the
	// book's priority order reaches them at random: for 400k resting
	// orders that cache and TLB miss was most of the snapshot head's
	// 110 ms (then all of it with the sequencer stopped). Set with
	// setCloid.
	cloidIn [20]byte
	cloidN  uint8
	created int64
	updated int64
	seq     uint64
	touched uint64
}

// setCloid sets the order's client order id, keeping the inline copy of
// its bytes (see cloidIn).
func (o *order) setCloid(s string) {
	o.cloid = s
	o.cloidN = 0
	if len(s) <= len(o.cloidIn) {
		copy(o.cloidIn[:], s)
		o.cloidN = uint8(len(s) + 1)
	}
}

type cloidKey struct {
	part  int64
	cloid string
}

type cloidEntry struct {
	key     cloidKey
	orderID int64
	hash    uint64
	inst    int32
	dead    bool
}

type keyEntry struct {
	key  string
	hash uint64
	seq  uint64
}

// New returns an empty core.
func New(lim Limits) *Core {
	c := &Core{
		lim:         lim.withDefaults(),
		nextOrderID: 1,
		nextTradeID: 1,
		curByCode:   map[string]int32{},
		instByNum:   map[int64]int32{},
		partByNum:   map[int64]int32{},
		poolByRc:    map[string]int32{},
		ids:         newIDIndex(),
		cloids:      newCloidIndex(),
		keys:        map[string]int32{},
		ratesByPair: map[[2]int32][]int32{},
		fees:        []FeeSchedule{{}},
		incoming:    -1,
		pending:     -1,
	}
	c.finished = newFIFO(c.lim.FinishedOrders)
	c.ev = &c.own
	return c
}

// Limits returns the core's limits.
func (c *Core) Limits() Limits { return c.lim }

// LastSeq is the sequence number of the last command that changed state.
func (c *Core) LastSeq() uint64 { return c.lastSeq }

// Apply applies one command stamped with seq and ts (unix ns) and fills res.
// The events it produced are in Events until the next Apply. If
// res.Changed is false, nothing changed and no events were produced.
func (c *Core) Apply(seq uint64, ts int64, cmd *Command, res *Result) {
	c.own.Reset()
	c.ApplyTo(seq, ts, cmd, res, &c.own)
}

// ApplyTo is Apply with the events appended to ev, which the caller keeps:
// the sequencer collects a batch's events in one list, so that its records
// are encoded on another goroutine while the core goes on. A command's
// events are ev.List from its length before the call on; their payloads
// and a trade's allocations index the other lists of ev absolutely.
func (c *Core) ApplyTo(seq uint64, ts int64, cmd *Command, res *Result, ev *Events) {
	c.ev = ev
	evBase := len(ev.List)
	res.reset()
	c.touched = c.touched[:0]
	c.seq, c.ts, c.res = seq, ts, res
	c.gen++
	c.incoming = -1
	switch cmd.Kind {
	case CmdPlace:
		c.place(cmd, res)
	case CmdCancel:
		c.cancel(cmd, res)
	case CmdReplace:
		c.replace(cmd, res)
	case CmdMassCancel:
		c.massCancel(cmd, res)
	case CmdCreditFunds:
		c.creditFunds(cmd, res)
	case CmdDebitFunds:
		c.debitFunds(cmd, res)
	case CmdCreditPosition:
		c.creditPosition(cmd, res)
	case CmdDebitPosition:
		c.debitPosition(cmd, res)
	case CmdSetPhase:
		c.setPhase(cmd, res)
	case CmdSetFeeSchedule:
		c.setFeeSchedule(cmd, res)
	case CmdDefineInstrument:
		c.defineInstrument(cmd, res)
	case CmdSetFXRate:
		c.setFXRate(cmd, res)
	case CmdSetFunding:
		c.setFunding(cmd, res)
	case CmdPostListing:
		c.postListing(cmd, res)
	case CmdTakeListing:
		c.takeListing(cmd, res)
	case CmdWithdrawListing:
		c.withdrawListing(cmd, res)
	case CmdExpireListings:
		c.expireListings(cmd, res)
		c.closeAuctions(res)
	case CmdStartAuction:
		c.startAuction(cmd, res)
	case CmdAuctionBid:
		c.auctionBid(cmd, res)
	default:
		res.refuse(StatusInvalid, RejectInvalid, "command")
	}
	c.flushTouched()
	for _, ii := range c.pruneAfter {
		c.pruneDay(ii)
	}
	c.pruneAfter = c.pruneAfter[:0]
	if res.Changed {
		c.lastSeq, c.lastTime = seq, ts
		res.Seq = seq
	} else if len(c.ev.List) != evBase {
		panic(fmt.Sprintf("core: command %d produced %d events without a change", cmd.Kind, len(c.ev.List)-evBase))
	}
	c.res = nil
}

// Events returns the events of the last Apply (after ApplyTo: the list it
// appended to).
func (c *Core) Events() *Events { return c.ev }

// touch marks an order as changed by this command; its state is emitted
// once, at the end.
func (c *Core) touch(slot int32) {
	o := c.orders.at(slot)
	o.updated, o.seq = c.ts, c.seq
	if o.touched != c.gen {
		o.touched = c.gen
		c.touched = append(c.touched, slot)
	}
}

func (c *Core) flushTouched() {
	for _, s := range c.touched {
		// Built in its slot: a literal appended is built on the stack and
		// copied.
		c.viewInto(s, c.ev.addOrder())
	}
	for _, s := range c.touched {
		if c.orders.peek(s).open == 0 {
			c.retire(s)
		}
	}
}

// idempotent checks an idempotency key. It returns true if the command
// must not run: a repeat (res is a duplicate) or a key reuse (res refused).
func (c *Core) idempotent(key string, hash uint64, res *Result) bool {
	if key == "" {
		return false
	}
	i, ok := c.keys[key]
	if !ok {
		return false
	}
	e := &c.keyLog[i]
	if e.hash != hash {
		res.refuse(StatusInvalid, RejectIdempotencyKey, "idempotency_key")
		return true
	}
	res.Duplicate, res.Seq = true, e.seq
	return true
}

func (c *Core) remember(key string, hash uint64) {
	if key == "" {
		return
	}
	c.keys[key] = int32(len(c.keyLog))
	c.keyLog = append(c.keyLog, keyEntry{key: key, hash: hash, seq: c.seq})
}

// hashCmd digests the parts of a funding or reference command that an
// idempotency key must match.
func hashCmd(cmd *Command) uint64 {
	h := fnv.New64a()
	var b []byte
	b = append(b, byte(cmd.Kind))
	b = appendVarint(b, cmd.Participant)
	b = appendString(b, cmd.Currency)
	b = appendVarint(b, cmd.Amount)
	b = appendString(b, cmd.Receipt)
	for _, s := range cmd.Symbols {
		b = appendVarint(b, s)
	}
	b = appendVarint(b, cmd.WeightMicro)
	b = appendVarint(b, cmd.Instrument)
	b = appendFeeRule(b, &cmd.Fees.Buyer)
	b = appendFeeRule(b, &cmd.Fees.Seller)
	if cmd.Kind == CmdSetFXRate || cmd.Kind == CmdSetFunding {
		// Only these kinds: older kinds' hashes are in journals and
		// snapshots and must not change.
		b = appendString(b, cmd.CounterCurrency)
		b = appendVarint(b, cmd.ValidFrom)
		b = appendVarint(b, cmd.ValidUntil)
		b = appendVarint(b, cmd.Version)
	}
	h.Write(b)
	return h.Sum64()
}

// hashOrder digests an order's content for the client order id rule: the
// same id with the same content is a repeat, with different content a
// conflict. Replace uses it on the replacement's fields.
func hashOrder(cmd *Command) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	mix := func(v uint64) { h = (h ^ v) * prime }
	mix(uint64(cmd.Kind))
	mix(uint64(cmd.Instrument))
	mix(uint64(cmd.Side) | uint64(cmd.Type)<<8 | uint64(cmd.TIF)<<16 | uint64(cmd.STP)<<24)
	if cmd.PostOnly {
		mix(1)
	}
	mix(uint64(cmd.Price))
	mix(uint64(cmd.Qty))
	mix(uint64(cmd.DisplayQty))
	mix(uint64(cmd.MinQty))
	mix(uint64(cmd.OrderID))
	for i := 0; i < len(cmd.OrigClientOrderID); i++ {
		mix(uint64(cmd.OrigClientOrderID[i]))
	}
	if cmd.Kind == CmdStartAuction && cmd.Auction != nil {
		a := cmd.Auction
		mix(uint64(a.MinIncrement))
		mix(uint64(a.Starts))
		mix(uint64(a.Ends))
		mix(uint64(a.Extension))
	}
	if cmd.Kind == CmdPostListing || cmd.Kind == CmdStartAuction {
		mix(uint64(cmd.ValidUntil))
		if l := cmd.Listing; l != nil {
			for _, s := range append(slices.Clone(l.Receipts), l.Grade, l.Brand, l.Warehouse, l.ProductionDate) {
				for i := 0; i < len(s); i++ {
					mix(uint64(s[i]))
				}
				mix(0)
			}
		}
	}
	return h
}

func (c *Core) partIndex(number int64) (int32, bool) {
	i, ok := c.partByNum[number]
	return i, ok
}

// ensurePart returns the participant's index, creating it. Only commands
// that then change state may call it.
func (c *Core) ensurePart(number int64, id string) int32 {
	if i, ok := c.partByNum[number]; ok {
		return i
	}
	i := int32(len(c.parts))
	c.parts = append(c.parts, participant{number: number, id: id})
	c.partByNum[number] = i
	return i
}

func (c *Core) ensureCurrency(code string, exp int32) int32 {
	if i, ok := c.curByCode[code]; ok {
		return i
	}
	i := int32(len(c.currencies))
	c.currencies = append(c.currencies, currency{Code: code, Exp: exp})
	c.curByCode[code] = i
	c.credits = append(c.credits, 0)
	c.debits = append(c.debits, 0)
	c.feesPaid = append(c.feesPaid, 0)
	c.fxNet = append(c.fxNet, 0)
	return i
}

func (p *participant) fundsOf(cur int32) *funds {
	for int(cur) >= len(p.funds) {
		p.funds = append(p.funds, funds{})
	}
	return &p.funds[cur]
}

func (c *Core) availableFunds(part int32, cur int32) int64 {
	p := &c.parts[part]
	if int(cur) >= len(p.funds) {
		return 0
	}
	return p.funds[cur].total - p.funds[cur].reserved
}

func (c *Core) creditFunds(cmd *Command, res *Result) {
	if cmd.Amount <= 0 {
		res.refuse(StatusInvalid, RejectInvalid, "amount.amount")
		return
	}
	if c.idempotent(cmd.Key, hashCmd(cmd), res) {
		return
	}
	if i, ok := c.curByCode[cmd.Currency]; ok && c.currencies[i].Exp != cmd.CurrencyExp {
		res.refuse(StatusInvalid, RejectWrongCurrency, "amount.currency")
		return
	}
	pi := c.ensurePart(cmd.Participant, cmd.ParticipantID)
	cur := c.ensureCurrency(cmd.Currency, cmd.CurrencyExp)
	f := c.parts[pi].fundsOf(cur)
	if f.total > math.MaxInt64-cmd.Amount || c.credits[cur] > math.MaxInt64-cmd.Amount {
		res.refuse(StatusInvalid, RejectTooLarge, "amount.amount")
		return
	}
	f.total += cmd.Amount
	c.credits[cur] += cmd.Amount
	c.remember(cmd.Key, hashCmd(cmd))
	*c.ev.addDetail(EvFunds) = EventDetail{Participant: pi, Currency: cur, Amount: cmd.Amount, Key: cmd.Key}
	res.Changed = true
}

func (c *Core) debitFunds(cmd *Command, res *Result) {
	if cmd.Amount <= 0 {
		res.refuse(StatusInvalid, RejectInvalid, "amount.amount")
		return
	}
	if c.idempotent(cmd.Key, hashCmd(cmd), res) {
		return
	}
	pi, ok := c.partIndex(cmd.Participant)
	cur, okc := c.curByCode[cmd.Currency]
	if !ok || !okc || c.availableFunds(pi, cur) < cmd.Amount {
		res.refuse(StatusRefused, RejectInsufficientFunds, "")
		return
	}
	c.parts[pi].fundsOf(cur).total -= cmd.Amount
	c.debits[cur] += cmd.Amount
	c.remember(cmd.Key, hashCmd(cmd))
	*c.ev.addDetail(EvFunds) = EventDetail{Participant: pi, Currency: cur, Amount: -cmd.Amount, Key: cmd.Key}
	res.Changed = true
}

func (c *Core) creditPosition(cmd *Command, res *Result) {
	switch {
	case cmd.WeightMicro <= 0:
		res.refuse(StatusInvalid, RejectInvalid, "weight")
		return
	case cmd.Receipt == "":
		res.refuse(StatusInvalid, RejectInvalid, "receipt_number")
		return
	case len(cmd.Symbols) == 0:
		res.refuse(StatusInvalid, RejectInvalid, "symbols")
		return
	}
	if c.idempotent(cmd.Key, hashCmd(cmd), res) {
		return
	}
	for _, n := range cmd.Symbols {
		if _, ok := c.instByNum[n]; !ok {
			res.refuse(StatusInvalid, RejectUnknownInstrument, "symbols")
			return
		}
	}
	if _, ok := c.poolByRc[cmd.Receipt]; ok {
		res.refuse(StatusRefused, RejectReceiptExists, "receipt_number")
		return
	}
	if c.weightIn > math.MaxInt64-cmd.WeightMicro {
		res.refuse(StatusInvalid, RejectTooLarge, "weight")
		return
	}
	pi := c.ensurePart(cmd.Participant, cmd.ParticipantID)
	var slot int32
	if n := len(c.poolFree); n > 0 {
		slot = c.poolFree[n-1]
		c.poolFree = c.poolFree[:n-1]
	} else {
		slot = int32(len(c.pools))
		c.pools = append(c.pools, pool{})
	}
	insts := slices.Clone(cmd.Symbols)
	c.pools[slot] = pool{receipt: cmd.Receipt, part: pi, insts: insts, total: cmd.WeightMicro, live: true}
	c.poolByRc[cmd.Receipt] = slot
	c.parts[pi].pools = append(c.parts[pi].pools, slot)
	c.weightIn += cmd.WeightMicro
	c.remember(cmd.Key, hashCmd(cmd))
	*c.ev.addDetail(EvPosition) = EventDetail{Participant: pi, Receipt: cmd.Receipt, Symbols: insts,
		WeightMicro: cmd.WeightMicro, Key: cmd.Key}
	res.Changed = true
}

func (c *Core) debitPosition(cmd *Command, res *Result) {
	if c.idempotent(cmd.Key, hashCmd(cmd), res) {
		return
	}
	slot, ok := c.poolByRc[cmd.Receipt]
	pi, okp := c.partIndex(cmd.Participant)
	if !ok || !okp || c.pools[slot].part != pi {
		res.refuse(StatusNotFound, RejectInvalid, "receipt_number")
		return
	}
	p := &c.pools[slot]
	if p.reserved > 0 {
		res.refuse(StatusRefused, RejectInsufficientPosition, "receipt_number")
		return
	}
	w := p.total
	c.weightOut += w
	delete(c.poolByRc, p.receipt)
	pp := &c.parts[pi]
	pp.pools = slices.DeleteFunc(pp.pools, func(s int32) bool { return s == slot })
	*c.ev.addDetail(EvPosition) = EventDetail{Participant: pi, Receipt: p.receipt, Symbols: p.insts,
		WeightMicro: -w, Key: cmd.Key}
	*p = pool{}
	c.poolFree = append(c.poolFree, slot)
	c.remember(cmd.Key, hashCmd(cmd))
	res.Changed = true
}

// availableWeight is the participant's unreserved weight in pools that
// qualify for the instrument number.
func (c *Core) availableWeight(part int32, instNum int64) int64 {
	var w int64
	for _, s := range c.parts[part].pools {
		p := &c.pools[s]
		if p.total > p.reserved && slices.Contains(p.insts, instNum) {
			w += p.total - p.reserved
		}
	}
	return w
}

func validDef(d *InstrumentDef) bool {
	if d.Number <= 0 || d.Symbol == "" || d.Currency == "" || d.LotMicro <= 0 || d.TickMinor <= 0 ||
		d.TickLotMinor <= 0 || d.ReferenceTicks <= 0 || d.BandTicks < 0 || d.BandTicks >= orderbook.MaxBandTicks/2 {
		return false
	}
	hi := d.ReferenceTicks + d.BandTicks
	// The most expensive price on one lot must leave room for quantities.
	return hi > 0 && hi < math.MaxInt64/d.TickLotMinor/(1<<20)
}

func bookParams(d *InstrumentDef) [6]int64 {
	return [6]int64{d.LotMicro, d.TickMinor, d.TickLotMinor, d.ReferenceTicks, d.BandTicks, int64(len(d.Currency))}
}

func (c *Core) newBook(ii int32, d *InstrumentDef) *orderbook.Book {
	lo := max(1, d.ReferenceTicks-d.BandTicks)
	sink := c.insts[ii].sink
	b, err := orderbook.New(orderbook.Config{MinPrice: lo, MaxPrice: d.ReferenceTicks + d.BandTicks,
		MaxOrders: c.lim.MaxOrdersPerBook}, sink)
	if err != nil {
		panic(fmt.Sprintf("core: book for %s: %v", d.Symbol, err)) // validDef rules this out
	}
	return b
}

func (c *Core) defineInstrument(cmd *Command, res *Result) {
	d := cmd.Def
	if !validDef(&d) {
		res.refuse(StatusInvalid, RejectInvalid, "instrument")
		return
	}
	if i, ok := c.curByCode[d.Currency]; ok && c.currencies[i].Exp != d.CurrencyExp {
		res.refuse(StatusInvalid, RejectWrongCurrency, "instrument.currency")
		return
	}
	ii, exists := c.instByNum[d.Number]
	if exists {
		old := &c.defs[c.insts[ii].def]
		if d.Version <= old.Version {
			return // already in effect: no change
		}
	}
	cur := c.ensureCurrency(d.Currency, d.CurrencyExp)
	di := int32(len(c.defs))
	c.defs = append(c.defs, d)
	c.defCur = append(c.defCur, cur)
	*c.ev.addDetail(EvInstrument) = EventDetail{Def: di}
	res.Changed = true
	if !exists {
		ii = int32(len(c.insts))
		c.insts = append(c.insts, instrument{def: di, phase: PhaseClosed, trades: newRing[Trade](c.lim.TradeHistory), dayFrom: c.seq})
		c.insts[ii].sink = &bookSink{c: c, inst: ii}
		c.insts[ii].book = c.newBook(ii, &d)
		c.instByNum[d.Number] = ii
		return
	}
	in := &c.insts[ii]
	old := c.defs[in.def]
	in.def = di
	// A change to anything prices or quantities depend on cancels the
	// resting orders (their ticks and lots would mean something else) and
	// starts a new book; so does delisting.
	if bookParams(&old) != bookParams(&d) || old.Currency != d.Currency || d.Delisted {
		c.cancelAll(ii, orderbook.ReasonCancelled)
		c.endListings(ii, false, false)
		c.cancelAuctions(ii)
		in.book = c.newBook(ii, &d)
		if in.phase == PhasePreOpen {
			_ = in.book.StartAuction()
		}
	}
	if d.Delisted && in.phase != PhaseClosed {
		c.enterPhase(ii, PhaseClosed, true)
	}
}

// cancelAll cancels every resting order of an instrument.
func (c *Core) cancelAll(ii int32, r orderbook.Reason) {
	b := c.insts[ii].book
	var ids []int64
	b.Walk(func(st orderbook.OrderState) bool { ids = append(ids, st.ID); return true })
	for _, id := range ids {
		b.Cancel(id)
	}
}

func (c *Core) setFeeSchedule(cmd *Command, res *Result) {
	ii, ok := c.instByNum[cmd.Instrument]
	if !ok {
		res.refuse(StatusInvalid, RejectUnknownInstrument, "symbol")
		return
	}
	for _, r := range []*FeeRule{&cmd.Fees.Buyer, &cmd.Fees.Seller} {
		if r.Basis > FeePerLot || r.RateE12 < 0 || r.RateE12 >= RateScale || r.PerLotMinor < 0 || r.MinMinor < 0 ||
			r.PerLotMinor > math.MaxInt64>>24 || r.MinMinor > math.MaxInt64>>24 {
			res.refuse(StatusInvalid, RejectInvalid, "fees")
			return
		}
	}
	if c.idempotent(cmd.Key, hashCmd(cmd), res) {
		return
	}
	in := &c.insts[ii]
	fi := int32(len(c.fees))
	c.fees = append(c.fees, cmd.Fees)
	in.fee = fi
	c.remember(cmd.Key, hashCmd(cmd))
	*c.ev.addDetail(EvFeeSchedule) = EventDetail{Def: in.def, FeeIndex: fi}
	res.Changed = true
}

func (c *Core) setPhase(cmd *Command, res *Result) {
	ii, ok := c.instByNum[cmd.Instrument]
	if !ok {
		res.refuse(StatusInvalid, RejectUnknownInstrument, "symbol")
		return
	}
	in := &c.insts[ii]
	d := &c.defs[in.def]
	target := cmd.Phase
	res.Phase = in.phase
	switch target {
	case PhaseClosed, PhaseHalted:
	case PhasePreOpen:
		if !d.CallAuction {
			res.refuse(StatusRefused, RejectModeNotAllowed, "phase")
			return
		}
	case PhaseContinuous:
		// The session phase: the book trades in it if continuous mode is
		// allowed (tradable), listings and auctions if theirs are.
		if !d.Continuous && !d.Listing && !d.OneSided {
			res.refuse(StatusRefused, RejectModeNotAllowed, "phase")
			return
		}
	default:
		res.refuse(StatusInvalid, RejectInvalid, "phase")
		return
	}
	if d.Delisted && target != PhaseClosed {
		res.refuse(StatusRefused, RejectUnknownInstrument, "symbol")
		return
	}
	// The schedule does not end an operator's halt; only the close does.
	if cmd.PhaseSource == SourceSchedule && in.phase == PhaseHalted && target != PhaseClosed {
		return
	}
	endOfDay := cmd.EndOfDay && target == PhaseClosed && in.dayOpen
	if target == in.phase && !endOfDay {
		return
	}
	c.enterPhase(ii, target, endOfDay)
	res.Phase = target
	res.Changed = true
}

// enterPhase moves an instrument to a phase and does what the move means
// for its book.
func (c *Core) enterPhase(ii int32, target Phase, endOfDay bool) {
	in := &c.insts[ii]
	if (target == PhasePreOpen || target == PhaseContinuous) && !in.dayOpen {
		in.dayOpen = true
		in.volume = 0
	}
	prev := in.phase
	in.phase = target
	*c.ev.addDetail(EvPhase) = EventDetail{Def: in.def, Phase: target, EndOfDay: endOfDay}
	switch target {
	case PhasePreOpen:
		if in.book.Phase() == orderbook.PhaseContinuous {
			_ = in.book.StartAuction()
		}
	case PhaseContinuous:
		if in.book.Phase() == orderbook.PhaseAuction {
			ref := in.lastPrice
			if ref == 0 {
				ref = c.defs[in.def].ReferenceTicks
			}
			c.auction = true
			_, _ = in.book.Uncross(ref)
			c.auction = false
		}
	}
	_ = prev
	if endOfDay {
		in.book.ExpireDayOrders()
		c.endListings(ii, true, true)
		in.dayOpen = false
		in.dayFrom = c.seq + 1
		c.pruneAfter = append(c.pruneAfter, ii)
	}
}

// pruneDay ends an instrument's trading day: its client order ids of
// finished orders are forgotten (resting GTC orders keep theirs) and so are
// its finished orders. This bounds the id index to about one day of orders.
func (c *Core) pruneDay(ii int32) {
	c.waitLogReaders()
	for i := range int32(c.cloids.log.len()) {
		e := c.cloids.log.at(i)
		if e.dead || e.inst != ii {
			continue
		}
		if s, ok := c.lookup(e.orderID); ok && c.orders.peek(s).open > 0 {
			continue
		}
		c.cloids.remove(i)
	}
	if c.cloids.live*2 < c.cloids.log.len() {
		c.cloids.compact()
	}
	c.finished.filter(func(s int32) bool {
		if c.orders.peek(s).inst != ii {
			return true
		}
		c.freeOrder(s)
		return false
	})
}

// Instrument phases and definitions, for the service.

// InstrumentInfo is an instrument's current definition and phase.
type InstrumentInfo struct {
	Def      InstrumentDef
	DefIndex int32
	Phase    Phase
	DayOpen  bool
	Fees     FeeSchedule
}

// Instrument returns an instrument by number.
func (c *Core) Instrument(number int64) (InstrumentInfo, bool) {
	ii, ok := c.instByNum[number]
	if !ok {
		return InstrumentInfo{}, false
	}
	in := &c.insts[ii]
	return InstrumentInfo{Def: c.defs[in.def], DefIndex: in.def, Phase: in.phase, DayOpen: in.dayOpen, Fees: c.fees[in.fee]}, true
}

// Instruments returns every instrument's number, in definition order.
func (c *Core) Instruments() []int64 {
	out := make([]int64, len(c.insts))
	for i := range c.insts {
		out[i] = c.defs[c.insts[i].def].Number
	}
	return out
}

// Registry is the reference data events refer to by index: instrument
// definitions, participant ids and currencies. It only grows.
type Registry struct {
	Defs         []InstrumentDef
	Participants []string // ids by participant index
	PartNumbers  []int64
	Currencies   []string // codes by currency index
	CurrencyExps []int32
	FXRates      []FXRateInfo // by rate index
}

// RegistrySize reports the registry's sizes, so a caller can tell when to
// copy it again; other counts currencies and FX rates.
// DayStart returns the first sequence number of the oldest trading day
// still current in any instrument: a reader of the day's events starts
// there.
func (c *Core) DayStart() uint64 {
	from := c.lastSeq + 1
	for i := range c.insts {
		from = min(from, max(c.insts[i].dayFrom, 1))
	}
	return from
}

func (c *Core) RegistrySize() (defs, parts, other int) {
	return len(c.defs), len(c.parts), len(c.currencies) + len(c.rates)
}

// Registry copies the reference data.
func (c *Core) Registry() *Registry {
	r := &Registry{Defs: slices.Clone(c.defs)}
	for i := range c.parts {
		r.Participants = append(r.Participants, c.parts[i].id)
		r.PartNumbers = append(r.PartNumbers, c.parts[i].number)
	}
	for _, cu := range c.currencies {
		r.Currencies = append(r.Currencies, cu.Code)
		r.CurrencyExps = append(r.CurrencyExps, cu.Exp)
	}
	// Rate infos never change once appended: the registry shares them.
	r.FXRates = c.rateInfos[:len(c.rateInfos):len(c.rateInfos)]
	return r
}
