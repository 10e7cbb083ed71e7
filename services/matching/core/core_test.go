package core

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/bcx-exchange/bcx/pkg/orderbook"
)

// Cotton-like test instrument: 5 t lots, tick 5 CNY/t (500 fen), so one tick
// on one lot is 2,500 fen; reference 15,000 CNY/t = 3,000 ticks; band ±4% =
// 120 ticks.
const (
	cotton = 1
	rubber = 2
	alpha  = 101
	beta   = 102
	gamma  = 103
)

func cottonDef() InstrumentDef {
	return InstrumentDef{Number: cotton, Symbol: "CF", Version: 1, Currency: "CNY", CurrencyExp: 2, LotMicro: 5_000_000,
		TickMinor: 500, TickLotMinor: 2500, ReferenceTicks: 3000, BandTicks: 120, CallAuction: true, Continuous: true, Listing: true, OneSided: true}
}

func rubberDef() InstrumentDef {
	return InstrumentDef{Number: rubber, Symbol: "NR", Version: 1, Currency: "USD", CurrencyExp: 2, LotMicro: 10_000_000,
		TickMinor: 100, TickLotMinor: 1000, ReferenceTicks: 1750, BandTicks: 87, Continuous: true, Listing: true}
}

type harness struct {
	t   testing.TB
	c   *Core
	seq uint64
	log []rec
}

type rec struct {
	seq     uint64
	ts      int64
	payload []byte
}

func newHarness(t testing.TB) *harness {
	return &harness{t: t, c: New(Limits{MaxOrdersPerBook: 1000, FinishedOrders: 50, TradeHistory: 10})}
}

// do applies a command like the sequencer: the next sequence number, a
// time derived from it, and a journal record if it changed state.
func (h *harness) do(cmd Command) Result {
	h.t.Helper()
	var res Result
	seq := h.seq + 1
	ts := int64(seq) * 1000
	h.c.Apply(seq, ts, &cmd, &res)
	if res.Changed {
		h.seq = seq
		h.log = append(h.log, rec{seq, ts, AppendRecord(nil, &cmd, h.c.Events())})
	}
	if err := h.c.CheckInvariants(); err != nil {
		h.t.Fatalf("after %+v: %v", cmd, err)
	}
	return res
}

func (h *harness) ok(cmd Command) Result {
	h.t.Helper()
	r := h.do(cmd)
	if r.Status != StatusOK {
		h.t.Fatalf("%+v: status %d reject %d field %q", cmd, r.Status, r.Reject, r.Field)
	}
	return r
}

func (h *harness) setup() {
	h.ok(Command{Kind: CmdDefineInstrument, Def: cottonDef()})
	h.ok(Command{Kind: CmdDefineInstrument, Def: rubberDef()})
	h.ok(Command{Kind: CmdSetPhase, Instrument: cotton, Phase: PhaseContinuous})
	h.ok(Command{Kind: CmdSetPhase, Instrument: rubber, Phase: PhaseContinuous})
}

func (h *harness) credit(part int64, cur string, amount int64) {
	h.ok(Command{Kind: CmdCreditFunds, Participant: part, ParticipantID: fmt.Sprint("P", part), Key: fmt.Sprint("c", h.seq),
		Currency: cur, CurrencyExp: 2, Amount: amount})
}

func (h *harness) deposit(part int64, receipt string, weightMicro int64, insts ...int64) {
	h.ok(Command{Kind: CmdCreditPosition, Participant: part, ParticipantID: fmt.Sprint("P", part), Key: "d/" + receipt,
		Receipt: receipt, Symbols: insts, WeightMicro: weightMicro})
}

func limit(part int64, cloid string, side Side, price, qty int64) Command {
	return Command{Kind: CmdPlace, Participant: part, Instrument: cotton, ClientOrderID: cloid, Side: side,
		TIF: orderbook.GTC, Price: price, Qty: qty}
}

