package money

import (
	"errors"
	"testing"

	"github.com/shopspring/decimal"
)

func TestParseDecimal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		err  error
	}{
		{"15235.5", "15235.5", nil},
		{"0", "0", nil},
		{"-12.30", "-12.3", nil},
		{"007", "7", nil},
		{"", "", ErrMalformed},
		{"-", "", ErrMalformed},
		{"1e5", "", ErrMalformed},
		{"+1", "", ErrMalformed},
		{" 1", "", ErrMalformed},
		{"1.", "", ErrMalformed},
		{".5", "", ErrMalformed},
		{"1.2.3", "", ErrMalformed},
		{"NaN", "", ErrMalformed},
		{"1,5", "", ErrMalformed},
		{"12345678901234567890123456789012345678901", "", ErrMalformed},
	} {
		got, err := ParseDecimal(tc.in)
		if !errors.Is(err, tc.err) {
			t.Errorf("ParseDecimal(%q) error = %v, want %v", tc.in, err, tc.err)
			continue
		}
		if err == nil && got.String() != tc.want {
			t.Errorf("ParseDecimal(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestParseSteps(t *testing.T) {
	five := decimal.NewFromInt(5)
	half := decimal.RequireFromString("0.5")
	for _, tc := range []struct {
		in   string
		step decimal.Decimal
		want int64
		err  error
	}{
		{"15235", five, 3047, nil},
		{"15236", five, 0, ErrNotMultiple},
		{"25", five, 5, nil},
		{"0", five, 0, ErrNotPositive},
		{"-5", five, 0, ErrNotPositive},
		{"12.5", half, 25, nil},
		{"12.25", half, 0, ErrNotMultiple},
		{"99999999999999999999", decimal.NewFromInt(1), 0, ErrTooLarge},
		{"46116860184273879035", five, 9223372036854775807, nil},
		{"46116860184273879040", five, 0, ErrTooLarge},
		{"9223372036854775807", decimal.NewFromInt(1), 9223372036854775807, nil},
	} {
		got, err := ParseSteps(tc.in, tc.step)
		if !errors.Is(err, tc.err) {
			t.Errorf("ParseSteps(%q, %s) error = %v, want %v", tc.in, tc.step, err, tc.err)
			continue
		}
		if err == nil && got != tc.want {
			t.Errorf("ParseSteps(%q, %s) = %d, want %d", tc.in, tc.step, got, tc.want)
		}
	}
}

func TestCurrencyAmounts(t *testing.T) {
	r := NewRegistry()
	cny, err := r.Lookup("CNY")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := cny.ParseAmount("1523.5"); err != nil || got != 152350 {
		t.Fatalf("ParseAmount(1523.5) = %d, %v; want 152350", got, err)
	}
	if _, err := cny.ParseAmount("0.001"); !errors.Is(err, ErrNotMultiple) {
		t.Fatalf("ParseAmount(0.001) error = %v, want ErrNotMultiple", err)
	}
	if got := cny.FormatAmount(-5); got != "-0.05" {
		t.Fatalf("FormatAmount(-5) = %q", got)
	}
	if _, err := r.Lookup("JPY"); !errors.Is(err, ErrUnknownCurency) {
		t.Fatalf("JPY known before it was added: %v", err)
	}
	if err := r.Add(Currency{Code: "JPY", Exponent: 0}); err != nil {
		t.Fatal(err)
	}
	jpy, _ := r.Lookup("JPY")
	if _, err := jpy.ParseAmount("10.5"); !errors.Is(err, ErrNotMultiple) {
		t.Fatalf("JPY accepted a fraction: %v", err)
	}
	if got := jpy.FormatAmount(1050); got != "1050" {
		t.Fatalf("JPY FormatAmount = %q", got)
	}
	for _, bad := range []string{"usd", "US", "USDX", "U1D"} {
		if err := r.Add(Currency{Code: bad, Exponent: 2}); err == nil {
			t.Errorf("Add(%q) accepted", bad)
		}
	}
}

func TestFormatStepsRoundTrip(t *testing.T) {
	step := decimal.RequireFromString("0.5")
	for _, n := range []int64{1, 2, 3, 30471, 1 << 40} {
		s := FormatSteps(n, step)
		back, err := ParseSteps(s, step)
		if err != nil || back != n {
			t.Fatalf("round trip %d -> %q -> %d, %v", n, s, back, err)
		}
	}
}

func TestAddSpec(t *testing.T) {
	r := NewRegistry()
	if err := r.AddSpec(" JPY:0, KRW:0 ,"); err != nil {
		t.Fatal(err)
	}
	for code, exp := range map[string]int32{"JPY": 0, "KRW": 0, "CNY": 2} {
		if c, err := r.Lookup(code); err != nil || c.Exponent != exp {
			t.Errorf("%s: %+v %v", code, c, err)
		}
	}
	for _, bad := range []string{"JPY", "jpy:0", "JPY:x", "JPY:9", "CNY:0", "EUR:2,XX:1"} {
		r := NewRegistry()
		if err := r.AddSpec(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
		if _, err := r.Lookup("EUR"); err == nil {
			t.Errorf("%q: a valid pair was added although another was refused", bad)
		}
	}
	if err := r.AddSpec(""); err != nil {
		t.Fatal(err)
	}
}
