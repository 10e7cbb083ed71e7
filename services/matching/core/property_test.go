package core

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/bcx-exchange/bcx/pkg/orderbook"
)

// randomCommand draws a command from a small world: two instruments, four
// participants, a handful of receipts, prices around the reference, all
// order types and maintenance, funding, phases and fee changes. Many are
// refused; those must change nothing.
func randomCommand(rng *rand.Rand, h *harness) Command {
	parts := []int64{alpha, beta, gamma, 104}
	p := parts[rng.IntN(len(parts))]
	inst := int64(cotton)
	ref := int64(3000)
	if rng.IntN(3) == 0 {
		inst, ref = rubber, 1750
	}
	cloid := fmt.Sprint("c", rng.IntN(60))
	side := Side(rng.IntN(2))
	price := ref + rng.Int64N(41) - 20
	if rng.IntN(40) == 0 {
		price = ref + 200 // outside the band
	}
	qty := 1 + rng.Int64N(6)
	if rng.IntN(5) == 0 {
		return randomListingCommand(rng, h, p, inst, cloid, side, price, qty)
	}
	switch k := rng.IntN(100); {
	case k < 40:
		c := Command{Kind: CmdPlace, Participant: p, Instrument: inst, ClientOrderID: cloid, Side: side, Price: price, Qty: qty,
			TIF: TIF(rng.IntN(4)), STP: STPMode(rng.IntN(5))}
		if c.TIF == orderbook.IOC || c.TIF == orderbook.FOK {
			if rng.IntN(3) == 0 {
				c.Type = orderbook.Market
			}
		} else if rng.IntN(6) == 0 {
			c.DisplayQty = 1
		}
		if rng.IntN(10) == 0 {
			c.PostOnly = true
		}
		if rng.IntN(10) == 0 && c.Type == orderbook.Limit {
			c.MinQty = 1 + rng.Int64N(qty)
		}
		return c
	case k < 52:
		return Command{Kind: CmdCancel, Participant: p, OrderID: 1 + rng.Int64N(h.c.nextOrderID)}
	case k < 56:
		return Command{Kind: CmdCancel, Participant: p, OrigClientOrderID: cloid}
	case k < 70:
		c := Command{Kind: CmdReplace, Participant: p, OrderID: 1 + rng.Int64N(h.c.nextOrderID), Price: price}
		if rng.IntN(2) == 0 {
			c.Qty, c.OpenQty = qty, rng.IntN(2) == 0
		}
		if rng.IntN(4) == 0 {
			c.ClientOrderID = cloid + "r"
		}
		return c
	case k < 72:
		c := Command{Kind: CmdMassCancel, Participant: p}
		if rng.IntN(2) == 0 {
			c.Instrument = inst
		}
		return c
	case k < 75:
		// FX: a rate for USD/CNY around 7.1, valid for a while around now,
		// or a participant opting in or out of funding one from the other.
		now := int64(h.seq+1) * 1000
		if rng.IntN(2) == 0 {
			from := now - rng.Int64N(300_000)
			return Command{Kind: CmdSetFXRate, Key: fmt.Sprint("rate", rng.IntN(400)), Currency: "USD", CurrencyExp: 2,
				CounterCurrency: "CNY", CounterExp: 2, Amount: 70_000_000_000 + rng.Int64N(3_000_000_000),
				ValidFrom: from, ValidUntil: from + 50_000 + rng.Int64N(1_000_000), Version: int64(rng.IntN(400))}
		}
		trade, funding := "USD", "CNY"
		if rng.IntN(3) == 0 {
			trade, funding = funding, trade
		}
		if rng.IntN(4) == 0 {
			funding = ""
		}
		return Command{Kind: CmdSetFunding, Participant: p, ParticipantID: fmt.Sprint("P", p), Key: fmt.Sprint("fund", rng.IntN(1000)),
			Currency: trade, CurrencyExp: 2, CounterCurrency: funding, CounterExp: 2, Version: int64(rng.IntN(100))}
	case k < 80:
		cur := "CNY"
		if rng.IntN(3) == 0 {
			cur = "USD"
		}
		kind := CmdCreditFunds
		if rng.IntN(3) == 0 {
			kind = CmdDebitFunds
		}
		return Command{Kind: kind, Participant: p, ParticipantID: fmt.Sprint("P", p), Key: fmt.Sprint("f", rng.IntN(200)),
			Currency: cur, CurrencyExp: 2, Amount: 1 + rng.Int64N(5_000_000_000)}
	case k < 86:
		rc := fmt.Sprint("R", rng.IntN(12))
		if rng.IntN(3) == 0 {
			return Command{Kind: CmdDebitPosition, Participant: p, Key: fmt.Sprint("out", rng.IntN(100)), Receipt: rc}
		}
		syms := []int64{inst}
		if rng.IntN(3) == 0 {
			syms = []int64{cotton, rubber}
		}
		return Command{Kind: CmdCreditPosition, Participant: p, ParticipantID: fmt.Sprint("P", p), Key: fmt.Sprint("in", rng.IntN(100)),
			Receipt: rc, Symbols: syms, WeightMicro: 1 + rng.Int64N(60_000_000)}
	case k < 94:
		ph := []Phase{PhaseClosed, PhasePreOpen, PhaseContinuous, PhaseContinuous, PhaseHalted}[rng.IntN(5)]
		return Command{Kind: CmdSetPhase, Instrument: inst, Phase: ph, PhaseSource: PhaseSource(rng.IntN(2)),
			EndOfDay: ph == PhaseClosed && rng.IntN(2) == 0}
	case k < 97:
		rule := func() FeeRule {
			switch rng.IntN(3) {
			case 0:
				return FeeRule{Basis: FeeRate, RateE12: rng.Int64N(5_000_000_000), MinMinor: rng.Int64N(300)}
			case 1:
				return FeeRule{Basis: FeePerLot, PerLotMinor: rng.Int64N(1000), MinMinor: rng.Int64N(300)}
			}
			return FeeRule{}
		}
		return Command{Kind: CmdSetFeeSchedule, Instrument: inst, Key: fmt.Sprint("fee", rng.IntN(1000)),
			Fees: FeeSchedule{Buyer: rule(), Seller: rule()}}
	default:
		d := cottonDef()
		if inst == rubber {
			d = rubberDef()
		}
		d.Version = int64(2 + rng.IntN(20))
		if rng.IntN(2) == 0 {
			d.BandTicks += 10
		}
		return Command{Kind: CmdDefineInstrument, Def: d}
	}
}

