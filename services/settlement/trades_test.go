package settlement_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	tspb "google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bcx-exchange/bcx/pkg/money"
	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/listing"
	"github.com/bcx-exchange/bcx/services/settlement"
	"github.com/bcx-exchange/bcx/services/settlement/fees"
)

// trade builds a trade event the way the core reports it: fees computed
// from the schedule by the same function the core uses.
func trade(id int64, symbol, buyer, seller string, price *typev1.Money, qty string, lots int64, bf, sf string) *tradingv1.TradeEvent {
	t := &tradingv1.TradeEvent{TradeId: id, Symbol: symbol, Price: price, Quantity: qty, Lots: lots,
		BuyerParticipantId: buyer, SellerParticipantId: seller}
	if bf != "" {
		t.BuyerFee = &typev1.Money{Currency: price.Currency, Amount: bf}
	}
	if sf != "" {
		t.SellerFee = &typev1.Money{Currency: price.Currency, Amount: sf}
	}
	return t
}

func (e *env) settlement(c client, id int64) (*settlementv1.TradeSettlement, error) {
	resp, err := c.GetTradeSettlement(context.Background(), &settlementv1.GetTradeSettlementRequest{TradeId: id})
	return resp.GetSettlement(), err
}

func (e *env) waitBooked(id int64) *settlementv1.TradeSettlement {
	e.t.Helper()
	var ts *settlementv1.TradeSettlement
	eventually(e.t, fmt.Sprintf("trade %d booked", id), func() bool {
		var err error
		ts, err = e.settlement(e.operator, id)
		return err == nil
	})
	return ts
}

