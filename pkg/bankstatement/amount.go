package bankstatement

import (
	"errors"
	"fmt"
	"strings"

	"github.com/shopspring/decimal"
)

// ISO 20022 ActiveOrHistoricCurrencyAndAmount: xs:decimal with
// fractionDigits 5, totalDigits 18, minInclusive 0.
const (
	maxFractionDigits = 5
	maxTotalDigits    = 18
	// SWIFT "15d": at most 15 characters including the decimal comma.
	maxSwiftAmountLen = 15
)

// parseISOAmount parses an ISO 20022 amount. It accepts exactly the xs:decimal
// lexical forms the schema allows ("12", "12.50", "+12.5", ".5"), surrounding
// whitespace included, and refuses negative numbers, exponents, thousands
// separators and more than 5 significant fraction digits or 18 significant
// digits. Like a schema validator it judges digits by value, so trailing
// fraction zeros ("1.000000") do not count against the limit.
func parseISOAmount(s string) (decimal.Decimal, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return decimal.Decimal{}, errors.New("empty amount")
	}
	if s[0] == '-' {
		return decimal.Decimal{}, fmt.Errorf("negative amount %q: amounts are unsigned, the direction is CdtDbtInd", s)
	}
	body := strings.TrimPrefix(s, "+")
	intPart, frac, _ := strings.Cut(body, ".")
	if intPart == "" && frac == "" {
		return decimal.Decimal{}, fmt.Errorf("malformed amount %q", s)
	}
	if !allDigits(intPart) || !allDigits(frac) {
		return decimal.Decimal{}, fmt.Errorf("malformed amount %q: only digits and one '.' are allowed", s)
	}
	if err := checkDigits(s, intPart, frac); err != nil {
		return decimal.Decimal{}, err
	}
	return newDecimal(intPart, frac)
}

// parseSwiftAmount parses a SWIFT "15d" amount: digits with a mandatory
// decimal comma ("1234,5", "300,"), as MT940 writes them.
func parseSwiftAmount(s string) (decimal.Decimal, error) {
	if s == "" {
		return decimal.Decimal{}, errors.New("missing amount")
	}
	if len(s) > maxSwiftAmountLen {
		return decimal.Decimal{}, fmt.Errorf("amount %q is longer than 15 characters", s)
	}
	intPart, frac, ok := strings.Cut(s, ",")
	if !ok {
		if strings.Contains(s, ".") {
			return decimal.Decimal{}, fmt.Errorf("amount %q uses '.'; MT940 requires a decimal comma", s)
		}
		return decimal.Decimal{}, fmt.Errorf("amount %q has no decimal comma", s)
	}
	if intPart == "" || !allDigits(intPart) || !allDigits(frac) {
		return decimal.Decimal{}, fmt.Errorf("malformed amount %q", s)
	}
	if err := checkDigits(s, intPart, frac); err != nil {
		return decimal.Decimal{}, err
	}
	return newDecimal(intPart, frac)
}

func checkDigits(s, intPart, frac string) error {
	sigFrac := strings.TrimRight(frac, "0")
	if len(sigFrac) > maxFractionDigits {
		return fmt.Errorf("amount %q has %d fraction digits; at most %d are allowed", s, len(sigFrac), maxFractionDigits)
	}
	if n := len(strings.TrimLeft(intPart, "0")) + len(sigFrac); n > maxTotalDigits {
		return fmt.Errorf("amount %q has %d digits; at most %d are allowed", s, n, maxTotalDigits)
	}
	return nil
}

// newDecimal keeps the number of fraction digits as written, so that "27.00"
// prints back as "27.00".
func newDecimal(intPart, frac string) (decimal.Decimal, error) {
	if intPart == "" {
		intPart = "0"
	}
	str := intPart
	if frac != "" {
		str += "." + frac
	}
	return decimal.NewFromString(str)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// FormatAmount prints an amount with the fraction digits it was written with
// (never in exponent notation): "27.00", "-1234718.36", "300".
func FormatAmount(d decimal.Decimal) string {
	if e := d.Exponent(); e < 0 {
		return d.StringFixed(-e)
	}
	return d.StringFixed(0)
}

// ErrInexact is returned by MinorUnits when an amount cannot be represented
// exactly as an int64 count of minor units.
var ErrInexact = errors.New("amount not exact in minor units")

// MinorUnits converts an amount to an integer number of minor units of a
// currency whose minor unit has the given exponent (2 for CNY, USD, EUR; 0
// for JPY, KRW; 3 for BHD). The ledger keeps int64 minor units, so the
// conversion must be exact: an amount with more significant fraction digits
// than the currency has (0.005 CNY) or beyond int64 fails with ErrInexact
// rather than being rounded.
func MinorUnits(amount decimal.Decimal, exponent int32) (int64, error) {
	if exponent < 0 || exponent > 18 {
		return 0, fmt.Errorf("%w: currency exponent %d out of range", ErrInexact, exponent)
	}
	shifted := amount.Shift(exponent)
	if !shifted.IsInteger() {
		return 0, fmt.Errorf("%w: %s has more than %d fraction digits", ErrInexact, FormatAmount(amount), exponent)
	}
	bi := shifted.BigInt()
	if !bi.IsInt64() {
		return 0, fmt.Errorf("%w: %s overflows int64 minor units", ErrInexact, FormatAmount(amount))
	}
	return bi.Int64(), nil
}

// currencyExponents lists ISO 4217 minor-unit exponents for the currencies a
// clearing bank is likely to report, plus the offshore renminbi CNH. Codes not
// listed are not assumed to have two decimals: the caller's configuration
// decides.
var currencyExponents = map[string]int32{
	"CNY": 2, "CNH": 2, "USD": 2, "EUR": 2, "HKD": 2, "GBP": 2, "CHF": 2,
	"SGD": 2, "AUD": 2, "CAD": 2, "NZD": 2, "SEK": 2, "NOK": 2, "DKK": 2,
	"PLN": 2, "CZK": 2, "HUF": 2, "RUB": 2, "INR": 2, "MYR": 2, "THB": 2,
	"IDR": 2, "PHP": 2, "TWD": 2, "MXN": 2, "BRL": 2, "ZAR": 2, "AED": 2,
	"SAR": 2, "TRY": 2, "ILS": 2, "DEM": 2,
	"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "UGX": 0, "XAF": 0, "XOF": 0,
	"BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3, "LYD": 3, "IQD": 3,
}

// CurrencyExponent returns the ISO 4217 minor-unit exponent of a currency
// code known to this package, for use with MinorUnits.
func CurrencyExponent(code string) (int32, bool) {
	e, ok := currencyExponents[code]
	return e, ok
}

// validCurrency checks the ISO 4217 alphabetic code shape: three upper-case
// ASCII letters. Whether the code is assigned is not checked: banks report
// historic (DEM) and non-ISO (CNH) codes.
func validCurrency(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}
