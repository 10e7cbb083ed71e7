package core

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A journal record's payload is one command followed by the events it
// produced:
//
//	payload  = version(1) command events
//	command  = kind(1) fields of the kind (varints, strings as length + bytes)
//	events   = count(uvarint) event*
//	event    = kind(1) fields of the kind
//
// Integers are varints (zig-zag for signed), so typical records are a few
// dozen bytes. Encoding appends to a caller's buffer and does not allocate
// once the buffer has grown; decoding allocates only the strings.

// RecordVersion is the first byte of every payload.
const RecordVersion = 1

// ErrDecode is wrapped by every decoding error.
var ErrDecode = errors.New("core: malformed record")

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }
func appendVarint(b []byte, v int64) []byte   { return binary.AppendVarint(b, v) }
func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendFeeRule(b []byte, r *FeeRule) []byte {
	b = append(b, byte(r.Basis))
	b = appendVarint(b, r.RateE12)
	b = appendVarint(b, r.PerLotMinor)
	return appendVarint(b, r.MinMinor)
}

// AppendRecord appends the payload for a command and its events.
func AppendRecord(b []byte, cmd *Command, ev *Events) []byte {
	b = append(b, RecordVersion)
	b = AppendCommand(b, cmd)
	b = appendUvarint(b, uint64(len(ev.List)))
	for i := range ev.List {
		b = ev.appendEvent(b, &ev.List[i])
	}
	return b
}