func TestTradeGross(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.start()
		e.deposit(e.bankA, "DEP-A", memberA, cny("1000000.00"))

		// Fees: buyer 2 bp with a 5 CNY minimum, seller 3.50 CNY a lot.
		schedule := &settlementv1.FeeSchedule{Symbol: "CF3128B-QD",
			Buyer:  &typev1.FeeRule{Basis: typev1.FeeBasis_FEE_BASIS_RATE, Value: "0.0002", Minimum: cny("5.00")},
			Seller: &typev1.FeeRule{Basis: typev1.FeeBasis_FEE_BASIS_PER_LOT, Value: "3.50"}}
		must[*settlementv1.SetFeeScheduleResponse](t)(e.operator.Admin.SetFeeSchedule(ctx, &settlementv1.SetFeeScheduleRequest{
			IdempotencyKey: "fees-1", Schedule: schedule}))
		must[*settlementv1.SetFeeScheduleResponse](t)(e.operator.Admin.SetFeeSchedule(ctx, &settlementv1.SetFeeScheduleRequest{
			IdempotencyKey: "fees-1", Schedule: schedule}))
		e.outboxDone("fee-schedule/CF3128B-QD/1")
		if applied, received := e.core.Applied("fee-schedule/CF3128B-QD/1"); applied != 1 || received != 1 {
			t.Fatalf("fee schedule reached the core %d/%d times", applied, received)
		}
		if got := e.core.Schedules["CF3128B-QD"]; !proto.Equal(got.Buyer, schedule.Buyer) || !proto.Equal(got.Seller, schedule.Seller) {
			t.Fatalf("core schedule = %v", got)
		}
		got := must[*settlementv1.GetFeeScheduleResponse](t)(e.alpha.Admin.GetFeeSchedule(ctx, &settlementv1.GetFeeScheduleRequest{Symbol: "CF3128B-QD"}))
		if !proto.Equal(got.Schedule, schedule) {
			t.Fatalf("GetFeeSchedule = %v", got)
		}

		// What the core computes for 5 lots (25 t) at 15,235 CNY/t.
		cnyCur := money.Currency{Code: "CNY", Exponent: 2}
		buyerRule, _, _ := fees.ParseRule(schedule.Buyer, cnyCur)
		sellerRule, _, _ := fees.ParseRule(schedule.Seller, cnyCur)
		bf, _ := buyerRule.Fee(380_875_00, 5)
		sf, _ := sellerRule.Fee(380_875_00, 5)
		if bf != 76_18 || sf != 17_50 {
			t.Fatalf("fees %d %d", bf, sf)
		}
		e.core.PushTrades(monday10am, trade(1, "CF3128B-QD", memberA, memberB, cny("15235"), "25", 5, cnyCur.FormatAmount(bf), cnyCur.FormatAmount(sf)))
		ts := e.waitBooked(1)
		want := &settlementv1.TradeSettlement{TradeId: 1, Symbol: "CF3128B-QD", BuyerParticipantId: memberA, SellerParticipantId: memberB,
			Price: cny("15235"), Quantity: "25", Principal: cny("380875.00"), BuyerFee: cny("76.18"), SellerFee: cny("17.50"),
			CashSettled: true, Status: settlementv1.SettlementStatus_SETTLEMENT_STATUS_PARTIAL, WeightAdjustment: cny("0.00")}
		if diff := cmp.Diff(want, ts, cmpProto()); diff != "" {
			t.Fatalf("settlement (-want, +got):\n%s", diff)
		}
		if b := e.balances(memberA); b["member:M-ALPHA:available:CNY"] != "619048.82" {
			t.Fatalf("buyer = %v", b)
		}
		if b := e.balances(memberB); b["member:M-BETA:available:CNY"] != "380857.50" {
			t.Fatalf("seller = %v", b)
		}
		if b := e.balances(""); b["exchange:fee_income:CNY"] != "93.68" {
			t.Fatalf("exchange = %v", b)
		}
		// A member who is not a party sees nothing, like a trade that does not exist.
		_, errOther := e.settlement(e.gamma, 1)
		_, errNone := e.settlement(e.gamma, 99)
		wantCode(t, errOther, codes.NotFound)
		if stripID(errOther.Error(), "1") != stripID(errNone.Error(), "99") {
			t.Fatalf("%q vs %q", errOther, errNone)
		}
		list := must[*settlementv1.ListTradeSettlementsResponse](t)(e.beta.ListTradeSettlements(ctx, &settlementv1.ListTradeSettlementsRequest{
			Status: settlementv1.SettlementStatus_SETTLEMENT_STATUS_PARTIAL}))
		if len(list.Settlements) != 1 || list.Settlements[0].TradeId != 1 {
			t.Fatalf("beta's partial settlements = %v", list)
		}
		_, err := e.beta.ListTradeSettlements(ctx, &settlementv1.ListTradeSettlementsRequest{ParticipantId: memberA})
		wantCode(t, err, codes.NotFound)

		// The receipts leg: 25.123 t delivered against 25 t traded. 0.123 t x
		// 15,235 = 1,873.905 CNY, rounded half away from zero: the buyer pays
		// the seller 1,873.91.
		leg := settlement.ReceiptsLeg{TradeID: 1, DeliveredWeight: "25.123", Reference: "RT-1"}
		ts = must[*settlementv1.TradeSettlement](t)(e.svc.RecordReceiptsLeg(ctx, leg))
		if ts.Status != settlementv1.SettlementStatus_SETTLEMENT_STATUS_SETTLED || ts.WeightAdjustment.Amount != "1873.91" {
			t.Fatalf("after receipts leg: %v", ts)
		}
		must[*settlementv1.TradeSettlement](t)(e.svc.RecordReceiptsLeg(ctx, leg)) // again: no-op
		leg.DeliveredWeight = "25.2"
		_, err = e.svc.RecordReceiptsLeg(ctx, leg)
		wantCode(t, err, codes.FailedPrecondition)
		if b := e.balances(memberA); b["member:M-ALPHA:available:CNY"] != "617174.91" {
			t.Fatalf("buyer after adjustment = %v", b)
		}
		if b := e.balances(memberB); b["member:M-BETA:available:CNY"] != "382731.41" {
			t.Fatalf("seller after adjustment = %v", b)
		}

		// Beyond cotton's 2% tolerance (0.5 t on 25 t): refused, nothing recorded.
		e.core.PushTrades(monday10am.Add(time.Minute), trade(2, "CF3128B-QD", memberA, memberB, cny("15240"), "25", 5, "76.20", "17.50"))
		e.waitBooked(2)
		_, err = e.svc.RecordReceiptsLeg(ctx, settlement.ReceiptsLeg{TradeID: 2, DeliveredWeight: "25.6", Reference: "RT-2"})
		wantCode(t, err, codes.InvalidArgument)
		must[*settlementv1.TradeSettlement](t)(e.svc.RecordReceiptsLeg(ctx, settlement.ReceiptsLeg{TradeID: 2, DeliveredWeight: "24.5", Reference: "RT-2"}))

		// The receipts leg may arrive before the trade is booked.
		if ts, err := e.svc.RecordReceiptsLeg(ctx, settlement.ReceiptsLeg{TradeID: 3, Reference: "RT-3"}); err != nil || ts != nil {
			t.Fatalf("early receipts leg = %v, %v", ts, err)
		}
		e.core.PushTrades(monday10am.Add(2*time.Minute), trade(3, "LCO-QD", memberB, memberA, cny("5600"), "10", 1, "", ""))
		if ts := e.waitBooked(3); ts.Status != settlementv1.SettlementStatus_SETTLEMENT_STATUS_SETTLED {
			t.Fatalf("trade 3 = %v", ts)
		}

		// A trade between members of different banks: the payer's bank sends
		// the seller's proceeds to the seller's bank.
		stream := must[settlementv1.BankService_StreamInstructionsClient](t)(e.bankA.Bank.StreamInstructions(ctx, &settlementv1.StreamInstructionsRequest{}))
		e.core.PushTrades(monday10am.Add(3*time.Minute), trade(4, "LCO-QD", memberA, memberC, cny("5600"), "20", 2, "11.20", "11.20"))
		e.waitBooked(4)
		in := must[*settlementv1.StreamInstructionsResponse](t)(stream.Recv()).Instruction
		if in.Kind != settlementv1.InstructionKind_INSTRUCTION_KIND_INTERBANK_TRANSFER || in.Amount.Amount != "111988.80" ||
			in.DebitAccount != "bank:BANK-QDCB:settlement:CNY" || in.CreditAccount != "bank:BANK-SHCB:settlement:CNY" {
			t.Fatalf("interbank instruction = %v", in)
		}
		must[*settlementv1.ConfirmInstructionResponse](t)(e.bankA.Bank.ConfirmInstruction(ctx, &settlementv1.ConfirmInstructionRequest{
			InstructionId: in.InstructionId, BankReference: "QDCB-IB-1"}))
		if b := e.balances(""); b["bank:BANK-SHCB:settlement:CNY"] != "111988.80" || b["bank:BANK-QDCB:settlement:CNY"] != "888011.20" {
			t.Fatalf("bank accounts after the transfer = %v", b)
		}

		// The buyer's statement: opening + postings = closing = its balances.
		st := must[*settlementv1.GetStatementResponse](t)(e.alpha.GetStatement(ctx, &settlementv1.GetStatementRequest{Currency: "CNY",
			FromDate: "2026-03-02", ToDate: "2026-03-02"}))
		if st.OpeningBalance.Amount != "0.00" || st.ClosingBalance.Amount != e.balances(memberA)["member:M-ALPHA:available:CNY"] {
			t.Fatalf("statement %v, balances %v", st, e.balances(memberA))
		}
		kinds := map[string]int{}
		for _, p := range st.Postings {
			kinds[p.Kind]++
		}
		if kinds["deposit"] != 1 || kinds["trade"] != 4 || kinds["fee"] != 3 || kinds["adjustment"] != 2 {
			t.Fatalf("statement postings by kind = %v", kinds)
		}
		later := must[*settlementv1.GetStatementResponse](t)(e.alpha.GetStatement(ctx, &settlementv1.GetStatementRequest{Currency: "CNY",
			FromDate: "2026-03-03", ToDate: "2026-03-04"}))
		if later.OpeningBalance.Amount != st.ClosingBalance.Amount || len(later.Postings) != 0 {
			t.Fatalf("next days' statement = %v", later)
		}
		// Paging through the postings gives them all, once.
		var all []int64
		for token := ""; ; {
			p := must[*settlementv1.ListPostingsResponse](t)(e.alpha.ListPostings(ctx, &settlementv1.ListPostingsRequest{Currency: "CNY", PageSize: 3, PageToken: token}))
			for _, x := range p.Postings {
				all = append(all, x.PostingId)
			}
			if token = p.NextPageToken; token == "" {
				break
			}
		}
		if len(all) != len(st.Postings) {
			t.Fatalf("paged %d postings, statement has %d", len(all), len(st.Postings))
		}
		e.checkLedger()
	})
}