func (h *harness) funds(part int64, cur string) funds {
	pi, ok := h.c.partIndex(part)
	if !ok {
		return funds{}
	}
	ci := h.c.curByCode[cur]
	return *h.c.parts[pi].fundsOf(ci)
}

func (h *harness) pool(receipt string) pool {
	s, ok := h.c.poolByRc[receipt]
	if !ok {
		return pool{}
	}
	return h.c.pools[s]
}

func TestRejects(t *testing.T) {
	type tc struct {
		name   string
		prep   func(h *harness)
		cmd    Command
		status Status
		reject Reject
		field  string
	}
	buy := limit(alpha, "b1", orderbook.Buy, 3000, 2)
	sell := limit(beta, "s1", orderbook.Sell, 3000, 2)
	with := func(c Command, f func(*Command)) Command { f(&c); return c }
	cases := []tc{
		{"unknown instrument", nil, with(buy, func(c *Command) { c.Instrument = 99 }), StatusInvalid, RejectUnknownInstrument, "symbol"},
		{"quantity zero", nil, with(buy, func(c *Command) { c.Qty = 0 }), StatusInvalid, RejectQuantityNotPositive, "quantity"},
		{"quantity negative", nil, with(buy, func(c *Command) { c.Qty = -1 }), StatusInvalid, RejectQuantityNotPositive, "quantity"},
		{"above band", nil, with(buy, func(c *Command) { c.Price = 3121 }), StatusInvalid, RejectPriceOutsideBand, "price"},
		{"below band", nil, with(sell, func(c *Command) { c.Price = 2879 }), StatusInvalid, RejectPriceOutsideBand, "price"},
		{"market protection outside band", nil, with(buy, func(c *Command) { c.Type = orderbook.Market; c.TIF = orderbook.IOC; c.Price = 4000 }),
			StatusInvalid, RejectPriceOutsideBand, "protection_price"},
		{"no client order id", nil, with(buy, func(c *Command) { c.ClientOrderID = "" }), StatusInvalid, RejectInvalid, "client_order_id"},
		{"insufficient funds", func(h *harness) { h.credit(alpha, "CNY", 2*3000*2500-1) }, buy, StatusRefused, RejectInsufficientFunds, ""},
		{"funds in another currency", func(h *harness) { h.credit(alpha, "USD", 1e12) }, buy, StatusRefused, RejectInsufficientFunds, ""},
		{"unknown participant buys", nil, with(buy, func(c *Command) { c.Participant = 999 }), StatusRefused, RejectInsufficientFunds, ""},
		{"insufficient position", func(h *harness) { h.deposit(beta, "R1", 9_999_999, cotton) }, sell, StatusRefused, RejectInsufficientPosition, ""},
		{"position for another instrument", func(h *harness) { h.deposit(beta, "R1", 1e9, rubber) }, sell, StatusRefused, RejectInsufficientPosition, ""},
		{"reserved position", func(h *harness) {
			h.deposit(beta, "R1", 15_000_000, cotton)
			h.ok(limit(beta, "s0", orderbook.Sell, 3010, 2))
		}, sell, StatusRefused, RejectInsufficientPosition, ""},
		{"closed", func(h *harness) {
			h.credit(alpha, "CNY", 1e12)
			h.ok(Command{Kind: CmdSetPhase, Instrument: cotton, Phase: PhaseClosed})
		}, buy, StatusRefused, RejectWrongPhase, ""},
		{"halted", func(h *harness) {
			h.credit(alpha, "CNY", 1e12)
			h.ok(Command{Kind: CmdSetPhase, Instrument: cotton, Phase: PhaseHalted, PhaseSource: SourceOperator})
		}, buy, StatusRefused, RejectWrongPhase, ""},
		{"IOC in pre-open", func(h *harness) {
			h.credit(alpha, "CNY", 1e12)
			h.ok(Command{Kind: CmdSetPhase, Instrument: cotton, Phase: PhasePreOpen})
		}, with(buy, func(c *Command) { c.TIF = orderbook.IOC }), StatusRefused, RejectWrongPhase, ""},
		{"call auction not allowed", func(h *harness) {
			h.credit(alpha, "USD", 1e12)
		}, Command{Kind: CmdSetPhase, Instrument: rubber, Phase: PhasePreOpen}, StatusRefused, RejectModeNotAllowed, "phase"},
		{"continuous mode not allowed", func(h *harness) {
			d := cottonDef()
			d.Version, d.Continuous = 2, false
			h.ok(Command{Kind: CmdDefineInstrument, Def: d})
			h.credit(alpha, "CNY", 1e12)
		}, buy, StatusRefused, RejectModeNotAllowed, ""},
		{"duplicate client order id, other content", func(h *harness) {
			h.credit(alpha, "CNY", 1e12)
			h.ok(buy)
		}, with(buy, func(c *Command) { c.Price = 3001 }), StatusInvalid, RejectDuplicateClientID, "client_order_id"},
		{"post-only would take", func(h *harness) {
			h.credit(alpha, "CNY", 1e12)
			h.deposit(beta, "R1", 1e9, cotton)
			h.ok(sell)
		}, with(buy, func(c *Command) { c.PostOnly = true }), StatusRefused, RejectPostOnlyWouldTake, ""},
		{"fill or kill unfilled", func(h *harness) {
			h.credit(alpha, "CNY", 1e12)
			h.deposit(beta, "R1", 1e9, cotton)
			h.ok(sell)
		}, with(buy, func(c *Command) { c.TIF = orderbook.FOK; c.Qty = 3 }), StatusRefused, RejectFOKUnfilled, ""},
		{"min quantity unfilled", func(h *harness) {
			h.credit(alpha, "CNY", 1e12)
		}, with(buy, func(c *Command) { c.MinQty = 1 }), StatusRefused, RejectMinQtyUnfilled, ""},
		{"too large", func(h *harness) { h.credit(alpha, "CNY", 1e12) }, with(buy, func(c *Command) { c.Qty = 1 << 50 }),
			StatusInvalid, RejectTooLarge, "quantity"},
		{"amended definition", func(h *harness) { h.credit(alpha, "CNY", 1e12) }, with(buy, func(c *Command) { c.DefVersion = 7 }),
			StatusRefused, RejectInstrumentAmended, "symbol"},
		{"cancel unknown", nil, Command{Kind: CmdCancel, Participant: alpha, OrderID: 42}, StatusNotFound, RejectUnknownOrder, "order_id"},
		{"cancel another member's order", func(h *harness) {
			h.credit(alpha, "CNY", 1e12)
			h.credit(beta, "CNY", 1)
			h.ok(buy)
		}, Command{Kind: CmdCancel, Participant: beta, OrderID: 1}, StatusNotFound, RejectUnknownOrder, "order_id"},
		{"cancel another member's order by client id", func(h *harness) {
			h.credit(alpha, "CNY", 1e12)
			h.credit(beta, "CNY", 1)
			h.ok(buy)
		}, Command{Kind: CmdCancel, Participant: beta, OrigClientOrderID: "b1"}, StatusNotFound, RejectUnknownOrder, "client_order_id"},
		{"replace above funds", func(h *harness) {
			h.credit(alpha, "CNY", 2*3000*2500)
			h.ok(buy)
		}, Command{Kind: CmdReplace, Participant: alpha, OrderID: 1, Price: 3001}, StatusRefused, RejectInsufficientFunds, ""},
		{"replace outside band", func(h *harness) {
			h.credit(alpha, "CNY", 1e12)
			h.ok(buy)
		}, Command{Kind: CmdReplace, Participant: alpha, OrderID: 1, Price: 5000}, StatusInvalid, RejectPriceOutsideBand, "price"},
		{"replace to nothing", func(h *harness) {
			h.credit(alpha, "CNY", 1e12)
			h.ok(buy)
		}, Command{Kind: CmdReplace, Participant: alpha, OrderID: 1, Qty: 0, OpenQty: false, Price: 3000}, StatusInvalid, RejectNoChange, "quantity"},
		{"replace sell beyond position", func(h *harness) {
			h.deposit(beta, "R1", 10_000_000, cotton)
			h.ok(sell)
		}, Command{Kind: CmdReplace, Participant: beta, OrderID: 1, Qty: 3}, StatusRefused, RejectInsufficientPosition, ""},
		{"debit above available", func(h *harness) {
			h.credit(alpha, "CNY", 2*3000*2500)
			h.ok(buy)
		}, Command{Kind: CmdDebitFunds, Participant: alpha, Key: "w1", Currency: "CNY", CurrencyExp: 2, Amount: 1},
			StatusRefused, RejectInsufficientFunds, ""},
		{"withdraw a reserved receipt", func(h *harness) {
			h.deposit(beta, "R1", 10_000_000, cotton)
			h.ok(sell)
		}, Command{Kind: CmdDebitPosition, Participant: beta, Key: "x", Receipt: "R1"}, StatusRefused, RejectInsufficientPosition, "receipt_number"},
		{"withdraw another member's receipt", func(h *harness) {
			h.deposit(beta, "R1", 10_000_000, cotton)
			h.credit(alpha, "CNY", 1)
		}, Command{Kind: CmdDebitPosition, Participant: alpha, Key: "x", Receipt: "R1"}, StatusNotFound, RejectInvalid, "receipt_number"},
		{"receipt deposited twice", func(h *harness) { h.deposit(beta, "R1", 10_000_000, cotton) },
			Command{Kind: CmdCreditPosition, Participant: alpha, Key: "other", Receipt: "R1", Symbols: []int64{cotton}, WeightMicro: 1},
			StatusRefused, RejectReceiptExists, "receipt_number"},
		{"receipt for unknown instrument", nil,
			Command{Kind: CmdCreditPosition, Participant: alpha, Key: "k", Receipt: "R9", Symbols: []int64{77}, WeightMicro: 1},
			StatusInvalid, RejectUnknownInstrument, "symbols"},
		{"idempotency key reused", func(h *harness) {
			h.ok(Command{Kind: CmdCreditFunds, Participant: alpha, Key: "k", Currency: "CNY", CurrencyExp: 2, Amount: 5})
		}, Command{Kind: CmdCreditFunds, Participant: alpha, Key: "k", Currency: "CNY", CurrencyExp: 2, Amount: 6},
			StatusInvalid, RejectIdempotencyKey, "idempotency_key"},
		{"credit with a different exponent", func(h *harness) { h.credit(alpha, "CNY", 1) },
			Command{Kind: CmdCreditFunds, Participant: alpha, Key: "k2", Currency: "CNY", CurrencyExp: 3, Amount: 6},
			StatusInvalid, RejectWrongCurrency, "amount.currency"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.setup()
			if c.prep != nil {
				c.prep(h)
			}
			before := h.c.AppendSnapshot(nil)
			r := h.do(c.cmd)
			if r.Status != c.status || r.Reject != c.reject || r.Field != c.field {
				t.Fatalf("got status %d reject %d field %q, want %d %d %q", r.Status, r.Reject, r.Field, c.status, c.reject, c.field)
			}
			if r.Changed || len(h.c.Events().List) != 0 {
				t.Fatalf("refused command changed state (%d events)", len(h.c.Events().List))
			}
			if after := h.c.AppendSnapshot(nil); !bytes.Equal(before, after) {
				t.Fatal("refused command changed the canonical state")
			}
		})
	}
}