// AppendCommand appends a command's encoding.
func AppendCommand(b []byte, c *Command) []byte {
	b = append(b, byte(c.Kind))
	switch c.Kind {
	case CmdPlace:
		b = appendVarint(b, c.Participant)
		b = appendVarint(b, c.Instrument)
		b = appendVarint(b, c.DefVersion)
		b = appendString(b, c.ClientOrderID)
		flags := uint64(c.Side) | uint64(c.Type)<<1 | uint64(c.TIF)<<2 | uint64(c.STP)<<5
		if c.PostOnly {
			flags |= 1 << 8
		}
		b = appendUvarint(b, flags)
		b = appendVarint(b, c.Price)
		b = appendVarint(b, c.Qty)
		b = appendVarint(b, c.DisplayQty)
		b = appendVarint(b, c.MinQty)
	case CmdCancel, CmdReplace:
		b = appendVarint(b, c.Participant)
		b = appendVarint(b, c.Instrument)
		b = appendVarint(b, c.OrderID)
		b = appendString(b, c.OrigClientOrderID)
		if c.Kind == CmdReplace {
			b = appendVarint(b, c.DefVersion)
			b = appendString(b, c.ClientOrderID)
			b = appendVarint(b, c.Price)
			b = appendVarint(b, c.Qty)
			b = appendBool(b, c.OpenQty)
		}
	case CmdMassCancel:
		b = appendVarint(b, c.Participant)
		b = appendVarint(b, c.Instrument)
	case CmdCreditFunds, CmdDebitFunds:
		b = appendVarint(b, c.Participant)
		b = appendString(b, c.ParticipantID)
		b = appendString(b, c.Key)
		b = appendString(b, c.Currency)
		b = appendVarint(b, int64(c.CurrencyExp))
		b = appendVarint(b, c.Amount)
	case CmdCreditPosition, CmdDebitPosition:
		b = appendVarint(b, c.Participant)
		b = appendString(b, c.ParticipantID)
		b = appendString(b, c.Key)
		b = appendString(b, c.Receipt)
		b = appendUvarint(b, uint64(len(c.Symbols)))
		for _, s := range c.Symbols {
			b = appendVarint(b, s)
		}
		b = appendVarint(b, c.WeightMicro)
	case CmdSetPhase:
		b = appendVarint(b, c.Instrument)
		b = append(b, byte(c.Phase), byte(c.PhaseSource))
		b = appendBool(b, c.EndOfDay)
	case CmdSetFeeSchedule:
		b = appendVarint(b, c.Instrument)
		b = appendString(b, c.Key)
		b = appendFeeRule(b, &c.Fees.Buyer)
		b = appendFeeRule(b, &c.Fees.Seller)
	case CmdDefineInstrument:
		b = appendDef(b, &c.Def)
	case CmdSetFXRate:
		b = appendString(b, c.Key)
		b = appendString(b, c.Currency)
		b = appendVarint(b, int64(c.CurrencyExp))
		b = appendString(b, c.CounterCurrency)
		b = appendVarint(b, int64(c.CounterExp))
		b = appendVarint(b, c.Amount)
		b = appendVarint(b, c.ValidFrom)
		b = appendVarint(b, c.ValidUntil)
		b = appendVarint(b, c.Version)
	case CmdPostListing:
		b = appendVarint(b, c.Participant)
		b = appendVarint(b, c.Instrument)
		b = appendVarint(b, c.DefVersion)
		b = appendString(b, c.ClientOrderID)
		b = append(b, byte(c.Side))
		b = appendVarint(b, c.Price)
		b = appendVarint(b, c.Qty)
		b = appendVarint(b, c.MinQty)
		b = appendVarint(b, c.ValidUntil)
		l := c.Listing
		if l == nil {
			l = &ListingSpec{}
		}
		b = appendUvarint(b, uint64(len(l.Receipts)))
		for _, r := range l.Receipts {
			b = appendString(b, r)
		}
		b = appendString(b, l.Grade)
		b = appendString(b, l.Brand)
		b = appendString(b, l.Warehouse)
		b = appendString(b, l.ProductionDate)
	case CmdTakeListing:
		b = appendVarint(b, c.Participant)
		b = appendString(b, c.ClientOrderID)
		b = appendVarint(b, c.OrderID)
		b = appendVarint(b, c.Qty)
	case CmdWithdrawListing:
		b = appendVarint(b, c.Participant)
		b = appendVarint(b, c.OrderID)
	case CmdExpireListings:
	case CmdStartAuction:
		b = appendVarint(b, c.Participant)
		b = appendVarint(b, c.Instrument)
		b = appendVarint(b, c.DefVersion)
		b = appendString(b, c.ClientOrderID)
		b = appendVarint(b, c.Price)
		b = appendVarint(b, c.Qty)
		a, l := c.Auction, c.Listing
		if a == nil {
			a = &AuctionSpec{}
		}
		if l == nil {
			l = &ListingSpec{}
		}
		b = appendVarint(b, a.MinIncrement)
		b = appendVarint(b, a.Starts)
		b = appendVarint(b, a.Ends)
		b = appendVarint(b, a.Extension)
		b = appendUvarint(b, uint64(len(l.Receipts)))
		for _, r := range l.Receipts {
			b = appendString(b, r)
		}
	case CmdAuctionBid:
		b = appendVarint(b, c.Participant)
		b = appendString(b, c.ClientOrderID)
		b = appendVarint(b, c.OrderID)
		b = appendVarint(b, c.Price)
		b = appendVarint(b, c.Qty)
	case CmdSetFunding:
		b = appendVarint(b, c.Participant)
		b = appendString(b, c.ParticipantID)
		b = appendString(b, c.Key)
		b = appendString(b, c.Currency)
		b = appendVarint(b, int64(c.CurrencyExp))
		b = appendString(b, c.CounterCurrency)
		b = appendVarint(b, int64(c.CounterExp))
		b = appendVarint(b, c.Version)
	}
	return b
}

func appendDef(b []byte, d *InstrumentDef) []byte {
	b = appendVarint(b, d.Number)
	b = appendString(b, d.Symbol)
	b = appendVarint(b, d.Version)
	b = appendString(b, d.Currency)
	b = appendVarint(b, int64(d.CurrencyExp))
	b = appendVarint(b, d.LotMicro)
	b = appendVarint(b, d.TickMinor)
	b = appendVarint(b, d.TickLotMinor)
	b = appendVarint(b, d.ReferenceTicks)
	b = appendVarint(b, d.BandTicks)
	b = appendBool(b, d.CallAuction)
	// Listing mode shares the continuous flag's byte (bit 1), so older
	// definitions encode as before.
	m := byte(0)
	if d.Continuous {
		m |= 1
	}
	if d.Listing {
		m |= 2
	}
	if d.OneSided {
		m |= 4
	}
	b = append(b, m)
	return appendBool(b, d.Delisted)
}