func tsAt(t time.Time) *tspb.Timestamp { return tspb.New(t) }

func cmpProto() cmp.Option {
	return cmp.Comparer(func(a, b proto.Message) bool { return proto.Equal(a, b) })
}

// TestExactlyOnce feeds trades — several per sequence number — through
// crashes between booking and commit, restarts, cut streams and a core that
// redelivers its whole log, and checks every trade is booked exactly once.
func TestExactlyOnce(t *testing.T) {
	smallBatches := func(c *settlement.Config) { c.EventBatch = 4 }
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		const n = 60
		id := int64(0)
		push := func(k int) {
			var ts []*tradingv1.TradeEvent
			for i := 0; i < k; i++ {
				id++
				ts = append(ts, trade(id, "LCO-QD", memberA, memberB, cny("5600"), "10", 1, "1.00", "2.00"))
			}
			e.core.PushTrades(monday10am.Add(time.Duration(id)*time.Second), ts...)
		}
		// Sequences with 1, 2 and 3 trades each.
		for id < n/2 {
			push(int(id%3) + 1)
		}
		// First process: books some batches, then "crashes" inside a
		// transaction after writing its postings, before commit.
		first := e.restart()
		settlement.SetTestHook(first, func(seq int64) error {
			if seq > 10 {
				return fmt.Errorf("crash at sequence %d", seq)
			}
			return nil
		})
		stop := e.run(first)
		eventually(t, "first process booked up to the crash", func() bool {
			seq, _, _ := first.Position(ctx)
			return seq >= 5
		})
		time.Sleep(50 * time.Millisecond)
		stop()
		seq, _, err := first.Position(ctx)
		if err != nil || seq > 10 {
			t.Fatalf("position after crash = %d, %v", seq, err)
		}
		// Second process: the core redelivers everything from the start and
		// cuts the stream now and then; more trades arrive meanwhile.
		e.core.RedeliverFromStart = true
		second := e.restart()
		e.run(second)
		for round := 0; id < n; round++ {
			for i := 0; i < 5 && id < n; i++ {
				push(int(id%3) + 1)
			}
			if round%2 == 0 {
				before := e.core.Streams()
				e.core.Cut()
				eventually(t, "the consumer resubscribes", func() bool { return e.core.Streams() > before })
			}
		}
		eventually(t, "all trades booked", func() bool {
			r, err := e.operator.ListTradeSettlements(ctx, &settlementv1.ListTradeSettlementsRequest{PageSize: 500})
			return err == nil && len(r.Settlements) == n
		})
		time.Sleep(100 * time.Millisecond) // let redelivered events arrive: they must change nothing
		e.core.Cut()
		time.Sleep(100 * time.Millisecond)
		if b := e.balances(memberA); b["member:M-ALPHA:available:CNY"] != fmt.Sprintf("%d.00", -n*56001) {
			t.Fatalf("buyer = %v, want %d trades of 56,001.00", b, n)
		}
		if b := e.balances(""); b["exchange:fee_income:CNY"] != fmt.Sprintf("%d.00", n*3) {
			t.Fatalf("fees = %v", b)
		}
		if tot := e.checkLedger(); tot.Transactions != n {
			t.Fatalf("%d ledger transactions, want %d", tot.Transactions, n)
		}
	}, smallBatches)
}

