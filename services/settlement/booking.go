package settlement

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	pkgmoney "github.com/bcx-exchange/bcx/pkg/money"
	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/settlement/fees"
	"github.com/bcx-exchange/bcx/services/settlement/fx"
	"github.com/bcx-exchange/bcx/services/settlement/internal/bulk"
	"github.com/bcx-exchange/bcx/services/settlement/ledger"
)

// errPoison marks an event that can never be booked as it is (malformed, an
// instrument listing does not know): it is parked, not retried.
var errPoison = errors.New("event cannot be booked")

func poison(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errPoison, fmt.Sprintf(format, args...))
}

// memberLeg is how much a member's funds in one currency moved, at which
// clearing bank: what the T+1 batch nets.
type memberLeg struct {
	Member      string `json:"m"`
	Currency    string `json:"c"`
	AmountMinor int64  `json:"a"`
	Bank        string `json:"b"`
}

// cashNeed is how much more cash (positive) the exchange's account at Bank
// must hold in Currency because of a booking, or how much it can release
// (negative): the members' claims at that bank changed by that much, less
// any cash an FX conversion at that bank brings or takes. Interbank
// instructions move cash from banks with a surplus to banks with a need.
type cashNeed struct {
	Bank        string `json:"b"`
	Currency    string `json:"c"`
	AmountMinor int64  `json:"a"`
}

type tradeLegs struct {
	Members []memberLeg `json:"m"`
	Needs   []cashNeed  `json:"n"`
}

type line struct {
	amountMinor int64
	kind        string
}

// booker builds the ledger lines, FX conversions, bank instructions and core
// commands of member cash movements for one business event (a trade, a
// weight adjustment).
type booker struct {
	s      *Service
	ctx    context.Context
	q      *sql.Tx
	prefs  fxPrefs
	ref    string
	at     time.Time
	target func(member, currency string) ledger.Account
	txn    *ledger.Transaction
	fx     effects
	legs   tradeLegs
}

// fxPrefs maps member + "/" + trade currency to the funding currency.
type fxPrefs map[string]string

func (s *Service) loadFxPrefs(ctx context.Context, q *sql.Tx) (fxPrefs, error) {
	rows, err := q.QueryContext(ctx, `SELECT participant_id, trade_currency, funding_currency FROM stl_fx_preferences`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	p := fxPrefs{}
	for rows.Next() {
		var m, t, f string
		if err := rows.Scan(&m, &t, &f); err != nil {
			return nil, err
		}
		p[m+"/"+t] = f
	}
	return p, rows.Err()
}

// rateAt returns the published rate between two currencies valid at a
// moment: the one with the latest valid_from among those whose window
// [valid_from, valid_until) contains it, quoted either way round.
func (s *Service) rateAt(ctx context.Context, q *sql.Tx, a, b string, at time.Time) (fx.Rate, bool, error) {
	var r fx.Rate
	var rate string
	err := q.QueryRowContext(ctx, `SELECT base_currency, quote_currency, rate FROM stl_fx_rates
		WHERE ((base_currency = $1 AND quote_currency = $2) OR (base_currency = $2 AND quote_currency = $1))
		AND valid_from <= $3 AND valid_until > $3 ORDER BY valid_from DESC, rate_id DESC LIMIT 1`, a, b, at.UnixNano()).
		Scan(&r.Base, &r.Quote, &rate)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, err
	}
	r.Rate, err = decimal.NewFromString(rate)
	return r, err == nil, err
}

// memberFunds moves a member's funds in currency ccy by lines, on the
// member's target account (available for gross settlement, pending for the
// T+1 batch). If the member opted to settle ccy from another currency, has a
// clearing bank in that currency and a rate is valid at the booking time,
// the net is converted through the exchange's FX position accounts (the
// member pays rounded up, receives rounded down: package fx), an FX
// conversion instruction goes to that bank, and the core's trading funds are
// moved to match (credit ccy, debit funding, or the reverse).
func (b *booker) memberFunds(member, ccy string, lines ...line) error {
	var total int64
	acc := b.target(member, ccy)
	for _, l := range lines {
		b.txn.Add(acc, l.amountMinor, l.kind)
		total += l.amountMinor
	}
	if total == 0 {
		return nil
	}
	if funding := b.prefs[member+"/"+ccy]; funding != "" {
		done, err := b.convert(member, ccy, funding, total)
		if err != nil || done {
			return err
		}
	}
	bank, err := b.s.ref.Bank(b.ctx, member, ccy)
	if err != nil {
		return err
	}
	b.legs.Members = append(b.legs.Members, memberLeg{Member: member, Currency: ccy, AmountMinor: total, Bank: bank})
	b.legs.Needs = append(b.legs.Needs, cashNeed{Bank: bank, Currency: ccy, AmountMinor: total})
	return nil
}