// checkSizeHint checks that SnapshotSizeHint is from above.
func checkSizeHint(t *testing.T, c *Core) {
	t.Helper()
	pre, tailPre, rest := c.SnapshotPartsDeferred(nil, nil, nil)
	head, tail := rest.Encode(nil, nil, pre, tailPre)
	if hh, ht := c.SnapshotSizeHint(); len(head) > hh || len(tail) > ht {
		t.Fatalf("snapshot head %d, tail %d bytes; hinted %d and %d: the hint must be from above", len(head), len(tail), hh, ht)
	}
}

// TestPropertyConservation applies random command streams and checks after
// every command that the invariants hold (funds and weight conserved, no
// balance negative, reservations exact: see CheckInvariants, which do
// calls), and that a refused command changed nothing at all. It then checks
// determinism: replaying the journal from empty reproduces every recorded
// event and the state, and so does a snapshot taken half-way plus the tail.
func TestPropertyConservation(t *testing.T) {
	seeds := 12
	if testing.Short() {
		seeds = 3
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 99))
			h := newHarness(t)
			h.setup()
			var trades, fxTrades, listingTrades, auctionTrades, refused int
			var mid []byte
			midLog := 0
			for i := range 3000 {
				cmd := randomCommand(rng, h)
				var before []byte
				if i%7 == 0 {
					before = h.c.AppendSnapshot(nil)
				}
				r := h.do(cmd)
				if !r.Changed {
					refused++
					if before != nil && !bytes.Equal(before, h.c.AppendSnapshot(nil)) {
						t.Fatalf("command %d %+v did not change state by its result (%+v) but the state changed", i, cmd, r)
					}
				}
				ev := h.c.Events()
				for k := range ev.List {
					if e := &ev.List[k]; e.Kind == EvTrade {
						trades++
						tr := ev.Trade(e)
						if tr.BuyerFX.Rate != 0 || tr.SellerFX.Rate != 0 {
							fxTrades++
						}
						if tr.Listing != 0 {
							listingTrades++
						}
						if tr.Auction != 0 {
							auctionTrades++
						}
					}
				}
				if i == 1500 {
					mid, midLog = h.c.AppendSnapshot(nil), len(h.log)
				}
			}
			checkSizeHint(t, h.c)
			if trades < 20 || fxTrades < 3 || listingTrades < 1 || refused == 0 {
				t.Fatalf("weak stream: %d trades (%d FX-funded, %d listing takes), %d refused", trades, fxTrades, listingTrades, refused)
			}
			t.Logf("%d trades (%d FX-funded, %d listing takes, %d auction results), %d refused", trades, fxTrades, listingTrades, auctionTrades, refused)
			want := h.c.AppendSnapshot(nil)

			full := replay(t, New(h.c.lim), h.log)
			if got := full.AppendSnapshot(nil); !bytes.Equal(got, want) {
				t.Fatal("full replay state differs")
			}
			c2, err := Load(mid, h.c.lim)
			if err != nil {
				t.Fatal(err)
			}
			tail := replay(t, c2, h.log[midLog:])
			if got := tail.AppendSnapshot(nil); !bytes.Equal(got, want) {
				t.Fatal("snapshot + tail state differs")
			}
			if full.StateHash() != h.c.StateHash() {
				t.Fatal("hash differs")
			}
		})
	}
}

