package core

import (
	"testing"

	"github.com/shopspring/decimal"
	"pgregory.net/rapid"

	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/settlement/fees"
)

// The core charges fees with int64 arithmetic on the hot path; settlement
// validates and documents the same rule with exact decimals
// (services/settlement/fees). Two implementations of one rule must agree on
// every input, or settlement would book a fee the core did not reserve for.
func TestFeeAgreesWithSettlement(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		notional := rapid.Int64Range(0, 1<<40).Draw(t, "notional")
		lots := rapid.Int64Range(1, 1<<20).Draw(t, "lots")
		minimum := rapid.Int64Range(0, 100_000).Draw(t, "minimum")
		var core FeeRule
		var want fees.Rule
		if rapid.Bool().Draw(t, "rate") {
			// Rates of up to 10 decimals, at most 10% (fees.MaxRate).
			rateE10 := rapid.Int64Range(0, 1_000_000_000).Draw(t, "rateE10")
			core = FeeRule{Basis: FeeRate, RateE12: rateE10 * 100, MinMinor: minimum}
			want = fees.Rule{Basis: typev1.FeeBasis_FEE_BASIS_RATE, Rate: decimal.New(rateE10, -10), MinimumMinor: minimum}
		} else {
			perLot := rapid.Int64Range(0, 1_000_000).Draw(t, "perLot")
			core = FeeRule{Basis: FeePerLot, PerLotMinor: perLot, MinMinor: minimum}
			want = fees.Rule{Basis: typev1.FeeBasis_FEE_BASIS_PER_LOT, PerLotMinor: perLot, MinimumMinor: minimum}
		}
		w, err := want.Fee(notional, lots)
		if err != nil {
			t.Fatal(err)
		}
		if got := core.fee(notional, lots); got != w {
			t.Fatalf("core fee %d, settlement fee %d (notional %d, lots %d, rule %+v)", got, w, notional, lots, core)
		}
		// And the reservation always covers it.
		if m, ok := core.maxFee(notional, lots); !ok || m < w {
			t.Fatalf("maxFee %d (ok %v) below the fee %d", m, ok, w)
		}
	})
}
