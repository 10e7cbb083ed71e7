package settlement_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/bcx-exchange/bcx/pkg/auth"
	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
)

func TestDepositOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.start()
		req := &settlementv1.PostDepositNoticeRequest{BankReference: "QDCB-20260302-0001", ParticipantId: memberA,
			Amount: cny("1000000.00"), EndToEndId: "ALPHA-TOPUP-1", ValueDate: "2026-03-02"}
		first := must[*settlementv1.PostDepositNoticeResponse](t)(e.bankA.Bank.PostDepositNotice(ctx, req))
		for i := 0; i < 3; i++ {
			again := must[*settlementv1.PostDepositNoticeResponse](t)(e.bankA.Bank.PostDepositNotice(ctx, req))
			if !again.Duplicate || again.TransactionId != first.TransactionId {
				t.Fatalf("repeat #%d = %v, want duplicate of %v", i, again, first)
			}
		}
		if first.Duplicate {
			t.Fatal("first notice reported as a duplicate")
		}
		// The same reference with other content is refused.
		bad := proto.Clone(req).(*settlementv1.PostDepositNoticeRequest)
		bad.Amount = cny("1000000.01")
		_, err := e.bankA.Bank.PostDepositNotice(ctx, bad)
		wantCode(t, err, codes.InvalidArgument)

		e.outboxDone("deposit/" + bankA + "/QDCB-20260302-0001")
		if got := e.core.Funds(memberA, "CNY").String(); got != "1000000" {
			t.Fatalf("core funds = %s, want 1000000", got)
		}
		if applied, _ := e.core.Applied("deposit/" + bankA + "/QDCB-20260302-0001"); applied != 1 {
			t.Fatalf("core credited %d times", applied)
		}
		if b := e.balances(memberA); b["member:M-ALPHA:available:CNY"] != "1000000.00" {
			t.Fatalf("member balances = %v", b)
		}
		if b := e.balances(""); b["bank:BANK-QDCB:settlement:CNY"] != "1000000.00" {
			t.Fatalf("exchange balances = %v", b)
		}
		if tot := e.checkLedger(); tot.Transactions != 1 {
			t.Fatalf("ledger = %v, want one transaction", tot)
		}
	})
}

func TestDepositRefusals(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		for _, tc := range []struct {
			name string
			bank client
			req  *settlementv1.PostDepositNoticeRequest
			code codes.Code
		}{
			{"another bank's client", e.bankB, &settlementv1.PostDepositNoticeRequest{BankReference: "R1", ParticipantId: memberA, Amount: cny("1")}, codes.NotFound},
			{"no such member", e.bankA, &settlementv1.PostDepositNoticeRequest{BankReference: "R1", ParticipantId: "M-NOBODY", Amount: cny("1")}, codes.NotFound},
			{"no account in that currency", e.bankA, &settlementv1.PostDepositNoticeRequest{BankReference: "R1", ParticipantId: memberA,
				Amount: &typev1.Money{Currency: "EUR", Amount: "1"}}, codes.NotFound},
			{"a currency the exchange does not settle", e.bankA, &settlementv1.PostDepositNoticeRequest{BankReference: "R1", ParticipantId: memberA,
				Amount: &typev1.Money{Currency: "GBP", Amount: "1"}}, codes.InvalidArgument},
			{"a member posting", e.alpha, &settlementv1.PostDepositNoticeRequest{BankReference: "R1", ParticipantId: memberA, Amount: cny("1")}, codes.PermissionDenied},
			{"no token", e.anon, &settlementv1.PostDepositNoticeRequest{BankReference: "R1", ParticipantId: memberA, Amount: cny("1")}, codes.Unauthenticated},
			{"fraction of a fen", e.bankA, &settlementv1.PostDepositNoticeRequest{BankReference: "R1", ParticipantId: memberA, Amount: cny("1.001")}, codes.InvalidArgument},
			{"negative", e.bankA, &settlementv1.PostDepositNoticeRequest{BankReference: "R1", ParticipantId: memberA, Amount: cny("-1")}, codes.InvalidArgument},
			{"too large", e.bankA, &settlementv1.PostDepositNoticeRequest{BankReference: "R1", ParticipantId: memberA, Amount: cny("99999999999999999999")}, codes.InvalidArgument},
			{"no reference", e.bankA, &settlementv1.PostDepositNoticeRequest{ParticipantId: memberA, Amount: cny("1")}, codes.InvalidArgument},
			{"bad value date", e.bankA, &settlementv1.PostDepositNoticeRequest{BankReference: "R1", ParticipantId: memberA, Amount: cny("1"), ValueDate: "2026-02-30"}, codes.InvalidArgument},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := tc.bank.Bank.PostDepositNotice(ctx, tc.req)
				wantCode(t, err, tc.code)
			})
		}
		// Another bank's client and a member that does not exist look the same.
		_, errOther := e.bankB.Bank.PostDepositNotice(ctx, &settlementv1.PostDepositNoticeRequest{BankReference: "R1", ParticipantId: memberA, Amount: cny("1")})
		_, errNone := e.bankB.Bank.PostDepositNotice(ctx, &settlementv1.PostDepositNoticeRequest{BankReference: "R1", ParticipantId: "M-NOBODY", Amount: cny("1")})
		if stripID(errOther.Error(), memberA) != stripID(errNone.Error(), "M-NOBODY") {
			t.Fatalf("other bank's client %q differs from a missing one %q", errOther, errNone)
		}
		if tot := e.checkLedger(); tot.Transactions != 0 {
			t.Fatalf("refused notices booked %d transactions", tot.Transactions)
		}
	})
}

