package settlement

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	"github.com/bcx-exchange/bcx/services/settlement/ledger"
)

// TestTransfers: net cash needs per bank become interbank instructions from
// banks with a surplus to banks with a need, per currency, deterministically.
func TestTransfers(t *testing.T) {
	type tr struct {
		From, To, Ccy string
		Amount        int64
	}
	for _, tc := range []struct {
		name  string
		needs []cashNeed
		want  []tr
	}{
		{"one bank: nothing moves", []cashNeed{{"A", "CNY", -1005}, {"A", "CNY", 995}}, nil},
		{"buyer at A, seller at B: B gets the seller's proceeds, A keeps the fees",
			[]cashNeed{{"A", "CNY", -1005}, {"B", "CNY", 995}}, []tr{{"A", "B", "CNY", 995}}},
		{"netting within a bank first", []cashNeed{{"A", "CNY", -500}, {"A", "CNY", 300}, {"B", "CNY", 150}, {"B", "CNY", 40}},
			[]tr{{"A", "B", "CNY", 190}}},
		{"two payers, two receivers, in bank order",
			[]cashNeed{{"D", "CNY", 70}, {"A", "CNY", -50}, {"C", "CNY", 30}, {"B", "CNY", -60}},
			[]tr{{"A", "C", "CNY", 30}, {"A", "D", "CNY", 20}, {"B", "D", "CNY", 50}}},
		{"currencies apart", []cashNeed{{"A", "USD", -10}, {"B", "USD", 10}, {"B", "CNY", -7}, {"A", "CNY", 7}},
			[]tr{{"B", "A", "CNY", 7}, {"A", "B", "USD", 10}}},
		{"unknown bank is left out", []cashNeed{{"", "CNY", -10}, {"B", "CNY", 10}}, nil},
		{"receivers need more than payers have (fees cannot be conjured)", []cashNeed{{"A", "CNY", -5}, {"B", "CNY", 9}},
			[]tr{{"A", "B", "CNY", 5}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []tr
			for _, in := range transfers(tc.needs, "test") {
				if in.Kind != settlementv1.InstructionKind_INSTRUCTION_KIND_INTERBANK_TRANSFER || in.Bank != bankOf(in.DebitAccount) {
					t.Fatalf("instruction %+v", in)
				}
				got = append(got, tr{in.Bank, bankOf(in.CreditAccount), in.Currency, in.AmountMinor})
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("transfers (-want, +got):\n%s", diff)
			}
		})
	}
}

func bankOf(account string) string {
	a, _ := ledger.ParseAccount(account)
	return ledger.BankOf(a)
}
