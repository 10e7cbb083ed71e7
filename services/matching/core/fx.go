package core

import (
	"math"
	"math/big"
	"sort"

	"github.com/bcx-exchange/bcx/pkg/orderbook"
)

// FX funding. A participant that opted in (CmdSetFunding) trades an
// instrument quoted in one currency (USD) with funds in another (CNY): its
// orders in that currency reserve, pay and receive in the funding currency,
// converted by the core itself at a rate settlement published to it
// (CmdSetFXRate). Doing the conversion in the core, at order entry and on
// each fill, is what gives such a member buying power: a buy reserves the
// funding-currency value of its notional and maximum fee, so no balance
// ever goes negative, and settlement books exactly the conversions the
// trade events carry.
//
// Rules, all deterministic (the rate is chosen by the command's sequenced
// time, never the wall clock):
//   - the rate is the published one whose validity window contains the
//     order's entry time, the latest valid-from winning (the higher rate
//     number on a tie, as in settlement); the order keeps that rate for its
//     life;
//   - an FX-funded order must be a day order (or IOC/FOK): it cannot outlive
//     the trading day its rate was published for;
//   - rounding (package settlement/fx has the same rule in decimals): a
//     member pays the exact value rounded UP to the funding currency's minor
//     unit and receives it rounded DOWN. Rounding is applied to the order's
//     running total, and each fill moves the difference, so an order's fills
//     together pay exactly round(total), never one minor unit per fill more;
//   - without a valid rate, an opted-in member's order is refused
//     (RejectNoFXRate) rather than silently funded in the instrument's
//     currency.

// FXRateDecimals is the fixed-point scale of a rate's coefficient: a rate
// of 7.1234 USD/CNY is 71234 * 10^6 (settlement allows at most 10
// decimals).
const FXRateDecimals = 10

const fxRateScale = 10_000_000_000

// MaxFXRateCoef bounds a rate (1,000,000 units of quote per base), so
// conversions of any amount the core holds stay in 128-bit arithmetic
// with an int64 result checked.
const MaxFXRateCoef = 1_000_000 * fxRateScale

type fxRate struct {
	key         string // settlement's rate id
	num         int64  // settlement's rate number: ties go to the higher
	base, quote int32  // currency indexes: quote units per one base unit
	coef        int64  // rate * 10^FXRateDecimals, > 0
	from, until int64  // validity [from, until), unix ns
}

// fundingPref funds trades in trade from funding (-1: opted out, kept for
// its version).
type fundingPref struct {
	trade, funding int32
	version        int64
}

// FXRateInfo is a rate as the service renders it.
type FXRateInfo struct {
	Key         string
	Base, Quote string
	Coef        int64 // rate * 10^FXRateDecimals
}

// FXRate returns the rate with index i (Trade.BuyerFX.Rate - 1).
func (c *Core) FXRate(i int32) (FXRateInfo, bool) {
	if i < 0 || int(i) >= len(c.rateInfos) {
		return FXRateInfo{}, false
	}
	return c.rateInfos[i], true
}

func pairOf(a, b int32) [2]int32 {
	if a > b {
		a, b = b, a
	}
	return [2]int32{a, b}
}

// addRate appends a rate and indexes it in its pair's list, kept sorted by
// valid-from then number.
func (c *Core) addRate(r fxRate) {
	i := int32(len(c.rates))
	c.rates = append(c.rates, r)
	c.rateInfos = append(c.rateInfos, FXRateInfo{Key: r.key, Base: c.currencies[r.base].Code, Quote: c.currencies[r.quote].Code, Coef: r.coef})
	p := pairOf(r.base, r.quote)
	list := c.ratesByPair[p]
	at := sort.Search(len(list), func(k int) bool {
		o := &c.rates[list[k]]
		return o.from > r.from || (o.from == r.from && o.num > r.num)
	})
	list = append(list, 0)
	copy(list[at+1:], list[at:])
	list[at] = i
	c.ratesByPair[p] = list
}

// pow10 returns 10^n for 0 <= n <= 18.
func pow10(n int32) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}

// convert expresses amount minor units of currency from in minor units of
// the other currency of rate r, rounded up (up) or down. The second result
// is false on overflow.
func (c *Core) convert(r *fxRate, from int32, amount int64, up bool) (int64, bool) {
	if amount == 0 {
		return 0, true
	}
	to := r.quote
	if from == r.quote {
		to = r.base
	}
	fe, te := c.currencies[from].Exp, c.currencies[to].Exp
	// to = amount * 10^(te-fe) * coef / scale (base to quote), or
	// amount * 10^(te-fe) * scale / coef (quote to base).
	mul, div := r.coef, int64(fxRateScale)
	if from == r.quote {
		mul, div = div, mul
	}
	round := roundDown
	if up {
		round = roundUp
	}
	m, d := mul, div
	ok := true
	if te > fe {
		m, ok = mulOK(mul, pow10(te-fe))
	} else if fe > te {
		d, ok = mulOK(div, pow10(fe-te))
	}
	if !ok {
		// A high rate between currencies of different exponents: the
		// factor alone passes int64 although the result may not.
		return bigConvert(amount, mul, div, te-fe, up)
	}
	return mulDiv(amount, m, d, round)
}

