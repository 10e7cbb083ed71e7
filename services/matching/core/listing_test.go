package core

import (
	"testing"

	"github.com/bcx-exchange/bcx/pkg/orderbook"
)

func postListing(part int64, cloid string, side Side, price, qty, minTake int64, receipts ...string) Command {
	return Command{Kind: CmdPostListing, Participant: part, Instrument: cotton, ClientOrderID: cloid, Side: side, Price: price,
		Qty: qty, MinQty: minTake, Listing: &ListingSpec{Receipts: receipts, Grade: "3128B", Warehouse: "QD-CF01"}}
}

func take(part int64, cloid string, listing, qty int64) Command {
	return Command{Kind: CmdTakeListing, Participant: part, ClientOrderID: cloid, OrderID: listing, Qty: qty}
}

func lastTrade(h *harness) *Trade {
	var t *Trade
	for i := range h.c.Events().List {
		if e := &h.c.Events().List[i]; e.Kind == EvTrade {
			t = h.c.Events().Trade(e)
		}
	}
	return t
}

// TestSellListing: a seller lists 4 lots from one named receipt with a
// minimum take of 2; takes below the minimum are refused, the last lot
// may be taken alone, deliveries come from the listed receipt only, and
// the trades name the listing.
func TestSellListing(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.credit(alpha, "CNY", 100_000_000)
	h.deposit(beta, "R-OTHER", 50_000_000, cotton) // older, but not listed
	h.deposit(beta, "R-LISTED", 20_000_000, cotton)
	h.deposit(gamma, "R-GAMMA", 10_000_000, cotton)

	if r := h.do(postListing(beta, "l0", orderbook.Sell, 3000, 4, 2, "R-GAMMA")); r.Field != "receipt_numbers" || r.Changed {
		t.Fatalf("another member's receipt: %+v", r)
	}
	if r := h.do(postListing(beta, "l0", orderbook.Sell, 3000, 5, 2, "R-LISTED")); r.Reject != RejectInsufficientPosition {
		t.Fatalf("more than the receipt holds: %+v", r)
	}
	r := h.ok(postListing(beta, "l1", orderbook.Sell, 3010, 4, 2, "R-LISTED"))
	id := r.Order.ID
	if p := h.pool("R-LISTED"); p.reserved != 20_000_000 {
		t.Fatalf("listed receipt %+v", p)
	}
	if p := h.pool("R-OTHER"); p.reserved != 0 {
		t.Fatalf("unlisted receipt reserved %+v", p)
	}
	// The listing does not trade with the book: a crossing buy order rests.
	h.ok(limit(alpha, "b-book", orderbook.Buy, 3010, 1))
	if f := h.funds(alpha, "CNY"); f.total != 100_000_000 {
		t.Fatalf("the book traded with the listing: %+v", f)
	}
	if r := h.do(take(alpha, "t1", id, 1)); r.Reject != RejectMinQtyUnfilled || r.Field != "quantity" {
		t.Fatalf("below the minimum take: %+v", r)
	}
	if r := h.do(take(beta, "t1", id, 2)); r.Reject != RejectSelfTrade {
		t.Fatalf("own listing: %+v", r)
	}
	if r := h.do(take(alpha, "t1", id, 5)); r.Reject != RejectTooLarge {
		t.Fatalf("more than listed: %+v", r)
	}
	r = h.ok(take(alpha, "t1", id, 3))
	if len(r.Fills) != 1 || r.Fills[0].Price != 3010 || r.Fills[0].Qty != 3 || r.Order.Status != StatusFilled {
		t.Fatalf("take: %+v", r)
	}
	tr := lastTrade(h)
	if tr.Listing != id || tr.Aggressor != 1 {
		t.Fatalf("trade %+v", tr)
	}
	if al := h.c.Events().TradeAllocs(tr); len(al) != 1 || al[0] != (Alloc{"R-LISTED", 15_000_000}) {
		t.Fatalf("deliveries %+v", al)
	}
	// One lot is left, below the minimum take: it may be taken alone.
	h.ok(take(alpha, "t2", id, 1))
	lv, _ := h.c.Listing(id)
	if lv.Order.Status != StatusFilled || len(h.c.listings) != 0 {
		t.Fatalf("listing after the last take %+v", lv)
	}
	if p := h.pool("R-LISTED"); p.total != 0 || p.reserved != 0 {
		t.Fatalf("listed receipt after %+v", p)
	}
	// A repeat of a take answers the original.
	if r := h.do(take(alpha, "t2", id, 1)); !r.Duplicate || r.Changed {
		t.Fatalf("repeat: %+v", r)
	}
}

