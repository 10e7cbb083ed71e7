// Package money converts between the API's decimal strings and the exchange's
// integers: currency minor units, price ticks and lot counts.
//
// Everything inside bcx is an int64 count of some step (a fen, a tick of 5 CNY/t,
// a lot of 5 t). The API speaks decimal strings. This package is the one place
// they meet, and it never rounds: a value that is not an exact multiple of its
// step is an error, and the caller turns that into InvalidArgument. Where a
// computation must round (fees, FX), the rounding happens in the package that
// owns the rule, on shopspring/decimal values, and says which rule it uses.
package money

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/shopspring/decimal"
)

// Errors a parse can return; wrap-checked with errors.Is.
var (
	ErrMalformed      = errors.New("not a decimal number")
	ErrNegative       = errors.New("must not be negative")
	ErrNotPositive    = errors.New("must be positive")
	ErrNotMultiple    = errors.New("not a multiple of the step")
	ErrTooLarge       = errors.New("too large")
	ErrUnknownCurency = errors.New("unknown currency")
)

// maxDecimalLen bounds what we are willing to parse: an int64 has 19 digits, and
// no exchange quantity needs more than a handful of fraction digits.
const maxDecimalLen = 40

// ParseDecimal parses a plain decimal string: an optional '-', digits, and an
// optional '.' followed by digits. Exponents, '+', spaces, "NaN" and the like
// are refused, so that what the client sent is exactly what we read.
func ParseDecimal(s string) (decimal.Decimal, error) {
	if len(s) == 0 || len(s) > maxDecimalLen {
		return decimal.Decimal{}, fmt.Errorf("%q: %w", s, ErrMalformed)
	}
	i := 0
	if s[0] == '-' {
		i = 1
	}
	digits, dot := 0, false
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot && digits > 0 && i < len(s)-1:
			dot = true
		default:
			return decimal.Decimal{}, fmt.Errorf("%q: %w", s, ErrMalformed)
		}
	}
	if digits == 0 {
		return decimal.Decimal{}, fmt.Errorf("%q: %w", s, ErrMalformed)
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, fmt.Errorf("%q: %w", s, ErrMalformed)
	}
	return d, nil
}

var (
	maxInt64 = decimal.NewFromInt(math.MaxInt64)
	minInt64 = decimal.NewFromInt(math.MinInt64)
)

// Steps returns d / step as an int64, exactly. It fails with ErrNotMultiple
// when d is not a whole number of steps and ErrTooLarge when the count does not
// fit an int64. step must be positive.
func Steps(d, step decimal.Decimal) (int64, error) {
	if !step.IsPositive() {
		return 0, fmt.Errorf("step %s: %w", step, ErrNotPositive)
	}
	q, r := d.QuoRem(step, 0)
	if !r.IsZero() {
		return 0, fmt.Errorf("%s is not a multiple of %s: %w", d, step, ErrNotMultiple)
	}
	if q.GreaterThan(maxInt64) || q.LessThan(minInt64) {
		return 0, fmt.Errorf("%s: %w", d, ErrTooLarge)
	}
	return q.IntPart(), nil
}

// ParseSteps parses s and converts it to a positive whole count of steps.
func ParseSteps(s string, step decimal.Decimal) (int64, error) {
	d, err := ParseDecimal(s)
	if err != nil {
		return 0, err
	}
	if !d.IsPositive() {
		return 0, fmt.Errorf("%q: %w", s, ErrNotPositive)
	}
	return Steps(d, step)
}

// FormatSteps renders n steps as a decimal string with no trailing zeros
// beyond what the step needs ("15235.5", "25", "0.01").
func FormatSteps(n int64, step decimal.Decimal) string {
	return decimal.NewFromInt(n).Mul(step).String()
}

