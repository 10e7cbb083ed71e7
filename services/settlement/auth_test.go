package settlement_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/settlement"
)

// TestPolicyCoversEveryMethod: a method missing from the policy would be
// refused to everyone (auth fails closed); this catches it before a caller
// does, and checks no method is open to every role by accident.
func TestPolicyCoversEveryMethod(t *testing.T) {
	p := settlement.Policy()
	n := 0
	for _, d := range []grpc.ServiceDesc{settlementv1.SettlementService_ServiceDesc, settlementv1.BankService_ServiceDesc,
		settlementv1.SettlementAdminService_ServiceDesc, settlementv1.SettlementInternalService_ServiceDesc} {
		var names []string
		for _, m := range d.Methods {
			names = append(names, m.MethodName)
		}
		for _, s := range d.Streams {
			names = append(names, s.StreamName)
		}
		for _, name := range names {
			full := "/" + d.ServiceName + "/" + name
			roles, ok := p[full]
			if !ok || len(roles) == 0 {
				t.Errorf("%s: roles %v", full, roles)
			}
			for _, r := range roles {
				if r == typev1.Role_ROLE_WAREHOUSE {
					t.Errorf("%s is open to warehouses", full)
				}
			}
			n++
		}
	}
	if n != len(p) {
		t.Errorf("policy has %d entries for %d methods", len(p), n)
	}
	// The internal service is for the exchange's services only.
	for _, m := range settlementv1.SettlementInternalService_ServiceDesc.Methods {
		full := "/" + settlementv1.SettlementInternalService_ServiceDesc.ServiceName + "/" + m.MethodName
		if roles := p[full]; len(roles) != 1 || roles[0] != typev1.Role_ROLE_SERVICE {
			t.Errorf("%s: roles %v, want ROLE_SERVICE only", full, roles)
		}
	}
}

// TestIsolation: a member reads only its own accounts, a bank acts only on
// its own instructions; another party's object answers exactly like one that
// does not exist, and a call outside the caller's role is refused.
func TestIsolation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.deposit(e.bankA, "DEP-B", memberB, cny("10.00"))
		sameAsMissing := func(name string, call func(id string) error, other string) {
			t.Helper()
			errOther, errNone := call(other), call("M-NOBODY")
			wantCode(t, errOther, codes.NotFound)
			wantCode(t, errNone, codes.NotFound)
			if stripID(errOther.Error(), other) != stripID(errNone.Error(), "M-NOBODY") {
				t.Errorf("%s: another's %q, a missing one's %q", name, errOther, errNone)
			}
		}
		sameAsMissing("GetStatement", func(id string) error {
			_, err := e.alpha.GetStatement(ctx, &settlementv1.GetStatementRequest{ParticipantId: id, Currency: "CNY", FromDate: "2026-03-01", ToDate: "2026-03-02"})
			return err
		}, memberB)
		sameAsMissing("GetAccountBalances", func(id string) error {
			_, err := e.alpha.GetAccountBalances(ctx, &settlementv1.GetAccountBalancesRequest{ParticipantId: id})
			return err
		}, memberB)
		sameAsMissing("ListPostings", func(id string) error {
			_, err := e.alpha.ListPostings(ctx, &settlementv1.ListPostingsRequest{ParticipantId: id})
			return err
		}, memberB)
		// A member's own call without a participant reads its own accounts only.
		own := must[*settlementv1.GetAccountBalancesResponse](t)(e.alpha.GetAccountBalances(ctx, &settlementv1.GetAccountBalancesRequest{}))
		if len(own.Balances) != 0 {
			t.Fatalf("alpha sees %v", own.Balances)
		}
		beta := must[*settlementv1.GetAccountBalancesResponse](t)(e.beta.GetAccountBalances(ctx, &settlementv1.GetAccountBalancesRequest{}))
		if len(beta.Balances) != 1 || beta.Balances[0].Account != "member:M-BETA:available:CNY" ||
			beta.Balances[0].Kind != settlementv1.AccountKind_ACCOUNT_KIND_MEMBER_AVAILABLE {
			t.Fatalf("beta sees %v", beta.Balances)
		}
		// Calls outside the caller's role.
		for name, err := range map[string]error{
			"bank reads a statement": func() error {
				_, err := e.bankA.GetStatement(ctx, &settlementv1.GetStatementRequest{ParticipantId: memberA, Currency: "CNY"})
				return err
			}(),
			"member sets fees": func() error {
				_, err := e.alpha.Admin.SetFeeSchedule(ctx, &settlementv1.SetFeeScheduleRequest{})
				return err
			}(),
			"member posts a deposit": func() error {
				_, err := e.alpha.Bank.PostDepositNotice(ctx, &settlementv1.PostDepositNoticeRequest{})
				return err
			}(),
			"member runs the cycle": func() error {
				_, err := e.alpha.Admin.RunSettlementCycle(ctx, &settlementv1.RunSettlementCycleRequest{})
				return err
			}(),
			"bank withdraws": func() error {
				_, err := e.bankA.RequestWithdrawal(ctx, &settlementv1.RequestWithdrawalRequest{})
				return err
			}(),
			"operator confirms an instruction": func() error {
				_, err := e.operator.Bank.ConfirmInstruction(ctx, &settlementv1.ConfirmInstructionRequest{})
				return err
			}(),
			"member checks the ledger": func() error {
				_, err := e.alpha.Admin.CheckLedger(ctx, &settlementv1.CheckLedgerRequest{})
				return err
			}(),
		} {
			if c := codeOf(err); c != codes.PermissionDenied {
				t.Errorf("%s: %v, want PermissionDenied", name, err)
			}
		}
		_, err := e.anon.Admin.CheckLedger(ctx, &settlementv1.CheckLedgerRequest{})
		wantCode(t, err, codes.Unauthenticated)
		// A bank's instruction stream carries only its own instructions.
		e.core.SetFunds(memberB, "CNY", "10")
		w := must[*settlementv1.RequestWithdrawalResponse](t)(e.beta.RequestWithdrawal(ctx, &settlementv1.RequestWithdrawalRequest{IdempotencyKey: "k", Amount: cny("4.00")}))
		for _, call := range []func() error{
			func() error {
				_, err := e.bankB.Bank.AcknowledgeInstruction(ctx, &settlementv1.AcknowledgeInstructionRequest{InstructionId: w.InstructionId})
				return err
			},
			func() error {
				_, err := e.bankB.Bank.RejectInstruction(ctx, &settlementv1.RejectInstructionRequest{InstructionId: w.InstructionId, Reason: "x"})
				return err
			},
		} {
			wantCode(t, call(), codes.NotFound)
		}
		sctx, cancel := context.WithCancel(ctx)
		stream := must[settlementv1.BankService_StreamInstructionsClient](t)(e.bankB.Bank.StreamInstructions(sctx, &settlementv1.StreamInstructionsRequest{}))
		got := make(chan *settlementv1.StreamInstructionsResponse, 1)
		go func() {
			r, _ := stream.Recv()
			got <- r
		}()
		e.withdrawAndConfirm(e.beta, e.bankA, "k2", cny("1.00"), "REF")
		cancel()
		if r := <-got; r != nil {
			t.Fatalf("bank B received %v", r)
		}
	})
}