// TestParkedEvent: a malformed trade is parked, and the trades after it are
// booked.
func TestParkedEvent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.start()
		e.core.PushTrades(monday10am, trade(1, "NO-SUCH", memberA, memberB, cny("1"), "1", 1, "", ""),
			trade(2, "LCO-QD", memberA, memberB, cny("5600.0001"), "10", 1, "", ""),
			trade(3, "LCO-QD", memberA, memberB, usd("5600"), "10", 1, "", ""),
			trade(4, "LCO-QD", memberA, memberB, cny("5600"), "15", 0, "", ""))
		e.core.PushTrades(monday10am, trade(5, "LCO-QD", memberA, memberB, cny("5600"), "10", 1, "", ""))
		e.waitBooked(5)
		for _, id := range []int64{1, 2, 3, 4} {
			_, err := e.settlement(e.operator, id)
			wantCode(t, err, codes.NotFound)
		}
		if n := settlement.ParkedEvents(t, e.svc); n != 4 {
			t.Fatalf("%d parked events, want 4", n)
		}
		e.checkLedger()
	})
}

// TestNettingT1: trades on a T+1 instrument wait in pending settlement; the
// batch nets them per member and currency and instructs the interbank
// movement.
func TestNettingT1(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		spec := proto.Clone(listing.DemoInstruments()["LCO-QD"]).(*listingv1.InstrumentSpec)
		spec.SettlementCycle = listingv1.SettlementCycle_SETTLEMENT_CYCLE_T1_NET
		must[*listingv1.CreateInstrumentResponse](t)(e.opListing.CreateInstrument(ctx, &listingv1.CreateInstrumentRequest{Symbol: "LCO-QD-T1", Spec: spec}))
		e.start()
		// alpha (bank A) buys 10 t at 5,600 from gamma (bank B): alpha -56,010, gamma +55,990 (fees 10 and 10)
		// gamma buys 20 t at 5,601 from beta (bank A):  gamma -112,040.00 (fee 20), beta +112,000.00 (fee 20)
		// beta buys 10 t at 5,599 from alpha:           beta -55,995 (fee 5), alpha +55,985 (fee 5)
		e.core.PushTrades(monday10am, trade(1, "LCO-QD-T1", memberA, memberC, cny("5600"), "10", 1, "10.00", "10.00"),
			trade(2, "LCO-QD-T1", memberC, memberB, cny("5601"), "20", 2, "20.00", "20.00"))
		e.core.PushTrades(monday10am.Add(time.Hour), trade(3, "LCO-QD-T1", memberB, memberA, cny("5599"), "10", 1, "5.00", "5.00"))
		ts := e.waitBooked(3)
		if ts.CashSettled || ts.Status != settlementv1.SettlementStatus_SETTLEMENT_STATUS_PENDING {
			t.Fatalf("T+1 trade before the batch = %v", ts)
		}
		if b := e.balances(memberC); b["member:M-GAMMA:pending_settlement:CNY"] != "-56050.00" {
			t.Fatalf("gamma pending = %v", b)
		}
		stream := must[settlementv1.BankService_StreamInstructionsClient](t)(e.bankB.Bank.StreamInstructions(ctx, &settlementv1.StreamInstructionsRequest{}))
		resp := must[*settlementv1.RunSettlementCycleResponse](t)(e.operator.Admin.RunSettlementCycle(ctx, &settlementv1.RunSettlementCycleRequest{
			IdempotencyKey: "cycle-2026-03-02", BusinessDate: "2026-03-02"}))
		if resp.TradesSettled != 3 || resp.InstructionsCreated != 1 {
			t.Fatalf("cycle = %v", resp)
		}
		again := must[*settlementv1.RunSettlementCycleResponse](t)(e.operator.Admin.RunSettlementCycle(ctx, &settlementv1.RunSettlementCycleRequest{
			IdempotencyKey: "cycle-2026-03-02", BusinessDate: "2026-03-02"}))
		if !proto.Equal(again, resp) {
			t.Fatalf("repeated cycle = %v", again)
		}
		if r := must[*settlementv1.RunSettlementCycleResponse](t)(e.operator.Admin.RunSettlementCycle(ctx, &settlementv1.RunSettlementCycleRequest{
			BusinessDate: "2026-03-02"})); r.TradesSettled != 0 || r.InstructionsCreated != 0 {
			t.Fatalf("a second cycle settled again: %v", r)
		}
		want := map[string]string{memberA: "-25.00", memberB: "56005.00", memberC: "-56050.00"}
		for m, net := range want {
			b := e.balances(m)
			if b["member:"+m+":available:CNY"] != net || b["member:"+m+":pending_settlement:CNY"] != "0.00" {
				t.Fatalf("%s after the batch = %v, want available %s", m, b, net)
			}
		}
		// Bank B's members owe 56,050.00 net; bank A's members gain 55,980.00:
		// bank B pays bank A that much, the 70.00 of fees stay at bank B.
		in := must[*settlementv1.StreamInstructionsResponse](t)(stream.Recv()).Instruction
		if in.Kind != settlementv1.InstructionKind_INSTRUCTION_KIND_INTERBANK_TRANSFER || in.Amount.Amount != "55980.00" ||
			in.DebitAccount != "bank:BANK-SHCB:settlement:CNY" || in.CreditAccount != "bank:BANK-QDCB:settlement:CNY" {
			t.Fatalf("instruction = %v", in)
		}
		if ts := e.waitBooked(3); !ts.CashSettled {
			t.Fatalf("after the batch = %v", ts)
		}
		e.checkLedger()
	})
}

