package settlement_test

import (
	"context"
	"testing"
	"time"

	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	"github.com/bcx-exchange/bcx/services/settlement"
)

// TestFxPreferenceChangesKeepTheirOrder: the core ignores a preference
// change older than the one it holds, so a member's opt-out stands even
// when the opt-in before it is delivered last (its first attempt failed
// and the outbox retried it after the opt-out went through).
func TestFxPreferenceChangesKeepTheirOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.core.FailBefore["SetFundingCurrency"] = 1
		must[*settlementv1.SetFxPreferenceResponse](t)(e.alpha.SetFxPreference(ctx, &settlementv1.SetFxPreferenceRequest{
			IdempotencyKey: "in", TradeCurrency: "USD", FundingCurrency: "CNY"}))
		must[*settlementv1.SetFxPreferenceResponse](t)(e.alpha.SetFxPreference(ctx, &settlementv1.SetFxPreferenceRequest{
			IdempotencyKey: "out", TradeCurrency: "USD"}))
		// A repeated request is the same change: no third version.
		must[*settlementv1.SetFxPreferenceResponse](t)(e.alpha.SetFxPreference(ctx, &settlementv1.SetFxPreferenceRequest{
			IdempotencyKey: "out", TradeCurrency: "USD"}))
		e.start()
		e.outboxDone("fxpref/" + memberA + "/USD/v1")
		e.outboxDone("fxpref/" + memberA + "/USD/v2")
		if _, _, err := e.svc.OutboxStatus(ctx, "fxpref/"+memberA+"/USD/v3"); err == nil {
			t.Fatal("a repeated request made a third version")
		}
		var order []string
		for _, c := range e.core.Calls() {
			if c.Method == "SetFundingCurrency" {
				order = append(order, c.Key)
			}
		}
		if len(order) != 3 || order[1] != "fxpref/"+memberA+"/USD/v2" {
			t.Fatalf("delivery order %v: want v1 failed, v2, v1 again", order)
		}
		if f := e.core.FundingOf(memberA, "USD"); f != "" {
			t.Fatalf("the core funds USD from %q after the opt-out", f)
		}
	})
}

// TestForwardFXAtStart: rates and preferences recorded before settlement
// forwarded them (an upgrade) reach the core when the service starts; an
// expired rate does not.
func TestForwardFXAtStart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		day := time.Date(2026, 3, 2, 0, 0, 0, 0, shanghai)
		settlement.InsertLegacyFX(t, e.svc, memberA, "USD", "CNY", "7.1234", day, day.AddDate(0, 0, 1))
		settlement.InsertLegacyFX(t, e.svc, memberB, "USD", "CNY", "7.0", day.AddDate(0, 0, -2), day.AddDate(0, 0, -1))
		e.start()
		e.outboxDone("fxrate/1")
		e.outboxDone("fxpref/" + memberA + "/USD/v1")
		e.outboxDone("fxpref/" + memberB + "/USD/v1")
		if r := e.core.Rates(); len(r) != 1 || r[0].RateId != "fxrate/1" || r[0].RateNumber != 1 || r[0].Rate != "7.1234" {
			t.Fatalf("rates forwarded: %v", r)
		}
		if e.core.FundingOf(memberA, "USD") != "CNY" {
			t.Fatal("preference not forwarded")
		}
		// Starting again sends nothing new.
		n := len(e.core.Calls())
		stop := e.run(e.restart())
		time.Sleep(100 * time.Millisecond)
		stop()
		if len(e.core.Calls()) != n {
			t.Fatalf("a restart forwarded again: %v", e.core.Calls()[n:])
		}
	})
}

// TestWeightAdjustmentMovesCoreFunds: the cash settlement of an over- or
// under-weight moves the core's trading funds with the ledger, in the
// currency each member ends up paying or receiving: an FX-funded buyer is
// debited the converted CNY, never a USD amount it does not have.
func TestWeightAdjustmentMovesCoreFunds(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.start()
		day := time.Date(2026, 3, 2, 0, 0, 0, 0, shanghai)
		must[*settlementv1.PublishFxRateResponse](t)(e.operator.Admin.PublishFxRate(ctx, &settlementv1.PublishFxRateRequest{
			Rate: &settlementv1.FxRate{BaseCurrency: "USD", QuoteCurrency: "CNY", Rate: "7.1234",
				ValidFrom: tsAt(day), ValidUntil: tsAt(day.AddDate(0, 0, 1))}}))
		must[*settlementv1.SetFxPreferenceResponse](t)(e.alpha.SetFxPreference(ctx, &settlementv1.SetFxPreferenceRequest{
			TradeCurrency: "USD", FundingCurrency: "CNY"}))
		e.core.SetFunds(memberA, "CNY", "1000.00")
		t1 := trade(1, "TSR20-QD-B", memberA, memberB, usd("1751"), "10", 1, "", "")
		t1.BuyerFx = fxLeg(cny("124730.74"), "fxrate/1", "7.1234")
		e.core.PushTrades(monday10am, t1)
		e.waitBooked(1)
		// 10.050 t delivered on 10 t: 0.05 x 1,751 = 87.55 USD from buyer to
		// seller; the buyer pays 87.55 x 7.1234 = 623.653... rounded up: 623.66 CNY.
		ts := must[*settlementv1.TradeSettlement](t)(e.svc.RecordReceiptsLeg(ctx, settlement.ReceiptsLeg{TradeID: 1, DeliveredWeight: "10.05", Reference: "RT-1"}))
		if ts.WeightAdjustment.Amount != "87.55" {
			t.Fatalf("adjustment %v", ts.WeightAdjustment)
		}
		e.outboxDone("adjustment/1/core/" + memberA + "/CNY")
		e.outboxDone("adjustment/1/core/" + memberB + "/USD")
		if cny, usd := e.core.Funds(memberA, "CNY").String(), e.core.Funds(memberA, "USD").String(); cny != "376.34" || usd != "0" {
			t.Fatalf("buyer's core funds CNY %s USD %s", cny, usd)
		}
		if usd := e.core.Funds(memberB, "USD").String(); usd != "87.55" {
			t.Fatalf("seller's core funds USD %s", usd)
		}
		if b := e.balances(memberA); b["member:M-ALPHA:available:USD"] != "0.00" {
			t.Fatalf("buyer's ledger %v", b)
		}
		e.checkLedger()
	})
}
