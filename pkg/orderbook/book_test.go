package orderbook

import (
	"errors"
	"fmt"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
)

// fmtEvent renders an event compactly for table tests.
func fmtEvent(e Event) string {
	switch e.Kind {
	case EventAccepted:
		return fmt.Sprintf("accepted #%d %v %d@%d", e.OrderID, e.Side, e.Qty, e.Price)
	case EventRested:
		return fmt.Sprintf("rested #%d %d@%d", e.OrderID, e.Remaining, e.Price)
	case EventFill:
		return fmt.Sprintf("fill #%d x #%d %d@%d left %d/%d", e.OrderID, e.ContraID, e.Qty, e.Price, e.Remaining, e.ContraRemaining)
	case EventCancel:
		return fmt.Sprintf("cancel #%d %d %v", e.OrderID, e.Qty, e.Reason)
	case EventReduce:
		return fmt.Sprintf("reduce #%d -%d =%d %v", e.OrderID, e.Qty, e.Remaining, e.Reason)
	case EventReplace:
		return fmt.Sprintf("replace #%d %d@%d", e.OrderID, e.Qty, e.Price)
	case EventReject:
		return fmt.Sprintf("reject #%d %v", e.OrderID, e.Reason)
	case EventUncross:
		return fmt.Sprintf("uncross %d@%d", e.Qty, e.Price)
	}
	return fmt.Sprintf("%+v", e)
}

// tbook wraps a Book for table tests: every command returns its events,
// formatted, and is followed by CheckInvariants.
type tbook struct {
	t   *testing.T
	b   *Book
	rec *recorder
}