// TestDepositCrashBeforeCoreCall: the ledger commits the deposit and the
// process dies before the core hears of it. A new process sends the command
// from the outbox; the core is credited once. Then an acknowledgement is
// lost after the core applied a credit: the worker sends it again with the
// same key and the core, deduplicating, still credits once.
func TestDepositCrashBeforeCoreCall(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		// First process: takes the notice, never runs its workers ("crash").
		e.deposit(e.bankA, "QDCB-CRASH-1", memberA, cny("500.00"))
		if _, received := e.core.Applied("deposit/" + bankA + "/QDCB-CRASH-1"); received != 0 {
			t.Fatalf("the core was called %d times before any worker ran", received)
		}
		// Second process over the same database.
		second := e.restart()
		e.run(second)
		e.outboxDone("deposit/" + bankA + "/QDCB-CRASH-1")
		if applied, received := e.core.Applied("deposit/" + bankA + "/QDCB-CRASH-1"); applied != 1 || received != 1 {
			t.Fatalf("core: applied %d of %d calls", applied, received)
		}

		// Lost acknowledgement and a failing core: redelivered, applied once.
		e.core.LoseAck["CreditFunds"] = 2
		e.core.FailBefore["CreditFunds"] = 0
		if _, err := second.Banks().PostDepositNotice(bankCtx(bankA), &settlementv1.PostDepositNoticeRequest{
			BankReference: "QDCB-LOST-ACK", ParticipantId: memberA, Amount: cny("250.00")}); err != nil {
			t.Fatal(err)
		}
		e.outboxDone("deposit/" + bankA + "/QDCB-LOST-ACK")
		applied, received := e.core.Applied("deposit/" + bankA + "/QDCB-LOST-ACK")
		if applied != 1 || received != 3 {
			t.Fatalf("core: applied %d of %d calls, want 1 of 3", applied, received)
		}
		if got := e.core.Funds(memberA, "CNY").String(); got != "750" {
			t.Fatalf("core funds = %s, want 750", got)
		}
		if _, attempts, _ := second.OutboxStatus(ctx, "deposit/"+bankA+"/QDCB-LOST-ACK"); attempts != 3 {
			t.Fatalf("outbox attempts = %d, want 3", attempts)
		}
		e.checkLedger()
	})
}

func bankCtx(bank string) context.Context {
	return auth.WithPrincipal(context.Background(), auth.Principal{ParticipantID: bank, Role: typev1.Role_ROLE_CLEARING_BANK})
}

