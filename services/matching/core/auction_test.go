package core

import (
	"testing"

	"github.com/bcx-exchange/bcx/pkg/orderbook"
)

// TestOneSidedAuction: bids must reach the reserve and beat the best bid
// by the increment; a late bid extends the window; at the close the best
// bids win at their own prices, highest first, the last partly; the rest
// is released.
func TestOneSidedAuction(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.credit(alpha, "CNY", 100_000_000)
	h.credit(gamma, "CNY", 100_000_000)
	h.deposit(beta, "R1", 20_000_000, cotton)
	now := int64(h.seq+1) * 1000
	start := Command{Kind: CmdStartAuction, Participant: beta, Instrument: cotton, ClientOrderID: "A1", Price: 3000, Qty: 4,
		Auction: &AuctionSpec{MinIncrement: 2, Starts: now, Ends: now + 10_000, Extension: 3_000}, Listing: &ListingSpec{Receipts: []string{"R1"}}}
	id := h.ok(start).Order.ID
	if p := h.pool("R1"); p.reserved != 20_000_000 {
		t.Fatalf("lot not reserved: %+v", p)
	}
	bid := func(part int64, cloid string, price, qty int64) Command {
		return Command{Kind: CmdAuctionBid, Participant: part, ClientOrderID: cloid, OrderID: id, Price: price, Qty: qty}
	}
	if r := h.do(bid(alpha, "b0", 2999, 1)); r.Reject != RejectBidTooLow || r.Field != "price" {
		t.Fatalf("below the reserve: %+v", r)
	}
	if r := h.do(bid(beta, "b0", 3000, 1)); r.Reject != RejectSelfTrade {
		t.Fatalf("own auction: %+v", r)
	}
	h.ok(bid(alpha, "b1", 3000, 2))
	if f := h.funds(alpha, "CNY"); f.reserved != 2*3000*2500 {
		t.Fatalf("bid reserve %+v", f)
	}
	if r := h.do(bid(gamma, "g0", 3001, 1)); r.Reject != RejectBidTooLow {
		t.Fatalf("not beating the best by the increment: %+v", r)
	}
	h.ok(bid(gamma, "g1", 3002, 3))
	if v, _ := h.c.Auction(id); v.Best != 3002 || v.Ends != now+10_000 {
		t.Fatalf("auction %+v", v)
	}
	for int64(h.seq+1)*1000 < now+8_000 {
		h.credit(gamma, "CNY", 1)
	}
	h.ok(bid(gamma, "g2", 3004, 1)) // within 3,000 ns of the end: extended
	v, _ := h.c.Auction(id)
	if v.Ends != int64(h.seq)*1000+3_000 {
		t.Fatalf("late bid did not extend: ends %d at %d", v.Ends, h.seq)
	}
	if r := h.do(Command{Kind: CmdExpireListings}); r.Changed {
		t.Fatalf("closed before its end: %+v", r)
	}
	for int64(h.seq+1)*1000 < v.Ends {
		h.credit(gamma, "CNY", 1)
	}
	h.ok(Command{Kind: CmdExpireListings})
	var got []Trade
	ev := h.c.Events()
	for i := range ev.List {
		if e := &ev.List[i]; e.Kind == EvTrade {
			got = append(got, *ev.Trade(e))
		}
	}
	// 4 lots: gamma's 3004 (1 lot), gamma's 3002 (3 lots); alpha's 3000 loses.
	if len(got) != 2 || got[0].Price != 3004 || got[0].Qty != 1 || got[1].Price != 3002 || got[1].Qty != 3 ||
		got[0].Auction != id || got[0].Aggressor != 0 {
		t.Fatalf("results %+v", got)
	}
	if f := h.funds(alpha, "CNY"); f.reserved != 0 || f.total != 100_000_000 {
		t.Fatalf("losing bid still reserves %+v", f)
	}
	if f := h.funds(gamma, "CNY"); f.reserved != 0 {
		t.Fatalf("winning bids still reserve %+v", f)
	}
	v, _ = h.c.Auction(id)
	if !v.Closed || v.Cancelled || len(v.Results) != 2 || v.Lot.Status != StatusFilled || len(h.c.auctions) != 0 {
		t.Fatalf("after the close %+v", v)
	}
	if r := h.do(bid(alpha, "b9", 3100, 1)); r.Reject != RejectWrongPhase {
		t.Fatalf("bid after the close: %+v", r)
	}
}

// TestAuctionUnsoldAndCancelled: a lot nobody bids on is released at the
// close; an amendment cancels an open auction and its bids.
func TestAuctionUnsoldAndCancelled(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.credit(alpha, "CNY", 100_000_000)
	h.deposit(beta, "R1", 20_000_000, cotton)
	now := int64(h.seq+1) * 1000
	a1 := h.ok(Command{Kind: CmdStartAuction, Participant: beta, Instrument: cotton, ClientOrderID: "A1", Price: 3000, Qty: 2,
		Auction: &AuctionSpec{Starts: now, Ends: now + 2_000}}).Order.ID
	a2 := h.ok(Command{Kind: CmdStartAuction, Participant: beta, Instrument: cotton, ClientOrderID: "A2", Price: 3000, Qty: 2,
		Auction: &AuctionSpec{Starts: now, Ends: now + 1_000_000}}).Order.ID
	h.ok(Command{Kind: CmdAuctionBid, Participant: alpha, ClientOrderID: "b", OrderID: a2, Price: 3010, Qty: 2})
	h.ok(Command{Kind: CmdExpireListings})
	if v, _ := h.c.Auction(a1); !v.Closed || v.Lot.Status != StatusCancelled || len(v.Results) != 0 {
		t.Fatalf("unsold auction %+v", v)
	}
	d := cottonDef()
	d.Version, d.BandTicks = 2, 100
	h.ok(Command{Kind: CmdDefineInstrument, Def: d})
	if v, _ := h.c.Auction(a2); !v.Cancelled || len(h.c.auctions) != 0 || h.funds(alpha, "CNY").reserved != 0 || h.pool("R1").reserved != 0 {
		t.Fatalf("amendment left the auction %+v", v)
	}
}