func newTBook(t *testing.T, cfg Config) *tbook {
	t.Helper()
	if cfg.MaxPrice == 0 {
		cfg.MinPrice, cfg.MaxPrice = 1, 1000
	}
	if cfg.MaxOrders == 0 {
		cfg.MaxOrders = 100
	}
	rec := &recorder{}
	b, err := New(cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	return &tbook{t: t, b: b, rec: rec}
}

func (x *tbook) do(f func()) []string {
	x.t.Helper()
	x.rec.events = x.rec.events[:0]
	f()
	if err := x.b.CheckInvariants(); err != nil {
		x.t.Fatalf("invariant: %v", err)
	}
	out := []string{}
	for _, e := range x.rec.events {
		out = append(out, fmtEvent(e))
	}
	return out
}

func (x *tbook) submit(o Order) []string {
	x.t.Helper()
	return x.do(func() { x.b.Submit(o) })
}

// expect compares events with want.
func (x *tbook) expect(got []string, want ...string) {
	x.t.Helper()
	if want == nil {
		want = []string{}
	}
	if d := cmp.Diff(want, got); d != "" {
		x.t.Errorf("events (-want +got):\n%s", d)
	}
}

// must submits orders that are expected to rest untouched.
func (x *tbook) must(os ...Order) {
	x.t.Helper()
	for _, o := range os {
		got := x.submit(o)
		if len(got) != 2 || got[1] != fmt.Sprintf("rested #%d %d@%d", o.ID, o.Qty, o.Price) {
			x.t.Fatalf("order %d did not rest: %v", o.ID, got)
		}
	}
}

func (x *tbook) ids(s Side, price int64) []int64 {
	var out []int64
	for _, st := range x.b.LevelOrders(s, price, nil) {
		out = append(out, st.ID)
	}
	return out
}

func (x *tbook) order(id int64) OrderState {
	x.t.Helper()
	st, ok := x.b.Order(id)
	if !ok {
		x.t.Fatalf("order %d not resting", id)
	}
	return st
}

func buy(id, qty, price int64) Order {
	return Order{ID: id, Participant: 100 + id, Side: Buy, Price: price, Qty: qty}
}

func sell(id, qty, price int64) Order {
	return Order{ID: id, Participant: 100 + id, Side: Sell, Price: price, Qty: qty}
}

func with(o Order, f func(*Order)) Order { f(&o); return o }

func ioc(o Order) Order { o.TIF = IOC; return o }
func fok(o Order) Order { o.TIF = FOK; return o }

func TestPriceTimePriority(t *testing.T) {
	x := newTBook(t, Config{})
	x.must(sell(1, 5, 101), sell(2, 5, 100), sell(3, 5, 100))
	x.expect(x.submit(buy(4, 12, 101)),
		"accepted #4 buy 12@101",
		"fill #4 x #2 5@100 left 7/0",
		"fill #4 x #3 5@100 left 2/0",
		"fill #4 x #1 2@101 left 0/3")
	if p, q, ok := x.b.BestAsk(); !ok || p != 101 || q != 3 {
		t.Errorf("best ask %d/%d/%v", p, q, ok)
	}
	if _, _, ok := x.b.BestBid(); ok {
		t.Error("filled buy left a bid")
	}
}

func TestLimitNeverFillsPastItsPrice(t *testing.T) {
	x := newTBook(t, Config{})
	x.must(buy(1, 5, 100), buy(2, 5, 99), buy(3, 5, 98))
	x.expect(x.submit(sell(4, 20, 99)),
		"accepted #4 sell 20@99",
		"fill #4 x #1 5@100 left 15/0",
		"fill #4 x #2 5@99 left 10/0",
		"rested #4 10@99")
	if p, _, _ := x.b.BestBid(); p != 98 {
		t.Errorf("best bid %d, want 98 untouched", p)
	}
	if p, q, _ := x.b.BestAsk(); p != 99 || q != 10 {
		t.Errorf("best ask %d/%d, want 10@99", p, q)
	}
	// A buy below the best ask trades nothing.
	x.expect(x.submit(buy(5, 3, 98)), "accepted #5 buy 3@98", "rested #5 3@98")
}

func TestIOCRemainderNeverRests(t *testing.T) {
	x := newTBook(t, Config{})
	x.must(sell(1, 5, 100), sell(2, 5, 105))
	x.expect(x.submit(ioc(buy(3, 8, 101))),
		"accepted #3 buy 8@101",
		"fill #3 x #1 5@100 left 3/0",
		"cancel #3 3 ioc_remainder")
	x.expect(x.submit(ioc(buy(4, 4, 101))), "accepted #4 buy 4@101", "cancel #4 4 ioc_remainder")
	x.expect(x.submit(ioc(sell(5, 4, 90))), "accepted #5 sell 4@90", "cancel #5 4 ioc_remainder")
	if _, _, ok := x.b.BestBid(); ok || x.b.Len() != 1 {
		t.Errorf("IOC remainder rested: %d orders", x.b.Len())
	}
	if _, ok := x.b.Order(3); ok {
		t.Error("IOC order 3 is resting")
	}
}

func TestFOKAllOrNothingAcrossLevels(t *testing.T) {
	x := newTBook(t, Config{})
	ladder := func(first int64) {
		for i := int64(0); i < 10; i++ {
			x.must(sell(first+i, 1, 101+i))
		}
	}
	ladder(1)
	want := []string{"accepted #20 buy 10@110"}
	for i := int64(0); i < 10; i++ {
		want = append(want, fmt.Sprintf("fill #20 x #%d 1@%d left %d/0", 1+i, 101+i, 9-i))
	}
	x.expect(x.submit(fok(buy(20, 10, 110))), want...)
	if x.b.Len() != 0 {
		t.Fatalf("%d orders left", x.b.Len())
	}

	ladder(1)
	h := x.b.StateHash()
	x.expect(x.submit(fok(buy(21, 11, 110))), "reject #21 fok_not_fillable")
	x.expect(x.submit(fok(buy(22, 10, 109))), "reject #22 fok_not_fillable")
	x.expect(x.submit(fok(buy(23, 1, 100))), "reject #23 fok_not_fillable")
	if x.b.StateHash() != h {
		t.Error("a rejected FOK changed the book")
	}

	// Hidden iceberg quantity counts and is reached by replenishment.
	y := newTBook(t, Config{})
	y.must(with(sell(1, 10, 101), func(o *Order) { o.DisplayQty = 1 }))
	want = []string{"accepted #2 buy 10@101"}
	for i := int64(9); i >= 0; i-- {
		want = append(want, fmt.Sprintf("fill #2 x #1 1@101 left %d/%d", i, i))
	}
	y.expect(y.submit(fok(buy(2, 10, 101))), want...)
}

func TestFOKWithSelfTradePrevention(t *testing.T) {
	own := func(o Order) Order { o.Participant = 7; return o }
	setup := func() *tbook {
		x := newTBook(t, Config{})
		x.must(own(sell(1, 5, 100)), sell(2, 5, 100))
		return x
	}
	x := setup()
	x.expect(x.submit(with(own(fok(buy(3, 5, 100))), func(o *Order) { o.STP = STPCancelResting })),
		"accepted #3 buy 5@100",
		"cancel #1 5 stp_cancel_resting",
		"fill #3 x #2 5@100 left 0/0")
	for _, mode := range []STPMode{STPCancelIncoming, STPCancelBoth, STPDecrement} {
		x := setup()
		x.expect(x.submit(with(own(fok(buy(3, 5, 100))), func(o *Order) { o.STP = mode })),
			"reject #3 fok_not_fillable")
	}
	x = setup()
	x.expect(x.submit(own(fok(buy(3, 10, 100)))), // STPNone: self trade allowed
		"accepted #3 buy 10@100",
		"fill #3 x #1 5@100 left 5/0",
		"fill #3 x #2 5@100 left 0/0")
}

func TestMarketOrderProtectionLimit(t *testing.T) {
	setup := func(cfg Config) *tbook {
		x := newTBook(t, cfg)
		for i := int64(0); i < 6; i++ {
			x.must(sell(1+i, 1, 100+i))
		}
		return x
	}
	mkt := func(o Order) Order { o.Type, o.TIF = Market, IOC; return o }
	x := setup(Config{})
	x.expect(x.submit(mkt(buy(10, 10, 102))),
		"accepted #10 buy 10@102",
		"fill #10 x #1 1@100 left 9/0",
		"fill #10 x #2 1@101 left 8/0",
		"fill #10 x #3 1@102 left 7/0",
		"cancel #10 7 market_remainder")
	if p, _, _ := x.b.BestAsk(); p != 103 {
		t.Errorf("market order walked past its protection limit: best ask %d", p)
	}

	// The configured protection tightens a loose limit to best + 1 tick.
	x = setup(Config{MinPrice: 1, MaxPrice: 1000, MarketProtectionTicks: 1})
	x.expect(x.submit(mkt(buy(10, 10, 1000))),
		"accepted #10 buy 10@101",
		"fill #10 x #1 1@100 left 9/0",
		"fill #10 x #2 1@101 left 8/0",
		"cancel #10 8 market_remainder")
	x.expect(x.submit(with(mkt(buy(11, 10, 1000)), func(o *Order) { o.TIF = FOK })), "reject #11 fok_not_fillable")
	x.expect(x.submit(with(mkt(buy(12, 1, 1000)), func(o *Order) { o.TIF = FOK })),
		"accepted #12 buy 1@103", "fill #12 x #3 1@102 left 0/0")
	x.expect(x.submit(with(mkt(buy(13, 1, 1000)), func(o *Order) { o.TIF = GTC })), "reject #13 market_tif")
	// No liquidity: the whole market order is cancelled, nothing rests.
	y := newTBook(t, Config{})
	y.expect(y.submit(mkt(sell(1, 3, 1))), "accepted #1 sell 3@1", "cancel #1 3 market_remainder")
	if y.b.Len() != 0 {
		t.Error("market order rested")
	}
}

func TestPostOnly(t *testing.T) {
	x := newTBook(t, Config{})
	po := func(o Order) Order { o.PostOnly = true; return o }
	x.must(sell(1, 5, 100))
	h := x.b.StateHash()
	x.expect(x.submit(po(buy(2, 5, 100))), "reject #2 post_only_would_take")
	x.expect(x.submit(po(buy(3, 5, 101))), "reject #3 post_only_would_take")
	if x.b.StateHash() != h {
		t.Error("rejected post-only changed the book")
	}
	x.must(po(buy(4, 5, 99)))
	x.expect(x.do(func() { x.b.Replace(4, 100, 5) }), "reject #4 post_only_would_take")
	x.expect(x.do(func() { x.b.Replace(4, 98, 6) }), "replace #4 6@98")
	x.expect(x.submit(ioc(po(buy(5, 1, 90)))), "reject #5 post_only_tif")
}

func TestIcebergReplenishesAtTheBack(t *testing.T) {
	x := newTBook(t, Config{})
	x.must(with(sell(1, 10, 100), func(o *Order) { o.DisplayQty = 2 }), sell(2, 5, 100))
	var lv [1]Level
	if x.b.Depth(Sell, lv[:]) != 1 || lv[0] != (Level{Price: 100, Qty: 7, TotalQty: 15, Orders: 2}) {
		t.Errorf("depth %+v", lv[0])
	}
	x.expect(x.submit(buy(3, 3, 100)),
		"accepted #3 buy 3@100",
		"fill #3 x #1 2@100 left 1/8",
		"fill #3 x #2 1@100 left 0/4")
	if got := x.ids(Sell, 100); !cmp.Equal(got, []int64{2, 1}) {
		t.Errorf("queue %v, want the replenished iceberg behind order 2", got)
	}
	if st := x.order(1); st.Visible != 2 || st.Qty != 8 {
		t.Errorf("iceberg shows %d of %d", st.Visible, st.Qty)
	}
	x.expect(x.submit(buy(4, 13, 100)),
		"accepted #4 buy 13@100",
		"fill #4 x #2 4@100 left 9/0",
		"fill #4 x #1 2@100 left 7/6",
		"fill #4 x #1 2@100 left 5/4",
		"fill #4 x #1 2@100 left 3/2",
		"fill #4 x #1 2@100 left 1/0",
		"rested #4 1@100")
	// An iceberg taker trades its whole quantity, then shows its display.
	x.expect(x.submit(with(sell(5, 10, 100), func(o *Order) { o.DisplayQty = 3 })),
		"accepted #5 sell 10@100",
		"fill #5 x #4 1@100 left 9/0",
		"rested #5 9@100")
	if st := x.order(5); st.Visible != 3 || st.Qty != 9 {
		t.Errorf("resting iceberg shows %d of %d", st.Visible, st.Qty)
	}
	x.expect(x.submit(ioc(with(sell(6, 10, 100), func(o *Order) { o.DisplayQty = 3 }))), "reject #6 iceberg_not_resting")
}

func TestMinimumFillQuantity(t *testing.T) {
	x := newTBook(t, Config{})
	x.must(sell(1, 3, 100), sell(2, 3, 101))
	minq := func(o Order, q int64) Order { o.MinQty = q; return o }
	h := x.b.StateHash()
	x.expect(x.submit(minq(buy(3, 10, 101), 7)), "reject #3 min_qty_not_met")
	x.expect(x.submit(minq(buy(4, 10, 100), 4)), "reject #4 min_qty_not_met")
	if x.b.StateHash() != h {
		t.Error("rejected min-qty order changed the book")
	}
	x.expect(x.submit(minq(buy(5, 10, 101), 6)),
		"accepted #5 buy 10@101",
		"fill #5 x #1 3@100 left 7/0",
		"fill #5 x #2 3@101 left 4/0",
		"rested #5 4@101")
	x.must(sell(6, 2, 102))
	x.expect(x.submit(ioc(minq(buy(7, 5, 102), 2))),
		"accepted #7 buy 5@102", "fill #7 x #6 2@102 left 3/0", "cancel #7 3 ioc_remainder")
	x.expect(x.submit(minq(buy(8, 5, 99), 6)), "reject #8 invalid_min_qty")
}

func TestSelfTradePreventionModes(t *testing.T) {
	own := func(o Order) Order { o.Participant = 7; return o }
	cases := []struct {
		mode STPMode
		want []string
		book []int64 // ids left at the ask 100, in order
	}{
		{STPNone, []string{
			"accepted #3 buy 8@100",
			"fill #3 x #1 5@100 left 3/0",
			"fill #3 x #2 3@100 left 0/2"}, []int64{2}},
		{STPCancelIncoming, []string{
			"accepted #3 buy 8@100",
			"cancel #3 8 stp_cancel_incoming"}, []int64{1, 2}},
		{STPCancelResting, []string{
			"accepted #3 buy 8@100",
			"cancel #1 5 stp_cancel_resting",
			"fill #3 x #2 5@100 left 3/0",
			"rested #3 3@100"}, nil},
		{STPCancelBoth, []string{
			"accepted #3 buy 8@100",
			"cancel #1 5 stp_cancel_both",
			"cancel #3 8 stp_cancel_both"}, []int64{2}},
		{STPDecrement, []string{
			"accepted #3 buy 8@100",
			"cancel #1 5 stp_decrement",
			"reduce #3 -5 =3 stp_decrement",
			"fill #3 x #2 3@100 left 0/2"}, []int64{2}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.mode), func(t *testing.T) {
			x := newTBook(t, Config{})
			x.must(own(sell(1, 5, 100)), sell(2, 5, 100))
			x.expect(x.submit(with(own(buy(3, 8, 100)), func(o *Order) { o.STP = c.mode })), c.want...)
			if got := x.ids(Sell, 100); !cmp.Equal(got, c.book) {
				t.Errorf("asks at 100: %v, want %v", got, c.book)
			}
		})
	}
	// Decrement when the resting order is larger: it keeps its priority.
	x := newTBook(t, Config{})
	x.must(own(sell(1, 10, 100)), sell(2, 5, 100))
	x.expect(x.submit(with(own(buy(3, 4, 100)), func(o *Order) { o.STP = STPDecrement })),
		"accepted #3 buy 4@100",
		"reduce #1 -4 =6 stp_decrement",
		"cancel #3 4 stp_decrement")
	if got := x.ids(Sell, 100); !cmp.Equal(got, []int64{1, 2}) {
		t.Errorf("asks %v", got)
	}
	if st := x.order(1); st.Qty != 6 || st.CancelledQty != 4 || st.OrigQty != 10 {
		t.Errorf("decremented order %+v", st)
	}
}