func TestBuyReservationAndFill(t *testing.T) {
	h := newHarness(t)
	h.setup()
	// Fees: buyer 0.0003 of notional with a 10 CNY minimum, seller 2 CNY a lot.
	h.ok(Command{Kind: CmdSetFeeSchedule, Instrument: cotton, Key: "fees1", Fees: FeeSchedule{
		Buyer:  FeeRule{Basis: FeeRate, RateE12: 300_000_000, MinMinor: 1000},
		Seller: FeeRule{Basis: FeePerLot, PerLotMinor: 200}}})
	h.credit(alpha, "CNY", 100_000_000) // 1,000,000.00 CNY
	h.deposit(beta, "R-OLD", 12_000_000, cotton)
	h.deposit(beta, "R-NEW", 50_000_000, cotton, rubber)

	// Buy 4 lots at 3010 ticks: notional 4 x 3010 x 2500 = 30,100,000 fen.
	// Max fee: ceil(0.0003 x 30,100,000) = 9,030 + minimum 1,000 x 4 + 1 x 4.
	r := h.ok(limit(alpha, "b1", orderbook.Buy, 3010, 4))
	wantRes := int64(30_100_000 + 9030 + 4000 + 4)
	if f := h.funds(alpha, "CNY"); f.reserved != wantRes || f.total != 100_000_000 {
		t.Fatalf("after buy: %+v, want reserved %d", f, wantRes)
	}
	buyID := r.Order.ID

	// A sell of 3 lots at 3000 trades at the resting buy's price 3010.
	r = h.ok(limit(beta, "s1", orderbook.Sell, 3000, 3))
	if len(r.Fills) != 1 || r.Fills[0].Price != 3010 || r.Fills[0].Qty != 3 || r.Fills[0].Maker {
		t.Fatalf("fills %+v", r.Fills)
	}
	notional := int64(3 * 3010 * 2500) // 22,575,000
	buyerFee := int64(6773)            // 0.0003 x 22,575,000 = 6,772.5: half up to 6,773
	sellerFee := int64(600)
	if r.Fills[0].FeeMinor != sellerFee {
		t.Fatalf("seller fee %d, want %d", r.Fills[0].FeeMinor, sellerFee)
	}
	// The remaining lot reserves exactly what one lot needs again.
	rem, _ := mulDiv(3010*2500, 300_000_000, RateScale, roundUp)
	wantRes = 3010*2500 + rem + 1000 + 1
	if f := h.funds(alpha, "CNY"); f.total != 100_000_000-notional-buyerFee || f.reserved != wantRes {
		t.Fatalf("buyer after fill %+v, want total %d reserved %d", f, 100_000_000-notional-buyerFee, wantRes)
	}
	if f := h.funds(beta, "CNY"); f.total != notional-sellerFee || f.reserved != 0 {
		t.Fatalf("seller after fill %+v", f)
	}
	// 15 t delivered: the older receipt (12 t) first, then 3 t of the newer.
	ev := h.c.Events()
	var trade *Trade
	for i := range ev.List {
		if ev.List[i].Kind == EvTrade {
			trade = ev.Trade(&ev.List[i])
		}
	}
	if trade == nil {
		t.Fatal("no trade event")
	}
	al := ev.TradeAllocs(trade)
	if len(al) != 2 || al[0] != (Alloc{"R-OLD", 12_000_000}) || al[1] != (Alloc{"R-NEW", 3_000_000}) {
		t.Fatalf("allocations %+v", al)
	}
	if trade.BuyerFee != buyerFee || trade.SellerFee != sellerFee || trade.Aggressor != 2 || trade.BuyOrder != buyID {
		t.Fatalf("trade %+v", trade)
	}
	if p := h.pool("R-OLD"); p.total != 0 || p.reserved != 0 {
		t.Fatalf("old receipt %+v", p)
	}
	if p := h.pool("R-NEW"); p.total != 47_000_000 || p.reserved != 0 {
		t.Fatalf("new receipt %+v", p)
	}
	// Cancel releases everything.
	h.ok(Command{Kind: CmdCancel, Participant: alpha, OrigClientOrderID: "b1"})
	if f := h.funds(alpha, "CNY"); f.reserved != 0 {
		t.Fatalf("reserved after cancel %+v", f)
	}
	o, _ := h.c.Order(alpha, buyID, "")
	if o.Status != StatusCancelled || o.Filled != 3 || o.Cancelled != 1 || o.NotionalTicks != 3*3010 {
		t.Fatalf("order after cancel %+v", o)
	}
}

