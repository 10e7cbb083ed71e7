package settlement_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	"github.com/bcx-exchange/bcx/services/listing"
	"github.com/bcx-exchange/bcx/services/settlement"
	"github.com/bcx-exchange/bcx/services/settlement/ledger"
)

func (e *env) parked() []*settlementv1.ParkedEvent {
	e.t.Helper()
	var out []*settlementv1.ParkedEvent
	token := ""
	for {
		resp := must[*settlementv1.ListParkedEventsResponse](e.t)(e.operator.Admin.ListParkedEvents(context.Background(),
			&settlementv1.ListParkedEventsRequest{PageSize: 1, PageToken: token}))
		out = append(out, resp.Events...)
		if token = resp.NextPageToken; token == "" {
			return out
		}
		if len(resp.Events) != 1 {
			e.t.Fatalf("page of size 1 = %v", resp)
		}
	}
}

// TestParkedEventRetry: parked trades are listed with their reasons; one
// whose instrument listing now knows is booked on retry and unparked; one
// that is still malformed stays parked.
func TestParkedEventRetry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.start()
		e.core.PushTrades(monday10am, trade(1, "NEW-QD", memberA, memberB, cny("5600"), "10", 1, "", ""),
			trade(2, "LCO-QD", memberA, memberB, cny("5600.0001"), "10", 1, "", ""))
		e.core.PushTrades(monday10am, trade(3, "LCO-QD", memberA, memberB, cny("5600"), "10", 1, "", ""))
		e.waitBooked(3)

		ps := e.parked()
		if len(ps) != 2 || ps[0].TradeId != 1 || ps[1].TradeId != 2 || !strings.Contains(ps[0].Reason, "NEW-QD") ||
			!strings.Contains(ps[1].Reason, "5600.0001") || ps[0].ParkedAt == nil ||
			ps[0].Sequence > ps[1].Sequence || (ps[0].Sequence == ps[1].Sequence && ps[0].Index >= ps[1].Index) {
			t.Fatalf("parked = %v", ps)
		}
		all := must[*settlementv1.ListParkedEventsResponse](t)(e.operator.Admin.ListParkedEvents(ctx, &settlementv1.ListParkedEventsRequest{}))
		if len(all.Events) != 2 || all.NextPageToken != "" {
			t.Fatalf("one page = %v", all)
		}
		_, err := e.operator.Admin.ListParkedEvents(ctx, &settlementv1.ListParkedEventsRequest{PageToken: "!"})
		wantCode(t, err, codes.InvalidArgument)
		_, err = e.operator.Admin.ListParkedEvents(ctx, &settlementv1.ListParkedEventsRequest{PageSize: -1})
		wantCode(t, err, codes.InvalidArgument)

		retry := func(p *settlementv1.ParkedEvent) (*settlementv1.RetryParkedEventResponse, error) {
			return e.operator.Admin.RetryParkedEvent(ctx, &settlementv1.RetryParkedEventRequest{Sequence: p.Sequence, Index: p.Index})
		}
		// Nothing is fixed yet: both stay parked.
		for _, p := range ps {
			_, err := retry(p)
			if st := wantCode(t, err, codes.FailedPrecondition); !strings.Contains(st.Message(), p.Reason[strings.LastIndex(p.Reason, ":")+1:]) {
				t.Fatalf("retry of %d: %v", p.TradeId, st.Message())
			}
		}
		if n := settlement.ParkedEvents(t, e.svc); n != 2 {
			t.Fatalf("%d parked after failed retries, want 2", n)
		}
		before := e.balances(memberA)["member:M-ALPHA:available:CNY"]
		if before != "-56000.00" {
			t.Fatalf("alpha before retry = %s", before)
		}

		// Listing learns the instrument (the settlement service cached
		// "unknown" for an hour: the retry asks again).
		spec := proto.Clone(listing.DemoInstruments()["LCO-QD"]).(*listingv1.InstrumentSpec)
		must[*listingv1.CreateInstrumentResponse](t)(e.opListing.CreateInstrument(ctx, &listingv1.CreateInstrumentRequest{Symbol: "NEW-QD", Spec: spec}))
		got := must[*settlementv1.RetryParkedEventResponse](t)(retry(ps[0]))
		if s := got.Settlement; s.TradeId != 1 || s.Symbol != "NEW-QD" || s.Principal.Amount != "56000.00" || !s.CashSettled {
			t.Fatalf("retried = %v", s)
		}
		if ts := e.waitBooked(1); ts.Symbol != "NEW-QD" {
			t.Fatalf("trade 1 = %v", ts)
		}
		if b := e.balances(memberA)["member:M-ALPHA:available:CNY"]; b != "-112000.00" {
			t.Fatalf("alpha after retry = %s", b)
		}
		if ps := e.parked(); len(ps) != 1 || ps[0].TradeId != 2 {
			t.Fatalf("parked after retry = %v", ps)
		}
		_, err = retry(ps[0])
		wantCode(t, err, codes.NotFound)
		_, err = retry(ps[1])
		wantCode(t, err, codes.FailedPrecondition)
		if n := settlement.ParkedEvents(t, e.svc); n != 1 {
			t.Fatalf("%d parked, want 1", n)
		}

		// A parked copy of a trade that is booked (say, redelivered under a
		// new sequence) is unparked without booking it twice.
		body := must[[]byte](t)(proto.Marshal(&tradingv1.SubscribeEventsResponse{Sequence: 999,
			Event: &tradingv1.SubscribeEventsResponse_Trade{Trade: trade(3, "LCO-QD", memberA, memberB, cny("5600"), "10", 1, "", "")}}))
		if _, err := e.db.ExecContext(ctx, `INSERT INTO stl_parked_events (sequence, idx, body, reason, created_at) VALUES (999, 0, $1, 'test', $2)`,
			body, time.Now().UnixNano()); err != nil {
			t.Fatal(err)
		}
		dup := must[*settlementv1.RetryParkedEventResponse](t)(retry(&settlementv1.ParkedEvent{Sequence: 999}))
		if dup.Settlement.TradeId != 3 {
			t.Fatalf("retry of a booked trade = %v", dup)
		}
		if b := e.balances(memberA)["member:M-ALPHA:available:CNY"]; b != "-112000.00" {
			t.Fatalf("alpha after retrying a booked trade = %s", b)
		}
		if n := settlement.ParkedEvents(t, e.svc); n != 1 {
			t.Fatalf("%d parked, want 1", n)
		}
		e.checkLedger()

		// Operators only.
		for _, c := range []client{e.alpha, e.bankA, e.anon} {
			_, err := c.Admin.ListParkedEvents(ctx, &settlementv1.ListParkedEventsRequest{})
			if code := codeOf(err); code != codes.PermissionDenied && code != codes.Unauthenticated {
				t.Fatalf("ListParkedEvents: %v", err)
			}
			_, err = c.Admin.RetryParkedEvent(ctx, &settlementv1.RetryParkedEventRequest{Sequence: ps[1].Sequence, Index: ps[1].Index})
			if code := codeOf(err); code != codes.PermissionDenied && code != codes.Unauthenticated {
				t.Fatalf("RetryParkedEvent: %v", err)
			}
		}
		_, err = e.alpha.Admin.ListParkedEvents(ctx, &settlementv1.ListParkedEventsRequest{})
		wantCode(t, err, codes.PermissionDenied)
	})
}