// replay re-applies journal records and checks each produced the recorded
// events.
func replay(t *testing.T, c *Core, log []rec) *Core {
	t.Helper()
	var cmd Command
	var recorded Events
	var res Result
	for _, r := range log {
		if err := DecodeRecord(r.payload, r.seq, r.ts, &cmd, &recorded); err != nil {
			t.Fatalf("seq %d: %v", r.seq, err)
		}
		c.Apply(r.seq, r.ts, &cmd, &res)
		if !res.Changed {
			t.Fatalf("seq %d: replayed command changed nothing", r.seq)
		}
		if got := AppendRecord(nil, &cmd, c.Events()); !bytes.Equal(got, r.payload) {
			t.Fatalf("seq %d: replay produced different events", r.seq)
		}
	}
	if err := c.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCodecRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	h := newHarness(t)
	h.setup()
	for range 2000 {
		h.do(randomCommand(rng, h))
	}
	var cmd Command
	var ev Events
	for _, r := range h.log {
		if err := DecodeRecord(r.payload, r.seq, r.ts, &cmd, &ev); err != nil {
			t.Fatal(err)
		}
		if got := AppendRecord(nil, &cmd, &ev); !bytes.Equal(got, r.payload) {
			t.Fatalf("seq %d: decode/encode differs", r.seq)
		}
		// Truncations never panic and always fail.
		for cut := 0; cut < len(r.payload); cut += 1 + len(r.payload)/5 {
			if err := DecodeRecord(r.payload[:cut], r.seq, r.ts, &cmd, &ev); err == nil {
				t.Fatalf("seq %d: truncated record decoded", r.seq)
			}
		}
	}
}

// randomListingCommand draws a listing command: posts (with or without
// named receipts, a minimum take and an expiry), takes, withdrawals and
// expiry sweeps.
func randomListingCommand(rng *rand.Rand, h *harness, p, inst int64, cloid string, side Side, price, qty int64) Command {
	now := int64(h.seq+1) * 1000
	switch rng.IntN(10) {
	case 0, 1, 2, 3:
		c := Command{Kind: CmdPostListing, Participant: p, Instrument: inst, ClientOrderID: "L" + cloid, Side: side, Price: price,
			Qty: qty, MinQty: rng.Int64N(qty + 1), Listing: &ListingSpec{Grade: "G", Warehouse: fmt.Sprint("W", rng.IntN(2))}}
		if side == orderbook.Sell && rng.IntN(2) == 0 {
			for range 1 + rng.IntN(2) {
				c.Listing.Receipts = append(c.Listing.Receipts, fmt.Sprint("R", rng.IntN(12)))
			}
		}
		if rng.IntN(2) == 0 {
			c.ValidUntil = now + rng.Int64N(200_000)
		}
		return c
	case 4, 5, 6:
		id := someListing(rng, h)
		if s, ok := h.c.lookup(id); ok && rng.IntN(2) == 0 {
			qty = 1 + rng.Int64N(max(h.c.orders.at(s).open, 1))
		}
		return Command{Kind: CmdTakeListing, Participant: p, ClientOrderID: "T" + cloid, OrderID: id, Qty: qty}
	case 7:
		return Command{Kind: CmdWithdrawListing, Participant: p, OrderID: someListing(rng, h)}
	case 8:
		if rng.IntN(3) == 0 {
			c := Command{Kind: CmdStartAuction, Participant: p, Instrument: inst, ClientOrderID: "A" + cloid, Price: price, Qty: qty,
				Auction: &AuctionSpec{MinIncrement: rng.Int64N(3), Starts: now - rng.Int64N(5000), Ends: now + rng.Int64N(300_000),
					Extension: rng.Int64N(50_000)}, Listing: &ListingSpec{}}
			if rng.IntN(2) == 0 {
				c.Listing.Receipts = []string{fmt.Sprint("R", rng.IntN(12))}
			}
			return c
		}
		id := 1 + rng.Int64N(h.c.nextOrderID)
		if n := len(h.c.auctions); n > 0 && rng.IntN(4) != 0 {
			a := h.c.orders.at(h.c.auctions[rng.IntN(n)])
			id = a.id
			price = max(a.price, a.auc.best) + rng.Int64N(4)
		}
		return Command{Kind: CmdAuctionBid, Participant: p, ClientOrderID: "B" + cloid, OrderID: id, Price: price, Qty: qty}
	}
	return Command{Kind: CmdExpireListings}
}

// someListing is mostly an open listing's id, sometimes any order id.
func someListing(rng *rand.Rand, h *harness) int64 {
	if n := len(h.c.listings); n > 0 && rng.IntN(4) != 0 {
		return h.c.orders.at(h.c.listings[rng.IntN(n)]).id
	}
	return 1 + rng.Int64N(h.c.nextOrderID)
}

// TestSnapshotParts: the two parts encoded side by side are the snapshot,
// byte for byte, all along a random command stream (run with -race: the
// two goroutines only read).
func TestSnapshotParts(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	h := newHarness(t)
	h.setup()
	var head, tail []byte
	for i := range 1500 {
		h.do(randomCommand(rng, h))
		if i%50 == 0 {
			head, tail = h.c.SnapshotParts(head[:0], tail[:0])
			if want := h.c.AppendSnapshot(nil); !bytes.Equal(append(slices.Clone(head), tail...), want) {
				t.Fatalf("after command %d the parts are not the snapshot", i)
			}
			if len(tail) == 0 {
				t.Fatal("an empty tail")
			}
		}
	}
}