func TestSellerFeeCappedAtProceeds(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.ok(Command{Kind: CmdSetFeeSchedule, Instrument: cotton, Key: "f", Fees: FeeSchedule{
		Seller: FeeRule{Basis: FeePerLot, PerLotMinor: 1e9}}})
	h.credit(alpha, "CNY", 1e12)
	h.deposit(beta, "R1", 5_000_000, cotton)
	h.ok(limit(beta, "s", orderbook.Sell, 3000, 1))
	h.ok(limit(alpha, "b", orderbook.Buy, 3000, 1))
	if f := h.funds(beta, "CNY"); f.total != 0 {
		t.Fatalf("seller funds %+v, want 0 (fee capped at the proceeds)", f)
	}
}

func TestFeeRounding(t *testing.T) {
	for _, c := range []struct {
		rule           FeeRule
		notional, lots int64
		want           int64
	}{
		{FeeRule{Basis: FeeRate, RateE12: 500_000_000_000}, 1, 1, 1},         // 0.5 -> 1 (half up)
		{FeeRule{Basis: FeeRate, RateE12: 499_999_999_999}, 1, 1, 0},         // just below half -> 0
		{FeeRule{Basis: FeeRate, RateE12: 300_000_000}, 22_575_000, 3, 6773}, // 6,772.5 -> 6,773
		{FeeRule{Basis: FeeRate, RateE12: 300_000_000}, 22_573_000, 3, 6772}, // 6,771.9 -> 6,772
		{FeeRule{Basis: FeeRate, RateE12: 100_000_000, MinMinor: 500}, 1_000_000, 1, 500},
		{FeeRule{Basis: FeePerLot, PerLotMinor: 250}, 99, 4, 1000},
		{FeeRule{MinMinor: 7}, 1e9, 3, 7},
	} {
		if got := c.rule.fee(c.notional, c.lots); got != c.want {
			t.Errorf("%+v fee(%d, %d) = %d, want %d", c.rule, c.notional, c.lots, got, c.want)
		}
	}
}

