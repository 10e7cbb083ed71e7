// Package fees computes the fee one side of a trade pays, from the
// instrument's fee rule, exactly as the matching core does.
//
// The core computes the fee of every fill (so that a buyer's reservation
// covers it) and reports it on the trade event; settlement books what the
// core reported. This package is the same function, for validating fee
// schedules and for tests. The rule, written down once:
//
//   - FEE_BASIS_RATE: fee = principal x rate, where principal = price x
//     quantity in minor units of the instrument's currency (always whole:
//     listing guarantees tick x lot is a whole minor unit). The product is
//     rounded to the minor unit half up (0.5 fen becomes 1 fen; fees are
//     never negative, so half up and half away from zero agree).
//   - FEE_BASIS_PER_LOT: fee = value x lots; value is an amount in the
//     instrument's currency with no more decimals than its minor unit, so the
//     product is exact.
//   - Then the minimum: fee = max(fee, minimum).
//
// All arithmetic is exact (math/big); nothing passes through a float.
package fees

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/shopspring/decimal"

	"github.com/bcx-exchange/bcx/pkg/money"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
)

// MaxRate bounds a rate fee: 10% of the trade's value is already far beyond
// any exchange's fee; a larger number is a typing error.
var MaxRate = decimal.New(1, -1)

// MaxRateDecimals bounds the fraction digits of a rate ("0.00012345").
const MaxRateDecimals = 10

// Rule is a validated fee rule for one side, in minor units.
type Rule struct {
	Basis typev1.FeeBasis
	// Rate is the fraction of the principal (FEE_BASIS_RATE).
	Rate decimal.Decimal
	// PerLotMinor is the amount per lot (FEE_BASIS_PER_LOT).
	PerLotMinor int64
	// MinimumMinor is the least fee per trade and side.
	MinimumMinor int64
}

// Errors, each wrapped with the offending value.
var (
	ErrBasis    = errors.New("fee basis must be FEE_BASIS_RATE or FEE_BASIS_PER_LOT")
	ErrValue    = errors.New("invalid fee value")
	ErrMinimum  = errors.New("invalid fee minimum")
	ErrCurrency = errors.New("fee minimum is not in the instrument's currency")
	ErrOverflow = errors.New("fee overflows int64 minor units")
)

// ParseRule validates a rule for an instrument quoted in cur. It returns the
// field at fault ("value", "minimum.amount", ...) with the error.
func ParseRule(r *typev1.FeeRule, cur money.Currency) (Rule, string, error) {
	if r == nil {
		return Rule{}, "", fmt.Errorf("%w: missing", ErrBasis)
	}
	out := Rule{Basis: r.Basis}
	switch r.Basis {
	case typev1.FeeBasis_FEE_BASIS_RATE:
		d, err := money.ParseDecimal(r.Value)
		if err != nil {
			return Rule{}, "value", fmt.Errorf("%w: %v", ErrValue, err)
		}
		if d.IsNegative() || d.GreaterThan(MaxRate) {
			return Rule{}, "value", fmt.Errorf("%w: rate %s must be between 0 and %s", ErrValue, r.Value, MaxRate)
		}
		if -d.Exponent() > MaxRateDecimals && !d.Equal(d.Round(MaxRateDecimals)) {
			return Rule{}, "value", fmt.Errorf("%w: rate %s has more than %d decimals", ErrValue, r.Value, MaxRateDecimals)
		}
		out.Rate = d
	case typev1.FeeBasis_FEE_BASIS_PER_LOT:
		v, err := cur.ParseAmount(r.Value)
		if err != nil || v < 0 {
			return Rule{}, "value", fmt.Errorf("%w: %q is not a non-negative %s amount (%v)", ErrValue, r.Value, cur.Code, err)
		}
		out.PerLotMinor = v
	default:
		return Rule{}, "basis", fmt.Errorf("%w: got %v", ErrBasis, r.Basis)
	}
	if r.Minimum != nil && r.Minimum.Amount != "" {
		if r.Minimum.Currency != cur.Code {
			return Rule{}, "minimum.currency", fmt.Errorf("%w: %q, want %s", ErrCurrency, r.Minimum.Currency, cur.Code)
		}
		v, err := cur.ParseAmount(r.Minimum.Amount)
		if err != nil || v < 0 {
			return Rule{}, "minimum.amount", fmt.Errorf("%w: %q is not a non-negative %s amount (%v)", ErrMinimum, r.Minimum.Amount, cur.Code, err)
		}
		out.MinimumMinor = v
	}
	return out, "", nil
}

// Fee returns the fee for one side of a trade of principalMinor (price x
// quantity in minor units) and lots lots, by the rule in the package
// documentation.
func (r Rule) Fee(principalMinor, lots int64) (int64, error) {
	if principalMinor < 0 || lots < 0 {
		return 0, fmt.Errorf("negative principal %d or lots %d", principalMinor, lots)
	}
	var fee *big.Int
	switch r.Basis {
	case typev1.FeeBasis_FEE_BASIS_RATE:
		fee = MulRoundHalfUp(big.NewInt(principalMinor), r.Rate)
	case typev1.FeeBasis_FEE_BASIS_PER_LOT:
		fee = new(big.Int).Mul(big.NewInt(r.PerLotMinor), big.NewInt(lots))
	default:
		return 0, ErrBasis
	}
	if !fee.IsInt64() {
		return 0, ErrOverflow
	}
	return max(fee.Int64(), r.MinimumMinor), nil
}

// MulRoundHalfUp returns n x d rounded to an integer, halves away from zero
// (for the non-negative amounts of fees: half up).
func MulRoundHalfUp(n *big.Int, d decimal.Decimal) *big.Int {
	num := new(big.Int).Mul(n, d.Coefficient())
	exp := d.Exponent()
	if exp >= 0 {
		return num.Mul(num, pow10(int64(exp)))
	}
	return divRoundHalfAway(num, pow10(int64(-exp)))
}

// divRoundHalfAway divides num by a positive den and rounds half away from
// zero.
func divRoundHalfAway(num, den *big.Int) *big.Int {
	neg := num.Sign() < 0
	a := new(big.Int).Abs(num)
	q, r := new(big.Int).QuoRem(a, den, new(big.Int))
	if r.Mul(r, big.NewInt(2)).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if neg {
		q.Neg(q)
	}
	return q
}

func pow10(n int64) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(n), nil) }

// Principal returns price x quantity in minor units of cur, exactly. price is
// per unit of quantity; the product must be a whole number of minor units.
func Principal(price, quantity decimal.Decimal, cur money.Currency) (int64, error) {
	return money.Steps(price.Mul(quantity), cur.MinorUnit())
}

// WeightAdjustment is the over/under-weight (溢短) cash adjustment: the
// difference between delivered and traded weight times the trade's price per
// unit, in minor units, rounded half away from zero (so an overweight and an
// underweight of the same size move the same amount). Positive means the
// buyer pays the seller.
func WeightAdjustment(delivered, traded, pricePerUnit decimal.Decimal, cur money.Currency) (int64, error) {
	v := delivered.Sub(traded).Mul(pricePerUnit).Shift(cur.Exponent)
	q := divRoundHalfAway(new(big.Int).Mul(v.Coefficient(), pow10(int64(max(v.Exponent(), 0)))), pow10(int64(max(-v.Exponent(), 0))))
	if !q.IsInt64() {
		return 0, ErrOverflow
	}
	return q.Int64(), nil
}