// TestFX: a member settles USD trades from CNY at the published rate, the
// conversion rounded in the exchange's favour, with an FX instruction for its
// bank and the core's funds moved to match.
// fxLeg is a trade side's conversion as the core reports it.
func fxLeg(amount *typev1.Money, rateID, rate string) *tradingv1.FxConversion {
	return &tradingv1.FxConversion{Amount: amount, RateId: rateID, BaseCurrency: "USD", QuoteCurrency: "CNY", Rate: rate}
}

// TestFX: rates and members' funding preferences are forwarded to the
// core, which converts FX-funded orders itself; settlement books exactly
// the conversion each trade side carries, through the FX position
// accounts, and sends the FX instruction to the member's bank, without
// moving the core's funds again.
func TestFX(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.start()
		day := time.Date(2026, 3, 2, 0, 0, 0, 0, shanghai)
		must[*settlementv1.PublishFxRateResponse](t)(e.operator.Admin.PublishFxRate(ctx, &settlementv1.PublishFxRateRequest{
			Rate: &settlementv1.FxRate{BaseCurrency: "USD", QuoteCurrency: "CNY", Rate: "7.1234",
				ValidFrom: tsAt(day), ValidUntil: tsAt(day.AddDate(0, 0, 1))}}))
		// A later, overlapping rate from the bank wins from its start.
		must[*settlementv1.PublishFxRateResponse](t)(e.bankA.Admin.PublishFxRate(ctx, &settlementv1.PublishFxRateRequest{
			Rate: &settlementv1.FxRate{BaseCurrency: "USD", QuoteCurrency: "CNY", Rate: "7.2",
				ValidFrom: tsAt(day.Add(15 * time.Hour)), ValidUntil: tsAt(day.AddDate(0, 0, 1))}}))
		rates := must[*settlementv1.ListFxRatesResponse](t)(e.alpha.Admin.ListFxRates(ctx, &settlementv1.ListFxRatesRequest{At: tsAt(monday10am)}))
		if len(rates.Rates) != 1 || rates.Rates[0].Rate != "7.1234" || rates.Rates[0].Source != "operator" {
			t.Fatalf("rates at 10:00 = %v", rates)
		}
		rates = must[*settlementv1.ListFxRatesResponse](t)(e.alpha.Admin.ListFxRates(ctx, &settlementv1.ListFxRatesRequest{At: tsAt(day.Add(16 * time.Hour))}))
		if len(rates.Rates) != 1 || rates.Rates[0].Rate != "7.2" || rates.Rates[0].Source != bankA {
			t.Fatalf("rates at 16:00 = %v", rates)
		}
		// Both rates reach the core, once each, under their ids.
		e.outboxDone("fxrate/1")
		e.outboxDone("fxrate/2")
		if r := e.core.Rates(); len(r) != 2 || r[0].RateId != "fxrate/1" || r[0].Rate != "7.1234" || r[1].Rate != "7.2" ||
			!r[0].ValidFrom.AsTime().Equal(day) {
			t.Fatalf("rates in the core: %v", r)
		}
		_, err := e.alpha.SetFxPreference(ctx, &settlementv1.SetFxPreferenceRequest{TradeCurrency: "USD", FundingCurrency: "USD"})
		wantCode(t, err, codes.InvalidArgument)
		must[*settlementv1.SetFxPreferenceResponse](t)(e.alpha.SetFxPreference(ctx, &settlementv1.SetFxPreferenceRequest{TradeCurrency: "USD", FundingCurrency: "CNY"}))
		eventually(t, "preference forwarded", func() bool { return e.core.FundingOf(memberA, "USD") == "CNY" })

		e.deposit(e.bankA, "DEP-CNY", memberA, cny("200000.00"))
		e.outboxDone("deposit/" + bankA + "/DEP-CNY")
		stream := must[settlementv1.BankService_StreamInstructionsClient](t)(e.bankA.Bank.StreamInstructions(ctx, &settlementv1.StreamInstructionsRequest{}))
		// 10 t of TSR20 at 1,751 USD/t = 17,510.00 USD; x 7.1234 = 124,730.734 CNY: the core charged alpha 124,730.74.
		t1 := trade(1, "TSR20-QD-B", memberA, memberB, usd("1751"), "10", 1, "", "")
		t1.BuyerFx = fxLeg(cny("124730.74"), "fxrate/1", "7.1234")
		callsBefore := len(e.core.Calls())
		e.core.PushTrades(monday10am, t1)
		e.waitBooked(1)
		if b := e.balances(memberA); b["member:M-ALPHA:available:CNY"] != "75269.26" || b["member:M-ALPHA:available:USD"] != "0.00" {
			t.Fatalf("alpha = %v", b)
		}
		if b := e.balances(memberB); b["member:M-BETA:available:USD"] != "17510.00" {
			t.Fatalf("beta = %v", b)
		}
		if b := e.balances(""); b["exchange:fx_position:CNY"] != "124730.74" || b["exchange:fx_position:USD"] != "-17510.00" {
			t.Fatalf("exchange = %v", b)
		}
		in := must[*settlementv1.StreamInstructionsResponse](t)(stream.Recv()).Instruction
		if in.Kind != settlementv1.InstructionKind_INSTRUCTION_KIND_FX_CONVERSION || in.Amount.Amount != "124730.74" || in.Amount.Currency != "CNY" ||
			in.CounterAmount.Amount != "17510.00" || in.CounterAmount.Currency != "USD" ||
			in.DebitAccount != "bank:BANK-QDCB:settlement:CNY" || in.CreditAccount != "bank:BANK-QDCB:settlement:USD" {
			t.Fatalf("FX instruction = %v", in)
		}
		// The core already moved alpha's funds: nothing is sent to it.
		if calls := e.core.Calls()[callsBefore:]; len(calls) != 0 {
			t.Fatalf("booking an FX-funded trade sent the core %v", calls)
		}
		// The bank converts: the FX positions close, the cash changes currency.
		must[*settlementv1.ConfirmInstructionResponse](t)(e.bankA.Bank.ConfirmInstruction(ctx, &settlementv1.ConfirmInstructionRequest{
			InstructionId: in.InstructionId, BankReference: "QDCB-FX-1"}))
		if b := e.balances(""); b["exchange:fx_position:CNY"] != "0.00" || b["exchange:fx_position:USD"] != "0.00" ||
			b["bank:BANK-QDCB:settlement:CNY"] != "75269.26" || b["bank:BANK-QDCB:settlement:USD"] != "17510.00" {
			t.Fatalf("exchange after conversion = %v", b)
		}
		// A trade the core funded in USD (no FX leg: the order came before
		// the preference, or had no rate) is booked in USD, whatever the
		// preference says now.
		e.core.PushTrades(day.AddDate(0, 0, 2), trade(2, "TSR20-QD-B", memberA, memberB, usd("1750"), "10", 1, "", ""))
		e.waitBooked(2)
		if b := e.balances(memberA); b["member:M-ALPHA:available:USD"] != "-17500.00" || b["member:M-ALPHA:available:CNY"] != "75269.26" {
			t.Fatalf("alpha after a USD-funded trade = %v", b)
		}

		// An FX-funded seller receives the conversion rounded down:
		// 17,510.00 USD x 7.1234 = 124,730.734 CNY, gamma gets 124,730.73; its
		// bank (B) converts, and bank A sends bank B the buyer's dollars.
		streamB := must[settlementv1.BankService_StreamInstructionsClient](t)(e.bankB.Bank.StreamInstructions(ctx, &settlementv1.StreamInstructionsRequest{}))
		t3 := trade(3, "TSR20-QD-B", memberB, memberC, usd("1751"), "10", 1, "", "")
		t3.SellerFx = fxLeg(cny("124730.73"), "fxrate/1", "7.1234")
		e.core.PushTrades(monday10am.Add(time.Hour), t3)
		e.waitBooked(3)
		if b := e.balances(memberC); b["member:M-GAMMA:available:CNY"] != "124730.73" || b["member:M-GAMMA:available:USD"] != "0.00" {
			t.Fatalf("gamma = %v", b)
		}
		if b := e.balances(""); b["exchange:fx_position:CNY"] != "-124730.73" || b["exchange:fx_position:USD"] != "17510.00" {
			t.Fatalf("exchange after the seller's conversion = %v", b)
		}
		fxB := must[*settlementv1.StreamInstructionsResponse](t)(streamB.Recv()).Instruction
		if fxB.Kind != settlementv1.InstructionKind_INSTRUCTION_KIND_FX_CONVERSION || fxB.Amount.Amount != "17510.00" || fxB.Amount.Currency != "USD" ||
			fxB.CounterAmount.Amount != "124730.73" || fxB.DebitAccount != "bank:BANK-SHCB:settlement:USD" {
			t.Fatalf("gamma's FX instruction = %v", fxB)
		}
		ib := must[*settlementv1.StreamInstructionsResponse](t)(stream.Recv()).Instruction
		if ib.Kind != settlementv1.InstructionKind_INSTRUCTION_KIND_INTERBANK_TRANSFER || ib.Amount.Amount != "17510.00" ||
			ib.CreditAccount != "bank:BANK-SHCB:settlement:USD" {
			t.Fatalf("interbank instruction = %v", ib)
		}

		// A conversion two fen away from the rate's, or in a pair that does
		// not convert the trade, is parked, not booked.
		bad := trade(4, "TSR20-QD-B", memberA, memberB, usd("1751"), "10", 1, "", "")
		bad.BuyerFx = fxLeg(cny("124730.76"), "fxrate/1", "7.1234")
		bad2 := trade(5, "TSR20-QD-B", memberA, memberB, usd("1751"), "10", 1, "", "")
		bad2.BuyerFx = &tradingv1.FxConversion{Amount: cny("124730.74"), RateId: "fxrate/1", BaseCurrency: "USD", QuoteCurrency: "JPY", Rate: "7.1234"}
		e.core.PushTrades(monday10am.Add(2*time.Hour), bad, bad2, trade(6, "TSR20-QD-B", memberA, memberB, usd("1751"), "10", 1, "", ""))
		e.waitBooked(6)
		for _, id := range []int64{4, 5} {
			if _, err := e.settlement(e.operator, id); status.Code(err) != codes.NotFound {
				t.Fatalf("trade %d with a bad FX leg: %v", id, err)
			}
		}
		if n := settlement.ParkedEvents(t, e.svc); n != 2 {
			t.Fatalf("%d parked events, want 2", n)
		}
		e.checkLedger()
	})
}