func TestSelfTradePreventionWithIcebergs(t *testing.T) {
	own := func(o Order) Order { o.Participant = 7; return o }
	x := newTBook(t, Config{})
	x.must(own(with(sell(1, 10, 100), func(o *Order) { o.DisplayQty = 2 })), sell(2, 5, 100))
	// Decrement takes the resting iceberg's hidden quantity first.
	x.expect(x.submit(with(own(buy(3, 3, 100)), func(o *Order) { o.STP = STPDecrement })),
		"accepted #3 buy 3@100",
		"reduce #1 -3 =7 stp_decrement",
		"cancel #3 3 stp_decrement")
	if st := x.order(1); st.Qty != 7 || st.Visible != 2 {
		t.Errorf("iceberg after decrement shows %d of %d", st.Visible, st.Qty)
	}
	// Cancel-resting cancels the whole iceberg, hidden part included.
	x.expect(x.submit(with(own(buy(4, 6, 100)), func(o *Order) { o.STP = STPCancelResting })),
		"accepted #4 buy 6@100",
		"cancel #1 7 stp_cancel_resting",
		"fill #4 x #2 5@100 left 1/0",
		"rested #4 1@100")

	// Another participant's iceberg ahead of an own order: the incoming
	// order takes its shown part, the iceberg replenishes behind the own
	// order, and cancel-incoming stops there.
	y := newTBook(t, Config{})
	y.must(with(sell(5, 6, 100), func(o *Order) { o.DisplayQty = 2 }), own(sell(6, 5, 100)))
	ci := func(o Order) Order { o.STP = STPCancelIncoming; return own(o) }
	y.expect(y.submit(fok(ci(buy(7, 3, 100)))), "reject #7 fok_not_fillable")
	y.expect(y.submit(ci(buy(8, 10, 100))),
		"accepted #8 buy 10@100",
		"fill #8 x #5 2@100 left 8/4",
		"cancel #8 8 stp_cancel_incoming")
	if got := y.ids(Sell, 100); !cmp.Equal(got, []int64{6, 5}) {
		t.Errorf("asks %v, want own order ahead of the replenished iceberg", got)
	}
	y.expect(y.submit(fok(ci(buy(9, 1, 100)))), "reject #9 fok_not_fillable")
}

