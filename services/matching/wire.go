package matching

import (
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/bcx-exchange/bcx/pkg/orderbook"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/matching/core"
)

// The order entry stream's answers are its hottest output: one per order, at
// hundreds of thousands a second. Building each as a tree of protobuf
// objects (an Order, three Money and Timestamp messages, a dozen decimal
// strings) and marshalling it by reflection cost more than the core's
// matching, so the stream appends their wire form directly, field by field,
// to a reused buffer. The encoding is exactly that of the message
// entryResponse builds (TestEntryResponseWire checks it field for field):
// proto3 rules, zero values left out, fields in number order.
//
// The field numbers below are those of proto/bcx/trading/v1/trading.proto,
// bcx/type/v1 Money and google.protobuf.Timestamp.

// OrderEntryResponse.
const (
	wEntryCorrelationID = 1
	wEntryPlace         = 2
	wEntryCancel        = 3
	wEntryReplace       = 4
	wEntryMassCancel    = 5
	wEntryError         = 6
)

// PlaceOrderResponse, CancelOrderResponse and ReplaceOrderResponse share
// these numbers; MassCancelResponse has cancelled = 1.
const (
	wRespOrder      = 1
	wRespExecutions = 2
	wMassCancelled  = 1
)

// Order.
const (
	wOrderID                  = 1
	wOrderClientOrderID       = 2
	wOrderParticipantID       = 3
	wOrderSymbol              = 4
	wOrderSide                = 5
	wOrderType                = 6
	wOrderTimeInForce         = 7
	wOrderPrice               = 8
	wOrderQuantity            = 9
	wOrderFilledQuantity      = 10
	wOrderOpenQuantity        = 11
	wOrderCancelledQuantity   = 12
	wOrderDisplayQuantity     = 13
	wOrderMinQuantity         = 14
	wOrderPostOnly            = 15
	wOrderSelfTradePrevention = 16
	wOrderStatus              = 17
	wOrderAveragePrice        = 19
	wOrderSequence            = 20
	wOrderCreatedAt           = 21
	wOrderUpdatedAt           = 22
)

// Execution.
const (
	wExecTradeID       = 1
	wExecOrderID       = 2
	wExecClientOrderID = 3
	wExecSymbol        = 4
	wExecSide          = 5
	wExecPrice         = 6
	wExecQuantity      = 7
	wExecMaker         = 8
	wExecFee           = 9
	wExecSequence      = 10
	wExecExecutedAt    = 11
	wExecFX            = 12
)

// FxConversion.
const (
	wFXAmount        = 1
	wFXRateID        = 2
	wFXBaseCurrency  = 3
	wFXQuoteCurrency = 4
	wFXRate          = 5
)

// CommandError.
const (
	wErrCode    = 1
	wErrMessage = 2
	wErrReason  = 3
	wErrField   = 4
)

// Money and Timestamp.
const (
	wMoneyCurrency = 1
	wMoneyAmount   = 2
	wTSSeconds     = 1
	wTSNanos       = 2
)

// appendEntryResponse appends the wire form of the answer to an order entry
// request.
func appendEntryResponse(b []byte, reg *registry, r *request) []byte {
	b = appendUint(b, wEntryCorrelationID, r.tag)
	err := r.err
	if err == nil {
		err = resultErr(&r.res)
	}
	if err != nil {
		return appendMessage(b, wEntryError, commandError(err), appendCommandError)
	}
	switch r.op {
	case opPlace, opReplace:
		num := protowire.Number(wEntryPlace)
		if r.op == opReplace {
			num = wEntryReplace
		}
		start := beginMessage(&b, num)
		b = appendOrderField(b, reg, &r.res)
		for i := range r.res.Fills {
			start := beginMessage(&b, wRespExecutions)
			b = reg.appendExecution(b, &r.res.Fills[i])
			b = endMessage(b, start)
		}
		b = endMessage(b, start)
	case opCancel:
		start := beginMessage(&b, wEntryCancel)
		b = appendOrderField(b, reg, &r.res)
		b = endMessage(b, start)
	case opMassCancel:
		start := beginMessage(&b, wEntryMassCancel)
		b = appendInt(b, wMassCancelled, r.res.Count)
		b = endMessage(b, start)
	}
	return b
}

