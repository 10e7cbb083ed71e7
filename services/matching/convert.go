package matching

import (
	"errors"
	"math"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bcx-exchange/bcx/pkg/orderbook"
	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/matching/core"
)

// registry is an immutable copy of the core's reference data, published by
// the sequencer whenever it grows, for handlers (conversions) and readers
// (rendering events).
type registry struct {
	core     *core.Registry
	bySymbol map[string]int32 // current definition index
	byNumber map[int64]int32
}

func newRegistry(c *core.Core) *registry {
	r := &registry{core: c.Registry(), bySymbol: map[string]int32{}, byNumber: map[int64]int32{}}
	for i, d := range r.core.Defs {
		// Later definitions of an instrument supersede earlier ones.
		r.bySymbol[d.Symbol] = int32(i)
		r.byNumber[d.Number] = int32(i)
	}
	return r
}

func (s *Service) registry() *registry { return s.reg.Load() }

// instrument returns the current definition of a symbol.
func (r *registry) instrument(symbol string) (*core.InstrumentDef, int32, bool) {
	i, ok := r.bySymbol[symbol]
	if !ok || r.core.Defs[i].Delisted {
		return nil, 0, false
	}
	return &r.core.Defs[i], i, true
}

func (r *registry) def(i int32) *core.InstrumentDef {
	if i < 0 || int(i) >= len(r.core.Defs) {
		return &core.InstrumentDef{}
	}
	return &r.core.Defs[i]
}

func (r *registry) participant(i int32) string {
	if i < 0 || int(i) >= len(r.core.Participants) {
		return ""
	}
	return r.core.Participants[i]
}

func (r *registry) symbolOf(number int64) string {
	if i, ok := r.byNumber[number]; ok {
		return r.core.Defs[i].Symbol
	}
	return ""
}

// Numbers.

var (
	errMalformed = errors.New("malformed")
	errTooLarge  = errors.New("too large")
)

// parseFixed parses a plain decimal ("-12.50") into an integer count of
// 10^-scale units. exact is false when digits beyond scale are not zero.
// Like money.ParseDecimal it refuses '+', exponents, spaces and a leading
// or trailing '.'.
func parseFixed(s string, scale int) (v int64, exact bool, err error) {
	if len(s) == 0 || len(s) > 40 {
		return 0, false, errMalformed
	}
	i, neg := 0, false
	if s[0] == '-' {
		neg, i = true, 1
	}
	var n uint64
	digits, frac, dot := 0, 0, false
	exact = true
	for ; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch >= '0' && ch <= '9':
			digits++
			if dot {
				frac++
				if frac > scale {
					if ch != '0' {
						exact = false
					}
					continue
				}
			}
			if n > (math.MaxInt64-9)/10 {
				return 0, false, errTooLarge
			}
			n = n*10 + uint64(ch-'0')
		case ch == '.' && !dot && digits > 0 && i < len(s)-1:
			dot = true
		default:
			return 0, false, errMalformed
		}
	}
	if digits == 0 {
		return 0, false, errMalformed
	}
	for ; frac < scale; frac++ {
		if n > math.MaxInt64/10 {
			return 0, false, errTooLarge
		}
		n *= 10
	}
	if neg {
		return -int64(n), exact, nil
	}
	return int64(n), exact, nil
}

// formatFixed renders v units of 10^-scale with exactly scale fraction
// digits ("15235.50"), or trimmed of trailing zeros when trim is set
// ("2.5", "25").
func formatFixed(v int64, scale int32, trim bool) string {
	var buf [40]byte
	return string(appendFixed(buf[:0], v, scale, trim))
}

// appendFixed appends formatFixed(v, scale, trim) to dst.
func appendFixed(dst []byte, v int64, scale int32, trim bool) []byte {
	neg := v < 0
	u := uint64(v)
	if neg {
		u = -u
		dst = append(dst, '-')
	}
	var buf [24]byte
	digits := strconv.AppendUint(buf[:0], u, 10)
	if scale <= 0 {
		return append(dst, digits...)
	}
	sc := int(scale)
	fracDigits := sc // digits after the point, before trimming
	var intPart, fracPart []byte
	if len(digits) > sc {
		intPart, fracPart = digits[:len(digits)-sc], digits[len(digits)-sc:]
	} else {
		// 0.00ddd: the leading zeros of the fraction are implied.
		intPart, fracPart = nil, digits
	}
	lead := fracDigits - len(fracPart) // zeros between the point and fracPart
	if trim {
		for len(fracPart) > 0 && fracPart[len(fracPart)-1] == '0' {
			fracPart = fracPart[:len(fracPart)-1]
		}
		if len(fracPart) == 0 {
			lead = 0
		}
	}
	if len(intPart) == 0 {
		dst = append(dst, '0')
	} else {
		dst = append(dst, intPart...)
	}
	if lead+len(fracPart) > 0 {
		dst = append(dst, '.')
		for range lead {
			dst = append(dst, '0')
		}
		dst = append(dst, fracPart...)
	}
	return dst
}

