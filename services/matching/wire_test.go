package matching

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/google/go-cmp/cmp"

	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/matching/core"
)

// entryResponse builds the answer to an order entry request as protobuf
// objects, from the same renderings as the unary calls: the reference that
// appendEntryResponse's wire form must decode to.
func entryResponse(reg *registry, r *request) *tradingv1.OrderEntryResponse {
	resp := &tradingv1.OrderEntryResponse{CorrelationId: r.tag}
	err := r.err
	if err == nil {
		err = resultErr(&r.res)
	}
	if err != nil {
		resp.Result = &tradingv1.OrderEntryResponse_Error{Error: commandError(err)}
		return resp
	}
	switch r.op {
	case opPlace:
		resp.Result = &tradingv1.OrderEntryResponse_Place{Place: &tradingv1.PlaceOrderResponse{
			Order: orderOf(reg, &r.res), Executions: reg.executions(r.res.Fills)}}
	case opCancel:
		resp.Result = &tradingv1.OrderEntryResponse_Cancel{Cancel: &tradingv1.CancelOrderResponse{Order: orderOf(reg, &r.res)}}
	case opReplace:
		resp.Result = &tradingv1.OrderEntryResponse_Replace{Replace: &tradingv1.ReplaceOrderResponse{
			Order: orderOf(reg, &r.res), Executions: reg.executions(r.res.Fills)}}
	case opMassCancel:
		resp.Result = &tradingv1.OrderEntryResponse_MassCancel{MassCancel: &tradingv1.MassCancelResponse{Cancelled: r.res.Count}}
	}
	return resp
}

func wireTestRegistry() *registry {
	return &registry{core: &core.Registry{
		Defs: []core.InstrumentDef{
			{Number: 1, Symbol: "CF3128B-QD", Currency: "CNY", CurrencyExp: 2, LotMicro: 5_000_000, TickMinor: 500},
			{Number: 2, Symbol: "LCO-ZS", Currency: "USD", CurrencyExp: 2, LotMicro: 1_000_000, TickMinor: 1},
			{Number: 3, Symbol: "RU-QD-" + strings.Repeat("长", 50), Currency: "JPY", CurrencyExp: 0, LotMicro: 250_000, TickMinor: 10},
		},
		Participants: []string{"M-1", "M-2", "会员-" + strings.Repeat("x", 140)},
		Currencies:   []string{"CNY", "USD", ""},
		CurrencyExps: []int32{2, 2, 0},
		FXRates: []core.FXRateInfo{
			{Key: "r-1", Base: "USD", Quote: "CNY", Coef: 71_234_500_000},
			{Key: "", Base: "CNY", Quote: "USD", Coef: 1},
		},
	}}
}

func randString(rng *rand.Rand) string {
	switch rng.IntN(4) {
	case 0:
		return ""
	case 1:
		return "c" + strconv.Itoa(rng.IntN(1e6))
	case 2:
		return strings.Repeat("é", 1+rng.IntN(100)) // lengths past one varint byte
	}
	return "订单-" + strconv.Itoa(rng.IntN(100))
}

func randInt(rng *rand.Rand) int64 {
	switch rng.IntN(7) {
	case 0:
		return 0
	case 1:
		return -rng.Int64N(1e9)
	case 2:
		return rng.Int64N(1 << 40)
	case 3:
		return rng.Int64N(math.MaxInt64) - math.MaxInt64/2
	}
	return rng.Int64N(1000)
}

// fillRandom sets every settable field of v at random, recursively, so
// that a field added to the core's views later is exercised too: indexes
// (int32) and enums (small unsigned kinds) mostly in range, with some out.
func fillRandom(rng *rand.Rand, v reflect.Value) {
	if !v.CanSet() {
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			fillRandom(rng, v.Field(i))
		}
	case reflect.String:
		v.SetString(randString(rng))
	case reflect.Bool:
		v.SetBool(rng.IntN(2) == 0)
	case reflect.Int64, reflect.Int:
		v.SetInt(randInt(rng))
	case reflect.Int32, reflect.Int16, reflect.Int8:
		v.SetInt(int64(rng.IntN(6)) - 1)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32:
		v.SetUint(uint64(rng.IntN(8)))
	case reflect.Uint64:
		v.SetUint(uint64(randInt(rng)))
	}
}

func randOrderView(rng *rand.Rand) core.OrderView {
	var v core.OrderView
	fillRandom(rng, reflect.ValueOf(&v).Elem())
	return v
}