// appendOrderField appends orderOf(reg, res) as field 1 of a response.
func appendOrderField(b []byte, reg *registry, res *core.Result) []byte {
	start := beginMessage(&b, wRespOrder)
	if res.HasOrder {
		b = reg.appendOrder(b, &res.Order)
	} else {
		b = appendInt(b, wOrderID, res.Order.ID)
	}
	return endMessage(b, start)
}

// appendOrder appends the fields of reg.order(v).
func (r *registry) appendOrder(b []byte, v *core.OrderView) []byte {
	d := r.def(v.Def)
	b = appendInt(b, wOrderID, v.ID)
	b = appendString(b, wOrderClientOrderID, v.ClientID)
	b = appendString(b, wOrderParticipantID, r.participant(v.Participant))
	b = appendString(b, wOrderSymbol, d.Symbol)
	b = appendEnum(b, wOrderSide, int32(sideTo(v.Side)))
	typ := tradingv1.OrderType_ORDER_TYPE_LIMIT
	if v.Type == orderbook.Market {
		typ = tradingv1.OrderType_ORDER_TYPE_MARKET
	}
	b = appendEnum(b, wOrderType, int32(typ))
	b = appendEnum(b, wOrderTimeInForce, int32(tifTo(v.TIF)))
	b = appendMoney(b, wOrderPrice, d.Currency, d.CurrencyExp, v.Price*d.TickMinor)
	b = appendFixedField(b, wOrderQuantity, v.Qty*d.LotMicro, 6, true)
	b = appendFixedField(b, wOrderFilledQuantity, v.Filled*d.LotMicro, 6, true)
	b = appendFixedField(b, wOrderOpenQuantity, v.Open*d.LotMicro, 6, true)
	b = appendFixedField(b, wOrderCancelledQuantity, v.Cancelled*d.LotMicro, 6, true)
	if v.DisplayQty > 0 {
		b = appendFixedField(b, wOrderDisplayQuantity, v.DisplayQty*d.LotMicro, 6, true)
	}
	if v.MinQty > 0 {
		b = appendFixedField(b, wOrderMinQuantity, v.MinQty*d.LotMicro, 6, true)
	}
	b = appendBool(b, wOrderPostOnly, v.PostOnly)
	b = appendEnum(b, wOrderSelfTradePrevention, int32(v.STP))
	b = appendEnum(b, wOrderStatus, int32(v.Status))
	if v.Filled > 0 {
		num := v.NotionalTicks * d.TickMinor
		b = appendMoney(b, wOrderAveragePrice, d.Currency, d.CurrencyExp, (num+v.Filled/2)/v.Filled)
	}
	b = appendInt(b, wOrderSequence, int64(v.Seq))
	b = appendTimestamp(b, wOrderCreatedAt, v.Created)
	return appendTimestamp(b, wOrderUpdatedAt, v.Updated)
}

// appendExecution appends the fields of reg.execution(f).
func (r *registry) appendExecution(b []byte, f *core.Fill) []byte {
	d := r.def(f.Def)
	b = appendInt(b, wExecTradeID, f.TradeID)
	b = appendInt(b, wExecOrderID, f.OrderID)
	b = appendString(b, wExecClientOrderID, f.ClientID)
	b = appendString(b, wExecSymbol, d.Symbol)
	b = appendEnum(b, wExecSide, int32(sideTo(f.Side)))
	b = appendMoney(b, wExecPrice, d.Currency, d.CurrencyExp, f.Price*d.TickMinor)
	b = appendFixedField(b, wExecQuantity, f.Qty*d.LotMicro, 6, true)
	b = appendBool(b, wExecMaker, f.Maker)
	b = appendMoney(b, wExecFee, d.Currency, d.CurrencyExp, f.FeeMinor)
	b = appendInt(b, wExecSequence, int64(f.Seq))
	b = appendTimestamp(b, wExecExecutedAt, f.TimeNanos)
	return r.appendFXConversion(b, wExecFX, f.FX)
}