// Currency is a currency the exchange settles in.
type Currency struct {
	// Code is the ISO 4217 code, or CNH for offshore renminbi.
	Code string
	// Exponent is the number of minor-unit digits: 2 for CNY (fen) and USD
	// (cents), 0 for JPY and KRW.
	Exponent int32
}

// MinorUnit is the value of one minor unit, e.g. 0.01 for CNY.
func (c Currency) MinorUnit() decimal.Decimal { return decimal.New(1, -c.Exponent) }

// ParseAmount parses a decimal amount into minor units, exactly. Negative
// amounts are allowed; callers that need positive ones check the sign.
func (c Currency) ParseAmount(s string) (int64, error) {
	d, err := ParseDecimal(s)
	if err != nil {
		return 0, err
	}
	n, err := Steps(d, c.MinorUnit())
	if errors.Is(err, ErrNotMultiple) {
		return 0, fmt.Errorf("%q has more than %d decimal places for %s: %w", s, c.Exponent, c.Code, ErrNotMultiple)
	}
	return n, err
}

// FormatAmount renders minor units with exactly Exponent fraction digits
// ("1523.50").
func (c Currency) FormatAmount(minor int64) string {
	return decimal.New(minor, -c.Exponent).StringFixed(c.Exponent)
}

// Registry is the set of currencies the exchange knows. More are added by
// configuration (JPY, KRW) without code changes.
type Registry struct {
	mu    sync.RWMutex
	codes map[string]Currency
}

// NewRegistry returns a registry with the exchange's default currencies:
// CNY, CNH and USD.
func NewRegistry() *Registry {
	r := &Registry{codes: map[string]Currency{}}
	for _, c := range []Currency{{"CNY", 2}, {"CNH", 2}, {"USD", 2}} {
		r.codes[c.Code] = c
	}
	return r
}

// Add registers a currency. The code must be three upper-case letters.
func (r *Registry) Add(c Currency) error {
	if !isCode(c.Code) {
		return fmt.Errorf("currency code %q: want three upper-case letters", c.Code)
	}
	if c.Exponent < 0 || c.Exponent > 4 {
		return fmt.Errorf("currency %s exponent %d: want 0 to 4", c.Code, c.Exponent)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.codes[c.Code] = c
	return nil
}

// AddSpec registers the currencies of a configuration value: comma
// separated code:exponent pairs, e.g. "JPY:0,KRW:0" (an empty spec adds
// nothing). Nothing is added unless every pair is valid.
func (r *Registry) AddSpec(spec string) error {
	var cs []Currency
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		code, exp, ok := strings.Cut(part, ":")
		e, err := strconv.Atoi(strings.TrimSpace(exp))
		if !ok || err != nil {
			return fmt.Errorf("currency %q: want CODE:EXPONENT, e.g. JPY:0", part)
		}
		c := Currency{Code: strings.TrimSpace(code), Exponent: int32(e)}
		if !isCode(c.Code) || c.Exponent < 0 || c.Exponent > 4 {
			return fmt.Errorf("currency %q: a three-letter upper-case code and an exponent from 0 to 4", part)
		}
		if old, err := r.Lookup(c.Code); err == nil && old.Exponent != c.Exponent {
			return fmt.Errorf("currency %s is already known with exponent %d", c.Code, old.Exponent)
		}
		cs = append(cs, c)
	}
	for _, c := range cs {
		if err := r.Add(c); err != nil {
			return err
		}
	}
	return nil
}

// Lookup returns the currency for a code.
func (r *Registry) Lookup(code string) (Currency, error) {
	r.mu.RLock()
	c, ok := r.codes[code]
	r.mu.RUnlock()
	if !ok {
		return Currency{}, fmt.Errorf("%q: %w", code, ErrUnknownCurency)
	}
	return c, nil
}

// Codes lists the known codes in order.
func (r *Registry) Codes() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.codes))
	for c := range r.codes {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

func isCode(s string) bool {
	return len(s) == 3 && strings.ToUpper(s) == s && strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == ""
}
