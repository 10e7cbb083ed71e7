package fees_test

import (
	"errors"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/bcx-exchange/bcx/pkg/money"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/settlement/fees"
)

var (
	cny = money.Currency{Code: "CNY", Exponent: 2}
	jpy = money.Currency{Code: "JPY", Exponent: 0}
)

func rate(v, minimum string) *typev1.FeeRule {
	r := &typev1.FeeRule{Basis: typev1.FeeBasis_FEE_BASIS_RATE, Value: v}
	if minimum != "" {
		r.Minimum = &typev1.Money{Currency: "CNY", Amount: minimum}
	}
	return r
}

func perLot(v, minimum string) *typev1.FeeRule {
	r := rate(v, minimum)
	r.Basis = typev1.FeeBasis_FEE_BASIS_PER_LOT
	return r
}

func TestFee(t *testing.T) {
	for _, tc := range []struct {
		name           string
		rule           *typev1.FeeRule
		cur            money.Currency
		principalMinor int64
		lots           int64
		want           int64
	}{
		// Cotton: 5 lots of 5 t at 15,235 CNY/t = 380,875.00 CNY.
		{"rate, half a fen rounds up", rate("0.0002", ""), cny, 380_875_00, 5, 76_18}, // 7617.5 fen -> 7618
		{"rate, exact", rate("0.0003", ""), cny, 380_875_00, 5, 114_26},               // 11426.25 fen -> 11426
		{"rate, far below a fen", rate("0.00005", ""), cny, 1_00, 1, 0},               // 0.005 fen -> 0
		{"rate, exactly half a fen", rate("0.05", ""), cny, 10, 1, 1},                 // 0.5 fen -> 1 fen
		{"rate, just under half", rate("0.0499999999", ""), cny, 10, 1, 0},
		{"rate, 1.5 fen", rate("0.05", ""), cny, 30, 1, 2},
		{"rate, 2.5 fen rounds up (not to even)", rate("0.05", ""), cny, 50, 1, 3},
		{"rate below minimum", rate("0.0001", "5.00"), cny, 10_000_00, 1, 5_00},
		{"rate above minimum", rate("0.0001", "5.00"), cny, 1_000_000_00, 1, 100_00},
		{"zero rate, minimum", rate("0", "1.00"), cny, 1_000_00, 1, 1_00},
		{"per lot", perLot("3.50", ""), cny, 380_875_00, 5, 17_50},
		{"per lot below minimum", perLot("1.00", "10.00"), cny, 380_875_00, 5, 10_00},
		{"per lot, zero lots", perLot("1.00", ""), cny, 0, 0, 0},
		{"rate in yen", &typev1.FeeRule{Basis: typev1.FeeBasis_FEE_BASIS_RATE, Value: "0.0003"}, jpy, 1_234_567, 1, 370},             // 370.3701
		{"rate in yen, half", &typev1.FeeRule{Basis: typev1.FeeBasis_FEE_BASIS_RATE, Value: "0.0005"}, jpy, 1_000_001, 1, 500},       // 500.0005
		{"rate in yen, half exact", &typev1.FeeRule{Basis: typev1.FeeBasis_FEE_BASIS_RATE, Value: "0.0005"}, jpy, 1_001_000, 1, 501}, // 500.5
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, field, err := fees.ParseRule(tc.rule, tc.cur)
			if err != nil {
				t.Fatalf("ParseRule: %s: %v", field, err)
			}
			got, err := r.Fee(tc.principalMinor, tc.lots)
			if err != nil || got != tc.want {
				t.Fatalf("Fee(%d, %d) = %d, %v; want %d", tc.principalMinor, tc.lots, got, err, tc.want)
			}
		})
	}
}

func TestParseRuleRefuses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rule  *typev1.FeeRule
		field string
		want  error
	}{
		{"no basis", &typev1.FeeRule{Value: "0.1"}, "basis", fees.ErrBasis},
		{"negative rate", rate("-0.0001", ""), "value", fees.ErrValue},
		{"rate over 10%", rate("0.11", ""), "value", fees.ErrValue},
		{"rate as float text", rate("1e-4", ""), "value", fees.ErrValue},
		{"rate too fine", rate("0.00000000001", ""), "value", fees.ErrValue},
		{"per lot below a fen", perLot("0.001", ""), "value", fees.ErrValue},
		{"per lot negative", perLot("-1", ""), "value", fees.ErrValue},
		{"minimum in another currency", &typev1.FeeRule{Basis: typev1.FeeBasis_FEE_BASIS_RATE, Value: "0.0001",
			Minimum: &typev1.Money{Currency: "USD", Amount: "1"}}, "minimum.currency", fees.ErrCurrency},
		{"minimum below a fen", rate("0.0001", "0.001"), "minimum.amount", fees.ErrMinimum},
		{"minimum negative", rate("0.0001", "-1"), "minimum.amount", fees.ErrMinimum},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, field, err := fees.ParseRule(tc.rule, cny)
			if !errors.Is(err, tc.want) || field != tc.field {
				t.Fatalf("ParseRule = %q, %v; want %q, %v", field, err, tc.field, tc.want)
			}
		})
	}
}

func TestPrincipalAndWeightAdjustment(t *testing.T) {
	d := decimal.RequireFromString
	p, err := fees.Principal(d("15235"), d("25"), cny)
	if err != nil || p != 380_875_00 {
		t.Fatalf("Principal = %d, %v", p, err)
	}
	if _, err := fees.Principal(d("0.015"), d("1"), cny); err == nil {
		t.Fatal("a principal finer than a fen was accepted")
	}
	for _, tc := range []struct {
		delivered, traded, price string
		want                     int64
	}{
		{"25.123", "25", "15235", 1_873_91},  // 0.123 t x 15235 = 1873.905 CNY -> 1873.91
		{"24.877", "25", "15235", -1_873_91}, // symmetric
		{"25", "25", "15235", 0},             // exact weight
		{"25.001", "25", "15235.5", 15_24},   // 15.2355 -> 15.24
		{"24.999", "25", "15235.5", -15_24},  // -15.2355 -> -15.24 (away from zero)
		{"10.0005", "10", "1", 0},            // 0.0005 -> 0.00 (0.05 fen rounds down)
		{"10.005", "10", "1", 1},             // 0.005 -> 0.01 (half a fen rounds away from zero)
		{"9.995", "10", "1", -1},             // -0.005 -> -0.01
	} {
		got, err := fees.WeightAdjustment(d(tc.delivered), d(tc.traded), d(tc.price), cny)
		if err != nil || got != tc.want {
			t.Errorf("WeightAdjustment(%s, %s, %s) = %d, %v; want %d", tc.delivered, tc.traded, tc.price, got, err, tc.want)
		}
	}
}