// appendFXConversion appends r.fxConversion(l) as a message field.
func (r *registry) appendFXConversion(b []byte, num protowire.Number, l core.FXLeg) []byte {
	if l.Rate == 0 {
		return b
	}
	start := beginMessage(&b, num)
	if l.Rate < 0 || int(l.Rate) > len(r.core.FXRates) || l.Currency < 0 || int(l.Currency) >= len(r.core.Currencies) {
		b = appendString(b, wFXRateID, "unknown")
		return endMessage(b, start)
	}
	rate := &r.core.FXRates[l.Rate-1]
	b = appendMoney(b, wFXAmount, r.core.Currencies[l.Currency], r.core.CurrencyExps[l.Currency], l.Amount)
	b = appendString(b, wFXRateID, rate.Key)
	b = appendString(b, wFXBaseCurrency, rate.Base)
	b = appendString(b, wFXQuoteCurrency, rate.Quote)
	b = appendFixedField(b, wFXRate, rate.Coef, core.FXRateDecimals, true)
	return endMessage(b, start)
}

func appendCommandError(b []byte, e *tradingv1.CommandError) []byte {
	b = appendEnum(b, wErrCode, e.Code)
	b = appendString(b, wErrMessage, e.Message)
	b = appendEnum(b, wErrReason, int32(e.Reason))
	return appendString(b, wErrField, e.Field)
}

// Field encoders: each leaves out a zero value, as proto3 does.

func appendUint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendInt(b []byte, num protowire.Number, v int64) []byte { return appendUint(b, num, uint64(v)) }

// appendEnum appends an enum or int32: negative values sign-extend to ten
// bytes.
func appendEnum(b []byte, num protowire.Number, v int32) []byte {
	return appendUint(b, num, uint64(int64(v)))
}

func appendBool(b []byte, num protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	return append(protowire.AppendTag(b, num, protowire.VarintType), 1)
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// appendFixedField appends formatFixed(v, scale, trim) as a string field.
func appendFixedField(b []byte, num protowire.Number, v int64, scale int32, trim bool) []byte {
	var buf [40]byte
	s := appendFixed(buf[:0], v, scale, trim)
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, s)
}

// appendMoney appends moneyMinor(code, exp, minor) as a message field.
func appendMoney(b []byte, num protowire.Number, code string, exp int32, minor int64) []byte {
	start := beginMessage(&b, num)
	b = appendString(b, wMoneyCurrency, code)
	b = appendFixedField(b, wMoneyAmount, minor, exp, false)
	return endMessage(b, start)
}

// appendTimestamp appends ts(ns) as a message field.
func appendTimestamp(b []byte, num protowire.Number, ns int64) []byte {
	t := time.Unix(0, ns)
	start := beginMessage(&b, num)
	b = appendInt(b, wTSSeconds, t.Unix())
	b = appendEnum(b, wTSNanos, int32(t.Nanosecond()))
	return endMessage(b, start)
}

func appendMessage[M any](b []byte, num protowire.Number, m M, fields func([]byte, M) []byte) []byte {
	start := beginMessage(&b, num)
	b = fields(b, m)
	return endMessage(b, start)
}

// beginMessage appends the tag of a message field and reserves one byte for
// its length; endMessage fills the length in, moving the content when it
// needs a longer varint (128 bytes or more).
func beginMessage(b *[]byte, num protowire.Number) int {
	*b = protowire.AppendTag(*b, num, protowire.BytesType)
	*b = append(*b, 0)
	return len(*b)
}

func endMessage(b []byte, start int) []byte {
	n := len(b) - start
	if n < 0x80 {
		b[start-1] = byte(n)
		return b
	}
	var lb [10]byte
	l := protowire.AppendVarint(lb[:0], uint64(n))
	extra := len(l) - 1
	b = append(b, lb[:extra]...) // grow
	copy(b[start+extra:], b[start:start+n])
	copy(b[start-1:], l)
	return b
}

// The order entry stream's requests are received in their wire form (as the
// unknown fields of an empty message) and the common case, a place, is
// decoded here straight into reused messages: the reflective decoder
// allocates a request, a place, a Money and a oneof wrapper per order and
// costs several times more. Anything but a plain, canonical place (another
// command, a field repeated, an unknown field or wire type, invalid UTF-8)
// goes to the reflective decoder instead, so the result is always exactly
// what proto.Unmarshal gives (TestDecodeEntryRequest checks it).