func TestFeeScheduleValidation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rate := func(v string) *typev1.FeeRule {
			return &typev1.FeeRule{Basis: typev1.FeeBasis_FEE_BASIS_RATE, Value: v}
		}
		for _, tc := range []struct {
			name  string
			sch   *settlementv1.FeeSchedule
			code  codes.Code
			field string
		}{
			{"unknown instrument", &settlementv1.FeeSchedule{Symbol: "NOPE", Buyer: rate("0.0001"), Seller: rate("0.0001")}, codes.NotFound, ""},
			{"no seller rule", &settlementv1.FeeSchedule{Symbol: "LCO-QD", Buyer: rate("0.0001")}, codes.InvalidArgument, "schedule.seller.basis"},
			{"rate of 20%", &settlementv1.FeeSchedule{Symbol: "LCO-QD", Buyer: rate("0.2"), Seller: rate("0.0001")}, codes.InvalidArgument, "schedule.buyer.value"},
			{"minimum in USD on a CNY instrument", &settlementv1.FeeSchedule{Symbol: "LCO-QD", Buyer: rate("0.0001"),
				Seller: &typev1.FeeRule{Basis: typev1.FeeBasis_FEE_BASIS_PER_LOT, Value: "1", Minimum: usd("1")}}, codes.InvalidArgument, "schedule.seller.minimum.currency"},
			{"per lot below a cent", &settlementv1.FeeSchedule{Symbol: "TSR20-QD-B", Buyer: rate("0.0001"),
				Seller: &typev1.FeeRule{Basis: typev1.FeeBasis_FEE_BASIS_PER_LOT, Value: "0.005"}}, codes.InvalidArgument, "schedule.seller.value"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := e.operator.Admin.SetFeeSchedule(ctx, &settlementv1.SetFeeScheduleRequest{Schedule: tc.sch})
				st := wantCode(t, err, tc.code)
				if tc.field != "" && !strings.Contains(st.Message(), tc.field) {
					t.Fatalf("%v: want field %s", err, tc.field)
				}
			})
		}
		_, err := e.operator.Admin.GetFeeSchedule(ctx, &settlementv1.GetFeeScheduleRequest{Symbol: "LCO-QD"})
		wantCode(t, err, codes.NotFound)
		if calls := e.core.Calls(); len(calls) != 0 {
			t.Fatalf("refused schedules reached the core: %v", calls)
		}
	})
}