func (b *booker) convert(member, ccy, funding string, total int64) (bool, error) {
	from, err1 := b.s.cfg.Currencies.Lookup(ccy)
	to, err2 := b.s.cfg.Currencies.Lookup(funding)
	fundingBank, err := b.s.ref.Bank(b.ctx, member, funding)
	if err != nil {
		return false, err
	}
	rate, ok, err := b.s.rateAt(b.ctx, b.q, ccy, funding, b.at)
	if err != nil {
		return false, err
	}
	if err1 != nil || err2 != nil || fundingBank == "" || !ok {
		b.s.logger.Warn("FX preference not applied: booked in the trade currency",
			"ref", b.ref, "member", member, "trade_currency", ccy, "funding_currency", funding,
			"rate_found", ok, "funding_bank", fundingBank)
		return false, nil
	}
	side, abs := fx.MemberPays, -total
	if total > 0 {
		side, abs = fx.MemberReceives, total
	}
	conv, err := fx.Convert(abs, from, to, rate, side)
	if err != nil {
		return false, poison("FX conversion of %s: %v", b.ref, err)
	}
	b.bookConversion(member, ccy, funding, total, conv, fundingBank)
	return true, nil
}

// bookConversion books a member's conversion of total (signed, trade
// currency ccy) into conv (unsigned, funding currency): the member's
// trade-currency account comes back to where it was, the exchange's FX
// positions take the two sides, and an FX conversion instruction goes to
// the member's funding bank (none for a zero amount: nothing to convert).
// It tells the core nothing: a trade's conversion is the core's own, and a
// weight adjustment sends the core its net movement (applyReceiptsLeg).
func (b *booker) bookConversion(member, ccy, funding string, total, conv int64, fundingBank string) {
	abs := max(total, -total)
	signedConv := conv
	if total < 0 {
		signedConv = -conv
	}
	b.txn.Add(b.target(member, ccy), -total, ledger.KindFX)
	b.txn.Add(ledger.FXAccount(ccy), total, ledger.KindFX)
	b.txn.Add(b.target(member, funding), signedConv, ledger.KindFX)
	b.txn.Add(ledger.FXAccount(funding), -signedConv, ledger.KindFX)
	b.legs.Members = append(b.legs.Members, memberLeg{Member: member, Currency: funding, AmountMinor: signedConv, Bank: fundingBank})
	b.legs.Needs = append(b.legs.Needs, cashNeed{Bank: fundingBank, Currency: ccy, AmountMinor: total})
	if fundingBank == "" || conv == 0 || abs == 0 {
		return // no bank to convert at, or nothing to convert: the FX position stays for operations
	}
	in := &instruction{Bank: fundingBank, Kind: settlementv1.InstructionKind_INSTRUCTION_KIND_FX_CONVERSION, Source: b.ref}
	if total < 0 { // the exchange sells funding currency and buys ccy at the member's bank
		in.DebitAccount, in.Currency, in.AmountMinor = ledger.BankAccount(fundingBank, funding).Name, funding, conv
		in.CreditAccount, in.CounterCurrency, in.CounterAmountMinor = ledger.BankAccount(fundingBank, ccy).Name, ccy, abs
	} else {
		in.DebitAccount, in.Currency, in.AmountMinor = ledger.BankAccount(fundingBank, ccy).Name, ccy, abs
		in.CreditAccount, in.CounterCurrency, in.CounterAmountMinor = ledger.BankAccount(fundingBank, funding).Name, funding, conv
	}
	b.fx.instructions = append(b.fx.instructions, in)
}