func appendOrderView(b []byte, o *OrderView) []byte {
	b = appendVarint(b, o.ID)
	b = appendVarint(b, int64(o.Participant))
	b = appendVarint(b, int64(o.Def))
	flags := uint64(o.Side) | uint64(o.Type)<<1 | uint64(o.TIF)<<2 | uint64(o.STP)<<5 | uint64(o.Status)<<9
	if o.PostOnly {
		flags |= 1 << 8
	}
	b = appendUvarint(b, flags)
	b = appendVarint(b, o.Price)
	b = appendVarint(b, o.Qty)
	b = appendVarint(b, o.Filled)
	b = appendVarint(b, o.Open)
	b = appendVarint(b, o.DisplayQty)
	b = appendVarint(b, o.MinQty)
	b = appendVarint(b, o.NotionalTicks)
	b = appendString(b, o.ClientID)
	// The update time and sequence are the record's own; the creation time
	// is relative to it.
	return appendVarint(b, o.Updated-o.Created)
}

func (ev *Events) appendEvent(b []byte, e *Event) []byte {
	b = append(b, byte(e.Kind))
	switch e.Kind {
	case EvOrder:
		b = appendOrderView(b, ev.Order(e))
	case EvTrade:
		t := ev.Trade(e)
		b = appendTrade(b, t, ev.TradeAllocs(t))
	case EvFunds, EvPosition, EvPhase, EvInstrument, EvFeeSchedule, EvFXRate, EvFunding:
		b = appendDetail(b, e.Kind, ev.Detail(e))
	}
	return b
}

// appendTrade appends a trade without its kind byte; al are its
// allocations.
func appendTrade(b []byte, t *Trade, al []Alloc) []byte {
	b = appendVarint(b, t.ID)
	b = appendVarint(b, int64(t.Def))
	b = appendVarint(b, t.Price)
	b = appendVarint(b, t.Qty)
	b = appendVarint(b, t.BuyOrder)
	b = appendVarint(b, t.SellOrder)
	b = appendVarint(b, int64(t.Buyer))
	b = appendVarint(b, int64(t.Seller))
	// Bits 2 and 3 flag FX legs, appended at the end: a trade without
	// them encodes as it did before FX funding existed.
	flags := t.Aggressor
	if t.BuyerFX.Rate != 0 {
		flags |= 4
	}
	if t.SellerFX.Rate != 0 {
		flags |= 8
	}
	if t.Listing != 0 {
		flags |= 16
	}
	if t.Auction != 0 {
		flags |= 32
	}
	b = append(b, flags)
	b = appendVarint(b, t.BuyerFee)
	b = appendVarint(b, t.SellerFee)
	b = appendString(b, t.BuyClient)
	b = appendString(b, t.SellClient)
	b = appendUvarint(b, uint64(len(al)))
	for i := range al {
		b = appendString(b, al[i].Receipt)
		b = appendVarint(b, al[i].WeightMicro)
	}
	for _, l := range [2]*FXLeg{&t.BuyerFX, &t.SellerFX} {
		if l.Rate != 0 {
			b = appendVarint(b, int64(l.Rate))
			b = appendVarint(b, int64(l.Currency))
			b = appendVarint(b, l.Amount)
		}
	}
	if t.Listing != 0 {
		b = appendVarint(b, t.Listing)
	}
	if t.Auction != 0 {
		b = appendVarint(b, t.Auction)
	}
	return b
}

func appendDetail(b []byte, k EventKind, x *EventDetail) []byte {
	switch k {
	case EvFunds:
		b = appendVarint(b, int64(x.Participant))
		b = appendVarint(b, int64(x.Currency))
		b = appendVarint(b, x.Amount)
		b = appendString(b, x.Key)
	case EvPosition:
		b = appendVarint(b, int64(x.Participant))
		b = appendString(b, x.Receipt)
		b = appendUvarint(b, uint64(len(x.Symbols)))
		for _, s := range x.Symbols {
			b = appendVarint(b, s)
		}
		b = appendVarint(b, x.WeightMicro)
		b = appendString(b, x.Key)
	case EvPhase:
		b = appendVarint(b, int64(x.Def))
		b = append(b, byte(x.Phase))
		b = appendBool(b, x.EndOfDay)
	case EvInstrument:
		b = appendVarint(b, int64(x.Def))
	case EvFeeSchedule:
		b = appendVarint(b, int64(x.Def))
		b = appendVarint(b, int64(x.FeeIndex))
	case EvFXRate:
		b = appendVarint(b, int64(x.FeeIndex))
	case EvFunding:
		b = appendVarint(b, int64(x.Participant))
		b = appendVarint(b, int64(x.Currency))
		b = appendVarint(b, int64(x.FeeIndex))
	}
	return b
}

