package core

import (
	"testing"

	"github.com/bcx-exchange/bcx/pkg/orderbook"
)

// rate7123457 is USD/CNY 7.123457 at FXRateDecimals.
const rate7123457 = 71_234_570_000

func usdRate(key string, coef, from, until int64) Command {
	return Command{Kind: CmdSetFXRate, Key: key, Currency: "USD", CurrencyExp: 2, CounterCurrency: "CNY", CounterExp: 2,
		Amount: coef, ValidFrom: from, ValidUntil: until}
}

func fundUSDFromCNY(part int64, key string) Command {
	return Command{Kind: CmdSetFunding, Participant: part, ParticipantID: "P", Key: key, Currency: "USD", CurrencyExp: 2,
		CounterCurrency: "CNY", CounterExp: 2, Version: 1}
}

func rubberDay(part int64, cloid string, side Side, price, qty int64) Command {
	return Command{Kind: CmdPlace, Participant: part, Instrument: rubber, ClientOrderID: cloid, Side: side,
		TIF: orderbook.Day, Price: price, Qty: qty}
}

// TestFXFundedBuyAndSell: a member holding only CNY buys a USD instrument;
// its order reserves the CNY value of the USD it may pay, each fill pays
// the increase of the rounded-up running total, and a seller funding USD
// from CNY is credited CNY rounded down. The USD balances of both never
// move.
func TestFXFundedBuyAndSell(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.credit(alpha, "CNY", 100_000_000) // 1,000,000.00 CNY, no USD
	h.credit(gamma, "CNY", 1)           // gamma exists
	h.deposit(gamma, "RR1", 30_000_000, rubber)
	h.ok(fundUSDFromCNY(alpha, "fa"))
	h.ok(fundUSDFromCNY(gamma, "fg"))

	// Opted in but no rate: refused, not funded in USD behind its back.
	if r := h.do(rubberDay(alpha, "b0", orderbook.Buy, 1760, 2)); r.Reject != RejectNoFXRate || r.Changed {
		t.Fatalf("no rate: %+v", r)
	}
	now := int64(h.seq+1) * 1000
	h.ok(usdRate("r1", rate7123457, now, now+1_000_000_000))
	// A GTC order would outlive its rate's day.
	gtc := rubberDay(alpha, "b0", orderbook.Buy, 1760, 2)
	gtc.TIF = orderbook.GTC
	if r := h.do(gtc); r.Reject != RejectModeNotAllowed || r.Field != "time_in_force" {
		t.Fatalf("GTC: %+v", r)
	}

	// 2 lots at 1760 ticks: 2 x 1760 x 1000 = 3,520,000 cents, no fees;
	// x 7.123457 = 25,074,568.64 CNY fen, reserved rounded up.
	h.ok(rubberDay(alpha, "b1", orderbook.Buy, 1760, 2))
	if f := h.funds(alpha, "CNY"); f.reserved != 25_074_569 || f.total != 100_000_000 {
		t.Fatalf("buyer CNY %+v", f)
	}
	if f := h.funds(alpha, "USD"); f != (funds{}) {
		t.Fatalf("buyer USD %+v", f)
	}

	// Two fills of one lot: 1,760,000 cents each. The first pays
	// ceil(12,537,284.32) = 12,537,285; the second the rest of
	// ceil(25,074,568.64): 12,537,284. Together exactly the rounded total.
	var paid, got int64
	for i, cloid := range []string{"s1", "s2"} {
		r := h.ok(rubberDay(gamma, cloid, orderbook.Sell, 1755, 1))
		if len(r.Fills) != 1 || r.Fills[0].Price != 1760 || r.Fills[0].FX.Amount != []int64{12_537_284, 12_537_284}[i] {
			t.Fatalf("fill %d: %+v", i, r.Fills)
		}
		var tr *Trade
		for k := range h.c.Events().List {
			if e := &h.c.Events().List[k]; e.Kind == EvTrade {
				tr = h.c.Events().Trade(e)
			}
		}
		wantPay := []int64{12_537_285, 12_537_284}[i]
		cny := h.c.curByCode["CNY"]
		if tr.BuyerFX != (FXLeg{Rate: 1, Currency: cny, Amount: wantPay}) {
			t.Fatalf("fill %d buyer FX %+v, want %d", i, tr.BuyerFX, wantPay)
		}
		// The seller is credited the increase of its rounded-down running
		// total: floor(12,537,284.32), then floor(25,074,568.64) less that.
		wantGet := []int64{12_537_284, 12_537_284}[i]
		if tr.SellerFX != (FXLeg{Rate: 1, Currency: cny, Amount: wantGet}) {
			t.Fatalf("fill %d seller FX %+v, want %d", i, tr.SellerFX, wantGet)
		}
		paid += tr.BuyerFX.Amount
		got += tr.SellerFX.Amount
	}
	if paid != 25_074_569 || got != 25_074_568 {
		t.Fatalf("paid %d, received %d", paid, got)
	}
	if f := h.funds(alpha, "CNY"); f.reserved != 0 || f.total != 100_000_000-paid {
		t.Fatalf("buyer CNY after %+v", f)
	}
	if f := h.funds(gamma, "CNY"); f.total != 1+got {
		t.Fatalf("seller CNY after %+v", f)
	}
	for _, p := range []int64{alpha, gamma} {
		if f := h.funds(p, "USD"); f.total != 0 || f.reserved != 0 {
			t.Fatalf("participant %d USD moved: %+v", p, f)
		}
	}
	// The exchange's FX position: +1 fen of CNY rounding, the USD flows net
	// to zero.
	cny, usd := h.c.curByCode["CNY"], h.c.curByCode["USD"]
	if h.c.fxNet[cny] != -1 || h.c.fxNet[usd] != 0 {
		t.Fatalf("fx net CNY %d USD %d", h.c.fxNet[cny], h.c.fxNet[usd])
	}
}