func TestCancelReduceReplace(t *testing.T) {
	x := newTBook(t, Config{})
	x.must(buy(1, 5, 100), buy(2, 5, 100))
	x.expect(x.do(func() { x.b.Reduce(1, 3) }), "reduce #1 -2 =3 none")
	if got := x.ids(Buy, 100); !cmp.Equal(got, []int64{1, 2}) {
		t.Errorf("reduce lost priority: %v", got)
	}
	x.expect(x.do(func() { x.b.Reduce(1, 3) }), "reject #1 reduce_not_lower")
	x.expect(x.do(func() { x.b.Reduce(1, 0) }), "reject #1 invalid_qty")
	x.expect(x.do(func() { x.b.Reduce(99, 1) }), "reject #99 unknown_order")

	x.expect(x.do(func() { x.b.Replace(1, 100, 6) }), "replace #1 6@100")
	if got := x.ids(Buy, 100); !cmp.Equal(got, []int64{2, 1}) {
		t.Errorf("larger replace kept priority: %v", got)
	}
	x.expect(x.do(func() { x.b.Replace(2, 100, 4) }), "replace #2 4@100")
	if got := x.ids(Buy, 100); !cmp.Equal(got, []int64{2, 1}) {
		t.Errorf("smaller same-price replace lost priority: %v", got)
	}
	x.expect(x.do(func() { x.b.Replace(2, 100, 4) }), "reject #2 replace_no_change")
	x.expect(x.do(func() { x.b.Replace(2, 100, 0) }), "reject #2 invalid_qty")
	x.expect(x.do(func() { x.b.Replace(2, 100, MaxQty+1) }), "reject #2 invalid_qty")
	x.expect(x.do(func() { x.b.Replace(2, 1001, 4) }), "reject #2 price_out_of_band")
	x.expect(x.do(func() { x.b.Replace(99, 100, 4) }), "reject #99 unknown_order")
	x.expect(x.do(func() { x.b.Replace(1, 101, 6) }), "replace #1 6@101")
	if got := x.ids(Buy, 101); !cmp.Equal(got, []int64{1}) {
		t.Errorf("bids at 101: %v", got)
	}
	// A replace that crosses trades like a new order.
	x.must(sell(3, 2, 102))
	x.expect(x.do(func() { x.b.Replace(1, 102, 6) }),
		"replace #1 6@102",
		"fill #1 x #3 2@102 left 4/0")
	st := x.order(1)
	if st.Price != 102 || st.Qty != 4 || st.OrigQty != 8 || st.FilledQty != 2 || st.CancelledQty != 2 {
		t.Errorf("order 1 after replaces: %+v", st)
	}
	x.expect(x.do(func() { x.b.Cancel(1) }), "cancel #1 4 cancelled")
	x.expect(x.do(func() { x.b.Cancel(1) }), "reject #1 unknown_order")
	// A replace that is filled in full leaves the book.
	x.must(sell(4, 3, 103))
	x.expect(x.do(func() { x.b.Replace(2, 103, 3) }),
		"replace #2 3@103",
		"fill #2 x #4 3@103 left 0/0")
	if x.b.Len() != 0 {
		t.Errorf("%d orders left", x.b.Len())
	}
}