// TestBuyListingWithdrawAndExpiry: a buy listing reserves its notional and
// fee; a seller takes part; withdrawal releases the rest once (a repeat
// is answered the same); an expiring listing ends at its expiry, a day
// listing at the close.
func TestBuyListingWithdrawAndExpiry(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.credit(alpha, "CNY", 100_000_000)
	h.deposit(beta, "R1", 50_000_000, cotton)
	r := h.ok(postListing(alpha, "bl", orderbook.Buy, 3000, 4, 1))
	id := r.Order.ID
	if f := h.funds(alpha, "CNY"); f.reserved != 4*3000*2500 {
		t.Fatalf("buy listing reserve %+v", f)
	}
	h.ok(take(beta, "s1", id, 1))
	if f := h.funds(alpha, "CNY"); f.total != 100_000_000-3000*2500 || f.reserved != 3*3000*2500 {
		t.Fatalf("after a take %+v", f)
	}
	w := h.ok(Command{Kind: CmdWithdrawListing, Participant: alpha, OrderID: id})
	if w.Order.Status != StatusCancelled || h.funds(alpha, "CNY").reserved != 0 {
		t.Fatalf("withdraw %+v", w)
	}
	if r := h.do(Command{Kind: CmdWithdrawListing, Participant: alpha, OrderID: id}); !r.Duplicate || r.Changed {
		t.Fatalf("second withdraw %+v", r)
	}
	if r := h.do(Command{Kind: CmdWithdrawListing, Participant: beta, OrderID: id}); r.Status != StatusNotFound {
		t.Fatalf("another member's withdraw %+v", r)
	}

	exp := postListing(alpha, "bl2", orderbook.Buy, 3000, 1, 1)
	exp.ValidUntil = int64(h.seq+4) * 1000
	id2 := h.ok(exp).Order.ID
	h.ok(postListing(alpha, "bl3", orderbook.Buy, 3000, 1, 1)) // a day listing
	if r := h.do(Command{Kind: CmdExpireListings}); r.Changed {
		t.Fatalf("nothing due yet: %+v", r)
	}
	h.credit(gamma, "CNY", 1)
	if r := h.do(take(beta, "s2", id2, 1)); r.Reject != RejectUnknownOrder {
		t.Fatalf("take after expiry: %+v", r)
	}
	h.ok(Command{Kind: CmdExpireListings})
	if lv, _ := h.c.Listing(id2); lv.Order.Status != StatusExpired || len(h.c.listings) != 1 {
		t.Fatalf("after expiry %+v, %d open", lv, len(h.c.listings))
	}
	h.ok(Command{Kind: CmdSetPhase, Instrument: cotton, Phase: PhaseClosed, EndOfDay: true})
	if len(h.c.listings) != 0 || h.funds(alpha, "CNY").reserved != 0 {
		t.Fatalf("day listing survived the close: %d open, %+v", len(h.c.listings), h.funds(alpha, "CNY"))
	}
	// Closed: no posting.
	if r := h.do(postListing(alpha, "bl4", orderbook.Buy, 3000, 1, 1)); r.Reject != RejectWrongPhase {
		t.Fatalf("post while closed: %+v", r)
	}
}

// TestListingModeAndAmendment: an instrument without listing mode refuses
// listings; an amendment that restarts the book withdraws them.
func TestListingModeAndAmendment(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.credit(alpha, "CNY", 100_000_000)
	h.ok(postListing(alpha, "bl", orderbook.Buy, 3000, 2, 1))
	d := cottonDef()
	d.Version, d.Listing, d.BandTicks = 2, false, 100
	h.ok(Command{Kind: CmdDefineInstrument, Def: d})
	if len(h.c.listings) != 0 || h.funds(alpha, "CNY").reserved != 0 {
		t.Fatalf("amendment left listings: %d", len(h.c.listings))
	}
	if r := h.do(postListing(alpha, "bl2", orderbook.Buy, 3000, 2, 1)); r.Reject != RejectModeNotAllowed {
		t.Fatalf("listing mode off: %+v", r)
	}
}