// coreConverted books one side of a trade the core funded from another
// currency: the lines in the trade currency, then the conversion the trade
// event carries (the core already moved the member's trading funds). The
// conversion must be in the rate's pair and within one minor unit of the
// exact conversion of the side's total (the core rounds the order's
// running total, so one fill may round the other way).
func (b *booker) coreConverted(member, ccy string, c *tradingv1.FxConversion, side fx.Side, lines ...line) error {
	var total int64
	acc := b.target(member, ccy)
	for _, l := range lines {
		b.txn.Add(acc, l.amountMinor, l.kind)
		total += l.amountMinor
	}
	if total == 0 && c.GetAmount().GetAmount() != "" {
		if v, err := decimal.NewFromString(c.Amount.Amount); err == nil && v.IsZero() {
			return nil
		}
	}
	from, err := b.s.cfg.Currencies.Lookup(ccy)
	if err != nil {
		return poison("%s: currency %s is not configured", b.ref, ccy)
	}
	funding := c.GetAmount().GetCurrency()
	to, err := b.s.cfg.Currencies.Lookup(funding)
	if err != nil || funding == ccy {
		return poison("%s: FX leg of %s in %q", b.ref, member, funding)
	}
	conv, err := to.ParseAmount(c.GetAmount().GetAmount())
	if err != nil || conv < 0 {
		return poison("%s: FX leg of %s amount %q", b.ref, member, c.GetAmount().GetAmount())
	}
	rate, err := fx.ParseRate(c.Rate)
	if err != nil || !(c.BaseCurrency == ccy && c.QuoteCurrency == funding || c.BaseCurrency == funding && c.QuoteCurrency == ccy) {
		return poison("%s: FX leg of %s at %s/%s %q does not convert %s to %s", b.ref, member, c.BaseCurrency, c.QuoteCurrency, c.Rate, ccy, funding)
	}
	exact, err := fx.Convert(max(total, -total), from, to, fx.Rate{Base: c.BaseCurrency, Quote: c.QuoteCurrency, Rate: rate}, side)
	if err != nil || exact-conv > 1 || conv-exact > 1 {
		return poison("%s: FX leg of %s is %s %s, the rate gives %s", b.ref, member, c.Amount.Amount, funding, to.FormatAmount(exact))
	}
	if err := b.s.checkPublished(b.ctx, b.q, c, rate); err != nil {
		return err
	}
	bank, err := b.s.ref.Bank(b.ctx, member, funding)
	if err != nil {
		return err
	}
	if bank == "" {
		b.s.logger.Warn("FX-funded trade side without a clearing bank in the funding currency: no conversion instruction",
			"ref", b.ref, "member", member, "funding_currency", funding)
	}
	b.bookConversion(member, ccy, funding, total, conv, bank)
	return nil
}

// checkPublished logs (it cannot refuse: the core has moved the funds) a
// conversion at a rate settlement did not publish under that id.
func (s *Service) checkPublished(ctx context.Context, q *sql.Tx, c *tradingv1.FxConversion, rate decimal.Decimal) error {
	id, ok := strings.CutPrefix(c.RateId, "fxrate/")
	n, err := strconv.ParseInt(id, 10, 64)
	if !ok || err != nil {
		s.logger.Error("trade converted at a rate settlement did not publish", "rate_id", c.RateId)
		return nil
	}
	var base, quote, published string
	err = q.QueryRowContext(ctx, `SELECT base_currency, quote_currency, rate FROM stl_fx_rates WHERE rate_id = $1`, n).Scan(&base, &quote, &published)
	if errors.Is(err, sql.ErrNoRows) {
		s.logger.Error("trade converted at a rate settlement did not publish", "rate_id", c.RateId)
		return nil
	}
	if err != nil {
		return err
	}
	if p, perr := decimal.NewFromString(published); perr != nil || base != c.BaseCurrency || quote != c.QuoteCurrency || !p.Equal(rate) {
		s.logger.Error("trade converted at a rate other than the one published under its id", "rate_id", c.RateId,
			"published", base+"/"+quote+" "+published, "used", c.BaseCurrency+"/"+c.QuoteCurrency+" "+c.Rate)
	}
	return nil
}