// TestFXRateLockedPerOrder: an order keeps the rate valid at its entry;
// a new rate applies to new orders only, and after the last rate expires
// new orders are refused while resting ones still trade at theirs.
func TestFXRateLockedPerOrder(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.credit(alpha, "CNY", 100_000_000)
	h.deposit(gamma, "RR1", 30_000_000, rubber)
	h.ok(fundUSDFromCNY(alpha, "fa"))
	now := int64(h.seq+1) * 1000
	h.ok(usdRate("r1", 70_000_000_000, now, now+10_000)) // 7.0, for ten commands
	h.ok(rubberDay(alpha, "b1", orderbook.Buy, 1760, 1)) // 1,760,000 x 7 = 12,320,000
	h.ok(usdRate("r2", 80_000_000_000, now+3_000, now+10_000))
	h.ok(rubberDay(alpha, "b2", orderbook.Buy, 1750, 1)) // 1,750,000 x 8 = 14,000,000
	if f := h.funds(alpha, "CNY"); f.reserved != 12_320_000+14_000_000 {
		t.Fatalf("reserved %+v", f)
	}
	// Replace raises a resting FX order's need in CNY at its own rate,
	// checked against the CNY available (73,680,000): ten lots need
	// 123,200,000 in all.
	if r := h.do(Command{Kind: CmdReplace, Participant: alpha, OrigClientOrderID: "b1", Qty: 10}); r.Reject != RejectInsufficientFunds {
		t.Fatalf("replace: %+v", r)
	}
	for h.seq*1000 < uint64(now+10_000) {
		h.credit(beta, "CNY", 1)
	}
	if r := h.do(rubberDay(alpha, "b3", orderbook.Buy, 1750, 1)); r.Reject != RejectNoFXRate {
		t.Fatalf("after expiry: %+v", r)
	}
	r := h.ok(Command{Kind: CmdPlace, Participant: gamma, Instrument: rubber, ClientOrderID: "s", Side: orderbook.Sell,
		TIF: orderbook.IOC, Price: 1750, Qty: 2})
	if len(r.Fills) != 2 {
		t.Fatalf("fills %+v", r.Fills)
	}
	if f := h.funds(alpha, "CNY"); f.reserved != 0 || f.total != 100_000_000-12_320_000-14_000_000 {
		t.Fatalf("after fills %+v", f)
	}
	// Opting out funds new orders in USD again (alpha has none).
	h.ok(Command{Kind: CmdSetFunding, Participant: alpha, ParticipantID: "P", Key: "fa-off", Currency: "USD", CurrencyExp: 2, Version: 2})
	if r := h.do(rubberDay(alpha, "b5", orderbook.Buy, 1750, 1)); r.Reject != RejectInsufficientFunds {
		t.Fatalf("after opting out: %+v", r)
	}
}

