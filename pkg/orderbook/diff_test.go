package orderbook

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// recorder is a Sink that keeps copies of all events.
type recorder struct{ events []Event }

func (r *recorder) OnEvent(e *Event) { r.events = append(r.events, *e) }

// byteSource hands out the bytes of a fuzz input, then zeros.
type byteSource struct {
	data []byte
	pos  int
}

func (s *byteSource) next() byte {
	if s.pos >= len(s.data) {
		s.pos++
		return 0
	}
	b := s.data[s.pos]
	s.pos++
	return b
}

func (s *byteSource) done() bool { return s.pos >= len(s.data) }

// ledger re-derives every order's accounting from the event stream alone.
type ledger struct {
	open map[int64]*OrderState
}

func (l *ledger) apply(e *Event) error {
	get := func(id int64) (*OrderState, error) {
		st := l.open[id]
		if st == nil {
			return nil, fmt.Errorf("event %+v for order %d that is not open", *e, id)
		}
		return st, nil
	}
	settle := func(id int64, st *OrderState, remaining int64) error {
		if st.Qty != remaining {
			return fmt.Errorf("event %+v: order %d open %d by the ledger, %d by the event", *e, id, st.Qty, remaining)
		}
		if st.OrigQty != st.FilledQty+st.Qty+st.CancelledQty {
			return fmt.Errorf("event %+v: order %d orig %d != filled %d + open %d + cancelled %d", *e, id,
				st.OrigQty, st.FilledQty, st.Qty, st.CancelledQty)
		}
		if remaining == 0 {
			delete(l.open, id)
		}
		return nil
	}
	switch e.Kind {
	case EventAccepted:
		if l.open[e.OrderID] != nil {
			return fmt.Errorf("order %d accepted twice", e.OrderID)
		}
		l.open[e.OrderID] = &OrderState{Qty: e.Qty, OrigQty: e.Qty}
		return nil
	case EventRested:
		st, err := get(e.OrderID)
		if err != nil {
			return err
		}
		return settle(e.OrderID, st, e.Remaining)
	case EventFill:
		if e.Qty <= 0 {
			return fmt.Errorf("fill of %d", e.Qty)
		}
		for _, side := range []struct{ id, rem int64 }{{e.OrderID, e.Remaining}, {e.ContraID, e.ContraRemaining}} {
			st, err := get(side.id)
			if err != nil {
				return err
			}
			st.FilledQty += e.Qty
			st.Qty -= e.Qty
			if err := settle(side.id, st, side.rem); err != nil {
				return err
			}
		}
		return nil
	case EventCancel, EventReduce:
		st, err := get(e.OrderID)
		if err != nil {
			return err
		}
		if e.Qty <= 0 || (e.Kind == EventCancel) != (e.Remaining == 0) {
			return fmt.Errorf("bad %v event %+v", e.Kind, *e)
		}
		st.CancelledQty += e.Qty
		st.Qty -= e.Qty
		return settle(e.OrderID, st, e.Remaining)
	case EventReplace:
		st, err := get(e.OrderID)
		if err != nil {
			return err
		}
		if e.Qty > st.Qty {
			st.OrigQty += e.Qty - st.Qty
		} else {
			st.CancelledQty += st.Qty - e.Qty
		}
		st.Qty = e.Qty
		return settle(e.OrderID, st, e.Remaining)
	}
	return nil
}

// harness runs the same commands on a Book and a refBook and checks after
// every command that both emitted the same events and hold the same book,
// that the Book's invariants hold and that the event stream accounts for
// every lot.
type harness struct {
	t      testing.TB
	cfg    Config
	rec    *recorder
	book   *Book
	ref    *refBook
	ledger ledger
	nextID int64
	cmds   int
	all    []Event // every event of the Book, in order
	log    []string
}

func newHarness(t testing.TB, cfg Config) *harness {
	rec := &recorder{}
	b, err := New(cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, cfg: cfg, rec: rec, book: b, ref: newRefBook(cfg), ledger: ledger{open: map[int64]*OrderState{}}}
}

func (h *harness) fail(format string, args ...any) {
	h.t.Helper()
	start := max(0, len(h.log)-30)
	h.t.Fatalf("after command %d: %s\nlast commands:\n%v", h.cmds, fmt.Sprintf(format, args...), h.log[start:])
}