func TestMassCancelAndDayExpiry(t *testing.T) {
	x := newTBook(t, Config{})
	p := func(o Order, part int64, tif TIF) Order { o.Participant, o.TIF = part, tif; return o }
	x.must(p(buy(1, 1, 99), 1, GTC), p(buy(2, 1, 100), 2, Day), p(buy(3, 1, 100), 1, Day),
		p(sell(4, 1, 102), 1, GTC), p(sell(5, 1, 101), 2, GTC), p(sell(6, 1, 101), 1, Day))
	var n int
	x.expect(x.do(func() { n = x.b.CancelParticipant(1) }),
		"cancel #3 1 mass_cancel",
		"cancel #1 1 mass_cancel",
		"cancel #6 1 mass_cancel",
		"cancel #4 1 mass_cancel")
	if n != 4 || x.b.Len() != 2 {
		t.Errorf("cancelled %d, %d left", n, x.b.Len())
	}
	x.expect(x.do(func() { n = x.b.ExpireDayOrders() }), "cancel #2 1 day_expired")
	if n != 1 || x.b.Len() != 1 {
		t.Errorf("expired %d, %d left", n, x.b.Len())
	}
	x.expect(x.do(func() { n = x.b.CancelParticipant(1) }))
}

func TestValidationRejects(t *testing.T) {
	full := newTBook(t, Config{MinPrice: 1, MaxPrice: 1000, MaxOrders: 1})
	full.must(buy(1, 1, 10))
	cases := []struct {
		o    Order
		want Reason
	}{
		{with(buy(1, 1, 10), func(o *Order) { o.Side = 2 }), ReasonInvalidSide},
		{with(buy(1, 1, 10), func(o *Order) { o.Type = 2 }), ReasonInvalidType},
		{with(buy(1, 1, 10), func(o *Order) { o.TIF = 4 }), ReasonInvalidTIF},
		{with(buy(1, 1, 10), func(o *Order) { o.STP = 5 }), ReasonInvalidSTP},
		{buy(1, 0, 10), ReasonInvalidQty},
		{buy(1, -3, 10), ReasonInvalidQty},
		{buy(1, MaxQty+1, 10), ReasonInvalidQty},
		{buy(1, 1, 0), ReasonPriceOutOfBand},
		{buy(1, 1, 1001), ReasonPriceOutOfBand},
		{with(buy(1, 1, 10), func(o *Order) { o.Type, o.TIF = Market, Day }), ReasonMarketTIF},
		{with(buy(1, 1, 10), func(o *Order) { o.DisplayQty = -1 }), ReasonInvalidDisplayQty},
		{with(buy(1, 5, 10), func(o *Order) { o.DisplayQty, o.TIF = 1, FOK }), ReasonIcebergNotResting},
		{with(buy(1, 5, 10), func(o *Order) { o.DisplayQty, o.Type, o.TIF = 1, Market, IOC }), ReasonIcebergNotResting},
		{with(buy(1, 5, 10), func(o *Order) { o.MinQty = -1 }), ReasonInvalidMinQty},
		{with(buy(1, 5, 10), func(o *Order) { o.MinQty = 6 }), ReasonInvalidMinQty},
		{with(buy(1, 5, 10), func(o *Order) { o.PostOnly, o.TIF = true, IOC }), ReasonPostOnlyTIF},
		{with(buy(1, 5, 10), func(o *Order) { o.PostOnly, o.MinQty = true, 1 }), ReasonPostOnlyMinQty},
		{buy(1, 5, 10), ReasonDuplicateID},
		{buy(2, 5, 10), ReasonBookFull},
	}
	for _, c := range cases {
		h := full.b.StateHash()
		if got := full.b.Submit(c.o); got != c.want {
			t.Errorf("Submit(%+v) = %v, want %v", c.o, got, c.want)
		}
		if e := full.rec.events[len(full.rec.events)-1]; e.Kind != EventReject || e.Reason != c.want || e.OrderID != c.o.ID {
			t.Errorf("Submit(%+v) event %+v", c.o, e)
		}
		if full.b.StateHash() != h {
			t.Errorf("rejected %+v changed the book", c.o)
		}
	}
	// A display quantity at or above the order quantity is a plain order.
	x := newTBook(t, Config{})
	x.must(with(buy(1, 5, 10), func(o *Order) { o.DisplayQty = 5 }), with(buy(2, 5, 10), func(o *Order) { o.DisplayQty = 9 }))
	if st := x.order(2); st.DisplayQty != 0 || st.Visible != 5 {
		t.Errorf("%+v", st)
	}
}