// TestReissueInstruction: a rejected interbank transfer is reissued as a
// new instruction the bank streams and confirms, once; pending and
// withdrawal instructions are refused.
func TestReissueInstruction(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.start()
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream := must[settlementv1.BankService_StreamInstructionsClient](t)(e.bankB.Bank.StreamInstructions(sctx, &settlementv1.StreamInstructionsRequest{}))

		// gamma (bank B) buys from alpha (bank A), gross: bank B pays bank A 56,000.
		e.core.PushTrades(monday10am, trade(1, "LCO-QD", memberC, memberA, cny("5600"), "10", 1, "", ""))
		e.waitBooked(1)
		in := must[*settlementv1.StreamInstructionsResponse](t)(stream.Recv()).Instruction
		if in.Kind != settlementv1.InstructionKind_INSTRUCTION_KIND_INTERBANK_TRANSFER || in.Amount.Amount != "56000.00" {
			t.Fatalf("transfer = %v", in)
		}
		reissue := func(c client, key, id string) (*settlementv1.ReissueInstructionResponse, error) {
			return c.Admin.ReissueInstruction(ctx, &settlementv1.ReissueInstructionRequest{IdempotencyKey: key, InstructionId: id})
		}
		// Not rejected: refused, naming the status.
		_, err := reissue(e.operator, "r-0", in.InstructionId)
		if st := wantCode(t, err, codes.FailedPrecondition); !strings.Contains(st.Message(), "PENDING") {
			t.Fatalf("reissue of a pending instruction: %v", st.Message())
		}
		_, err = reissue(e.operator, "r-none", "I999999999999")
		wantCode(t, err, codes.NotFound)
		_, err = reissue(e.operator, "r-empty", "")
		wantCode(t, err, codes.InvalidArgument)

		must[*settlementv1.RejectInstructionResponse](t)(e.bankB.Bank.RejectInstruction(ctx, &settlementv1.RejectInstructionRequest{
			InstructionId: in.InstructionId, Reason: "beneficiary account blocked"}))
		exchange := e.balances("")
		e.checkLedger()

		for _, c := range []client{e.alpha, e.bankB} {
			_, err := reissue(c, "r-x", in.InstructionId)
			wantCode(t, err, codes.PermissionDenied)
		}
		re := must[*settlementv1.ReissueInstructionResponse](t)(reissue(e.operator, "r-1", in.InstructionId)).Instruction
		if re.InstructionId == in.InstructionId || re.Status != settlementv1.InstructionStatus_INSTRUCTION_STATUS_PENDING ||
			re.Kind != in.Kind || re.BankParticipantId != bankB || re.DebitAccount != in.DebitAccount ||
			re.CreditAccount != in.CreditAccount || !proto.Equal(re.Amount, in.Amount) || re.EndToEndId == in.EndToEndId || re.Cursor <= in.Cursor {
			t.Fatalf("reissued = %v, rejected = %v", re, in)
		}
		again := must[*settlementv1.ReissueInstructionResponse](t)(reissue(e.operator, "r-1", in.InstructionId)).Instruction
		if again.InstructionId != re.InstructionId {
			t.Fatalf("repeat = %v, want %v", again, re)
		}
		_, err = reissue(e.operator, "r-2", in.InstructionId)
		if st := wantCode(t, err, codes.FailedPrecondition); !strings.Contains(st.Message(), re.InstructionId) {
			t.Fatalf("second reissue: %v", st.Message())
		}
		// Nothing is booked until the bank confirms.
		if b := e.balances(""); !equalMaps(b, exchange) {
			t.Fatalf("balances after reissue = %v, before %v", b, exchange)
		}
		streamed := must[*settlementv1.StreamInstructionsResponse](t)(stream.Recv()).Instruction
		if streamed.InstructionId != re.InstructionId {
			t.Fatalf("streamed = %v, want %v", streamed, re)
		}
		must[*settlementv1.ConfirmInstructionResponse](t)(e.bankB.Bank.ConfirmInstruction(ctx, &settlementv1.ConfirmInstructionRequest{
			InstructionId: re.InstructionId, BankReference: "SHCB-REF-1"}))
		b := e.balances("")
		if b[ledger.BankAccount(bankA, "CNY").Name] != "56000.00" || b[ledger.BankAccount(bankB, "CNY").Name] != "-56000.00" {
			t.Fatalf("exchange balances after confirmation = %v", b)
		}
		e.checkLedger()
		// Confirmed: no longer reissuable.
		_, err = reissue(e.operator, "r-3", re.InstructionId)
		wantCode(t, err, codes.FailedPrecondition)

		// A rejected withdrawal is refused: the member requests again.
		e.deposit(e.bankA, "DEP-B", memberB, cny("100.00"))
		e.outboxDone("deposit/" + bankA + "/DEP-B")
		w := must[*settlementv1.RequestWithdrawalResponse](t)(e.beta.RequestWithdrawal(ctx, &settlementv1.RequestWithdrawalRequest{
			IdempotencyKey: "wd-1", Amount: cny("40.00")}))
		must[*settlementv1.RejectInstructionResponse](t)(e.bankA.Bank.RejectInstruction(ctx, &settlementv1.RejectInstructionRequest{
			InstructionId: w.InstructionId, Reason: "closed"}))
		_, err = reissue(e.operator, "r-4", w.InstructionId)
		if st := wantCode(t, err, codes.FailedPrecondition); !strings.Contains(st.Message(), "withdrawal") {
			t.Fatalf("reissue of a withdrawal: %v", st.Message())
		}
		e.checkLedger()
	})
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
