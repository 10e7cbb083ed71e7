package matching

import (
	"testing"

	"github.com/bcx-exchange/bcx/pkg/orderbook"
	"github.com/bcx-exchange/bcx/services/matching/core"
)

// TestRecycledMDBatchStartsEmpty: a batch the publisher gives back is
// reused with its lists' memory, never their contents.
func TestRecycledMDBatchStartsEmpty(t *testing.T) {
	s := &Service{mdFree: make(chan *mdBatch, 1)}
	b := s.newMDBatch()
	u := b.of(1)
	u.trades = append(u.trades, mdTrade{seq: 9, t: core.Trade{ID: 9}})
	u.market.Bids = append(u.market.Bids, orderbook.Level{Price: 5, Qty: 1, Orders: 1})
	u.market.LastPrice, u.market.Volume = 7, 3
	b.of(2).market.Asks = append(b.of(2).market.Asks, orderbook.Level{Price: 6, Qty: 2, Orders: 1})
	b.hist = []histItem{{seq: 9}}
	s.recycleMD(b)

	b2 := s.newMDBatch()
	if b2 != b {
		t.Fatal("the recycled batch was not reused")
	}
	if len(b2.ups) != 0 || b2.hist != nil {
		t.Fatalf("recycled batch holds %d updates and history %v", len(b2.ups), b2.hist)
	}
	u2 := b2.of(3)
	switch {
	case u2.number != 3:
		t.Fatalf("update for instrument %d, want 3", u2.number)
	case len(u2.trades) != 0 || cap(u2.trades) == 0:
		t.Fatalf("update's trades len %d cap %d: want empty, memory kept", len(u2.trades), cap(u2.trades))
	case len(u2.market.Bids) != 0 || cap(u2.market.Bids) == 0:
		t.Fatalf("update's bids len %d cap %d: want empty, memory kept", len(u2.market.Bids), cap(u2.market.Bids))
	case u2.market.LastPrice != 0 || u2.market.Volume != 0:
		t.Fatalf("update kept the earlier market: %+v", u2.market)
	}
	if u4 := b2.of(4); len(u4.market.Asks) != 0 || u4.number != 4 {
		t.Fatalf("second update: %+v", *u4)
	}
	if b2.of(3) != u2 || len(b2.ups) != 2 {
		t.Fatalf("of(3) again: want the same update, %d updates", len(b2.ups))
	}

	// A full free list drops the batch rather than block.
	s.recycleMD(&mdBatch{})
	s.recycleMD(&mdBatch{})
}
