package settlement_test

import (
	"context"
	"strconv"
	"testing"

	"google.golang.org/grpc/codes"

	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	"github.com/bcx-exchange/bcx/services/listing"
)

// TestPostCorrection: an operator reverses a deposit booked in error, and
// moves an amount between accounts with explicit lines; each correction is
// a new transaction referencing the one it corrects, the member's trading
// funds in the core move with its available funds, the ledger balances;
// bad corrections are refused and change nothing.
func TestPostCorrection(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.start()
		dep := e.deposit(e.bankA, "DEP-ERR", memberA, cny("1000.00"))
		e.outboxDone("deposit/" + bankA + "/DEP-ERR")
		admin := e.operator.Admin

		for _, tc := range []struct {
			name string
			req  *settlementv1.PostCorrectionRequest
			code codes.Code
		}{
			{"no key", &settlementv1.PostCorrectionRequest{CorrectsTransactionId: dep.TransactionId, Reason: "x", Reverse: true}, codes.InvalidArgument},
			{"no reason", &settlementv1.PostCorrectionRequest{IdempotencyKey: "k", CorrectsTransactionId: dep.TransactionId, Reverse: true}, codes.InvalidArgument},
			{"neither", &settlementv1.PostCorrectionRequest{IdempotencyKey: "k", CorrectsTransactionId: dep.TransactionId, Reason: "x"}, codes.InvalidArgument},
			{"unknown transaction", &settlementv1.PostCorrectionRequest{IdempotencyKey: "k", CorrectsTransactionId: 99999, Reason: "x", Reverse: true}, codes.NotFound},
			{"unbalanced", &settlementv1.PostCorrectionRequest{IdempotencyKey: "k", CorrectsTransactionId: dep.TransactionId, Reason: "x",
				Lines: []*settlementv1.CorrectionLine{{Account: "member:M-ALPHA:available:CNY", Amount: cny("1.00")}}}, codes.InvalidArgument},
			{"bad account", &settlementv1.PostCorrectionRequest{IdempotencyKey: "k", CorrectsTransactionId: dep.TransactionId, Reason: "x",
				Lines: []*settlementv1.CorrectionLine{{Account: "member:M-ALPHA:nowhere:CNY", Amount: cny("1.00")}}}, codes.InvalidArgument},
			{"overdraws", &settlementv1.PostCorrectionRequest{IdempotencyKey: "k", CorrectsTransactionId: dep.TransactionId, Reason: "x",
				Lines: []*settlementv1.CorrectionLine{{Account: "member:M-ALPHA:available:CNY", Amount: cny("-1000.01")},
					{Account: "exchange:fee_income:CNY", Amount: cny("1000.01")}}}, codes.FailedPrecondition},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := admin.PostCorrection(ctx, tc.req)
				wantCode(t, err, tc.code)
			})
		}
		_, err := e.alpha.Admin.PostCorrection(ctx, &settlementv1.PostCorrectionRequest{IdempotencyKey: "k",
			CorrectsTransactionId: dep.TransactionId, Reason: "x", Reverse: true})
		wantCode(t, err, codes.PermissionDenied)
		if b := e.balances(memberA); b["member:M-ALPHA:available:CNY"] != "1000.00" {
			t.Fatalf("refused corrections changed the ledger: %v", b)
		}

		// Lines: 5.00 of fee income credited to the member (a fee refund).
		fix := &settlementv1.PostCorrectionRequest{IdempotencyKey: "refund-1", CorrectsTransactionId: dep.TransactionId, Reason: "fee refund",
			Lines: []*settlementv1.CorrectionLine{{Account: "member:M-ALPHA:available:CNY", Amount: cny("5.00")},
				{Account: "exchange:fee_income:CNY", Amount: cny("-5.00")}}}
		got := must[*settlementv1.PostCorrectionResponse](t)(admin.PostCorrection(ctx, fix))
		if len(got.Postings) != 2 || got.Postings[0].CorrectsTransactionId != dep.TransactionId || got.Postings[0].Kind != "correction" {
			t.Fatalf("correction %v", got)
		}
		again := must[*settlementv1.PostCorrectionResponse](t)(admin.PostCorrection(ctx, fix))
		if again.TransactionId != got.TransactionId {
			t.Fatalf("a repeat booked again: %v", again)
		}
		if b := e.balances(memberA); b["member:M-ALPHA:available:CNY"] != "1005.00" {
			t.Fatalf("after the refund %v", b)
		}

		// The deposit was in error: reverse it. The core's funds follow.
		rev := must[*settlementv1.PostCorrectionResponse](t)(admin.PostCorrection(ctx, &settlementv1.PostCorrectionRequest{
			IdempotencyKey: "rev-1", CorrectsTransactionId: dep.TransactionId, Reason: "deposit booked twice by the bank", Reverse: true}))
		if rev.TransactionId == got.TransactionId || len(rev.Postings) != 2 {
			t.Fatalf("reversal %v", rev)
		}
		if b := e.balances(memberA); b["member:M-ALPHA:available:CNY"] != "5.00" {
			t.Fatalf("after the reversal %v", b)
		}
		ref := "correction/" + strconv.FormatInt(dep.TransactionId, 10) + "/settlement.PostCorrection/" + listing.DemoOperator + "/rev-1"
		e.outboxDone(ref + "/core/" + memberA + "/CNY")
		if got := e.core.Funds(memberA, "CNY").String(); got != "5" {
			t.Fatalf("core funds %s, want 5", got)
		}
		e.checkLedger()
	})
}
