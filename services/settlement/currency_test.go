package settlement_test

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"

	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
)

// TestConfiguredCurrency: a currency added by configuration (JPY, no minor
// unit, registered in the test environment as `--currencies JPY:0` does in
// bcx) works like CNY: a deposit in whole yen credits the ledger and the
// core once, a fraction of a yen is refused, a withdrawal is instructed
// and confirmed, the ledger balances per currency.
func TestConfiguredCurrency(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.start()
		e.addAccount(memberA, "JPY", bankA)
		jpy := func(s string) *typev1.Money { return &typev1.Money{Currency: "JPY", Amount: s} }
		_, err := e.bankA.Bank.PostDepositNotice(ctx, &settlementv1.PostDepositNoticeRequest{BankReference: "JP-1",
			ParticipantId: memberA, Amount: jpy("1000000.5"), ValueDate: "2026-03-02"})
		wantCode(t, err, codes.InvalidArgument)
		e.deposit(e.bankA, "JP-1", memberA, jpy("1000000"))
		e.outboxDone("deposit/" + bankA + "/JP-1")
		if got := e.core.Funds(memberA, "JPY").String(); got != "1000000" {
			t.Fatalf("core JPY %s", got)
		}
		id := e.withdrawAndConfirm(e.alpha, e.bankA, "jp-out-1", jpy("250000"), "QDCB-JP-OUT-1")
		if id == "" {
			t.Fatal("no instruction")
		}
		if b := e.balances(memberA); b["member:M-ALPHA:available:JPY"] != "750000" {
			t.Fatalf("JPY balance %v", b)
		}
		chk := e.checkLedger()
		found := false
		for _, c := range chk.Totals {
			found = found || c.Currency == "JPY"
		}
		if !found || !chk.Balanced {
			t.Fatalf("ledger check without a balanced JPY ledger: %v", chk)
		}
	})
}