// weight renders micro-units as a decimal weight ("25", "2.5").
func weight(micro int64) string { return formatFixed(micro, 6, true) }

func lotsWeight(d *core.InstrumentDef, lots int64) string { return weight(lots * d.LotMicro) }

func moneyMinor(code string, exp int32, minor int64) *typev1.Money {
	return &typev1.Money{Currency: code, Amount: formatFixed(minor, exp, false)}
}

func priceMoney(d *core.InstrumentDef, ticks int64) *typev1.Money {
	return moneyMinor(d.Currency, d.CurrencyExp, ticks*d.TickMinor)
}

// parseLots converts a weight to whole lots.
func parseLots(field, s string, d *core.InstrumentDef) (int64, error) {
	v, exact, err := parseFixed(s, 6)
	switch {
	case errors.Is(err, errTooLarge):
		return 0, rpcerr.InvalidReason(field, "REJECT_REASON_TOO_LARGE", "%q is too large", s)
	case err != nil:
		return 0, rpcerr.Invalid(field, "%q is not a decimal number", s)
	case v <= 0:
		return 0, rpcerr.InvalidReason(field, "REJECT_REASON_QUANTITY_NOT_POSITIVE", "%s must be positive", s)
	case !exact || v%d.LotMicro != 0:
		return 0, rpcerr.InvalidReason(field, "REJECT_REASON_QUANTITY_NOT_WHOLE_LOTS", "%s is not a whole number of %s lots", s, weight(d.LotMicro))
	}
	return v / d.LotMicro, nil
}

// parseOptionalLots is parseLots for a field that may be empty (0).
func parseOptionalLots(field, s string, d *core.InstrumentDef) (int64, error) {
	if s == "" {
		return 0, nil
	}
	return parseLots(field, s, d)
}

// parsePrice converts a price per unit to ticks.
func parsePrice(field string, m *typev1.Money, d *core.InstrumentDef) (int64, error) {
	if m == nil || m.Amount == "" {
		return 0, rpcerr.Invalid(field, "is required")
	}
	if m.Currency != d.Currency {
		return 0, rpcerr.InvalidReason(field+".currency", "REJECT_REASON_WRONG_CURRENCY", "%s trades in %s, not %q", d.Symbol, d.Currency, m.Currency)
	}
	v, exact, err := parseFixed(m.Amount, int(d.CurrencyExp))
	switch {
	case errors.Is(err, errTooLarge):
		return 0, rpcerr.InvalidReason(field+".amount", "REJECT_REASON_TOO_LARGE", "%q is too large", m.Amount)
	case err != nil:
		return 0, rpcerr.Invalid(field+".amount", "%q is not a decimal number", m.Amount)
	case v <= 0:
		return 0, rpcerr.Invalid(field+".amount", "%s must be positive", m.Amount)
	case !exact || v%d.TickMinor != 0:
		return 0, rpcerr.InvalidReason(field, "REJECT_REASON_PRICE_OFF_TICK", "%s is not a multiple of the tick %s",
			m.Amount, formatFixed(d.TickMinor, d.CurrencyExp, true))
	}
	return v / d.TickMinor, nil
}

// Enums.

func sideFrom(s typev1.Side) (core.Side, error) {
	switch s {
	case typev1.Side_SIDE_BUY:
		return orderbook.Buy, nil
	case typev1.Side_SIDE_SELL:
		return orderbook.Sell, nil
	}
	return 0, rpcerr.Invalid("side", "must be SIDE_BUY or SIDE_SELL")
}

func sideTo(s core.Side) typev1.Side {
	if s == orderbook.Sell {
		return typev1.Side_SIDE_SELL
	}
	return typev1.Side_SIDE_BUY
}

func tifFrom(t tradingv1.TimeInForce, market bool) (core.TIF, error) {
	switch t {
	case tradingv1.TimeInForce_TIME_IN_FORCE_UNSPECIFIED:
		if market {
			return orderbook.IOC, nil
		}
		return orderbook.Day, nil
	case tradingv1.TimeInForce_TIME_IN_FORCE_DAY:
		return orderbook.Day, nil
	case tradingv1.TimeInForce_TIME_IN_FORCE_GOOD_TILL_CANCELLED:
		return orderbook.GTC, nil
	case tradingv1.TimeInForce_TIME_IN_FORCE_IMMEDIATE_OR_CANCEL:
		return orderbook.IOC, nil
	case tradingv1.TimeInForce_TIME_IN_FORCE_FILL_OR_KILL:
		return orderbook.FOK, nil
	}
	return 0, rpcerr.Invalid("time_in_force", "unknown time in force %d", t)
}