// entryDecoder decodes one stream's requests. Its messages are reused: a
// decoded request is valid until the next decode.
type entryDecoder struct {
	req               tradingv1.OrderEntryRequest
	wrapper           tradingv1.OrderEntryRequest_Place
	place             tradingv1.PlaceOrderRequest
	price, protection typev1.Money
}

// decode decodes an OrderEntryRequest.
func (d *entryDecoder) decode(b []byte) (*tradingv1.OrderEntryRequest, error) {
	if place, corr, ok := d.decodePlace(b); ok {
		d.req.Reset()
		d.req.CorrelationId = corr
		d.req.Command = &d.wrapper
		d.wrapper.Place = place
		return &d.req, nil
	}
	d.req.Reset()
	if err := proto.Unmarshal(b, &d.req); err != nil {
		return nil, err
	}
	return &d.req, nil
}

// decodePlace is the fast path: ok is false when b is anything but a
// canonical OrderEntryRequest holding a place.
func (d *entryDecoder) decodePlace(b []byte) (place *tradingv1.PlaceOrderRequest, corr uint64, ok bool) {
	var seen uint32
	var pb []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num >= 32 || seen&(1<<num) != 0 {
			return nil, 0, false
		}
		seen |= 1 << num
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			corr, n = protowire.ConsumeVarint(b)
		case num == 2 && typ == protowire.BytesType:
			pb, n = protowire.ConsumeBytes(b)
		default:
			return nil, 0, false
		}
		if n < 0 {
			return nil, 0, false
		}
		b = b[n:]
	}
	if seen&(1<<2) == 0 {
		return nil, 0, false
	}
	p := &d.place
	p.Reset()
	seen = 0
	for len(pb) > 0 {
		num, typ, n := protowire.ConsumeTag(pb)
		if n < 0 || num >= 32 || seen&(1<<num) != 0 {
			return nil, 0, false
		}
		seen |= 1 << num
		pb = pb[n:]
		var v uint64
		var s []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(pb)
		case protowire.BytesType:
			s, n = protowire.ConsumeBytes(pb)
		default:
			return nil, 0, false
		}
		if n < 0 {
			return nil, 0, false
		}
		pb = pb[n:]
		str := func(dst *string) bool {
			if typ != protowire.BytesType || !utf8.Valid(s) {
				return false
			}
			*dst = string(s)
			return true
		}
		ok := typ == protowire.VarintType
		switch num {
		case 1:
			ok = str(&p.ClientOrderId)
		case 2:
			ok = str(&p.Symbol)
		case 3:
			p.Side = typev1.Side(int32(v))
		case 4:
			p.OrderType = tradingv1.OrderType(int32(v))
		case 5:
			p.TimeInForce = tradingv1.TimeInForce(int32(v))
		case 6:
			p.Price, ok = decodeMoney(&d.price, s, typ)
		case 7:
			ok = str(&p.Quantity)
		case 8:
			ok = str(&p.DisplayQuantity)
		case 9:
			ok = str(&p.MinQuantity)
		case 10:
			p.PostOnly = v != 0
		case 11:
			p.SelfTradePrevention = tradingv1.SelfTradePrevention(int32(v))
		case 12:
			p.ProtectionPrice, ok = decodeMoney(&d.protection, s, typ)
		default:
			ok = false
		}
		if !ok {
			return nil, 0, false
		}
	}
	return p, corr, true
}

// decodeMoney decodes a canonical Money into m.
func decodeMoney(m *typev1.Money, b []byte, typ protowire.Type) (*typev1.Money, bool) {
	if typ != protowire.BytesType {
		return nil, false
	}
	m.Reset()
	var seen uint32
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType || (num != 1 && num != 2) || seen&(1<<num) != 0 {
			return nil, false
		}
		seen |= 1 << num
		b = b[n:]
		s, n := protowire.ConsumeBytes(b)
		if n < 0 || !utf8.Valid(s) {
			return nil, false
		}
		b = b[n:]
		if num == 1 {
			m.Currency = string(s)
		} else {
			m.Amount = string(s)
		}
	}
	return m, true
}