// transfers turns cash needs into interbank instructions: per currency,
// banks with a surplus (negative need) pay banks with a need, largest
// obligations in bank order, so the result is deterministic. What is left
// over (the fees) stays where it is.
func transfers(needs []cashNeed, source string) []*instruction {
	byCcy := map[string]map[string]int64{}
	for _, n := range needs {
		if n.Bank == "" || n.AmountMinor == 0 {
			continue
		}
		if byCcy[n.Currency] == nil {
			byCcy[n.Currency] = map[string]int64{}
		}
		byCcy[n.Currency][n.Bank] += n.AmountMinor
	}
	ccys := make([]string, 0, len(byCcy))
	for c := range byCcy {
		ccys = append(ccys, c)
	}
	sort.Strings(ccys)
	var out []*instruction
	for _, ccy := range ccys {
		type bal struct {
			bank string
			amt  int64
		}
		var payers, receivers []bal
		for bank, n := range byCcy[ccy] {
			if n < 0 {
				payers = append(payers, bal{bank, -n})
			} else if n > 0 {
				receivers = append(receivers, bal{bank, n})
			}
		}
		sort.Slice(payers, func(i, j int) bool { return payers[i].bank < payers[j].bank })
		sort.Slice(receivers, func(i, j int) bool { return receivers[i].bank < receivers[j].bank })
		for i, j := 0, 0; i < len(payers) && j < len(receivers); {
			amt := min(payers[i].amt, receivers[j].amt)
			out = append(out, &instruction{Bank: payers[i].bank, Kind: settlementv1.InstructionKind_INSTRUCTION_KIND_INTERBANK_TRANSFER,
				DebitAccount: ledger.BankAccount(payers[i].bank, ccy).Name, CreditAccount: ledger.BankAccount(receivers[j].bank, ccy).Name,
				Currency: ccy, AmountMinor: amt, Source: source})
			payers[i].amt -= amt
			receivers[j].amt -= amt
			if payers[i].amt == 0 {
				i++
			}
			if receivers[j].amt == 0 {
				j++
			}
		}
	}
	return out
}

// tradeRow is a booked trade.
type tradeRow struct {
	TradeID             int64
	Sequence            int64
	Symbol, Currency    string
	Buyer, Seller       string
	Price, Quantity     string
	Lots                int64
	PrincipalMinor      int64
	BuyerFeeMinor       int64
	SellerFeeMinor      int64
	Cycle               listingv1.SettlementCycle
	BusinessDate        string
	TradedAt            time.Time
	TransactionID       int64
	Legs                tradeLegs
	CashSettled         bool
	CashSettledAt       time.Time
	ReceiptsTransferred bool
	ReceiptsAt          time.Time
	WeightAdjustment    int64
}

func (t *tradeRow) status() settlementv1.SettlementStatus {
	switch {
	case t.CashSettled && t.ReceiptsTransferred:
		return settlementv1.SettlementStatus_SETTLEMENT_STATUS_SETTLED
	case t.CashSettled || t.ReceiptsTransferred:
		return settlementv1.SettlementStatus_SETTLEMENT_STATUS_PARTIAL
	}
	return settlementv1.SettlementStatus_SETTLEMENT_STATUS_PENDING
}

// tradePlan is a trade ready to write: its row and its effects (the ledger
// transaction is effects.txns[0]).
type tradePlan struct {
	row *tradeRow
	fx  effects
	txn *ledger.Transaction
}

func feeMinor(field string, m *typev1.Money, cur pkgmoney.Currency) (int64, error) {
	if m == nil || m.Amount == "" {
		return 0, nil
	}
	if m.Currency != cur.Code {
		return 0, poison("%s in %q, the instrument settles in %s", field, m.Currency, cur.Code)
	}
	n, err := cur.ParseAmount(m.Amount)
	if err != nil || n < 0 {
		return 0, poison("%s %q is not a non-negative %s amount", field, m.Amount, cur.Code)
	}
	return n, nil
}