// decoder reads a payload; the first error sticks.
type decoder struct {
	b   []byte
	err error
	seq uint64
	ts  int64
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrDecode, what)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("short")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) i32() int32 {
	v := d.varint()
	if v < -1<<31 || v >= 1<<31 {
		d.fail("int32 out of range")
	}
	return int32(v)
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("string past the end")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) bool() bool { return d.byte() != 0 }

func (d *decoder) count(max int) int {
	n := d.uvarint()
	if n > uint64(max) || n > uint64(len(d.b)) {
		d.fail("count too large")
		return 0
	}
	return int(n)
}

func (d *decoder) feeRule(r *FeeRule) {
	r.Basis = FeeBasis(d.byte())
	r.RateE12 = d.varint()
	r.PerLotMinor = d.varint()
	r.MinMinor = d.varint()
}

// DecodeCommand decodes the command of a record's payload and returns the
// rest of the payload: the encoded events, which a replay compares with
// what applying the command produces (AppendEvents).
func DecodeCommand(p []byte, cmd *Command) ([]byte, error) {
	d := &decoder{b: p}
	if v := d.byte(); v != RecordVersion && d.err == nil {
		return nil, fmt.Errorf("%w: version %d", ErrDecode, v)
	}
	decodeCommand(d, cmd)
	return d.b, d.err
}

// AppendEvents appends the encoding of events, as in a record after its
// command.
func AppendEvents(b []byte, ev *Events) []byte {
	b = appendUvarint(b, uint64(len(ev.List)))
	for i := range ev.List {
		b = ev.appendEvent(b, &ev.List[i])
	}
	return b
}

