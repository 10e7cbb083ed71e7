package receipts

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/bcx-exchange/bcx/pkg/money"
	"github.com/bcx-exchange/bcx/pkg/sqlstore/sqlstoretest"
	receiptsv1 "github.com/bcx-exchange/bcx/proto/bcx/receipts/v1"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/listing"
)

func TestChoosePieces(t *testing.T) {
	ps := func(ws ...int64) []piece {
		var out []piece
		for i, w := range ws {
			out = append(out, piece{Number: string(rune('a' + i)), Weight: w})
		}
		return out
	}
	for _, tc := range []struct {
		pieces []piece
		w      int64
		want   int
	}{
		{ps(5000, 5100, 4900), 10000, 2}, // 10.1 beats 5
		{ps(4900, 5050, 5000), 5000, 1},  // 4.9 beats 9.95
		{ps(5000, 5000, 5000), 7500, 2},  // a tie delivers the extra piece
		{ps(30000, 30000), 10000, 1},     // at least one piece moves
		{ps(5000, 5000), 10000, 2},       // exactly
		{ps(5000, 5000), 12000, 2},       // not enough: everything
		{ps(2000, 2000, 2000), 4900, 2},  // 4 (0.9 short) beats 6 (1.1 over)
		{ps(2000, 2000, 2000), 5100, 3},  // 6 (0.9 over) beats 4 (1.1 short)
		{ps(227, 229, 226, 230), 450, 2}, // cotton bales in kilograms
	} {
		if got := len(choosePieces(tc.pieces, tc.w)); got != tc.want {
			t.Errorf("choosePieces(%v, %d) took %d pieces, want %d", tc.pieces, tc.w, got, tc.want)
		}
	}
}

func TestWithinTolerance(t *testing.T) {
	for _, tc := range []struct {
		diff, allocated int64
		tol             string
		want            bool
	}{
		{100, 10000, "0.01", true}, {101, 10000, "0.01", false}, {-100, 10000, "0.01", true},
		{-101, 10000, "0.01", false}, {0, 10000, "0", true}, {1, 10000, "0", false}, {1, 1, "bad", false},
	} {
		if got := withinTolerance(tc.diff, tc.allocated, tc.tol); got != tc.want {
			t.Errorf("withinTolerance(%d, %d, %s) = %v", tc.diff, tc.allocated, tc.tol, got)
		}
	}
}

// A command's events share its sequence number, and a batch may end among
// them; the consumer therefore re-reads the stored position's sequence and
// recognises what it applied of it. Driven batch by batch here.
func TestConsumerResumesInsideASequence(t *testing.T) {
	for _, b := range sqlstoretest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			lstore, err := listing.NewStore(ctx, sqlstoretest.OpenSQLite(t))
			if err != nil {
				t.Fatal(err)
			}
			lsrv := listing.NewServer(lstore, money.NewRegistry(), listing.NewVerifier(lstore, time.Minute), logger)
			if _, err := listing.SeedDemo(ctx, lsrv, false); err != nil {
				t.Fatal(err)
			}
			s, err := New(ctx, Config{DB: b.Open(t), Listing: DirectListing(lsrv), Core: NewMemCore(), Logger: logger})
			if err != nil {
				t.Fatal(err)
			}
			// Three receipts in M-ALPHA's trading custody.
			err = s.store.run(ctx, s.now, func(tx *txn) error {
				for _, n := range []string{"A", "B", "C"} {
					r := &receipt{Number: n, Warehouse: "QD-CF01", Commodity: "CF", Grade: "3128B", Customs: typev1.CustomsStatus_CUSTOMS_STATUS_DUTY_PAID,
						Scale: 3, Tolerance: "0.02", Weight: 10000, Pieces: []piece{{n + "1", 5000}, {n + "2", 5000}}, Expiry: "2099-01-01",
						Holder: listing.DemoMemberA, Enc: receiptsv1.Encumbrance_ENCUMBRANCE_TRADING_CUSTODY, Status: receiptsv1.ReceiptStatus_RECEIPT_STATUS_LIVE,
						Commands: 1, Pool: 10000}
					tx.create(r)
					tx.claim(r.Pieces)
					tx.emit(r, kindIssued, "test", nil)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			trade := func(seq, id int64, receipt string) *tradingv1.SubscribeEventsResponse {
				return &tradingv1.SubscribeEventsResponse{Sequence: seq, Event: &tradingv1.SubscribeEventsResponse_Trade{Trade: &tradingv1.TradeEvent{
					TradeId: id, Quantity: "10", SellerParticipantId: listing.DemoMemberA, BuyerParticipantId: listing.DemoMemberB,
					Allocations: []*tradingv1.ReceiptAllocation{{ReceiptNumber: receipt, Weight: "10"}}}}}
			}
			holder := func(n string) string {
				var h string
				_ = s.store.run(ctx, s.now, func(tx *txn) error {
					r, err := tx.get(n)
					if err == nil {
						h = r.Holder
					}
					return err
				})
				return h
			}
			// Sequence 5 carries two trades; the first batch ends after the first.
			if err := s.applyBatch(ctx, []*tradingv1.SubscribeEventsResponse{trade(5, 1, "A")}); err != nil {
				t.Fatal(err)
			}
			// The resubscription from 5 brings both again, then sequence 6.
			if err := s.applyBatch(ctx, []*tradingv1.SubscribeEventsResponse{trade(5, 1, "A"), trade(5, 2, "B"), trade(6, 3, "C")}); err != nil {
				t.Fatal(err)
			}
			if a, b, c := holder("A"), holder("B"), holder("C"); a != listing.DemoMemberB || b != listing.DemoMemberB || c != listing.DemoMemberB {
				t.Fatalf("holders %s %s %s", a, b, c)
			}
			// An event before the position is a redelivery: skipped even if its
			// trade were new.
			if err := s.applyBatch(ctx, []*tradingv1.SubscribeEventsResponse{trade(4, 9, "A")}); err != nil {
				t.Fatal(err)
			}
			var deliveries, breaks int
			var pos int64
			_ = s.store.run(ctx, s.now, func(tx *txn) error {
				_ = tx.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM deliveries`).Scan(&deliveries)
				_ = tx.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM breaks`).Scan(&breaks)
				pos, err = tx.consumerPosition()
				return err
			})
			if deliveries != 3 || breaks != 0 || pos != 6 {
				t.Fatalf("deliveries %d, breaks %d, position %d", deliveries, breaks, pos)
			}
			// The position is the highest sequence applied, whatever the order
			// a redelivering core sent the batch in.
			if err := s.applyBatch(ctx, []*tradingv1.SubscribeEventsResponse{trade(8, 10, "A"), trade(7, 11, "B")}); err != nil {
				t.Fatal(err)
			}
			_ = s.store.run(ctx, s.now, func(tx *txn) error { pos, err = tx.consumerPosition(); return err })
			if pos != 8 {
				t.Fatalf("position %d after sequences 8 and 7, want 8", pos)
			}
		})
	}
}

func TestVerifyMainUsage(t *testing.T) {
	var out strings.Builder
	for _, args := range [][]string{{}, {"--root"}, {"a", "b", "--root", "x"}, {"--bogus", "f"}} {
		if err := VerifyMain(args, strings.NewReader(""), &out); err == nil {
			t.Errorf("VerifyMain(%q) accepted", args)
		}
	}
	if err := VerifyMain([]string{"-", "--root", strings.Repeat("0", 64)}, strings.NewReader("{not json"), &out); err == nil ||
		!strings.Contains(err.Error(), "not a VerifyReceiptResponse") {
		t.Errorf("bad JSON: %v", err)
	}
}