func TestFXCommandsRefuseBadInput(t *testing.T) {
	h := newHarness(t)
	h.setup()
	for _, tc := range []struct {
		cmd   Command
		field string
	}{
		{usdRate("", rate7123457, 0, 10), "rate_id"},
		{usdRate("k", 0, 0, 10), "rate"},
		{usdRate("k", rate7123457, 10, 10), "valid_until"},
		{Command{Kind: CmdSetFXRate, Key: "k", Currency: "USD", CurrencyExp: 2, CounterCurrency: "USD", CounterExp: 2, Amount: 1, ValidUntil: 1}, "quote_currency"},
		{Command{Kind: CmdSetFXRate, Key: "k", Currency: "USD", CurrencyExp: 3, CounterCurrency: "CNY", CounterExp: 2, Amount: 1, ValidUntil: 1}, "base_currency"},
		{Command{Kind: CmdSetFunding, Participant: alpha, Key: "k", Currency: "USD", CurrencyExp: 2, CounterCurrency: "USD", CounterExp: 2}, "funding_currency"},
		{Command{Kind: CmdSetFunding, Participant: alpha, Currency: "USD", CurrencyExp: 2, CounterCurrency: "CNY", CounterExp: 2}, "idempotency_key"},
	} {
		before := h.c.StateHash()
		if r := h.do(tc.cmd); r.Status != StatusInvalid || r.Field != tc.field || r.Changed {
			t.Errorf("%+v: %+v, want field %q", tc.cmd, r, tc.field)
		}
		if h.c.StateHash() != before {
			t.Errorf("%+v changed state", tc.cmd)
		}
	}
	// The same key with another rate is a reuse, not a second rate.
	h.ok(usdRate("r", rate7123457, 0, 10))
	if r := h.do(usdRate("r", rate7123457+1, 0, 10)); r.Reject != RejectIdempotencyKey {
		t.Fatalf("reuse: %+v", r)
	}
	if r := h.do(usdRate("r", rate7123457, 0, 10)); !r.Duplicate || r.Changed {
		t.Fatalf("repeat: %+v", r)
	}
}

// TestConvertMatchesExactRule checks the core's int64 conversion against
// exact rational arithmetic across exponents and both directions.
func TestConvertMatchesExactRule(t *testing.T) {
	c := New(Limits{})
	usd, jpy, cny := c.ensureCurrency("USD", 2), c.ensureCurrency("JPY", 0), c.ensureCurrency("CNY", 2)
	for _, tc := range []struct {
		r        fxRate
		from     int32
		amount   int64
		up, down int64
	}{
		// 100.00 USD at 7.1234567891 CNY = 712.34567891 CNY: 71,235 / 71,234 fen.
		{fxRate{base: usd, quote: cny, coef: 71_234_567_891}, usd, 10_000, 71_235, 71_234},
		// 712.35 CNY back to USD: 100.0004... USD.
		{fxRate{base: usd, quote: cny, coef: 71_234_567_891}, cny, 71_235, 10_001, 10_000},
		// 1.00 USD at 151.5 JPY: 151.5 yen.
		{fxRate{base: usd, quote: jpy, coef: 1_515_000_000_000}, usd, 100, 152, 151},
		// 1,000 yen to USD at 151.5: 6.6006... USD.
		{fxRate{base: usd, quote: jpy, coef: 1_515_000_000_000}, jpy, 1000, 661, 660},
		// Exact: no rounding either way.
		{fxRate{base: usd, quote: cny, coef: 70_000_000_000}, usd, 3, 21, 21},
	} {
		up, ok1 := c.convert(&tc.r, tc.from, tc.amount, true)
		down, ok2 := c.convert(&tc.r, tc.from, tc.amount, false)
		if !ok1 || !ok2 || up != tc.up || down != tc.down {
			t.Errorf("%+v: up %d down %d, want %d %d", tc, up, down, tc.up, tc.down)
		}
	}
}