// bigConvert is amount * mul * 10^k / div (k may be negative), rounded up
// or down, in exact arithmetic; false if the result passes int64.
func bigConvert(amount, mul, div int64, k int32, up bool) (int64, bool) {
	num := new(big.Int).Mul(big.NewInt(amount), big.NewInt(mul))
	den := big.NewInt(div)
	p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(max(k, -k))), nil)
	if k > 0 {
		num.Mul(num, p)
	} else {
		den.Mul(den, p)
	}
	q, rem := new(big.Int).QuoRem(num, den, new(big.Int))
	if up && rem.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() {
		return 0, false
	}
	return q.Int64(), true
}

// rateFor returns 1 + the index of the rate converting between currencies
// a and b valid at ts, or 0: of the rates whose window contains ts, the
// latest valid-from, then the highest number. The pair's list is sorted
// that way, so the search starts at the last rate already valid and walks
// back past expired ones.
func (c *Core) rateFor(a, b int32, ts int64) int32 {
	list := c.ratesByPair[pairOf(a, b)]
	k := sort.Search(len(list), func(k int) bool { return c.rates[list[k]].from > ts })
	for k--; k >= 0; k-- {
		if ts < c.rates[list[k]].until {
			return list[k] + 1
		}
	}
	return 0
}

// fundingOf returns the participant's funding currency for trades in cur,
// or -1.
func (c *Core) fundingOf(part int32, cur int32) int32 {
	for _, p := range c.parts[part].funding {
		if p.trade == cur {
			return p.funding
		}
	}
	return -1
}

// sellFXFits reports whether an FX-funded sell of open lots can be
// converted whatever price it fills at (up to the top of the band).
// fx is the order's rate (1 + index), def its definition index and base
// what its fills received so far.
func (c *Core) sellFXFits(fx, def int32, base, open int64) bool {
	d := &c.defs[def]
	top, ok := mulOK(d.ReferenceTicks+d.BandTicks, d.TickLotMinor)
	if ok {
		top, ok = mulOK(top, open)
	}
	if !ok || base > math.MaxInt64-top {
		return false
	}
	_, ok = c.convert(&c.rates[fx-1], c.defCur[def], base+top, false)
	return ok
}

// fundCur is the currency an order reserves and pays in.
func (c *Core) fundCur(o *order) int32 {
	if o.fx != 0 {
		return o.fxCur
	}
	return c.defCur[o.def]
}

// fxNeed converts what an FX-funded buy must still hold, in the trade
// currency, into the funding currency: the increase of its rounded-up
// running total.
func (c *Core) fxNeed(o *order, tradeNeed int64) (int64, bool) {
	if tradeNeed == 0 {
		return 0, true
	}
	r := &c.rates[o.fx-1]
	if o.fxBase > math.MaxInt64-tradeNeed {
		return 0, false
	}
	v, ok := c.convert(r, c.defCur[o.def], o.fxBase+tradeNeed, true)
	return v - o.fxDone, ok
}

// fxSettle moves one fill's trade-currency amount (a buyer's payment or a
// seller's proceeds) through the order's funding currency and returns the
// funding-currency amount, positive.
func (c *Core) fxSettle(o *order, amount int64) int64 {
	r := &c.rates[o.fx-1]
	cur := c.defCur[o.def]
	buy := o.side == orderbook.Buy
	total, ok := c.convert(r, cur, o.fxBase+amount, buy)
	if !ok {
		panic("core: FX conversion overflow after the entry checks")
	}
	if o.fxBase > math.MaxInt64-amount {
		panic("core: FX running total overflow after the entry checks")
	}
	moved := total - o.fxDone
	o.fxBase += amount
	o.fxDone = total
	f := c.parts[o.part].fundsOf(o.fxCur)
	if buy {
		f.total -= moved
		c.fxNet[o.fxCur] -= moved
		c.fxNet[cur] += amount
	} else {
		f.total += moved
		c.fxNet[o.fxCur] += moved
		c.fxNet[cur] -= amount
	}
	return moved
}