// TestMaxFeeCoversPartialFills checks the reservation bound against the
// worst case it is for: every lot filled alone.
func TestMaxFeeCoversPartialFills(t *testing.T) {
	for _, r := range []FeeRule{
		{Basis: FeeRate, RateE12: 500_000_000_000},
		{Basis: FeeRate, RateE12: 333_333_333_333, MinMinor: 3},
		{Basis: FeePerLot, PerLotMinor: 17, MinMinor: 40},
	} {
		for _, unit := range []int64{1, 3, 2500, 7777} {
			lots := int64(9)
			var paid int64
			for range lots {
				paid += r.fee(unit, 1)
			}
			bound, _ := r.maxFee(unit*lots, lots)
			if paid > bound {
				t.Errorf("%+v unit %d: fills pay %d > bound %d", r, unit, paid, bound)
			}
		}
	}
}

func TestClientOrderIDRepeat(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.credit(alpha, "CNY", 1e12)
	first := h.ok(limit(alpha, "x1", orderbook.Buy, 3000, 1))
	again := h.do(limit(alpha, "x1", orderbook.Buy, 3000, 1))
	if again.Status != StatusOK || !again.Duplicate || again.Changed || again.Order.ID != first.Order.ID {
		t.Fatalf("repeat: %+v", again)
	}
	if n := len(h.c.Orders(alpha, 0, false, 0, 100)); n != 1 {
		t.Fatalf("%d orders after a repeat, want 1", n)
	}
	// Another member may use the same id.
	h.credit(beta, "CNY", 1e12)
	if r := h.ok(limit(beta, "x1", orderbook.Buy, 3000, 1)); r.Order.ID == first.Order.ID {
		t.Fatal("ids are per member")
	}
	// The end of the day forgets finished orders' ids, not resting ones'.
	h.ok(Command{Kind: CmdCancel, Participant: beta, OrigClientOrderID: "x1"})
	h.ok(Command{Kind: CmdSetPhase, Instrument: cotton, Phase: PhaseClosed, EndOfDay: true})
	if _, ok := h.c.cloids.get(cloidKey{beta, "x1"}); ok {
		t.Fatal("finished order's id kept past the close")
	}
	if _, ok := h.c.cloids.get(cloidKey{alpha, "x1"}); !ok {
		t.Fatal("resting GTC order's id forgotten at the close")
	}
}

