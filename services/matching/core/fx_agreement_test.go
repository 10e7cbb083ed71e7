package core

import (
	"testing"

	"github.com/shopspring/decimal"
	"pgregory.net/rapid"

	"github.com/bcx-exchange/bcx/pkg/money"
	"github.com/bcx-exchange/bcx/services/settlement/fx"
)

// The core converts FX-funded orders with 128-bit integer arithmetic;
// settlement checks and documents the same rule with exact decimals
// (services/settlement/fx). Two implementations of one rule must agree on
// every input (both directions, any exponents, either rounding), or
// settlement would refuse conversions the core made.
func TestFXConvertAgreesWithSettlement(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := New(Limits{})
		be := int32(rapid.IntRange(0, 4).Draw(t, "baseExp"))
		qe := int32(rapid.IntRange(0, 4).Draw(t, "quoteExp"))
		base, quote := c.ensureCurrency("AAA", be), c.ensureCurrency("BBB", qe)
		coef := rapid.Int64Range(1, MaxFXRateCoef).Draw(t, "coef")
		r := fxRate{base: base, quote: quote, coef: coef}
		from := base
		fromC, toC := money.Currency{Code: "AAA", Exponent: be}, money.Currency{Code: "BBB", Exponent: qe}
		if rapid.Bool().Draw(t, "quoteToBase") {
			from, fromC, toC = quote, toC, fromC
		}
		amount := rapid.Int64Range(0, 1<<40).Draw(t, "amount")
		up := rapid.Bool().Draw(t, "memberPays")
		got, ok := c.convert(&r, from, amount, up)
		side := fx.MemberReceives
		if up {
			side = fx.MemberPays
		}
		want, err := fx.Convert(amount, fromC, toC, fx.Rate{Base: "AAA", Quote: "BBB", Rate: decimal.New(coef, -FXRateDecimals)}, side)
		if ok != (err == nil) || (ok && got != want) {
			t.Fatalf("core %d (ok %v), settlement %d (%v): amount %d, coef %d, exps %d/%d", got, ok, want, err, amount, coef, be, qe)
		}
	})
}