func TestReasonCodesAreDistinct(t *testing.T) {
	seen := map[string]Reason{}
	for r := ReasonNone; r < reasonCount; r++ {
		name := r.String()
		if prev, dup := seen[name]; dup {
			t.Errorf("reasons %d and %d share the name %q", prev, r, name)
		}
		seen[name] = r
		if want := r >= ReasonInvalidSide && r <= ReasonReplaceNoChange; r.IsReject() != want {
			t.Errorf("%v.IsReject() = %v", r, !want)
		}
	}
	if len(reasonNames) != int(reasonCount) {
		t.Errorf("%d names for %d reasons", len(reasonNames), reasonCount)
	}
}

func TestAuctionCollectsThenUncrosses(t *testing.T) {
	x := newTBook(t, Config{})
	if err := x.b.StartAuction(); err != nil {
		t.Fatal(err)
	}
	if err := x.b.StartAuction(); !errors.Is(err, ErrPhase) {
		t.Errorf("second StartAuction: %v", err)
	}
	x.must(buy(1, 10, 102), sell(2, 10, 100)) // crossed, no trade
	x.expect(x.submit(ioc(buy(3, 1, 102))), "reject #3 auction_order_type")
	x.expect(x.submit(with(buy(4, 1, 102), func(o *Order) { o.Type, o.TIF = Market, IOC })), "reject #4 auction_order_type")
	x.expect(x.submit(with(buy(5, 2, 102), func(o *Order) { o.MinQty = 1 })), "reject #5 auction_min_qty")
	// Both candidates have volume 10 and no imbalance: closeness to the
	// reference decides, then the lower price.
	for _, c := range []struct{ ref, price int64 }{{101, 100}, {0, 100}, {102, 102}, {500, 102}, {100, 100}} {
		if got := x.b.Indicative(c.ref); got != (Indication{Price: c.price, Volume: 10, BuyQty: 10, SellQty: 10}) {
			t.Errorf("Indicative(%d) = %+v, want 10@%d", c.ref, got, c.price)
		}
	}
	var ind Indication
	x.expect(x.do(func() {
		var err error
		if ind, err = x.b.Uncross(102); err != nil {
			t.Error(err)
		}
	}), "uncross 10@102", "fill #1 x #2 10@102 left 0/0")
	if ind.Price != 102 || x.b.Phase() != PhaseContinuous || x.b.Len() != 0 {
		t.Errorf("after uncross: %+v, phase %v, %d orders", ind, x.b.Phase(), x.b.Len())
	}
	if _, err := x.b.Uncross(0); !errors.Is(err, ErrPhase) {
		t.Errorf("Uncross outside auction: %v", err)
	}
}

