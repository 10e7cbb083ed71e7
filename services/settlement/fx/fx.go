// Package fx converts an amount from one currency to another at a published
// rate, with the exchange's rounding rule.
//
// The rule: a conversion never gives a member more than the exact value, and
// never charges it less. When a member pays (its obligation in the trade
// currency is funded from another currency), the amount taken from it is
// rounded UP to the funding currency's minor unit; when a member receives
// (its proceeds are credited in another currency), the amount credited is
// rounded DOWN. The at most one minor unit of difference stays on the
// exchange's FX position accounts. Arithmetic is exact (math/big) whichever
// way the rate is quoted: a USD/CNY rate converts USD to CNY by multiplying
// and CNY to USD by dividing.
package fx

import (
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/shopspring/decimal"

	"github.com/bcx-exchange/bcx/pkg/money"
)

// Rate is the number of Quote units per one Base unit ("USD/CNY 7.1234").
type Rate struct {
	Base, Quote string
	Rate        decimal.Decimal
}

// MaxRateDecimals bounds the fraction digits of a published rate.
const MaxRateDecimals = 10

// MaxRate bounds a published rate from above (exclusive), as the matching
// core does: a million units of quote per base covers every pair traded.
var MaxRate = decimal.NewFromInt(1_000_000)

// TimeFits reports whether t is representable as int64 nanoseconds, as
// rates' windows are stored.
func TimeFits(t time.Time) bool { return t.Year() >= 1678 && t.Year() <= 2261 }

// Errors.
var (
	ErrRate     = errors.New("invalid FX rate")
	ErrPair     = errors.New("rate does not convert between these currencies")
	ErrNegative = errors.New("amount to convert is negative")
	ErrOverflow = errors.New("converted amount overflows int64")
)

// ParseRate validates a decimal rate: positive, at most MaxRateDecimals
// fraction digits.
func ParseRate(s string) (decimal.Decimal, error) {
	d, err := money.ParseDecimal(s)
	if err != nil {
		return decimal.Decimal{}, fmt.Errorf("%w: %v", ErrRate, err)
	}
	if !d.IsPositive() {
		return decimal.Decimal{}, fmt.Errorf("%w: %s must be positive", ErrRate, s)
	}
	if !d.Equal(d.Round(MaxRateDecimals)) {
		return decimal.Decimal{}, fmt.Errorf("%w: %s has more than %d decimals", ErrRate, s, MaxRateDecimals)
	}
	return d, nil
}

// Side says who the conversion is for, which decides the rounding.
type Side int

const (
	// MemberPays rounds up: the member pays at least the exact value.
	MemberPays Side = iota + 1
	// MemberReceives rounds down: the member receives at most the exact value.
	MemberReceives
)

// Convert returns amountMinor of from expressed in minor units of to, at r,
// rounded for side.
func Convert(amountMinor int64, from, to money.Currency, r Rate, side Side) (int64, error) {
	if amountMinor < 0 {
		return 0, ErrNegative
	}
	if !r.Rate.IsPositive() {
		return 0, ErrRate
	}
	// value in to-minor = amount / 10^fe * rate * 10^te, or / rate.
	num := big.NewInt(amountMinor)
	den := big.NewInt(1)
	coef, exp := r.Rate.Coefficient(), int64(r.Rate.Exponent())
	switch {
	case r.Base == from.Code && r.Quote == to.Code:
		num.Mul(num, coef)
		exp += int64(to.Exponent) - int64(from.Exponent)
	case r.Base == to.Code && r.Quote == from.Code:
		den.Mul(den, coef)
		exp = -exp + int64(to.Exponent) - int64(from.Exponent)
	default:
		return 0, fmt.Errorf("%w: %s/%s for %s to %s", ErrPair, r.Base, r.Quote, from.Code, to.Code)
	}
	p := new(big.Int).Exp(big.NewInt(10), big.NewInt(abs(exp)), nil)
	if exp >= 0 {
		num.Mul(num, p)
	} else {
		den.Mul(den, p)
	}
	q, rem := new(big.Int).QuoRem(num, den, new(big.Int))
	if side == MemberPays && rem.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() {
		return 0, ErrOverflow
	}
	return q.Int64(), nil
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}