// DecodeRecord decodes the payload of the journal record with sequence
// number seq and time ts into cmd and ev (reusing their buffers).
func DecodeRecord(p []byte, seq uint64, ts int64, cmd *Command, ev *Events) error {
	d := &decoder{b: p, seq: seq, ts: ts}
	if v := d.byte(); v != RecordVersion && d.err == nil {
		return fmt.Errorf("%w: version %d", ErrDecode, v)
	}
	decodeCommand(d, cmd)
	ev.Reset()
	n := d.count(1 << 24)
	for range n {
		ev.decodeEvent(d)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	return d.err
}

func decodeCommand(d *decoder, c *Command) {
	*c = Command{Kind: CmdKind(d.byte())}
	switch c.Kind {
	case CmdPlace:
		c.Participant = d.varint()
		c.Instrument = d.varint()
		c.DefVersion = d.varint()
		c.ClientOrderID = d.string()
		f := d.uvarint()
		c.Side, c.Type, c.TIF, c.STP = Side(f&1), OrderType(f>>1&1), TIF(f>>2&7), STPMode(f>>5&7)
		c.PostOnly = f&(1<<8) != 0
		c.Price = d.varint()
		c.Qty = d.varint()
		c.DisplayQty = d.varint()
		c.MinQty = d.varint()
	case CmdCancel, CmdReplace:
		c.Participant = d.varint()
		c.Instrument = d.varint()
		c.OrderID = d.varint()
		c.OrigClientOrderID = d.string()
		if c.Kind == CmdReplace {
			c.DefVersion = d.varint()
			c.ClientOrderID = d.string()
			c.Price = d.varint()
			c.Qty = d.varint()
			c.OpenQty = d.bool()
		}
	case CmdMassCancel:
		c.Participant = d.varint()
		c.Instrument = d.varint()
	case CmdCreditFunds, CmdDebitFunds:
		c.Participant = d.varint()
		c.ParticipantID = d.string()
		c.Key = d.string()
		c.Currency = d.string()
		c.CurrencyExp = d.i32()
		c.Amount = d.varint()
	case CmdCreditPosition, CmdDebitPosition:
		c.Participant = d.varint()
		c.ParticipantID = d.string()
		c.Key = d.string()
		c.Receipt = d.string()
		n := d.count(1 << 16)
		if n > 0 {
			c.Symbols = make([]int64, n)
			for i := range c.Symbols {
				c.Symbols[i] = d.varint()
			}
		}
		c.WeightMicro = d.varint()
	case CmdSetPhase:
		c.Instrument = d.varint()
		c.Phase = Phase(d.byte())
		c.PhaseSource = PhaseSource(d.byte())
		c.EndOfDay = d.bool()
	case CmdSetFeeSchedule:
		c.Instrument = d.varint()
		c.Key = d.string()
		d.feeRule(&c.Fees.Buyer)
		d.feeRule(&c.Fees.Seller)
	case CmdDefineInstrument:
		decodeDef(d, &c.Def)
	case CmdSetFXRate:
		c.Key = d.string()
		c.Currency = d.string()
		c.CurrencyExp = d.i32()
		c.CounterCurrency = d.string()
		c.CounterExp = d.i32()
		c.Amount = d.varint()
		c.ValidFrom = d.varint()
		c.ValidUntil = d.varint()
		c.Version = d.varint()
	case CmdPostListing:
		c.Participant = d.varint()
		c.Instrument = d.varint()
		c.DefVersion = d.varint()
		c.ClientOrderID = d.string()
		c.Side = Side(d.byte())
		c.Price = d.varint()
		c.Qty = d.varint()
		c.MinQty = d.varint()
		c.ValidUntil = d.varint()
		l := &ListingSpec{}
		for range d.count(1 << 16) {
			l.Receipts = append(l.Receipts, d.string())
		}
		l.Grade, l.Brand, l.Warehouse, l.ProductionDate = d.string(), d.string(), d.string(), d.string()
		c.Listing = l
	case CmdTakeListing:
		c.Participant = d.varint()
		c.ClientOrderID = d.string()
		c.OrderID = d.varint()
		c.Qty = d.varint()
	case CmdWithdrawListing:
		c.Participant = d.varint()
		c.OrderID = d.varint()
	case CmdExpireListings:
	case CmdStartAuction:
		c.Participant = d.varint()
		c.Instrument = d.varint()
		c.DefVersion = d.varint()
		c.ClientOrderID = d.string()
		c.Price = d.varint()
		c.Qty = d.varint()
		c.Auction = &AuctionSpec{MinIncrement: d.varint(), Starts: d.varint(), Ends: d.varint(), Extension: d.varint()}
		c.Listing = &ListingSpec{}
		for range d.count(1 << 16) {
			c.Listing.Receipts = append(c.Listing.Receipts, d.string())
		}
	case CmdAuctionBid:
		c.Participant = d.varint()
		c.ClientOrderID = d.string()
		c.OrderID = d.varint()
		c.Price = d.varint()
		c.Qty = d.varint()
	case CmdSetFunding:
		c.Participant = d.varint()
		c.ParticipantID = d.string()
		c.Key = d.string()
		c.Currency = d.string()
		c.CurrencyExp = d.i32()
		c.CounterCurrency = d.string()
		c.CounterExp = d.i32()
		c.Version = d.varint()
	default:
		d.fail(fmt.Sprintf("unknown command kind %d", c.Kind))
	}
}

func decodeDef(d *decoder, def *InstrumentDef) {
	def.Number = d.varint()
	def.Symbol = d.string()
	def.Version = d.varint()
	def.Currency = d.string()
	def.CurrencyExp = d.i32()
	def.LotMicro = d.varint()
	def.TickMinor = d.varint()
	def.TickLotMinor = d.varint()
	def.ReferenceTicks = d.varint()
	def.BandTicks = d.varint()
	def.CallAuction = d.bool()
	m := d.byte()
	def.Continuous, def.Listing, def.OneSided = m&1 != 0, m&2 != 0, m&4 != 0
	def.Delisted = d.bool()
}

func decodeOrderView(d *decoder, o *OrderView) {
	o.ID = d.varint()
	o.Participant = d.i32()
	o.Def = d.i32()
	f := d.uvarint()
	o.Side, o.Type, o.TIF, o.STP = Side(f&1), OrderType(f>>1&1), TIF(f>>2&7), STPMode(f>>5&7)
	o.PostOnly = f&(1<<8) != 0
	o.Status = OrderStatus(f >> 9 & 7)
	o.Price = d.varint()
	o.Qty = d.varint()
	o.Filled = d.varint()
	o.Open = d.varint()
	o.Cancelled = o.Qty - o.Filled - o.Open
	o.DisplayQty = d.varint()
	o.MinQty = d.varint()
	o.NotionalTicks = d.varint()
	o.ClientID = d.string()
	o.Updated, o.Seq = d.ts, d.seq
	o.Created = o.Updated - d.varint()
}

// decodeEvent decodes one event and appends it.
func (ev *Events) decodeEvent(d *decoder) {
	k := EventKind(d.byte())
	switch k {
	case EvOrder:
		decodeOrderView(d, ev.addOrder())
	case EvTrade:
		var t Trade
		decodeTrade(d, &t, &ev.Allocs)
		ev.addTrade(&t)
	case EvFunds, EvPosition, EvPhase, EvInstrument, EvFeeSchedule, EvFXRate, EvFunding:
		decodeDetail(d, k, ev.addDetail(k))
	default:
		ev.List = append(ev.List, Event{Kind: k})
		d.fail(fmt.Sprintf("unknown event kind %d", k))
	}
}

// decodeTrade decodes a trade without its kind byte, appending its
// allocations to allocs.
func decodeTrade(d *decoder, t *Trade, allocs *[]Alloc) {
	t.ID = d.varint()
	t.Def = d.i32()
	t.Price = d.varint()
	t.Qty = d.varint()
	t.BuyOrder = d.varint()
	t.SellOrder = d.varint()
	t.Buyer = d.i32()
	t.Seller = d.i32()
	flags := d.byte()
	t.Aggressor = flags & 3
	t.BuyerFee = d.varint()
	t.SellerFee = d.varint()
	t.BuyClient = d.string()
	t.SellClient = d.string()
	n := d.count(1 << 16)
	t.AllocsStart = int32(len(*allocs))
	for range n {
		*allocs = append(*allocs, Alloc{Receipt: d.string(), WeightMicro: d.varint()})
	}
	t.AllocsEnd = int32(len(*allocs))
	t.BuyerFX, t.SellerFX = FXLeg{}, FXLeg{}
	if flags&4 != 0 {
		t.BuyerFX = FXLeg{Rate: d.i32(), Currency: d.i32(), Amount: d.varint()}
	}
	if flags&8 != 0 {
		t.SellerFX = FXLeg{Rate: d.i32(), Currency: d.i32(), Amount: d.varint()}
	}
	t.Listing, t.Auction = 0, 0
	if flags&16 != 0 {
		t.Listing = d.varint()
	}
	if flags&32 != 0 {
		t.Auction = d.varint()
	}
}

func decodeDetail(d *decoder, k EventKind, x *EventDetail) {
	switch k {
	case EvFunds:
		x.Participant = d.i32()
		x.Currency = d.i32()
		x.Amount = d.varint()
		x.Key = d.string()
	case EvPosition:
		x.Participant = d.i32()
		x.Receipt = d.string()
		n := d.count(1 << 16)
		if n > 0 {
			x.Symbols = make([]int64, n)
			for i := range x.Symbols {
				x.Symbols[i] = d.varint()
			}
		}
		x.WeightMicro = d.varint()
		x.Key = d.string()
	case EvPhase:
		x.Def = d.i32()
		x.Phase = Phase(d.byte())
		x.EndOfDay = d.bool()
	case EvInstrument:
		x.Def = d.i32()
	case EvFeeSchedule:
		x.Def = d.i32()
		x.FeeIndex = d.i32()
	case EvFXRate:
		x.FeeIndex = d.i32()
	case EvFunding:
		x.Participant = d.i32()
		x.Currency = d.i32()
		x.FeeIndex = d.i32()
	}
}