func TestAuctionPriceRule(t *testing.T) {
	type o struct {
		side       Side
		qty, price int64
	}
	cases := []struct {
		name   string
		orders []o
		ref    int64
		want   Indication
	}{
		{"max volume", []o{{Buy, 5, 103}, {Buy, 10, 101}, {Sell, 10, 101}, {Sell, 10, 103}},
			103, Indication{Price: 101, Volume: 10, BuyQty: 15, SellQty: 10, Imbalance: 5}},
		{"volume tie, least imbalance", []o{{Buy, 5, 103}, {Buy, 5, 102}, {Buy, 5, 101}, {Sell, 5, 100}, {Sell, 5, 101}, {Sell, 10, 102}},
			102, Indication{Price: 101, Volume: 10, BuyQty: 15, SellQty: 10, Imbalance: 5}},
		{"imbalance tie, nearest reference", []o{{Buy, 10, 105}, {Sell, 10, 100}},
			104, Indication{Price: 105, Volume: 10, BuyQty: 10, SellQty: 10}},
		{"imbalance tie, nearest reference below", []o{{Buy, 10, 105}, {Sell, 10, 100}},
			102, Indication{Price: 100, Volume: 10, BuyQty: 10, SellQty: 10}},
		{"equidistant, lower price", []o{{Buy, 10, 104}, {Sell, 10, 100}},
			102, Indication{Price: 100, Volume: 10, BuyQty: 10, SellQty: 10}},
		{"not crossed", []o{{Buy, 10, 99}, {Sell, 10, 100}}, 100, Indication{}},
		{"hidden quantity counts", []o{{Buy, 10, 101}, {Sell, 4, 100}},
			100, Indication{Price: 100, Volume: 4, BuyQty: 10, SellQty: 4, Imbalance: 6}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := newTBook(t, Config{})
			if err := x.b.StartAuction(); err != nil {
				t.Fatal(err)
			}
			for i, od := range c.orders {
				ord := Order{ID: int64(i + 1), Side: od.side, Qty: od.qty, Price: od.price, DisplayQty: 1}
				x.must(ord)
			}
			if got := x.b.Indicative(c.ref); got != c.want {
				t.Errorf("Indicative(%d) = %+v, want %+v", c.ref, got, c.want)
			}
			got, err := x.b.Uncross(c.ref)
			if err != nil || got != c.want {
				t.Errorf("Uncross = %+v, %v", got, err)
			}
			if err := x.b.CheckInvariants(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestAuctionFillsInPriorityWithIcebergs(t *testing.T) {
	x := newTBook(t, Config{})
	if err := x.b.StartAuction(); err != nil {
		t.Fatal(err)
	}
	x.must(with(buy(1, 10, 101), func(o *Order) { o.DisplayQty = 2 }), buy(2, 5, 101), buy(3, 5, 102), sell(4, 13, 100))
	// Candidates 100, 101, 102: volumes 13, 13, 5; imbalance at 100 and 101
	// is 7, so the reference decides for 101.
	x.expect(x.do(func() { x.b.Uncross(101) }),
		"uncross 13@101",
		"fill #3 x #4 5@101 left 0/8",
		"fill #1 x #4 8@101 left 2/0")
	if st := x.order(1); st.Qty != 2 || st.Visible != 2 {
		t.Errorf("iceberg after uncross: %+v", st)
	}
	if got := x.ids(Buy, 101); !cmp.Equal(got, []int64{1, 2}) {
		t.Errorf("bids %v: the iceberg should keep its place", got)
	}
	// An uncross with nothing crossed only ends the auction.
	if err := x.b.StartAuction(); err != nil {
		t.Fatal(err)
	}
	x.expect(x.do(func() { x.b.Uncross(0) }), "uncross 0@0")
}

func TestEventFieldsCarryBothSides(t *testing.T) {
	x := newTBook(t, Config{})
	x.b.Submit(Order{ID: 1, Participant: 11, User: 111, Side: Sell, Price: 50, Qty: 4})
	x.rec.events = nil
	x.b.Submit(Order{ID: 2, Participant: 22, User: 222, Side: Buy, Price: 50, Qty: 5})
	want := []Event{
		{Kind: EventAccepted, Side: Buy, OrderID: 2, Participant: 22, User: 222, Price: 50, Qty: 5, Remaining: 5},
		{Kind: EventFill, Side: Buy, OrderID: 2, Participant: 22, User: 222, Price: 50, Qty: 4, Remaining: 1,
			ContraID: 1, ContraParticipant: 11, ContraUser: 111, ContraRemaining: 0},
		{Kind: EventRested, Side: Buy, OrderID: 2, Participant: 22, User: 222, Price: 50, Qty: 1, Remaining: 1},
	}
	if d := cmp.Diff(want, x.rec.events); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
	if st := x.order(2); st.User != 222 || st.Participant != 22 || st.FilledQty != 4 {
		t.Errorf("%+v", st)
	}
}

func TestSnapshotRestore(t *testing.T) {
	x := newTBook(t, Config{})
	x.must(buy(1, 5, 100), with(buy(2, 9, 100), func(o *Order) { o.DisplayQty = 4; o.TIF = Day; o.User = 5 }),
		sell(3, 5, 105), with(sell(4, 6, 104), func(o *Order) { o.PostOnly = true; o.STP = STPDecrement }))
	x.submit(buy(5, 4, 104)) // a partial fill: accounting to restore
	x.b.Reduce(3, 2)
	x.b.Replace(1, 100, 7)
	var snap []OrderState
	x.b.Walk(func(st OrderState) bool { snap = append(snap, st); return true })

	nb, err := New(Config{MinPrice: 1, MaxPrice: 1000, MaxOrders: 100}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range snap {
		if err := nb.Restore(st); err != nil {
			t.Fatal(err)
		}
	}
	if err := nb.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	if nb.StateHash() != x.b.StateHash() {
		t.Error("restored book has another hash")
	}
	var again []OrderState
	nb.Walk(func(st OrderState) bool { again = append(again, st); return true })
	if d := cmp.Diff(snap, again); d != "" {
		t.Errorf("restored walk differs:\n%s", d)
	}
	// The hash sees priority, quantities and phase.
	h := nb.StateHash()
	nb.Replace(2, 100, 5) // same price, smaller: keeps priority but changes qty
	if nb.StateHash() == h {
		t.Error("hash ignored a quantity change")
	}
	// The same orders in another time priority.
	swapped, _ := New(Config{MinPrice: 1, MaxPrice: 1000, MaxOrders: 100}, nil)
	order := []int{1, 0, 2, 3}
	if snap[0].Price != snap[1].Price {
		t.Fatalf("snapshot %+v: want two bids at one price first", snap)
	}
	for _, i := range order {
		if err := swapped.Restore(snap[i]); err != nil {
			t.Fatal(err)
		}
	}
	if swapped.StateHash() == x.b.StateHash() {
		t.Error("hash ignored time priority")
	}
	h = nb.StateHash()
	if err := nb.StartAuction(); err != nil || nb.StateHash() == h {
		t.Error("hash ignored the phase")
	}
	// Restore refuses what would break the book.
	if err := nb.Restore(snap[0]); !errors.Is(err, ErrRestore) {
		t.Errorf("duplicate restore: %v", err)
	}
	cb, _ := New(Config{MinPrice: 1, MaxPrice: 1000, MaxOrders: 100}, nil)
	bad := []OrderState{
		{ID: 1, Side: Buy, Price: 100, Qty: 5, Visible: 5, OrigQty: 6},
		{ID: 1, Side: Buy, Price: 100, Qty: 5, Visible: 4, OrigQty: 5},
		{ID: 1, Side: Buy, Price: 100, Qty: 5, Visible: 5, OrigQty: 5, TIF: IOC},
		{ID: 1, Side: Buy, Price: 0, Qty: 5, Visible: 5, OrigQty: 5},
	}
	for _, st := range bad {
		if err := cb.Restore(st); !errors.Is(err, ErrRestore) {
			t.Errorf("Restore(%+v) = %v", st, err)
		}
	}
	if err := cb.Restore(OrderState{ID: 1, Side: Sell, Price: 100, Qty: 5, Visible: 5, OrigQty: 5}); err != nil {
		t.Fatal(err)
	}
	if err := cb.Restore(OrderState{ID: 2, Side: Buy, Price: 100, Qty: 5, Visible: 5, OrigQty: 5}); !errors.Is(err, ErrRestore) {
		t.Errorf("crossing restore in continuous trading: %v", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{MinPrice: 0, MaxPrice: 10, MaxOrders: 1},
		{MinPrice: 10, MaxPrice: 9, MaxOrders: 1},
		{MinPrice: 1, MaxPrice: MaxBandTicks + 1, MaxOrders: 1},
		{MinPrice: 1, MaxPrice: 10, MaxOrders: 0},
		{MinPrice: 1, MaxPrice: 10, MaxOrders: 1, MarketProtectionTicks: -1},
	} {
		if _, err := New(cfg, nil); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
	if _, err := New(Config{MinPrice: 1000, MaxPrice: 1000, MaxOrders: 1}, nil); err != nil {
		t.Errorf("one-price band refused: %v", err)
	}
}

// TestCheckInvariantsDetectsCorruption makes sure the checker the other
// tests rely on is not vacuous.
func TestCheckInvariantsDetectsCorruption(t *testing.T) {
	corrupt := []struct {
		name string
		f    func(b *Book)
	}{
		{"level total", func(b *Book) { b.levels[b.orders[1].lvl].total++ }},
		{"level visible", func(b *Book) { b.levels[b.orders[1].lvl].visible-- }},
		{"level count", func(b *Book) { b.levels[b.orders[1].lvl].count++ }},
		{"accounting", func(b *Book) { b.orders[1].orig++ }},
		{"cold accounting", func(b *Book) { b.account(1).filled++ }},
		{"shown above open", func(b *Book) { b.orders[1].visible = b.orders[1].leaves + 1 }},
		{"cached best", func(b *Book) { b.sides[Buy].best-- }},
		{"crossed", func(b *Book) {
			b.sides[Sell].slot[0] = b.sides[Buy].slot[b.sides[Buy].best]
			b.sides[Sell].bits.set(0)
			b.sides[Sell].best = 0
		}},
		{"bitmap", func(b *Book) { b.sides[Sell].bits.set(900) }},
		{"index", func(b *Book) { b.ids.del(b.orders[1].id, 1) }},
		{"free list", func(b *Book) { b.links[b.freeOrder].next = 0 }},
	}
	for _, c := range corrupt {
		b, _ := New(Config{MinPrice: 1, MaxPrice: 1000, MaxOrders: 10}, nil)
		b.Submit(buy(1, 5, 100))
		b.Submit(buy(2, 5, 99))
		b.Submit(sell(3, 5, 101))
		if err := b.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
		c.f(b)
		if err := b.CheckInvariants(); err == nil {
			t.Errorf("%s: corruption not detected", c.name)
		}
	}
}

func TestReadsDoNotAllocate(t *testing.T) {
	b, _ := New(Config{MinPrice: 1, MaxPrice: 1000, MaxOrders: 100}, nil)
	for i := int64(1); i <= 20; i++ {
		b.Submit(buy(i, 5, 100-i%5))
		b.Submit(sell(100+i, 5, 101+i%5))
	}
	var lv [10]Level
	buf := make([]OrderState, 0, 32)
	allocs := testing.AllocsPerRun(100, func() {
		b.BestBid()
		b.BestAsk()
		b.Depth(Buy, lv[:])
		b.Depth(Sell, lv[:])
		buf = b.LevelOrders(Buy, 99, buf[:0])
		b.Order(7)
		b.Indicative(100)
		b.StateHash()
	})
	if allocs != 0 {
		t.Errorf("reads allocate %v times", allocs)
	}
	if n := b.Depth(Buy, lv[:]); n != 5 || lv[0].Price != 100 || lv[0].Orders != 4 || lv[4].Price != 96 {
		t.Errorf("depth %d %+v", n, lv[:n])
	}
}

func TestCommandsDoNotAllocate(t *testing.T) {
	b, _ := New(Config{MinPrice: 1, MaxPrice: 10_000, MaxOrders: 1000}, discardSink{})
	id := int64(0)
	for i := 0; i < 200; i++ {
		id++
		b.Submit(buy(id, 5, 4000-int64(i%50)))
		id++
		b.Submit(sell(id, 5, 4001+int64(i%50)))
	}
	n := int64(0)
	allocs := testing.AllocsPerRun(1000, func() {
		n++
		id++
		b.Submit(Order{ID: id, Participant: n % 7, Side: Side(n & 1), Price: 3990 + n%20, Qty: 3, DisplayQty: 1, STP: STPDecrement})
		b.Replace(id, 3980+n%40, 4)
		b.Reduce(id, 2)
		b.Submit(ioc(Order{ID: -n, Side: Side(n&1) ^ 1, Price: 4000, Qty: 6}))
		b.Cancel(id - 5)
	})
	if allocs != 0 {
		t.Errorf("commands allocate %v times", allocs)
	}
	if err := b.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

// TestOrderFitsACacheLine guards the layout the hot path relies on.
func TestOrderFitsACacheLine(t *testing.T) {
	if s := unsafe.Sizeof(order{}); s != 64 {
		t.Errorf("order is %d bytes, want 64", s)
	}
	if s := unsafe.Sizeof(idEntry{}); s != 8 {
		t.Errorf("id index entry is %d bytes, want 8", s)
	}
}