// planTrade books one trade event: buyer pays price x quantity plus its fee,
// seller receives it less its fee, fee income takes both fees, in the
// instrument's currency (converted per member FX preferences), on the
// instrument's settlement cycle: gross into available funds at once (T+0,
// with interbank instructions when buyer and seller clear at different
// banks), or into pending settlement for the T+1 batch.
func (s *Service) planTrade(ctx context.Context, q *sql.Tx, seq int64, at time.Time, t *tradingv1.TradeEvent) (*tradePlan, error) {
	if t.TradeId <= 0 || t.BuyerParticipantId == "" || t.SellerParticipantId == "" {
		return nil, poison("trade %d has no id, buyer or seller", t.TradeId)
	}
	in, err := s.ref.Instrument(ctx, t.Symbol)
	if errors.Is(err, errUnknown) {
		return nil, poison("trade %d: %v", t.TradeId, err)
	}
	if err != nil {
		return nil, err
	}
	cur, err := s.cfg.Currencies.Lookup(in.Currency)
	if err != nil {
		return nil, poison("trade %d: instrument %s settles in %s, which is not configured", t.TradeId, in.Symbol, in.Currency)
	}
	if t.Price == nil || t.Price.Currency != cur.Code {
		return nil, poison("trade %d: price %v is not in %s", t.TradeId, t.Price, cur.Code)
	}
	price, err := pkgmoney.ParseDecimal(t.Price.Amount)
	if err != nil || !price.IsPositive() {
		return nil, poison("trade %d: price %q", t.TradeId, t.Price.Amount)
	}
	qty, err := pkgmoney.ParseDecimal(t.Quantity)
	if err != nil || !qty.IsPositive() {
		return nil, poison("trade %d: quantity %q", t.TradeId, t.Quantity)
	}
	lots := t.Lots
	if n, err := pkgmoney.Steps(qty, in.LotSize); err != nil || (lots != 0 && n != lots) {
		return nil, poison("trade %d: quantity %s is not %d lots of %s", t.TradeId, qty, lots, in.LotSize)
	} else {
		lots = n
	}
	principal, err := fees.Principal(price, qty, cur)
	if err != nil {
		return nil, poison("trade %d: principal %s x %s: %v", t.TradeId, price, qty, err)
	}
	bf, err := feeMinor("buyer_fee", t.BuyerFee, cur)
	if err != nil {
		return nil, err
	}
	sf, err := feeMinor("seller_fee", t.SellerFee, cur)
	if err != nil {
		return nil, err
	}
	ref := "trade/" + strconv.FormatInt(t.TradeId, 10)
	target := ledger.Available
	if in.Cycle == listingv1.SettlementCycle_SETTLEMENT_CYCLE_T1_NET {
		target = ledger.Pending
	}
	txn := &ledger.Transaction{Kind: ledger.KindTrade, Reference: ref, BookedAt: at}
	// No preferences: a trade is converted exactly when the core converted
	// it (the order was FX-funded), never after the fact.
	b := &booker{s: s, ctx: ctx, q: q, ref: ref, at: at, target: target, txn: txn}
	ccy := cur.Code
	buyer := []line{{-principal, ledger.KindTrade}, {-bf, ledger.KindFee}}
	if t.BuyerFx != nil {
		err = b.coreConverted(t.BuyerParticipantId, ccy, t.BuyerFx, fx.MemberPays, buyer...)
	} else {
		err = b.memberFunds(t.BuyerParticipantId, ccy, buyer...)
	}
	if err != nil {
		return nil, err
	}
	seller := []line{{principal, ledger.KindTrade}, {-sf, ledger.KindFee}}
	if t.SellerFx != nil {
		err = b.coreConverted(t.SellerParticipantId, ccy, t.SellerFx, fx.MemberReceives, seller...)
	} else {
		err = b.memberFunds(t.SellerParticipantId, ccy, seller...)
	}
	if err != nil {
		return nil, err
	}
	txn.Add(ledger.FeeIncomeAccount(ccy), bf+sf, ledger.KindFee)
	row := &tradeRow{TradeID: t.TradeId, Sequence: seq, Symbol: in.Symbol, Currency: ccy,
		Buyer: t.BuyerParticipantId, Seller: t.SellerParticipantId, Price: price.String(), Quantity: qty.String(), Lots: lots,
		PrincipalMinor: principal, BuyerFeeMinor: bf, SellerFeeMinor: sf, Cycle: in.Cycle, BusinessDate: s.date(at),
		TradedAt: at, Legs: b.legs}
	if in.Cycle != listingv1.SettlementCycle_SETTLEMENT_CYCLE_T1_NET {
		row.CashSettled, row.CashSettledAt = true, at
		b.fx.instructions = append(b.fx.instructions, transfers(b.legs.Needs, ref)...)
	}
	return &tradePlan{row: row, fx: b.fx, txn: txn}, nil
}

