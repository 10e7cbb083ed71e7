package bankstatement

import (
	"errors"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func TestParseISOAmount(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "8.85", want: "8.85"},
		{in: "27.00", want: "27.00"},
		{in: "200000", want: "200000"},
		{in: "0", want: "0"},
		{in: " 12.5\n", want: "12.5"},
		{in: "+12.5", want: "12.5"},
		{in: ".5", want: "0.5"},
		{in: "5.", want: "5"},
		{in: "1.12345", want: "1.12345"},
		{in: "0001.10", want: "1.10"},
		// Trailing zeros are not significant digits (xs:fractionDigits
		// constrains the value), so a schema-valid amount is not refused.
		{in: "1.1234500", want: "1.1234500"},
		{in: "123456789012345678", want: "123456789012345678"},
		{in: "1.123456", err: "6 fraction digits; at most 5"},
		{in: "0.000001", err: "6 fraction digits"},
		{in: "1234567890123456789", err: "19 digits; at most 18"},
		{in: "-1.00", err: "negative amount"},
		{in: "-0", err: "negative amount"},
		{in: "1e3", err: "malformed amount"},
		{in: "1,00", err: "malformed amount"},
		{in: "1 000.00", err: "malformed amount"},
		{in: "1.2.3", err: "malformed amount"},
		{in: "0x10", err: "malformed amount"},
		{in: ".", err: "malformed amount"},
		{in: "+", err: "malformed amount"},
		{in: "", err: "empty amount"},
		{in: "NaN", err: "malformed amount"},
	}
	for _, tt := range tests {
		got, err := parseISOAmount(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseISOAmount(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || FormatAmount(got) != tt.want {
			t.Errorf("parseISOAmount(%q) = %q, %v; want %q", tt.in, FormatAmount(got), err, tt.want)
		}
	}
}

func TestParseSwiftAmount(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		// betterplace amount_formats.sta, one :60F: per line
		{in: "380115,12", want: "380115.12"},
		{in: "380115,1", want: "380115.1"},
		{in: "380115,", want: "380115"},
		{in: "0,12", want: "0.12"},
		{in: "00,12", want: "0.12"},
		{in: "001,12", want: "1.12"},
		{in: "000000000147,64", want: "147.64"},
		{in: "1,12345", want: "1.12345"},
		{in: "1,123456", err: "6 fraction digits"},
		{in: "1234567890123456", err: "longer than 15"},
		{in: "12.50", err: "uses '.'"},
		{in: "1250", err: "no decimal comma"},
		{in: ",50", err: "malformed"},
		{in: "1,2,3", err: "malformed"},
		{in: "", err: "missing amount"},
	}
	for _, tt := range tests {
		got, err := parseSwiftAmount(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseSwiftAmount(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || FormatAmount(got) != tt.want {
			t.Errorf("parseSwiftAmount(%q) = %q, %v; want %q", tt.in, FormatAmount(got), err, tt.want)
		}
	}
}

func TestMinorUnits(t *testing.T) {
	tests := []struct {
		amount string
		exp    int32
		want   int64
		exact  bool
	}{
		{"8.85", 2, 885, true},
		{"27.00", 2, 2700, true},
		{"-1237628.23", 2, -123762823, true},
		{"200000", 2, 20000000, true},
		{"2700", 0, 2700, true},
		{"1.500", 2, 150, true}, // trailing zeros are exact
		{"0.005", 2, 0, false},  // half a fen is not a ledger amount
		{"1.5", 0, 0, false},    // no fractional yen
		{"1.2345", 3, 0, false},
		{"92233720368547758.07", 2, 9223372036854775807, true},
		{"92233720368547758.08", 2, 0, false}, // int64 overflow
		{"1", -1, 0, false},
	}
	for _, tt := range tests {
		got, err := MinorUnits(dec(tt.amount), tt.exp)
		if tt.exact {
			if err != nil || got != tt.want {
				t.Errorf("MinorUnits(%s, %d) = %d, %v; want %d", tt.amount, tt.exp, got, err, tt.want)
			}
		} else if !errors.Is(err, ErrInexact) {
			t.Errorf("MinorUnits(%s, %d) = %d, %v; want ErrInexact", tt.amount, tt.exp, got, err)
		}
	}
	e := Entry{Amount: dec("12.34")}
	if m, err := e.AmountMinor(2); err != nil || m != 1234 {
		t.Errorf("Entry.AmountMinor = %d, %v", m, err)
	}
	b := Balance{Amount: dec("-0.01")}
	if m, err := b.AmountMinor(2); err != nil || m != -1 {
		t.Errorf("Balance.AmountMinor = %d, %v", m, err)
	}
	for code, want := range map[string]int32{"CNY": 2, "CNH": 2, "USD": 2, "JPY": 0, "KRW": 0, "BHD": 3} {
		if got, ok := CurrencyExponent(code); !ok || got != want {
			t.Errorf("CurrencyExponent(%s) = %d, %v", code, got, ok)
		}
	}
	if _, ok := CurrencyExponent("XYZ"); ok {
		t.Error("CurrencyExponent(XYZ) is known")
	}
}

func TestValidCurrency(t *testing.T) {
	for _, c := range []string{"CNY", "CNH", "EUR", "DEM"} {
		if !validCurrency(c) {
			t.Errorf("validCurrency(%q) = false", c)
		}
	}
	for _, c := range []string{"", "eur", "EU", "EURO", "E1R", "ÄUR"} {
		if validCurrency(c) {
			t.Errorf("validCurrency(%q) = true", c)
		}
	}
}