func TestWithdrawal(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.start()
		e.deposit(e.bankA, "DEP-1", memberA, cny("1000.00"))
		e.outboxDone("deposit/" + bankA + "/DEP-1")

		// A bank streams its instructions from a cursor.
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream := must[settlementv1.BankService_StreamInstructionsClient](t)(e.bankA.Bank.StreamInstructions(sctx, &settlementv1.StreamInstructionsRequest{}))

		w := must[*settlementv1.RequestWithdrawalResponse](t)(e.alpha.RequestWithdrawal(ctx, &settlementv1.RequestWithdrawalRequest{
			IdempotencyKey: "wd-1", Amount: cny("300.00")}))
		if w.Status != settlementv1.WithdrawalStatus_WITHDRAWAL_STATUS_PENDING || w.InstructionId == "" {
			t.Fatalf("withdrawal = %v", w)
		}
		again := must[*settlementv1.RequestWithdrawalResponse](t)(e.alpha.RequestWithdrawal(ctx, &settlementv1.RequestWithdrawalRequest{
			IdempotencyKey: "wd-1", Amount: cny("300.00")}))
		if again.WithdrawalId != w.WithdrawalId {
			t.Fatalf("repeat = %v, want %v", again, w)
		}
		_, err := e.alpha.RequestWithdrawal(ctx, &settlementv1.RequestWithdrawalRequest{IdempotencyKey: "wd-1", Amount: cny("301.00")})
		wantCode(t, err, codes.InvalidArgument)
		if got := e.core.Funds(memberA, "CNY").String(); got != "700" {
			t.Fatalf("core funds after withdrawal = %s", got)
		}
		if b := e.balances(memberA); b["member:M-ALPHA:available:CNY"] != "700.00" || b["member:M-ALPHA:reserved:CNY"] != "300.00" {
			t.Fatalf("balances = %v", b)
		}
		in := must[*settlementv1.StreamInstructionsResponse](t)(stream.Recv()).Instruction
		if in.InstructionId != w.InstructionId || in.Kind != settlementv1.InstructionKind_INSTRUCTION_KIND_WITHDRAWAL ||
			in.Amount.Amount != "300.00" || in.CreditAccount != "6222-01-CNY-0001" || in.DebitAccount != "bank:BANK-QDCB:settlement:CNY" {
			t.Fatalf("instruction = %v", in)
		}
		// Another bank acts on it: exactly like a missing instruction.
		_, errOther := e.bankB.Bank.ConfirmInstruction(ctx, &settlementv1.ConfirmInstructionRequest{InstructionId: in.InstructionId, BankReference: "X"})
		_, errNone := e.bankB.Bank.ConfirmInstruction(ctx, &settlementv1.ConfirmInstructionRequest{InstructionId: "I999999999999", BankReference: "X"})
		wantCode(t, errOther, codes.NotFound)
		if stripID(errOther.Error(), in.InstructionId) != stripID(errNone.Error(), "I999999999999") {
			t.Fatalf("%q vs %q", errOther, errNone)
		}
		must[*settlementv1.AcknowledgeInstructionResponse](t)(e.bankA.Bank.AcknowledgeInstruction(ctx, &settlementv1.AcknowledgeInstructionRequest{InstructionId: in.InstructionId}))
		conf := must[*settlementv1.ConfirmInstructionResponse](t)(e.bankA.Bank.ConfirmInstruction(ctx, &settlementv1.ConfirmInstructionRequest{
			InstructionId: in.InstructionId, BankReference: "QDCB-OUT-1"}))
		if conf.Instruction.Status != settlementv1.InstructionStatus_INSTRUCTION_STATUS_CONFIRMED {
			t.Fatalf("confirm = %v", conf)
		}
		// Confirming twice with the same reference is a no-op; another reference is refused.
		must[*settlementv1.ConfirmInstructionResponse](t)(e.bankA.Bank.ConfirmInstruction(ctx, &settlementv1.ConfirmInstructionRequest{
			InstructionId: in.InstructionId, BankReference: "QDCB-OUT-1"}))
		_, err = e.bankA.Bank.ConfirmInstruction(ctx, &settlementv1.ConfirmInstructionRequest{InstructionId: in.InstructionId, BankReference: "OTHER"})
		wantCode(t, err, codes.FailedPrecondition)
		_, err = e.bankA.Bank.RejectInstruction(ctx, &settlementv1.RejectInstructionRequest{InstructionId: in.InstructionId, Reason: "late"})
		wantCode(t, err, codes.FailedPrecondition)
		if b := e.balances(memberA); b["member:M-ALPHA:available:CNY"] != "700.00" || b["member:M-ALPHA:reserved:CNY"] != "0.00" {
			t.Fatalf("balances after confirm = %v", b)
		}
		if b := e.balances(""); b["bank:BANK-QDCB:settlement:CNY"] != "700.00" {
			t.Fatalf("exchange balances after confirm = %v", b)
		}

		// More than the ledger's available funds: refused before the core is asked.
		calls := len(e.core.Calls())
		_, err = e.alpha.RequestWithdrawal(ctx, &settlementv1.RequestWithdrawalRequest{IdempotencyKey: "wd-2", Amount: cny("700.01")})
		wantCode(t, err, codes.FailedPrecondition)
		if len(e.core.Calls()) != calls {
			t.Fatal("the core was asked for a withdrawal the ledger refused")
		}
		// The core refuses (the member's trading funds are committed to orders).
		e.core.SetFunds(memberA, "CNY", "100")
		_, err = e.alpha.RequestWithdrawal(ctx, &settlementv1.RequestWithdrawalRequest{IdempotencyKey: "wd-3", Amount: cny("200.00")})
		wantCode(t, err, codes.FailedPrecondition)
		_, err = e.alpha.RequestWithdrawal(ctx, &settlementv1.RequestWithdrawalRequest{IdempotencyKey: "wd-3", Amount: cny("200.00")})
		wantCode(t, err, codes.FailedPrecondition)
		if b := e.balances(memberA); b["member:M-ALPHA:available:CNY"] != "700.00" || b["member:M-ALPHA:reserved:CNY"] != "0.00" {
			t.Fatalf("balances after refusal = %v", b)
		}

		// The core does not answer: Unavailable, then a retry with the same key completes it.
		e.core.SetFunds(memberA, "CNY", "700")
		e.core.FailBefore["DebitFunds"] = 1
		_, err = e.alpha.RequestWithdrawal(ctx, &settlementv1.RequestWithdrawalRequest{IdempotencyKey: "wd-4", Amount: cny("50.00")})
		wantCode(t, err, codes.Unavailable)
		w4 := must[*settlementv1.RequestWithdrawalResponse](t)(e.alpha.RequestWithdrawal(ctx, &settlementv1.RequestWithdrawalRequest{
			IdempotencyKey: "wd-4", Amount: cny("50.00")}))
		if w4.Status != settlementv1.WithdrawalStatus_WITHDRAWAL_STATUS_PENDING {
			t.Fatalf("retried withdrawal = %v", w4)
		}
		// The bank rejects it: the reservation returns and the core is credited back, once.
		in4 := must[*settlementv1.StreamInstructionsResponse](t)(stream.Recv()).Instruction
		if in4.InstructionId != w4.InstructionId || in4.Cursor <= in.Cursor {
			t.Fatalf("second instruction = %v", in4)
		}
		for i := 0; i < 2; i++ {
			must[*settlementv1.RejectInstructionResponse](t)(e.bankA.Bank.RejectInstruction(ctx, &settlementv1.RejectInstructionRequest{
				InstructionId: in4.InstructionId, Reason: "account closed"}))
		}
		e.outboxDone("withdrawal-reversal/" + w4.WithdrawalId)
		if got := e.core.Funds(memberA, "CNY").String(); got != "700" {
			t.Fatalf("core funds after rejected withdrawal = %s, want 700", got)
		}
		if b := e.balances(memberA); b["member:M-ALPHA:available:CNY"] != "700.00" || b["member:M-ALPHA:reserved:CNY"] != "0.00" {
			t.Fatalf("balances after bank rejection = %v", b)
		}
		// A later stream from the first cursor sees only what came after it.
		s2 := must[settlementv1.BankService_StreamInstructionsClient](t)(e.bankA.Bank.StreamInstructions(sctx, &settlementv1.StreamInstructionsRequest{AfterCursor: in.Cursor}))
		if got := must[*settlementv1.StreamInstructionsResponse](t)(s2.Recv()).Instruction; got.InstructionId != in4.InstructionId ||
			got.Status != settlementv1.InstructionStatus_INSTRUCTION_STATUS_REJECTED {
			t.Fatalf("resumed stream = %v", got)
		}
		e.checkLedger()
	})
}

