package fx_test

import (
	"errors"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/bcx-exchange/bcx/pkg/money"
	"github.com/bcx-exchange/bcx/services/settlement/fx"
)

var (
	cny = money.Currency{Code: "CNY", Exponent: 2}
	usd = money.Currency{Code: "USD", Exponent: 2}
	jpy = money.Currency{Code: "JPY", Exponent: 0}
)

func TestConvert(t *testing.T) {
	usdcny := fx.Rate{Base: "USD", Quote: "CNY", Rate: decimal.RequireFromString("7.1234")}
	cnyusd := fx.Rate{Base: "CNY", Quote: "USD", Rate: decimal.RequireFromString("0.1404")}
	usdjpy := fx.Rate{Base: "USD", Quote: "JPY", Rate: decimal.RequireFromString("151.37")}
	for _, tc := range []struct {
		name     string
		amount   int64
		from, to money.Currency
		rate     fx.Rate
		side     fx.Side
		want     int64
	}{
		// 17,500.00 USD x 7.1234 = 124,659.50 CNY exactly: no rounding either way.
		{"exact", 17_500_00, usd, cny, usdcny, fx.MemberPays, 124_659_50},
		{"exact, receive", 17_500_00, usd, cny, usdcny, fx.MemberReceives, 124_659_50},
		// 0.01 USD x 7.1234 = 0.071234 CNY: pays 0.08, receives 0.07.
		{"one cent, pays up", 1, usd, cny, usdcny, fx.MemberPays, 8},
		{"one cent, receives down", 1, usd, cny, usdcny, fx.MemberReceives, 7},
		// 17,512.34 USD x 7.1234 = 124,747.403 CNY (124747.4029956 -> .41 / .40)
		{"fraction, pays up", 17_512_34, usd, cny, usdcny, fx.MemberPays, 124_747_41},
		{"fraction, receives down", 17_512_34, usd, cny, usdcny, fx.MemberReceives, 124_747_40},
		// Dividing by a USD/CNY rate: 100.00 CNY / 7.1234 = 14.0382402... USD.
		{"inverse, pays up", 100_00, cny, usd, usdcny, fx.MemberPays, 14_04},
		{"inverse, receives down", 100_00, cny, usd, usdcny, fx.MemberReceives, 14_03},
		// A CNY/USD rate multiplies: 100.00 CNY x 0.1404 = 14.04 USD exactly.
		{"quoted the other way", 100_00, cny, usd, cnyusd, fx.MemberPays, 14_04},
		// Zero-decimal currency: 12.34 USD x 151.37 = 1867.9058 JPY.
		{"to yen, pays up", 12_34, usd, jpy, usdjpy, fx.MemberPays, 1868},
		{"to yen, receives down", 12_34, usd, jpy, usdjpy, fx.MemberReceives, 1867},
		{"from yen", 1868, jpy, usd, usdjpy, fx.MemberReceives, 12_34}, // 12.3406...
		{"zero", 0, usd, cny, usdcny, fx.MemberPays, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := fx.Convert(tc.amount, tc.from, tc.to, tc.rate, tc.side)
			if err != nil || got != tc.want {
				t.Fatalf("Convert(%d %s -> %s) = %d, %v; want %d", tc.amount, tc.from.Code, tc.to.Code, got, err, tc.want)
			}
		})
	}
	if _, err := fx.Convert(1, usd, jpy, usdcny, fx.MemberPays); !errors.Is(err, fx.ErrPair) {
		t.Fatalf("wrong pair: %v", err)
	}
	if _, err := fx.Convert(-1, usd, cny, usdcny, fx.MemberPays); !errors.Is(err, fx.ErrNegative) {
		t.Fatalf("negative: %v", err)
	}
}

// The exchange never loses on a round trip: converting what a member pays
// and back never yields more than it started with.
func TestConvertNeverFavoursTheMember(t *testing.T) {
	r := fx.Rate{Base: "USD", Quote: "CNY", Rate: decimal.RequireFromString("7.1234")}
	for amt := int64(0); amt < 20000; amt += 7 {
		paid, _ := fx.Convert(amt, usd, cny, r, fx.MemberPays)      // CNY the member pays for amt USD
		back, _ := fx.Convert(paid, cny, usd, r, fx.MemberReceives) // USD it would get for that CNY
		if back > amt {
			t.Fatalf("%d USD cost %d CNY which buys back %d USD", amt, paid, back)
		}
		recv, _ := fx.Convert(amt, usd, cny, r, fx.MemberReceives)
		if recv > paid || paid-recv > 1 {
			t.Fatalf("%d USD: pays %d, receives %d", amt, paid, recv)
		}
	}
}

func TestParseRate(t *testing.T) {
	for _, bad := range []string{"0", "-7.1", "7,1", "1e3", "7.12345678901", ""} {
		if _, err := fx.ParseRate(bad); !errors.Is(err, fx.ErrRate) {
			t.Errorf("ParseRate(%q) = %v", bad, err)
		}
	}
	if d, err := fx.ParseRate("7.1234"); err != nil || d.String() != "7.1234" {
		t.Fatalf("ParseRate = %v, %v", d, err)
	}
}