func TestDayOrdersExpireAtClose(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.credit(alpha, "CNY", 1e12)
	day := limit(alpha, "d", orderbook.Buy, 3000, 1)
	day.TIF = orderbook.Day
	dr := h.ok(day)
	gr := h.ok(limit(alpha, "g", orderbook.Buy, 3000, 1))
	// A break is not the close.
	h.ok(Command{Kind: CmdSetPhase, Instrument: cotton, Phase: PhaseClosed})
	if o, _ := h.c.Order(alpha, dr.Order.ID, ""); o.Open != 1 {
		t.Fatalf("day order after a break: %+v", o)
	}
	h.ok(Command{Kind: CmdSetPhase, Instrument: cotton, Phase: PhaseClosed, EndOfDay: true})
	if _, ok := h.c.Order(alpha, dr.Order.ID, ""); ok {
		t.Fatal("expired day order still kept after the day ended")
	}
	if o, _ := h.c.Order(alpha, gr.Order.ID, ""); o.Open != 1 {
		t.Fatalf("GTC order after close: %+v", o)
	}
	// A second end of day does nothing.
	if r := h.do(Command{Kind: CmdSetPhase, Instrument: cotton, Phase: PhaseClosed, EndOfDay: true}); r.Changed {
		t.Fatal("second close changed state")
	}
}