func (h *harness) check() {
	h.t.Helper()
	h.cmds++
	if !slices.Equal(h.ref.events, h.rec.events) {
		h.fail("events differ (-ref +book):\n%s", cmp.Diff(h.ref.events, h.rec.events))
	}
	h.all = append(h.all, h.rec.events...)
	for i := range h.rec.events {
		if err := h.ledger.apply(&h.rec.events[i]); err != nil {
			h.fail("ledger: %v", err)
		}
	}
	h.ref.events, h.rec.events = h.ref.events[:0], h.rec.events[:0]
	if err := h.book.CheckInvariants(); err != nil {
		h.fail("invariant: %v", err)
	}
	var got []OrderState
	h.book.Walk(func(st OrderState) bool { got = append(got, st); return true })
	want := h.ref.Walk()
	if !slices.Equal(want, got) {
		h.fail("books differ (-ref +book):\n%s", cmp.Diff(want, got))
	}
	rs := h.book.AppendResting([]Resting{{User: 42}})
	if len(rs) != 1+len(want) || rs[0] != (Resting{User: 42}) {
		h.fail("AppendResting: %d orders after the one given (%+v), want %d", len(rs)-1, rs[0], len(want))
	}
	for k, st := range want {
		if r := (Resting{User: st.User, Visible: st.Visible, OrigQty: st.OrigQty, FilledQty: st.FilledQty, CancelledQty: st.CancelledQty}); rs[1+k] != r {
			h.fail("AppendResting: order %d is %+v, Walk's %+v", k, rs[1+k], r)
		}
	}
	if h.book.Len() != len(want) || len(h.ledger.open) != len(want) {
		h.fail("Len %d, ref %d, ledger %d", h.book.Len(), len(want), len(h.ledger.open))
	}
	for _, st := range want {
		l := h.ledger.open[st.ID]
		if l == nil || l.Qty != st.Qty || l.OrigQty != st.OrigQty || l.FilledQty != st.FilledQty || l.CancelledQty != st.CancelledQty {
			h.fail("ledger for order %d is %+v, book has %+v", st.ID, l, st)
		}
		if one, ok := h.book.Order(st.ID); !ok || one != st {
			h.fail("Order(%d) = %+v, %v", st.ID, one, ok)
		}
	}
	if h.book.Phase() != h.ref.phase {
		h.fail("phase %v, ref %v", h.book.Phase(), h.ref.phase)
	}
	var buf [64]Level
	for _, s := range []Side{Buy, Sell} {
		n := h.book.Depth(s, buf[:])
		if want := h.ref.Depth(s); !slices.Equal(want, buf[:n]) {
			h.fail("%v depth differs (-ref +book):\n%s", s, cmp.Diff(want, buf[:n]))
		}
		p, q, ok := h.book.bestOf(s)
		if wp, okr := h.ref.best(s); ok != okr || p != wp || (ok && q != buf[0].Qty) {
			h.fail("%v best %d/%d/%v, ref %d/%v", s, p, q, ok, wp, okr)
		}
	}
	for _, ref := range []int64{0, 16, h.cfg.MaxPrice} {
		if got, want := h.book.Indicative(ref), h.ref.Indicative(ref); got != want {
			h.fail("Indicative(%d) = %+v, ref %+v", ref, got, want)
		}
	}
	if h.cmds%64 == 0 {
		h.checkRestore()
	}
}