// TestWithdrawalRecovery: the process stops after reserving and before the
// core answered; the recovery loop of the next process finishes it.
func TestWithdrawalRecovery(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.deposit(e.bankA, "DEP-1", memberA, cny("100.00"))
		e.core.SetFunds(memberA, "CNY", "100")
		e.core.FailBefore["DebitFunds"] = 1
		_, err := e.alpha.RequestWithdrawal(ctx, &settlementv1.RequestWithdrawalRequest{IdempotencyKey: "wd-1", Amount: cny("40.00")})
		wantCode(t, err, codes.Unavailable)
		second := e.restart()
		e.clk.Advance(time.Minute)
		if err := second.RecoverWithdrawals(ctx, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		w := must[*settlementv1.RequestWithdrawalResponse](t)(e.alpha.RequestWithdrawal(ctx, &settlementv1.RequestWithdrawalRequest{
			IdempotencyKey: "wd-1", Amount: cny("40.00")}))
		if w.Status != settlementv1.WithdrawalStatus_WITHDRAWAL_STATUS_PENDING || w.InstructionId == "" {
			t.Fatalf("recovered withdrawal = %v", w)
		}
		if got := e.core.Funds(memberA, "CNY").String(); got != "60" {
			t.Fatalf("core funds = %s, want 60", got)
		}
		e.checkLedger()
	})
}
