package settlement

import (
	"encoding/base64"
	"errors"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pkgmoney "github.com/bcx-exchange/bcx/pkg/money"
	"github.com/bcx-exchange/bcx/pkg/paging"
	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
)

func money(currency, amount string) *typev1.Money {
	return &typev1.Money{Currency: currency, Amount: amount}
}

// moneyOf formats minor units of a currency the registry knows.
func (s *Service) moneyOf(currency string, minor int64) *typev1.Money {
	c, err := s.cfg.Currencies.Lookup(currency)
	if err != nil {
		// The ledger only holds registered currencies; a currency removed
		// from the configuration still prints, in whole minor units.
		return money(currency, strconv.FormatInt(minor, 10))
	}
	return money(currency, c.FormatAmount(minor))
}

// parseMoney reads an amount in a registered currency, exactly, and
// requires it to be positive.
func (s *Service) parseMoney(field string, m *typev1.Money) (pkgmoney.Currency, int64, error) {
	if m == nil {
		return pkgmoney.Currency{}, 0, rpcerr.Invalid(field, "required")
	}
	c, err := s.cfg.Currencies.Lookup(m.Currency)
	if err != nil {
		return pkgmoney.Currency{}, 0, rpcerr.Invalid(field+".currency", "%q is not a currency the exchange settles in", m.Currency)
	}
	n, err := c.ParseAmount(m.Amount)
	switch {
	case errors.Is(err, pkgmoney.ErrNotMultiple):
		return c, 0, rpcerr.Invalid(field+".amount", "%q has more than %d decimals for %s", m.Amount, c.Exponent, c.Code)
	case errors.Is(err, pkgmoney.ErrTooLarge):
		return c, 0, rpcerr.Invalid(field+".amount", "%q is too large", m.Amount)
	case err != nil:
		return c, 0, rpcerr.Invalid(field+".amount", "%q is not a decimal amount", m.Amount)
	case n <= 0:
		return c, 0, rpcerr.Invalid(field+".amount", "must be positive")
	}
	return c, n, nil
}

func (s *Service) currency(field, code string) (pkgmoney.Currency, error) {
	c, err := s.cfg.Currencies.Lookup(code)
	if err != nil {
		return pkgmoney.Currency{}, rpcerr.Invalid(field, "%q is not a currency the exchange settles in", code)
	}
	return c, nil
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// date formats a moment as the business date it falls on.
func (s *Service) date(t time.Time) string { return t.In(s.loc).Format(time.DateOnly) }

// parseDate reads "YYYY-MM-DD".
func parseDate(field, v string) (time.Time, error) {
	d, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, rpcerr.Invalid(field, "%q is not a date (YYYY-MM-DD)", v)
	}
	return d, nil
}

// page decodes paging fields; tokens carry the last id returned.
func page(size int32, token string) (int, int64, error) {
	n, err := paging.Size(size)
	if err != nil {
		return 0, 0, err
	}
	if token == "" {
		return n, 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, 0, rpcerr.Invalid("page_token", "malformed page token")
	}
	after, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, 0, rpcerr.Invalid("page_token", "malformed page token")
	}
	return n, after, nil
}

func nextToken(n, size int, last int64) string {
	if n < size {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(last, 10)))
}