// checkRestore rebuilds the book from a Walk and compares it with the
// original.
func (h *harness) checkRestore() {
	h.t.Helper()
	nb, err := New(h.cfg, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if h.book.Phase() == PhaseAuction {
		if err := nb.StartAuction(); err != nil {
			h.t.Fatal(err)
		}
	}
	h.book.Walk(func(st OrderState) bool {
		if err := nb.Restore(st); err != nil {
			h.fail("restore: %v", err)
		}
		return true
	})
	if err := nb.CheckInvariants(); err != nil {
		h.fail("restored book: %v", err)
	}
	if nb.StateHash() != h.book.StateHash() {
		h.fail("restored book hash %x != %x", nb.StateHash(), h.book.StateHash())
	}
	var a, b []OrderState
	h.book.Walk(func(st OrderState) bool { a = append(a, st); return true })
	nb.Walk(func(st OrderState) bool { b = append(b, st); return true })
	if !slices.Equal(a, b) {
		h.fail("restored book differs:\n%s", cmp.Diff(a, b))
	}
}

func (h *harness) logf(format string, args ...any) {
	h.log = append(h.log, fmt.Sprintf(format, args...))
}

// step decodes one command from src and applies it to both books.
func (h *harness) step(src *byteSource, wide bool) {
	// Buy prices sit mostly below sell prices with some overlap, so books
	// grow a few levels deep and still cross often.
	price := func(s Side, b byte) int64 {
		if wide {
			// Spread levels over many bitmap words.
			return 1 + (int64(b%128)+int64(s)*100)*39
		}
		return 6 + int64(b%15) + int64(s)*6
	}
	pickID := func() int64 {
		b := src.next()
		if b&7 == 0 {
			return 1 + int64(b>>3)%(h.nextID+2) // any id, often finished or unknown
		}
		if n := len(h.ref.orders); n > 0 {
			return h.ref.orders[int(b>>3)%n].st.ID // a resting order
		}
		return h.nextID
	}
	op := src.next()
	switch {
	case op < 128 || op >= 245:
		b1, b2, b3, b4, b5 := src.next(), src.next(), src.next(), src.next(), src.next()
		h.nextID++
		o := Order{
			ID:          h.nextID,
			Participant: 1 + int64(b3>>4)%3,
			User:        uint64(b5),
			Side:        Side(b1 & 1),
			TIF:         [8]TIF{GTC, GTC, GTC, Day, Day, Day, IOC, FOK}[b1>>1&7],
			Price:       price(Side(b1&1), b2),
			Qty:         1 + int64(b3%12),
			STP:         [8]STPMode{STPNone, STPNone, STPNone, STPCancelIncoming, STPCancelResting, STPCancelBoth, STPDecrement, STPDecrement}[b4&7],
		}
		if b1>>4&7 == 0 {
			o.Type = Market
			o.TIF = IOC + TIF(b1>>7&1)
		}
		if b4>>3&3 == 0 {
			o.DisplayQty = 1 + int64(b4>>5)%4
		}
		if b5&7 == 0 {
			o.PostOnly = true
		}
		if b5>>3&7 == 0 {
			o.MinQty = 1 + int64(b5>>6)%o.Qty
		}
		if b5>>3&7 == 1 {
			o.ID = pickID() // likely a duplicate
		}
		if b2 >= 0xf0 {
			// Invalid or edge values, one field at a time.
			switch b2 & 15 {
			case 0:
				o.Side = 2
			case 1:
				o.Type = 2
			case 2:
				o.TIF = 4
			case 3:
				o.STP = 5
			case 4:
				o.Qty = -int64(b3 % 2)
				if b3&4 != 0 {
					o.Qty = MaxQty + 1
				}
			case 5:
				o.Price = h.cfg.MinPrice - 1
			case 6:
				o.Price = h.cfg.MaxPrice + 1
			case 7:
				o.DisplayQty = -1
			case 8:
				o.MinQty = -1
			case 9:
				o.MinQty = o.Qty + 1
			case 10:
				o.Price = h.cfg.MinPrice
			case 11:
				o.Price = h.cfg.MaxPrice
			case 12:
				o.DisplayQty = o.Qty
			case 13:
				o.Type, o.TIF = Market, Day
			}
		}
		h.logf("submit %+v", o)
		if a, b := h.ref.Submit(o), h.book.Submit(o); a != b {
			h.fail("Submit = %v, ref %v", b, a)
		}
	case op < 150:
		id := pickID()
		h.logf("cancel %d", id)
		if a, b := h.ref.Cancel(id), h.book.Cancel(id); a != b {
			h.fail("Cancel = %v, ref %v", b, a)
		}
	case op < 162:
		id, q := pickID(), int64(src.next()%10)-1
		h.logf("reduce %d %d", id, q)
		if a, b := h.ref.Reduce(id, q), h.book.Reduce(id, q); a != b {
			h.fail("Reduce = %v, ref %v", b, a)
		}
	case op < 230:
		id, pb, q := pickID(), src.next(), int64(src.next()%14)
		p := price(Side(pb>>7), pb)
		if st, ok := h.book.Order(id); ok {
			p = price(st.Side, pb)
			if q&1 == 0 {
				p = st.Price // exercise same-price replaces
			}
		}
		if q == 13 {
			p = h.cfg.MaxPrice + 1
		}
		h.logf("replace %d %d %d", id, p, q)
		if a, b := h.ref.Replace(id, p, q), h.book.Replace(id, p, q); a != b {
			h.fail("Replace = %v, ref %v", b, a)
		}
	case op < 233:
		p := 1 + int64(src.next())%3
		h.logf("mass cancel %d", p)
		if a, b := h.ref.CancelParticipant(p), h.book.CancelParticipant(p); a != b {
			h.fail("CancelParticipant = %d, ref %d", b, a)
		}
	case op < 242:
		x := src.next()
		if h.book.Phase() == PhaseContinuous {
			h.logf("start auction")
			a, b := h.ref.StartAuction(), h.book.StartAuction()
			if !errors.Is(b, a) {
				h.fail("StartAuction = %v, ref %v", b, a)
			}
		} else {
			ref := price(Side(x&1), x>>1)
			h.logf("uncross %d", ref)
			a, ea := h.ref.Uncross(ref)
			b, eb := h.book.Uncross(ref)
			if a != b || !errors.Is(eb, ea) {
				h.fail("Uncross = %+v %v, ref %+v %v", b, eb, a, ea)
			}
		}
	default:
		h.logf("expire day")
		if a, b := h.ref.ExpireDayOrders(), h.book.ExpireDayOrders(); a != b {
			h.fail("ExpireDayOrders = %d, ref %d", b, a)
		}
	}
	h.check()
}

// runDifferential interprets data as a configuration byte and a command
// sequence.
func runDifferential(t testing.TB, data []byte) *harness {
	src := &byteSource{data: data}
	c := src.next()
	cfg := Config{MinPrice: 1, MaxPrice: 30, MaxOrders: 24}
	wide := c&1 != 0
	if wide {
		cfg.MaxPrice = 10_000
	}
	if c&2 != 0 {
		cfg.MarketProtectionTicks = 2
	}
	if c&4 != 0 {
		cfg.MaxOrders = 200
	}
	if c&0x18 == 0x18 {
		cfg.MaxOrders = 3000 // pools span many pages
	}
	h := newHarness(t, cfg)
	for !src.done() {
		h.step(src, wide)
	}
	// Finish any auction so the uncross is always exercised.
	if h.book.Phase() == PhaseAuction {
		a, _ := h.ref.Uncross(16)
		b, _ := h.book.Uncross(16)
		if a != b {
			h.fail("final Uncross = %+v, ref %+v", b, a)
		}
		h.check()
	}
	return h
}

func FuzzDifferential(f *testing.F) {
	for seed := uint64(0); seed < 8; seed++ {
		f.Add(randomInput(seed, 400))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return // the reference model is quadratic; keep executions fast
		}
		runDifferential(t, data)
	})
}

// randomInput is a seeded byte string for the differential harness.
func randomInput(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x0b0b))
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	return data
}

// TestDifferential is the seeded property test: many long random command
// sequences must behave identically in Book and the reference model.
func TestDifferential(t *testing.T) {
	seeds := uint64(200)
	if testing.Short() {
		seeds = 40
	}
	for seed := uint64(0); seed < seeds; seed++ {
		runDifferential(t, randomInput(seed, 3000))
	}
}

// TestDeterministic runs the same commands twice: the events and the final
// state must be identical.
func TestDeterministic(t *testing.T) {
	for seed := uint64(1000); seed < 1010; seed++ {
		data := randomInput(seed, 3000)
		a, b := runDifferential(t, data), runDifferential(t, data)
		if len(a.all) < 100 || !slices.Equal(a.all, b.all) {
			t.Fatalf("seed %d: %d and %d events differ", seed, len(a.all), len(b.all))
		}
		if a.book.StateHash() != b.book.StateHash() {
			t.Fatalf("seed %d: final states differ", seed)
		}
	}
}