func tifTo(t core.TIF) tradingv1.TimeInForce {
	switch t {
	case orderbook.Day:
		return tradingv1.TimeInForce_TIME_IN_FORCE_DAY
	case orderbook.IOC:
		return tradingv1.TimeInForce_TIME_IN_FORCE_IMMEDIATE_OR_CANCEL
	case orderbook.FOK:
		return tradingv1.TimeInForce_TIME_IN_FORCE_FILL_OR_KILL
	}
	return tradingv1.TimeInForce_TIME_IN_FORCE_GOOD_TILL_CANCELLED
}

func stpFrom(s tradingv1.SelfTradePrevention) (core.STPMode, error) {
	if s < 0 || s > tradingv1.SelfTradePrevention_SELF_TRADE_PREVENTION_DECREMENT {
		return 0, rpcerr.Invalid("self_trade_prevention", "unknown mode %d", s)
	}
	return core.STPMode(s), nil // the numbering is the same
}

func ts(ns int64) *timestamppb.Timestamp { return timestamppb.New(time.Unix(0, ns)) }

// Rendering.

func (r *registry) order(v *core.OrderView) *tradingv1.Order {
	d := r.def(v.Def)
	o := &tradingv1.Order{
		OrderId:             v.ID,
		ClientOrderId:       v.ClientID,
		ParticipantId:       r.participant(v.Participant),
		Symbol:              d.Symbol,
		Side:                sideTo(v.Side),
		OrderType:           tradingv1.OrderType_ORDER_TYPE_LIMIT,
		TimeInForce:         tifTo(v.TIF),
		Price:               priceMoney(d, v.Price),
		Quantity:            lotsWeight(d, v.Qty),
		FilledQuantity:      lotsWeight(d, v.Filled),
		OpenQuantity:        lotsWeight(d, v.Open),
		CancelledQuantity:   lotsWeight(d, v.Cancelled),
		PostOnly:            v.PostOnly,
		SelfTradePrevention: tradingv1.SelfTradePrevention(v.STP),
		Status:              tradingv1.OrderStatus(v.Status),
		Sequence:            int64(v.Seq),
		CreatedAt:           ts(v.Created),
		UpdatedAt:           ts(v.Updated),
	}
	if v.Type == orderbook.Market {
		o.OrderType = tradingv1.OrderType_ORDER_TYPE_MARKET
	}
	if v.DisplayQty > 0 {
		o.DisplayQuantity = lotsWeight(d, v.DisplayQty)
	}
	if v.MinQty > 0 {
		o.MinQuantity = lotsWeight(d, v.MinQty)
	}
	if v.Filled > 0 {
		// The average fill price in minor units, rounded half up to the
		// minor unit.
		num := v.NotionalTicks * d.TickMinor
		avg := (num + v.Filled/2) / v.Filled
		o.AveragePrice = moneyMinor(d.Currency, d.CurrencyExp, avg)
	}
	return o
}

func (r *registry) execution(f *core.Fill) *tradingv1.Execution {
	d := r.def(f.Def)
	return &tradingv1.Execution{
		TradeId:       f.TradeID,
		OrderId:       f.OrderID,
		ClientOrderId: f.ClientID,
		Symbol:        d.Symbol,
		Side:          sideTo(f.Side),
		Price:         priceMoney(d, f.Price),
		Quantity:      lotsWeight(d, f.Qty),
		Maker:         f.Maker,
		Fee:           moneyMinor(d.Currency, d.CurrencyExp, f.FeeMinor),
		Sequence:      int64(f.Seq),
		ExecutedAt:    ts(f.TimeNanos),
		Fx:            r.fxConversion(f.FX),
	}
}

func (r *registry) executions(fs []core.Fill) []*tradingv1.Execution {
	if len(fs) == 0 {
		return nil
	}
	out := make([]*tradingv1.Execution, len(fs))
	for i := range fs {
		out[i] = r.execution(&fs[i])
	}
	return out
}

// Errors.