func (c *Core) setFXRate(cmd *Command, res *Result) {
	switch {
	case cmd.Key == "":
		res.refuse(StatusInvalid, RejectInvalid, "rate_id")
		return
	case cmd.Amount <= 0 || cmd.Amount > MaxFXRateCoef:
		res.refuse(StatusInvalid, RejectInvalid, "rate")
		return
	case cmd.Currency == "" || cmd.CounterCurrency == "" || cmd.Currency == cmd.CounterCurrency:
		res.refuse(StatusInvalid, RejectWrongCurrency, "quote_currency")
		return
	case cmd.ValidUntil <= cmd.ValidFrom:
		res.refuse(StatusInvalid, RejectInvalid, "valid_until")
		return
	case cmd.CurrencyExp < 0 || cmd.CurrencyExp > 6 || cmd.CounterExp < 0 || cmd.CounterExp > 6:
		res.refuse(StatusInvalid, RejectWrongCurrency, "base_currency")
		return
	}
	if c.idempotent(cmd.Key, hashCmd(cmd), res) {
		return
	}
	if !c.currencyFits(cmd.Currency, cmd.CurrencyExp) || !c.currencyFits(cmd.CounterCurrency, cmd.CounterExp) {
		res.refuse(StatusInvalid, RejectWrongCurrency, "base_currency")
		return
	}
	b := c.ensureCurrency(cmd.Currency, cmd.CurrencyExp)
	q := c.ensureCurrency(cmd.CounterCurrency, cmd.CounterExp)
	c.addRate(fxRate{key: cmd.Key, num: cmd.Version, base: b, quote: q, coef: cmd.Amount, from: cmd.ValidFrom, until: cmd.ValidUntil})
	c.remember(cmd.Key, hashCmd(cmd))
	*c.ev.addDetail(EvFXRate) = EventDetail{FeeIndex: int32(len(c.rates) - 1)}
	res.Changed = true
}

func (c *Core) setFunding(cmd *Command, res *Result) {
	switch {
	case cmd.Key == "":
		res.refuse(StatusInvalid, RejectInvalid, "idempotency_key")
		return
	case cmd.Currency == "" || cmd.Currency == cmd.CounterCurrency:
		res.refuse(StatusInvalid, RejectWrongCurrency, "funding_currency")
		return
	}
	if c.idempotent(cmd.Key, hashCmd(cmd), res) {
		return
	}
	if !c.currencyFits(cmd.Currency, cmd.CurrencyExp) || (cmd.CounterCurrency != "" && !c.currencyFits(cmd.CounterCurrency, cmd.CounterExp)) {
		res.refuse(StatusInvalid, RejectWrongCurrency, "funding_currency")
		return
	}
	pi := c.ensurePart(cmd.Participant, cmd.ParticipantID)
	tc := c.ensureCurrency(cmd.Currency, cmd.CurrencyExp)
	fc := int32(-1)
	if cmd.CounterCurrency != "" {
		fc = c.ensureCurrency(cmd.CounterCurrency, cmd.CounterExp)
	}
	p := &c.parts[pi]
	at := -1
	for i := range p.funding {
		if p.funding[i].trade == tc {
			at = i
		}
	}
	if at >= 0 && p.funding[at].version >= cmd.Version {
		// Older than (or as old as) the change in force: a delayed
		// command changes nothing. It is not journaled; a resend is
		// judged again, the same way.
		return
	}
	if at < 0 {
		p.funding = append(p.funding, fundingPref{trade: tc})
		at = len(p.funding) - 1
	}
	p.funding[at].funding, p.funding[at].version = fc, cmd.Version
	c.remember(cmd.Key, hashCmd(cmd))
	*c.ev.addDetail(EvFunding) = EventDetail{Participant: pi, Currency: tc, FeeIndex: fc}
	res.Changed = true
}

// currencyFits reports whether code is unknown or known with exponent exp.
func (c *Core) currencyFits(code string, exp int32) bool {
	i, ok := c.curByCode[code]
	return !ok || c.currencies[i].Exp == exp
}

// fxCheck decides how a new order of participant pi in an instrument
// quoted in cur is funded: 0 for the instrument's currency, or 1 + the
// rate index and the funding currency. It refuses the order (false) when
// the participant opted in but no rate is valid, or the order could
// outlive the day.
func (c *Core) fxCheck(pi int32, known bool, cur int32, tif TIF, res *Result) (int32, int32, bool) {
	if !known {
		return 0, 0, true
	}
	fc := c.fundingOf(pi, cur)
	if fc < 0 {
		return 0, 0, true
	}
	if tif == orderbook.GTC {
		res.refuse(StatusInvalid, RejectModeNotAllowed, "time_in_force")
		return 0, 0, false
	}
	r := c.rateFor(cur, fc, c.ts)
	if r == 0 {
		res.refuse(StatusRefused, RejectNoFXRate, "")
		return 0, 0, false
	}
	return r, fc, true
}