// TestFXFundingVersions: a delayed, older preference command changes
// nothing, so an opt-out cannot be undone by the opt-in it replaced.
func TestFXFundingVersions(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.credit(alpha, "CNY", 100_000_000)
	now := int64(h.seq+1) * 1000
	h.ok(usdRate("r1", rate7123457, now, now+1_000_000_000))
	out := Command{Kind: CmdSetFunding, Participant: alpha, ParticipantID: "P", Key: "v2-out", Currency: "USD", CurrencyExp: 2, Version: 2}
	in := fundUSDFromCNY(alpha, "v1-in") // version 1, delivered late
	in2 := fundUSDFromCNY(alpha, "v3-in")
	in2.Version = 3
	h.ok(out)
	before := h.c.StateHash()
	if r := h.do(in); r.Status != StatusOK || r.Changed || h.c.StateHash() != before {
		t.Fatalf("stale opt-in: %+v", r)
	}
	if r := h.do(rubberDay(alpha, "b1", orderbook.Buy, 1760, 1)); r.Reject != RejectInsufficientFunds {
		t.Fatalf("after the stale opt-in the order must be USD-funded: %+v", r)
	}
	h.ok(in2)
	h.ok(rubberDay(alpha, "b2", orderbook.Buy, 1760, 1))
}

// TestFXRateTieGoesToHigherNumber: two rates valid from the same moment:
// the higher number wins, whatever order they arrive in (settlement's
// rule), so a corrected rate delivered first is not overridden.
func TestFXRateTieGoesToHigherNumber(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.credit(alpha, "CNY", 100_000_000)
	h.ok(fundUSDFromCNY(alpha, "fa"))
	now := int64(h.seq+1) * 1000
	corrected := usdRate("fxrate/2", 80_000_000_000, now, now+1_000_000_000)
	corrected.Version = 2
	original := usdRate("fxrate/1", 70_000_000_000, now, now+1_000_000_000)
	original.Version = 1
	h.ok(corrected)
	h.ok(original)
	h.ok(rubberDay(alpha, "b1", orderbook.Buy, 1750, 1)) // 1,750,000 cents x 8 = 14,000,000 fen
	if f := h.funds(alpha, "CNY"); f.reserved != 14_000_000 {
		t.Fatalf("reserved %d at the superseded rate", f.reserved)
	}
}

// TestFXSellOverflowRefused: an FX-funded sell whose proceeds at the top of
// the band could not be converted is refused at entry, not left to panic
// the core when it fills.
func TestFXSellOverflowRefused(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.deposit(gamma, "RR1", 1<<57, rubber)
	h.ok(fundUSDFromCNY(gamma, "fg"))
	now := int64(h.seq+1) * 1000
	h.ok(usdRate("r1", MaxFXRateCoef, now, now+1_000_000_000))
	if r := h.do(rubberDay(gamma, "s1", orderbook.Sell, 1750, 6_000_000_000)); r.Reject != RejectTooLarge || r.Field != "quantity" {
		t.Fatalf("huge FX sell: %+v", r)
	}
	if r := h.do(usdRate("r2", MaxFXRateCoef+1, now, now+1_000_000_000)); r.Field != "rate" {
		t.Fatalf("rate above the bound: %+v", r)
	}
	h.ok(rubberDay(gamma, "s2", orderbook.Sell, 1750, 1))
}