var rejectNames = map[core.Reject]string{
	core.RejectInvalid:           "INVALID_ARGUMENT",
	core.RejectInstrumentAmended: "REJECT_REASON_INSTRUMENT_AMENDED",
	core.RejectIdempotencyKey:    "IDEMPOTENCY_KEY_REUSED",
	core.RejectReceiptExists:     "RECEIPT_ALREADY_DEPOSITED",
	core.RejectNoChange:          "REJECT_REASON_NO_CHANGE",
	core.RejectBookFull:          "REJECT_REASON_BOOK_FULL",
	core.RejectNoFXRate:          "REJECT_REASON_NO_FX_RATE",
	core.RejectBidTooLow:         "REJECT_REASON_BID_TOO_LOW",
}

func rejectName(r core.Reject) string {
	if n, ok := rejectNames[r]; ok {
		return n
	}
	return tradingv1.RejectReason(r).String()
}

var rejectText = map[core.Reject]string{
	core.RejectUnknownInstrument:    "unknown instrument",
	core.RejectPriceOutsideBand:     "price outside the band (reference price ± band)",
	core.RejectQuantityNotPositive:  "quantity must be positive",
	core.RejectInsufficientFunds:    "insufficient available funds",
	core.RejectInsufficientPosition: "insufficient available position",
	core.RejectWrongPhase:           "not allowed in the instrument's current phase",
	core.RejectDuplicateClientID:    "client order id already used with different content",
	core.RejectWrongCurrency:        "wrong currency",
	core.RejectPostOnlyWouldTake:    "post-only order would take liquidity",
	core.RejectFOKUnfilled:          "fill-or-kill order cannot be filled in full",
	core.RejectMinQtyUnfilled:       "minimum quantity cannot be filled",
	core.RejectModeNotAllowed:       "trading mode not allowed for the instrument",
	core.RejectUnknownOrder:         "no such open order",
	core.RejectTooLarge:             "too large",
	core.RejectInvalid:              "invalid value",
	core.RejectInstrumentAmended:    "the instrument definition changed; resend",
	core.RejectIdempotencyKey:       "idempotency key used before for a different request",
	core.RejectReceiptExists:        "receipt already deposited",
	core.RejectNoChange:             "the replace changes nothing",
	core.RejectBookFull:             "the instrument's book is full",
	core.RejectNoFXRate:             "you fund this currency from another and no FX rate is valid now",
	core.RejectBidTooLow:            "the bid must reach the reserve and beat the best bid by the minimum increment",
}

// resultErr turns a refused result into the error the client sees.
func resultErr(res *core.Result) error {
	if res.Status == core.StatusOK {
		return nil
	}
	msg := rejectText[res.Reject]
	if res.Reject == core.RejectModeNotAllowed {
		switch res.Field {
		case "time_in_force":
			msg = "an FX-funded order must be DAY, IOC or FOK: it trades at the rate of its day"
		case "expires_at":
			msg = "an FX-funded listing is a day listing: it trades at the rate of its day"
		case "funding":
			msg = "one-sided auctions are not FX-funded: its window may outlast the rate's day"
		case "order_id", "client_order_id", "orig_client_order_id":
			msg = "a listing or auction order: withdraw a listing with WithdrawListing; auction lots and bids stand until the close"
		}
	}
	if msg == "" {
		msg = "refused"
	}
	name := rejectName(res.Reject)
	switch res.Status {
	case core.StatusOK:
		return nil
	case core.StatusInvalid:
		f := res.Field
		if f == "" {
			f = "request"
		}
		return rpcerr.InvalidReason(f, name, "%s", msg)
	case core.StatusNotFound:
		return &rpcerr.Error{Code: codes.NotFound, Reason: "NOT_FOUND", Msg: msg}
	}
	return rpcerr.Precondition(name, "%s", msg)
}

// commandError renders an error for the order entry stream.
func commandError(err error) *tradingv1.CommandError {
	var e *rpcerr.Error
	if errors.As(err, &e) {
		ce := &tradingv1.CommandError{Code: int32(e.Code), Message: e.Error(), Field: e.Field}
		if v, ok := tradingv1.RejectReason_value[e.Reason]; ok {
			ce.Reason = tradingv1.RejectReason(v)
		}
		return ce
	}
	return &tradingv1.CommandError{Code: int32(codes.Internal), Message: "internal error"}
}

func unknownInstrument(symbol string) error {
	return rpcerr.InvalidReason("symbol", "REJECT_REASON_UNKNOWN_INSTRUMENT", "unknown instrument %q", symbol)
}

func notFoundOrder(id int64, cloid string) error {
	if id != 0 {
		return rpcerr.NotFound("order", strconv.FormatInt(id, 10))
	}
	return rpcerr.NotFound("order", cloid)
}