func TestCallAuctionUncross(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.ok(Command{Kind: CmdSetPhase, Instrument: cotton, Phase: PhaseClosed, EndOfDay: true})
	h.ok(Command{Kind: CmdSetPhase, Instrument: cotton, Phase: PhasePreOpen})
	h.credit(alpha, "CNY", 1e12)
	h.deposit(beta, "R1", 100_000_000, cotton)
	h.ok(limit(alpha, "b", orderbook.Buy, 3020, 4))
	h.ok(limit(beta, "s", orderbook.Sell, 2990, 3))
	var m Market
	h.c.MarketOf(cotton, 10, &m)
	if !m.Auction || m.Indicative.Volume != 3 || len(m.Bids) != 1 || len(m.Asks) != 1 {
		t.Fatalf("pre-open market %+v", m)
	}
	h.ok(Command{Kind: CmdSetPhase, Instrument: cotton, Phase: PhaseContinuous})
	h.c.MarketOf(cotton, 10, &m)
	if m.Auction || m.LastQty != 3 || m.LastPrice != m.LastPrice || len(m.Asks) != 0 {
		t.Fatalf("after uncross %+v", m)
	}
}

func TestHaltSurvivesSchedule(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.ok(Command{Kind: CmdSetPhase, Instrument: cotton, Phase: PhaseHalted, PhaseSource: SourceOperator})
	if r := h.do(Command{Kind: CmdSetPhase, Instrument: cotton, Phase: PhaseContinuous}); r.Changed {
		t.Fatal("the schedule resumed an operator's halt")
	}
	h.ok(Command{Kind: CmdSetPhase, Instrument: cotton, Phase: PhaseContinuous, PhaseSource: SourceOperator})
}

