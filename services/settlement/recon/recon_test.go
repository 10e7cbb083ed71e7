package recon_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bcx-exchange/bcx/services/settlement/recon"
)

func TestRun(t *testing.T) {
	const day = 20000
	for _, tc := range []struct {
		name      string
		entries   []recon.Entry
		movements []recon.Movement
		want      recon.Result
	}{
		{
			name:      "end-to-end id, one to one",
			entries:   []recon.Entry{{AmountMinor: 100, Day: day, EndToEndID: "E1"}},
			movements: []recon.Movement{{ID: 1, AmountMinor: 100, Day: day + 9, EndToEndID: "E1"}},
			want:      recon.Result{Matched: []recon.Match{{0, []int{0}, recon.ByEndToEndID}}},
		},
		{
			name:    "end-to-end id, one to many",
			entries: []recon.Entry{{AmountMinor: -300, Day: day, EndToEndID: "BATCH"}},
			movements: []recon.Movement{{ID: 1, AmountMinor: -100, Day: day, EndToEndID: "BATCH"},
				{ID: 2, AmountMinor: -200, Day: day, EndToEndID: "BATCH"}, {ID: 3, AmountMinor: -300, Day: day}},
			want: recon.Result{Matched: []recon.Match{{0, []int{0, 1}, recon.ByEndToEndID}}, UnmatchedMovements: []int{2}},
		},
		{
			name:    "batch booking: the details' end-to-end ids",
			entries: []recon.Entry{{AmountMinor: -300, Day: day, DetailEndToEndIDs: []string{"W1", "W2"}}},
			movements: []recon.Movement{{ID: 1, AmountMinor: -100, Day: day, EndToEndID: "W1"},
				{ID: 2, AmountMinor: -200, Day: day, EndToEndID: "W2"}},
			want: recon.Result{Matched: []recon.Match{{0, []int{0, 1}, recon.ByEndToEndID}}},
		},
		{
			name:      "bank reference",
			entries:   []recon.Entry{{AmountMinor: 100, Day: day, EndToEndID: "UNKNOWN", BankReference: "R1"}},
			movements: []recon.Movement{{ID: 1, AmountMinor: 100, Day: day, BankReference: "R1"}},
			want:      recon.Result{Matched: []recon.Match{{0, []int{0}, recon.ByBankReference}}},
		},
		{
			name:      "reference matches, amount does not",
			entries:   []recon.Entry{{AmountMinor: 99, Day: day, EndToEndID: "E1"}},
			movements: []recon.Movement{{ID: 1, AmountMinor: 100, Day: day, EndToEndID: "E1"}},
			want:      recon.Result{Mismatched: []recon.Match{{0, []int{0}, recon.ByEndToEndID}}},
		},
		{
			name:      "reference matches, direction does not",
			entries:   []recon.Entry{{AmountMinor: -100, Day: day, BankReference: "R1"}},
			movements: []recon.Movement{{ID: 1, AmountMinor: 100, Day: day, BankReference: "R1"}},
			want:      recon.Result{Mismatched: []recon.Match{{0, []int{0}, recon.ByBankReference}}},
		},
		{
			name:    "one of several with the same id has the amount",
			entries: []recon.Entry{{AmountMinor: 200, Day: day, EndToEndID: "E"}},
			movements: []recon.Movement{{ID: 1, AmountMinor: 100, Day: day, EndToEndID: "E"},
				{ID: 2, AmountMinor: 200, Day: day, EndToEndID: "E"}},
			want: recon.Result{Matched: []recon.Match{{0, []int{1}, recon.ByEndToEndID}}, UnmatchedMovements: []int{0}},
		},
		{
			name:    "amount and date: nearest date wins, within tolerance",
			entries: []recon.Entry{{AmountMinor: 500, Day: day}},
			movements: []recon.Movement{{ID: 1, AmountMinor: 500, Day: day - 2}, {ID: 2, AmountMinor: 500, Day: day + 1},
				{ID: 3, AmountMinor: 501, Day: day}},
			want: recon.Result{Matched: []recon.Match{{0, []int{1}, recon.ByAmountDate}}, UnmatchedMovements: []int{0, 2}},
		},
		{
			name:      "amount and date: outside the tolerance",
			entries:   []recon.Entry{{AmountMinor: 500, Day: day}},
			movements: []recon.Movement{{ID: 1, AmountMinor: 500, Day: day + 3}},
			want:      recon.Result{UnmatchedEntries: []int{0}, UnmatchedMovements: []int{0}},
		},
		{
			name:      "amount and date: the sign counts",
			entries:   []recon.Entry{{AmountMinor: -500, Day: day}},
			movements: []recon.Movement{{ID: 1, AmountMinor: 500, Day: day}},
			want:      recon.Result{UnmatchedEntries: []int{0}, UnmatchedMovements: []int{0}},
		},
		{
			name:    "equal amounts pair off by date, then id",
			entries: []recon.Entry{{AmountMinor: 7, Day: day + 1}, {AmountMinor: 7, Day: day}, {AmountMinor: 7, Day: day}},
			movements: []recon.Movement{{ID: 5, AmountMinor: 7, Day: day}, {ID: 2, AmountMinor: 7, Day: day},
				{ID: 9, AmountMinor: 7, Day: day + 1}},
			want: recon.Result{Matched: []recon.Match{{0, []int{2}, recon.ByAmountDate}, {1, []int{1}, recon.ByAmountDate},
				{2, []int{0}, recon.ByAmountDate}}},
		},
		{
			name:      "a movement matched by reference is not matched again",
			entries:   []recon.Entry{{AmountMinor: 100, Day: day, EndToEndID: "E1"}, {AmountMinor: 100, Day: day}},
			movements: []recon.Movement{{ID: 1, AmountMinor: 100, Day: day, EndToEndID: "E1"}},
			want:      recon.Result{Matched: []recon.Match{{0, []int{0}, recon.ByEndToEndID}}, UnmatchedEntries: []int{1}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := recon.Run(tc.entries, tc.movements, recon.DefaultToleranceDays)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("Run (-want, +got):\n%s", diff)
			}
		})
	}
}