func randFill(rng *rand.Rand) core.Fill {
	var f core.Fill
	fillRandom(rng, reflect.ValueOf(&f).Elem())
	if rng.IntN(2) == 0 {
		f.FX = core.FXLeg{} // most fills are not FX-funded
	}
	return f
}

// TestEntryResponseWire checks that the order entry stream's hand-encoded
// answers decode to exactly the messages built from the unary renderings,
// for every kind of answer and for values at the edges (zero, negative,
// long strings, unknown instruments and participants).
func TestEntryResponseWire(t *testing.T) {
	reg := wireTestRegistry()
	rng := rand.New(rand.NewPCG(1, 2))
	errs := []error{
		rpcerr.InvalidReason("price", "REJECT_REASON_PRICE_OFF_TICK", "14903 is not a multiple of the tick 5"),
		rpcerr.Invalid("command", "one of place, cancel, replace, mass_cancel is required"),
		errOverloaded,
		errUnavailable(errors.New("disk on fire")),
		errors.New("plain"),
		&rpcerr.Error{Code: codes.Code(math.MaxUint32), Msg: "code past int32"},
	}
	var buf []byte
	for i := range 20000 {
		r := &request{tag: uint64(randInt(rng)), op: uint8(1 + rng.IntN(4))}
		switch rng.IntN(6) {
		case 0:
			r.err = errs[rng.IntN(len(errs))]
		case 1:
			r.res.Status = core.Status(1 + rng.IntN(3))
			r.res.Reject = core.Reject(rng.IntN(30))
			if rng.IntN(2) == 0 {
				r.res.Field = "quantity"
			}
		}
		r.res.HasOrder = rng.IntN(5) != 0
		r.res.Order = randOrderView(rng)
		for range rng.IntN(4) {
			r.res.Fills = append(r.res.Fills, randFill(rng))
		}
		r.res.Count = randInt(rng)
		want := entryResponse(reg, r)
		buf = appendEntryResponse(buf[:0], reg, r)
		got := &tradingv1.OrderEntryResponse{}
		if err := proto.Unmarshal(buf, got); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if len(got.ProtoReflect().GetUnknown()) != 0 {
			t.Fatalf("case %d: unknown fields in the encoding", i)
		}
		if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
			t.Fatalf("case %d: wire form differs from the message (-want +got):\n%s", i, diff)
		}
	}
}

// formatFixedRef is formatFixed as first written, the reference for
// appendFixed.
func formatFixedRef(v int64, scale int32, trim bool) string {
	var buf [32]byte
	neg := v < 0
	u := uint64(v)
	if neg {
		u = uint64(-v)
	}
	b := strconv.AppendUint(buf[:0], u, 10)
	if scale <= 0 {
		if neg {
			return "-" + string(b)
		}
		return string(b)
	}
	sc := int(scale)
	for len(b) <= sc {
		b = append([]byte{'0'}, b...)
	}
	intPart, fracPart := b[:len(b)-sc], b[len(b)-sc:]
	if trim {
		for len(fracPart) > 0 && fracPart[len(fracPart)-1] == '0' {
			fracPart = fracPart[:len(fracPart)-1]
		}
	}
	out := make([]byte, 0, len(b)+2)
	if neg {
		out = append(out, '-')
	}
	out = append(out, intPart...)
	if len(fracPart) > 0 {
		out = append(out, '.')
		out = append(out, fracPart...)
	}
	return string(out)
}

func TestFormatFixed(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	vals := []int64{0, 1, -1, 9, 10, 100, 105, 1_000_000, 1_500_000, 2_500_000, 123_456_789, math.MaxInt64, math.MinInt64, math.MinInt64 + 1}
	for range 20000 {
		v := rng.Int64N(1 << uint(1+rng.IntN(62)))
		if rng.IntN(2) == 0 {
			v = -v
		}
		if rng.IntN(3) == 0 {
			v -= v % 1000
		}
		vals = append(vals, v)
	}
	for _, v := range vals {
		for _, scale := range []int32{-1, 0, 1, 2, 3, 6, 10, 19, 20, 25} {
			for _, trim := range []bool{false, true} {
				if got, want := formatFixed(v, scale, trim), formatFixedRef(v, scale, trim); got != want {
					t.Fatalf("formatFixed(%d, %d, %v) = %q, want %q", v, scale, trim, got, want)
				}
			}
		}
	}
}

func randEnumValue(rng *rand.Rand) int32 {
	switch rng.IntN(5) {
	case 0:
		return 0
	case 1:
		return -1 - rng.Int32N(1000)
	case 2:
		return math.MaxInt32 - rng.Int32N(3)
	}
	return rng.Int32N(6)
}