func TestAmendmentCancelsOrders(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.credit(alpha, "CNY", 1e12)
	r := h.ok(limit(alpha, "b", orderbook.Buy, 3000, 1))
	d := cottonDef()
	d.Version = 2
	d.ReferenceTicks = 3100
	h.ok(Command{Kind: CmdDefineInstrument, Def: d})
	if o, _ := h.c.Order(alpha, r.Order.ID, ""); o.Status != StatusCancelled {
		t.Fatalf("order after a band change: %+v", o)
	}
	if f := h.funds(alpha, "CNY"); f.reserved != 0 {
		t.Fatalf("reserved %+v", f)
	}
	// Same-version definitions are no-ops.
	if r := h.do(Command{Kind: CmdDefineInstrument, Def: d}); r.Changed {
		t.Fatal("re-defining the same version changed state")
	}
}

func TestIdempotentFunding(t *testing.T) {
	h := newHarness(t)
	h.setup()
	cmd := Command{Kind: CmdCreditFunds, Participant: alpha, ParticipantID: "A", Key: "bank/1", Currency: "CNY", CurrencyExp: 2, Amount: 500}
	first := h.ok(cmd)
	again := h.ok(cmd)
	if !again.Duplicate || again.Changed || again.Seq != first.Seq {
		t.Fatalf("repeat %+v (first seq %d)", again, first.Seq)
	}
	if f := h.funds(alpha, "CNY"); f.total != 500 {
		t.Fatalf("funds %+v", f)
	}
}

func TestReplaceSellAdjustsWeight(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.deposit(beta, "R1", 10_000_000, cotton)
	h.deposit(beta, "R2", 10_000_000, cotton)
	r := h.ok(limit(beta, "s", orderbook.Sell, 3050, 3))
	if p1, p2 := h.pool("R1"), h.pool("R2"); p1.reserved != 10_000_000 || p2.reserved != 5_000_000 {
		t.Fatalf("reservations %d %d", p1.reserved, p2.reserved)
	}
	h.ok(Command{Kind: CmdReplace, Participant: beta, OrderID: r.Order.ID, Qty: 1})
	if p1, p2 := h.pool("R1"), h.pool("R2"); p1.reserved != 5_000_000 || p2.reserved != 0 {
		t.Fatalf("after reduce: %d %d (newest given back first)", p1.reserved, p2.reserved)
	}
	h.ok(Command{Kind: CmdDebitPosition, Participant: beta, Key: "out", Receipt: "R2"})
	if p := h.pool("R2"); p.live {
		t.Fatal("withdrawn receipt still pooled")
	}
}

// TestDayStart: an instrument's trading day starts at its definition and
// after each end-of-day close; DayStart is the oldest, and survives a
// snapshot.
func TestDayStart(t *testing.T) {
	h := newHarness(t)
	h.setup()
	if got := h.c.DayStart(); got != 1 {
		t.Fatalf("no day ended yet: DayStart %d, want cotton's definition, 1", got)
	}
	h.ok(Command{Kind: CmdSetPhase, Instrument: cotton, Phase: PhaseClosed, EndOfDay: true})
	cottonDay := h.seq + 1
	if got := h.c.DayStart(); got != 2 {
		t.Fatalf("rubber's first day is the oldest: DayStart %d, want its definition, 2", got)
	}
	h.ok(Command{Kind: CmdSetPhase, Instrument: rubber, Phase: PhaseClosed, EndOfDay: true})
	if got := h.c.DayStart(); got != cottonDay {
		t.Fatalf("both days ended: DayStart %d, want cotton's %d", got, cottonDay)
	}
	h.ok(Command{Kind: CmdSetPhase, Instrument: cotton, Phase: PhaseContinuous})
	h.ok(Command{Kind: CmdSetPhase, Instrument: cotton, Phase: PhaseClosed, EndOfDay: true})
	rubberDay := h.seq - 1
	if got := h.c.DayStart(); got != rubberDay {
		t.Fatalf("cotton's second day ended: DayStart %d, want rubber's %d", got, rubberDay)
	}
	loaded, err := Load(h.c.AppendSnapshot(nil), h.c.lim)
	if err != nil {
		t.Fatal(err)
	}
	if got := loaded.DayStart(); got != rubberDay {
		t.Fatalf("after a snapshot: DayStart %d, want %d", got, rubberDay)
	}
}
