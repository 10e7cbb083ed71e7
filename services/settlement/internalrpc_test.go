package settlement_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	"github.com/bcx-exchange/bcx/services/listing"
	"github.com/bcx-exchange/bcx/services/settlement"
)

func recordLeg(c settlementv1.SettlementInternalServiceClient, id int64, weight, ref string) (*settlementv1.RecordReceiptsLegResponse, error) {
	return c.RecordReceiptsLeg(context.Background(), &settlementv1.RecordReceiptsLegRequest{TradeId: id, DeliveredWeight: weight, Reference: ref})
}

// TestRecordReceiptsLegRPC: the receipts service's goods leg through
// SettlementInternalService, behind the real interceptors. Only ROLE_SERVICE
// may call it; the leg settles the trade with the over/under-weight
// adjustment, a repeat changes nothing, a different leg is refused, and a
// leg may come before the trade is booked.
func TestRecordReceiptsLegRPC(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.start()
		svc := e.internal(e.tokens[svcID])
		e.core.PushTrades(monday10am, trade(1, "CF3128B-QD", memberA, memberB, cny("15235"), "25", 5, "", ""))
		e.waitBooked(1)

		// Nobody but a service: not the operator, not a party to the trade, not a bank.
		for name, token := range map[string]string{"operator": e.tokens[listing.DemoOperator], "seller": e.tokens[memberB],
			"buyer": e.tokens[memberA], "bank": e.tokens[bankA]} {
			if _, err := recordLeg(e.internal(token), 1, "25.123", "RT-1"); codeOf(err) != codes.PermissionDenied {
				t.Errorf("%s records a goods leg: %v, want PermissionDenied", name, err)
			}
		}
		_, err := recordLeg(e.internal(""), 1, "25.123", "RT-1")
		wantCode(t, err, codes.Unauthenticated)
		if ts := e.waitBooked(1); ts.ReceiptsTransferred || ts.Status != settlementv1.SettlementStatus_SETTLEMENT_STATUS_PARTIAL {
			t.Fatalf("refused callers changed the trade: %v", ts)
		}
		bal := func() [2]map[string]string { return [2]map[string]string{e.balances(memberA), e.balances(memberB)} }
		before := bal()

		// 25.123 t delivered against 25 t: the buyer pays 0.123 x 15,235 =
		// 1,873.905, rounded half away from zero.
		first := must[*settlementv1.RecordReceiptsLegResponse](t)(recordLeg(svc, 1, "25.123", "RT-1"))
		if ts := first.Settlement; ts.Status != settlementv1.SettlementStatus_SETTLEMENT_STATUS_SETTLED || !ts.ReceiptsTransferred ||
			ts.WeightAdjustment.Amount != "1873.91" {
			t.Fatalf("after the goods leg: %v", ts)
		}
		after := bal()
		if after[0]["member:M-ALPHA:available:CNY"] == before[0]["member:M-ALPHA:available:CNY"] {
			t.Fatalf("no adjustment booked: %v", after)
		}
		// The same leg again (a resend): the same answer, nothing booked.
		again := must[*settlementv1.RecordReceiptsLegResponse](t)(recordLeg(svc, 1, "25.123", "RT-1"))
		if !proto.Equal(again.Settlement, first.Settlement) {
			t.Fatalf("repeat answered %v, first %v", again.Settlement, first.Settlement)
		}
		if b := bal(); b[0]["member:M-ALPHA:available:CNY"] != after[0]["member:M-ALPHA:available:CNY"] ||
			b[1]["member:M-BETA:available:CNY"] != after[1]["member:M-BETA:available:CNY"] {
			t.Fatalf("repeat moved balances: %v -> %v", after, b)
		}
		// A different leg for the trade.
		_, err = recordLeg(svc, 1, "25.2", "RT-1")
		wantCode(t, err, codes.FailedPrecondition)
		_, err = recordLeg(svc, 1, "25.123", "RT-OTHER")
		wantCode(t, err, codes.FailedPrecondition)

		// Malformed legs.
		for _, c := range []struct {
			id          int64
			weight, ref string
		}{{0, "25", "R"}, {9, "-1", "R"}, {9, "abc", "R"}, {9, "25", ""}} {
			_, err := recordLeg(svc, c.id, c.weight, c.ref)
			wantCode(t, err, codes.InvalidArgument)
		}

		// Outside cotton's 2% tolerance on a booked trade: refused, nothing recorded.
		e.core.PushTrades(monday10am.Add(time.Minute), trade(2, "CF3128B-QD", memberA, memberB, cny("15240"), "25", 5, "", ""))
		e.waitBooked(2)
		_, err = recordLeg(svc, 2, "25.6", "RT-2")
		wantCode(t, err, codes.InvalidArgument)
		if ts := e.waitBooked(2); ts.ReceiptsTransferred {
			t.Fatalf("a refused leg was recorded: %v", ts)
		}

		// Before the trade is booked: accepted and kept (no settlement yet),
		// applied by the booking.
		for range 2 {
			early := must[*settlementv1.RecordReceiptsLegResponse](t)(recordLeg(svc, 3, "", "RT-3"))
			if early.Settlement != nil {
				t.Fatalf("early leg answered %v", early.Settlement)
			}
		}
		e.core.PushTrades(monday10am.Add(2*time.Minute), trade(3, "LCO-QD", memberB, memberA, cny("5600"), "10", 1, "", ""))
		if ts := e.waitBooked(3); ts.Status != settlementv1.SettlementStatus_SETTLEMENT_STATUS_SETTLED || ts.WeightAdjustment.Amount != "0.00" {
			t.Fatalf("trade 3 = %v", ts)
		}
		e.checkLedger()
	})
}

// TestReceiptsLegDuringBooking: a goods leg that arrives while its trade's
// booking transaction is open is applied, not left waiting for a booking
// that has already happened. (Under PostgreSQL's READ COMMITTED neither
// transaction sees the other's row unless they serialize.)
func TestReceiptsLegDuringBooking(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		svc := e.internal(e.tokens[svcID])
		type answer struct {
			resp *settlementv1.RecordReceiptsLegResponse
			err  error
		}
		answered := make(chan answer, 1)
		var once sync.Once
		settlement.SetTestHook(e.svc, func(int64) error {
			once.Do(func() {
				go func() {
					r, err := recordLeg(svc, 1, "24.9", "RT-1")
					answered <- answer{r, err}
				}()
				// The booking stays open long enough for the leg to commit,
				// if nothing holds it back.
				time.Sleep(300 * time.Millisecond)
			})
			return nil
		})
		e.start()
		e.core.PushTrades(monday10am, trade(1, "CF3128B-QD", memberA, memberB, cny("15235"), "25", 5, "", ""))
		var a answer
		select {
		case a = <-answered:
		case <-time.After(15 * time.Second):
			t.Fatal("the leg was not answered")
		}
		if a.err != nil {
			t.Fatal(a.err)
		}
		eventually(t, "trade 1 settled", func() bool {
			ts, err := e.settlement(e.operator, 1)
			return err == nil && ts.Status == settlementv1.SettlementStatus_SETTLEMENT_STATUS_SETTLED
		})
		// 0.1 t short at 15,235: the seller pays the buyer 1,523.50.
		if ts := e.waitBooked(1); ts.WeightAdjustment.Amount != "-1523.50" {
			t.Fatalf("trade 1 = %v", ts)
		}
		e.checkLedger()
	})
}