// TestOutsideBookRules covers the review's cases: a listing-only
// instrument opens and takes listings; auctions are not FX-funded; a
// StartAuction repeating a client order id with other terms is refused;
// auctions take no bids while halted and close only when the halt ends;
// order entry does not act on listings or auction orders; an increment
// beyond the band is refused.
func TestOutsideBookRules(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.credit(alpha, "CNY", 100_000_000)
	h.deposit(beta, "R1", 40_000_000, cotton)

	lonly := cottonDef()
	lonly.Number, lonly.Symbol, lonly.Continuous, lonly.CallAuction, lonly.OneSided = 9, "CF-L", false, false, false
	h.ok(Command{Kind: CmdDefineInstrument, Def: lonly})
	h.ok(Command{Kind: CmdSetPhase, Instrument: 9, Phase: PhaseContinuous})
	h.deposit(beta, "R9", 10_000_000, 9)
	l9 := postListing(beta, "l9", orderbook.Sell, 3000, 2, 1)
	l9.Instrument = 9
	id9 := h.ok(l9).Order.ID
	h.ok(take(alpha, "t9", id9, 2))
	if r := h.do(Command{Kind: CmdPlace, Participant: alpha, Instrument: 9, ClientOrderID: "o9", Side: orderbook.Buy, Price: 3000, Qty: 1}); r.Reject != RejectModeNotAllowed {
		t.Fatalf("book order on a listing-only instrument: %+v", r)
	}

	now := int64(h.seq+1) * 1000
	start := Command{Kind: CmdStartAuction, Participant: beta, Instrument: cotton, ClientOrderID: "A1", Price: 3000, Qty: 2,
		Auction: &AuctionSpec{Ends: now + 1_000_000}}
	id := h.ok(start).Order.ID
	other := start
	other.Auction = &AuctionSpec{Ends: now + 2_000_000}
	if r := h.do(other); r.Reject != RejectDuplicateClientID {
		t.Fatalf("same client order id, other terms: %+v", r)
	}
	if r := h.do(start); !r.Duplicate {
		t.Fatalf("repeat: %+v", r)
	}
	big := start
	big.ClientOrderID, big.Auction = "A2", &AuctionSpec{Ends: now + 1_000_000, MinIncrement: 1 << 62}
	if r := h.do(big); r.Field != "min_increment" {
		t.Fatalf("increment beyond the band: %+v", r)
	}
	h.ok(fundUSDFromCNY(gamma, "fg"))
	h.credit(gamma, "CNY", 1)
	fxf := Command{Kind: CmdSetFunding, Participant: gamma, ParticipantID: "P", Key: "fg2", Currency: "CNY", CurrencyExp: 2,
		CounterCurrency: "USD", CounterExp: 2, Version: 1}
	h.ok(fxf)
	if r := h.do(Command{Kind: CmdAuctionBid, Participant: gamma, ClientOrderID: "g", OrderID: id, Price: 3000, Qty: 1}); r.Field != "funding" {
		t.Fatalf("FX-funded bid: %+v", r)
	}
	bid := h.ok(Command{Kind: CmdAuctionBid, Participant: alpha, ClientOrderID: "b", OrderID: id, Price: 3000, Qty: 2}).Order.ID
	if r := h.do(Command{Kind: CmdCancel, Participant: alpha, OrderID: bid}); r.Reject != RejectModeNotAllowed || r.Changed {
		t.Fatalf("cancelling a bid as an order: %+v", r)
	}
	if r := h.do(Command{Kind: CmdCancel, Participant: beta, OrderID: id}); r.Reject != RejectModeNotAllowed || r.Changed {
		t.Fatalf("cancelling the lot as an order: %+v", r)
	}
	h.ok(Command{Kind: CmdSetPhase, Instrument: cotton, Phase: PhaseHalted, PhaseSource: SourceOperator})
	if r := h.do(Command{Kind: CmdAuctionBid, Participant: alpha, ClientOrderID: "b2", OrderID: id, Price: 3010, Qty: 1}); r.Reject != RejectWrongPhase {
		t.Fatalf("bid while halted: %+v", r)
	}
	h.seq = uint64(now+1_000_000) / 1000 // jump the harness clock to the end
	if r := h.do(Command{Kind: CmdExpireListings}); r.Changed {
		t.Fatalf("closed during the halt: %+v", r)
	}
	h.ok(Command{Kind: CmdSetPhase, Instrument: cotton, Phase: PhaseContinuous, PhaseSource: SourceOperator})
	h.ok(Command{Kind: CmdExpireListings})
	if v, _ := h.c.Auction(id); !v.Closed || len(v.Results) != 1 {
		t.Fatalf("after the halt %+v", v)
	}
}