func (s *Service) insertTrades(ctx context.Context, q *sql.Tx, rows []*tradeRow) error {
	n := len(rows)
	if n == 0 {
		return nil
	}
	ints := func() []int64 { return make([]int64, n) }
	strs := func() []string { return make([]string, n) }
	id, seq, lots, principal, bf, sf, cycle, traded, txn, settled, settledAt, zero :=
		ints(), ints(), ints(), ints(), ints(), ints(), ints(), ints(), ints(), ints(), ints(), ints()
	symbol, ccy, buyer, seller, price, qty, date := strs(), strs(), strs(), strs(), strs(), strs(), strs()
	legs := make([][]byte, n)
	for i, t := range rows {
		// Only the T+1 batch reads the legs; a gross trade's are done with.
		legs[i] = []byte{}
		if t.Cycle == listingv1.SettlementCycle_SETTLEMENT_CYCLE_T1_NET {
			var err error
			if legs[i], err = json.Marshal(t.Legs); err != nil {
				return err
			}
		}
		if t.CashSettled {
			settled[i], settledAt[i] = 1, t.CashSettledAt.UnixNano()
		}
		id[i], seq[i], lots[i], principal[i], bf[i], sf[i] = t.TradeID, t.Sequence, t.Lots, t.PrincipalMinor, t.BuyerFeeMinor, t.SellerFeeMinor
		cycle[i], traded[i], txn[i] = int64(t.Cycle), t.TradedAt.UnixNano(), t.TransactionID
		symbol[i], ccy[i], buyer[i], seller[i], price[i], qty[i], date[i] = t.Symbol, t.Currency, t.Buyer, t.Seller, t.Price, t.Quantity, t.BusinessDate
	}
	// In tradeCols order.
	_, err := bulk.InsertColumns(ctx, q, s.db.Dialect, "stl_trades", tradeColumns, []any{id, seq, symbol, ccy, buyer, seller, price, qty,
		lots, principal, bf, sf, cycle, date, traded, txn, legs, settled, settledAt, zero, zero, zero}, "")
	return err
}

const tradeCols = `trade_id, sequence, symbol, currency, buyer, seller, price, quantity, lots, principal_minor, buyer_fee_minor,
	seller_fee_minor, cycle, business_date, traded_at, transaction_id, legs, cash_settled, cash_settled_at, receipts_transferred,
	receipts_at, weight_adjustment_minor`

func scanTrade(row interface{ Scan(...any) error }) (*tradeRow, error) {
	var (
		t                             tradeRow
		cycle                         int32
		traded, settledAt, receiptsAt int64
		cashSettled, receipts         int
		legs                          []byte
	)
	if err := row.Scan(&t.TradeID, &t.Sequence, &t.Symbol, &t.Currency, &t.Buyer, &t.Seller, &t.Price, &t.Quantity, &t.Lots,
		&t.PrincipalMinor, &t.BuyerFeeMinor, &t.SellerFeeMinor, &cycle, &t.BusinessDate, &traded, &t.TransactionID, &legs,
		&cashSettled, &settledAt, &receipts, &receiptsAt, &t.WeightAdjustment); err != nil {
		return nil, err
	}
	if len(legs) > 0 {
		if err := json.Unmarshal(legs, &t.Legs); err != nil {
			return nil, fmt.Errorf("trade %d legs: %w", t.TradeID, err)
		}
	}
	t.Cycle, t.TradedAt = listingv1.SettlementCycle(cycle), time.Unix(0, traded)
	t.CashSettled, t.ReceiptsTransferred = cashSettled == 1, receipts == 1
	if t.CashSettled {
		t.CashSettledAt = time.Unix(0, settledAt)
	}
	if t.ReceiptsTransferred {
		t.ReceiptsAt = time.Unix(0, receiptsAt)
	}
	return &t, nil
}

func (s *Service) getTrade(ctx context.Context, q *sql.Tx, id int64) (*tradeRow, error) {
	t, err := scanTrade(q.QueryRowContext(ctx, `SELECT `+tradeCols+` FROM stl_trades WHERE trade_id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoTrade
	}
	return t, err
}

var errNoTrade = errors.New("trade not booked")

func (s *Service) tradeProto(t *tradeRow) *settlementv1.TradeSettlement {
	return &settlementv1.TradeSettlement{
		TradeId: t.TradeID, Symbol: t.Symbol, BuyerParticipantId: t.Buyer, SellerParticipantId: t.Seller,
		Price: money(t.Currency, t.Price), Quantity: t.Quantity, Principal: s.moneyOf(t.Currency, t.PrincipalMinor),
		BuyerFee: s.moneyOf(t.Currency, t.BuyerFeeMinor), SellerFee: s.moneyOf(t.Currency, t.SellerFeeMinor),
		CashSettled: t.CashSettled, ReceiptsTransferred: t.ReceiptsTransferred, Status: t.status(),
		WeightAdjustment: s.moneyOf(t.Currency, t.WeightAdjustment),
	}
}

var tradeColumns = func() []string {
	var out []string
	for _, c := range strings.Split(tradeCols, ",") {
		out = append(out, strings.TrimSpace(c))
	}
	return out
}()