func randMoney(rng *rand.Rand) *typev1.Money {
	switch rng.IntN(4) {
	case 0:
		return nil
	case 1:
		return &typev1.Money{}
	}
	return &typev1.Money{Currency: randString(rng), Amount: strconv.Itoa(rng.IntN(1e6))}
}

func randEntryRequest(rng *rand.Rand) *tradingv1.OrderEntryRequest {
	req := &tradingv1.OrderEntryRequest{CorrelationId: uint64(randInt(rng))}
	switch rng.IntN(6) {
	case 0:
		req.Command = &tradingv1.OrderEntryRequest_Cancel{Cancel: &tradingv1.CancelOrderRequest{Symbol: randString(rng), OrderId: randInt(rng)}}
	case 1:
		req.Command = &tradingv1.OrderEntryRequest_MassCancel{MassCancel: &tradingv1.MassCancelRequest{}}
	case 2:
		// no command
	default:
		req.Command = &tradingv1.OrderEntryRequest_Place{Place: &tradingv1.PlaceOrderRequest{
			ClientOrderId: randString(rng), Symbol: randString(rng), Side: typev1.Side(randEnumValue(rng)),
			OrderType: tradingv1.OrderType(randEnumValue(rng)), TimeInForce: tradingv1.TimeInForce(randEnumValue(rng)),
			Price: randMoney(rng), Quantity: randString(rng), DisplayQuantity: randString(rng), MinQuantity: randString(rng),
			PostOnly: rng.IntN(2) == 0, SelfTradePrevention: tradingv1.SelfTradePrevention(randEnumValue(rng)),
			ProtectionPrice: randMoney(rng)}}
	}
	return req
}

// mutate damages or bends an encoding: flipped and dropped bytes, repeated
// fields, unknown fields, invalid UTF-8, non-minimal varints.
func mutate(rng *rand.Rand, b []byte) []byte {
	b = slices.Clone(b)
	switch rng.IntN(9) {
	case 0:
		if len(b) > 0 {
			b[rng.IntN(len(b))] ^= byte(1 << rng.IntN(8))
		}
	case 1:
		if len(b) > 0 {
			b = b[:rng.IntN(len(b))]
		}
	case 2:
		b = append(b, b...) // every field twice: last wins, messages merge
	case 3:
		b = protowire.AppendTag(b, protowire.Number(1+rng.IntN(40)), protowire.Type(rng.IntN(6)))
		b = protowire.AppendVarint(b, uint64(rng.IntN(300)))
	case 4:
		// A place whose client order id is not UTF-8.
		p := protowire.AppendTag(nil, 1, protowire.BytesType)
		p = protowire.AppendBytes(p, []byte{'a', 0xff, 'b'})
		b = protowire.AppendTag(nil, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, p)
	case 5:
		// A non-minimal varint correlation id.
		b = append([]byte{1 << 3, 0x85, 0x80, 0x00}, b...)
	case 7:
		// A place encoded in two parts: its fields repeat, and proto merges
		// them (the last scalar wins, messages merge).
		var p []byte
		for range 2 {
			place := randEntryRequest(rng).GetPlace()
			if place == nil {
				place = &tradingv1.PlaceOrderRequest{Price: &typev1.Money{Amount: "1"}}
			}
			pb, _ := proto.Marshal(place)
			p = append(p, pb...)
		}
		b = protowire.AppendTag(nil, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, p)
	case 6:
		// A string field sent as a varint.
		p := protowire.AppendTag(nil, 2, protowire.VarintType)
		p = protowire.AppendVarint(p, 7)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, p)
	}
	return b
}

// TestDecodeEntryRequest checks the order entry stream's request decoder
// against proto.Unmarshal, on canonical requests of every kind and on
// damaged, repeated and otherwise unusual encodings: the same request or
// an error both ways.
func TestDecodeEntryRequest(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var dec entryDecoder
	fast := 0
	for i := range 50000 {
		b, err := proto.Marshal(randEntryRequest(rng))
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			b = mutate(rng, b)
		}
		want := &tradingv1.OrderEntryRequest{}
		werr := proto.Unmarshal(b, want)
		if _, _, ok := dec.decodePlace(b); ok {
			fast++
		}
		got, gerr := dec.decode(b)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("case %d (% x): proto.Unmarshal: %v, decode: %v", i, b, werr, gerr)
		}
		if werr != nil {
			continue
		}
		if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
			t.Fatalf("case %d (% x): decode differs from proto.Unmarshal (-want +got):\n%s", i, b, diff)
		}
	}
	if fast < 10000 {
		t.Fatalf("only %d of 50000 requests took the fast path", fast)
	}
}
