package receipts_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	receiptsv1 "github.com/bcx-exchange/bcx/proto/bcx/receipts/v1"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/listing"
)

const racers = 8

// race runs fn on racers goroutines released at once and returns the errors.
func race(fn func(i int) error) []error {
	errs := make([]error, racers)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := 0; i < racers; i++ {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			errs[i] = fn(i)
		}()
	}
	start.Done()
	done.Wait()
	return errs
}

// oneWinner checks exactly one call succeeded and every other was refused
// with the given code.
func oneWinner(t *testing.T, what string, errs []error, loser codes.Code) {
	t.Helper()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case status.Code(err) != loser:
			t.Errorf("%s: a loser got %v, want %v", what, err, loser)
		}
	}
	if wins != 1 {
		t.Fatalf("%s: %d winners, want exactly 1 (%v)", what, wins, errs)
	}
}

func TestRaces(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		t.Run("double pledge", func(t *testing.T) {
			e.issue(cotton("R-1"))
			errs := race(func(i int) error {
				req := pledgeReq("R-1", []string{listing.DemoBank, "BANK-TWO"}[i%2])
				req.Pledge.LoanReference = fmt.Sprintf("LOAN-%d", i)
				_, err := e.alpha.PledgeReceipt(ctx, req)
				return err
			})
			oneWinner(t, "pledge", errs, codes.FailedPrecondition)
			if n := strings.Count(kinds(e.get(e.alpha, "R-1").History), "pledged"); n != 1 {
				t.Fatalf("%d pledge events", n)
			}
		})
		t.Run("double deposit", func(t *testing.T) {
			e.issue(cotton("R-2"))
			before := len(e.core.Credits())
			errs := race(func(int) error {
				_, err := e.alpha.DepositReceipt(ctx, &receiptsv1.DepositReceiptRequest{ReceiptNumber: "R-2"})
				return err
			})
			oneWinner(t, "deposit", errs, codes.FailedPrecondition)
			if n := len(e.core.Credits()) - before; n != 1 {
				t.Fatalf("the core got %d credits", n)
			}
		})
		t.Run("deposit against pledge", func(t *testing.T) {
			e.issue(cotton("R-3"))
			errs := race(func(i int) error {
				if i%2 == 0 {
					_, err := e.alpha.DepositReceipt(ctx, &receiptsv1.DepositReceiptRequest{ReceiptNumber: "R-3"})
					return err
				}
				_, err := e.alpha.PledgeReceipt(ctx, pledgeReq("R-3", listing.DemoBank))
				return err
			})
			oneWinner(t, "deposit or pledge", errs, codes.FailedPrecondition)
		})
		t.Run("same piece issued twice", func(t *testing.T) {
			errs := race(func(i int) error {
				r := cotton(fmt.Sprintf("R-DUP-%d", i))
				r.Pieces[2].Number = "SHARED-BALE-7"
				_, err := e.wh.IssueReceipt(ctx, &receiptsv1.IssueReceiptRequest{Receipt: r})
				return err
			})
			oneWinner(t, "issue", errs, codes.AlreadyExists)
			if n := e.count(`SELECT COUNT(*) FROM live_pieces WHERE piece_number = 'SHARED-BALE-7'`); n != 1 {
				t.Fatalf("piece claimed %d times", n)
			}
			if n := e.count(`SELECT COUNT(*) FROM receipts WHERE receipt_number LIKE 'R-DUP-%'`); n != 1 {
				t.Fatalf("%d receipts issued", n)
			}
		})
		t.Run("split against pledge", func(t *testing.T) {
			e.issue(cotton("R-4"))
			errs := race(func(i int) error {
				if i%2 == 0 {
					_, err := e.alpha.SplitReceipt(ctx, &receiptsv1.SplitReceiptRequest{ReceiptNumber: "R-4", Parts: []*receiptsv1.SplitPart{
						{PieceNumbers: []string{"R-4-B1"}}, {PieceNumbers: []string{"R-4-B2", "R-4-B3", "R-4-B4"}}}})
					return err
				}
				_, err := e.alpha.PledgeReceipt(ctx, pledgeReq("R-4", listing.DemoBank))
				return err
			})
			oneWinner(t, "split or pledge", errs, codes.FailedPrecondition)
		})
		t.Run("two consumers deliver each trade once", func(t *testing.T) {
			// A second registry process on the same database, consuming the same log.
			e.run(e.newSrv(e.core))
			const n = 12
			for i := 0; i < n; i++ {
				e.issue(cotton(fmt.Sprintf("R-T%02d", i), "5", "5", "5", "5"))
				e.deposit(e.alpha, fmt.Sprintf("R-T%02d", i))
			}
			root := e.root()
			var last int64
			for i := 0; i < n; i++ {
				for k, w := range []string{"5", "15"} { // a partial delivery, then the rest
					last = e.core.Trade(&tradingv1.TradeEvent{TradeId: int64(100 + 2*i + k), Symbol: "CF3128B-QD", Quantity: w,
						Price: &typev1.Money{Currency: "CNY", Amount: "15000"}, SellerParticipantId: listing.DemoMemberA,
						BuyerParticipantId: listing.DemoMemberB,
						Allocations:        []*tradingv1.ReceiptAllocation{{ReceiptNumber: fmt.Sprintf("R-T%02d", i), Weight: w}}})
				}
			}
			waitFor(t, "both consumers to catch up", func() bool { return e.position() >= last })
			if d := e.count(`SELECT COUNT(*) FROM deliveries WHERE trade_id >= 100`); d != 2*n {
				t.Fatalf("%d deliveries for %d trades", d, 2*n)
			}
			if b := e.count(`SELECT COUNT(*) FROM breaks`); b != 0 {
				t.Fatalf("%d breaks", b)
			}
			// One goods leg per trade, each acknowledged by settlement (both
			// registries forward; a leg they both send is a no-op there).
			if legs := e.count(`SELECT COUNT(*) FROM goods_legs WHERE trade_id >= 100`); legs != 2*n {
				t.Fatalf("%d goods legs for %d trades", legs, 2*n)
			}
			for i := 0; i < 2*n; i++ {
				e.waitAcked(int64(100 + i))
			}
			// Each trade added its events once: 2 for the partial delivery, 1 for the transfer.
			if got := e.root().Index - root.Index; got != 3*n {
				t.Fatalf("chain grew by %d events, want %d", got, 3*n)
			}
			for i := 0; i < n; i++ {
				h := kinds(e.get(e.beta, fmt.Sprintf("R-T%02d", i)).History)
				if h != "issued,deposited,delivered_part,transferred" {
					t.Fatalf("R-T%02d history %s", i, h)
				}
			}
		})
	})
}
