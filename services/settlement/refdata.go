package settlement

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/shopspring/decimal"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pkgmoney "github.com/bcx-exchange/bcx/pkg/money"
	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
)

// instrument is what booking needs of an instrument.
type instrument struct {
	Symbol    string
	Currency  string
	Cycle     listingv1.SettlementCycle
	LotSize   decimal.Decimal
	Commodity string
}

// errUnknown means listing does not know the instrument, commodity or
// account: a permanent answer, unlike listing being unreachable.
var errUnknown = errors.New("unknown to listing")

// refData caches reference data from the listing service. Entries live for
// ttl, so an amended instrument (settlement cycle, currency) is seen within
// ttl of its amendment taking effect; a miss or an expired entry asks listing.
// "Listing does not know it" is cached too. Inside a database transaction
// (a context marked by noRPC) nothing asks listing: an expired entry is used
// as it is, and a missing one is an error the caller retries after fetching
// outside the transaction. A transaction never waits on the network.
type refData struct {
	listing Listing
	ttl     time.Duration

	mu          sync.Mutex
	instruments map[string]cached[instrument]
	accounts    map[string]cached[map[string]memberAccount] // member -> currency -> account
	tolerances  map[string]cached[decimal.Decimal]          // commodity -> delivery tolerance
}

type cached[T any] struct {
	v       T
	err     error // errUnknown, cached like a value
	expires time.Time
}

type noRPCKey struct{}

// noRPC marks a context whose lookups must not call listing.
func noRPC(ctx context.Context) context.Context { return context.WithValue(ctx, noRPCKey{}, true) }

// errNotPrefetched means a lookup inside a transaction found nothing cached.
var errNotPrefetched = errors.New("reference data not fetched before the transaction")

// maxCached bounds each cache; past it the cache starts afresh.
const maxCached = 100_000

func newRefData(l Listing, ttl time.Duration) *refData {
	return &refData{listing: l, ttl: ttl,
		instruments: map[string]cached[instrument]{}, accounts: map[string]cached[map[string]memberAccount]{},
		tolerances: map[string]cached[decimal.Decimal]{}}
}

// getCached returns a cached entry when it is fresh, or whatever is cached
// (fresh or not) inside a transaction; ok is false when listing must be
// asked.
func getCached[T any](ctx context.Context, r *refData, m map[string]cached[T], key string) (T, error, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, found := m[key]
	if found && (time.Now().Before(c.expires) || ctx.Value(noRPCKey{}) != nil) {
		return c.v, c.err, true
	}
	var zero T
	if ctx.Value(noRPCKey{}) != nil {
		return zero, fmt.Errorf("%s: %w", key, errNotPrefetched), true
	}
	return zero, nil, false
}

func putCached[T any](r *refData, m *map[string]cached[T], key string, v T, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(*m) >= maxCached {
		*m = map[string]cached[T]{}
	}
	(*m)[key] = cached[T]{v: v, err: err, expires: time.Now().Add(r.ttl)}
}

func listingErr(err error, what string) error {
	if status.Code(err) == codes.NotFound {
		return fmt.Errorf("%s: %w", what, errUnknown)
	}
	return fmt.Errorf("listing %s: %w", what, err)
}

// Instrument returns an instrument's settlement data.
func (r *refData) Instrument(ctx context.Context, symbol string) (instrument, error) {
	if v, err, ok := getCached(ctx, r, r.instruments, symbol); ok {
		return v, err
	}
	resp, err := r.listing.GetInstrument(ctx, &listingv1.GetInstrumentRequest{Symbol: symbol})
	if err != nil {
		err = listingErr(err, "instrument "+symbol)
		if errors.Is(err, errUnknown) {
			putCached(r, &r.instruments, symbol, instrument{}, err)
		}
		return instrument{}, err
	}
	spec := resp.GetInstrument().GetSpec()
	if spec == nil {
		return instrument{}, fmt.Errorf("instrument %s has no spec: %w", symbol, errUnknown)
	}
	lot, err := pkgmoney.ParseDecimal(spec.LotSize)
	if err != nil {
		return instrument{}, fmt.Errorf("instrument %s lot size: %w", symbol, err)
	}
	in := instrument{Symbol: symbol, Currency: spec.QuoteCurrency, Cycle: spec.SettlementCycle, LotSize: lot, Commodity: spec.Commodity}
	if in.Cycle == listingv1.SettlementCycle_SETTLEMENT_CYCLE_UNSPECIFIED {
		in.Cycle = listingv1.SettlementCycle_SETTLEMENT_CYCLE_T0_GROSS
	}
	putCached(r, &r.instruments, symbol, in, nil)
	return in, nil
}

// memberAccount is a member's settlement account in one currency.
type memberAccount struct {
	Bank   string
	Number string
}

// Banks returns a member's settlement accounts per currency.
func (r *refData) Banks(ctx context.Context, member string) (map[string]memberAccount, error) {
	if v, err, ok := getCached(ctx, r, r.accounts, member); ok {
		return v, err
	}
	resp, err := r.listing.ListSettlementAccounts(ctx, &listingv1.ListSettlementAccountsRequest{ParticipantId: member})
	if err != nil {
		return nil, listingErr(err, "settlement accounts of "+member)
	}
	m := map[string]memberAccount{}
	for _, a := range resp.Accounts {
		if a.ParticipantId == member {
			m[a.Currency] = memberAccount{Bank: a.BankParticipantId, Number: a.AccountNumber}
		}
	}
	putCached(r, &r.accounts, member, m, nil)
	return m, nil
}

// Bank returns the member's clearing bank for a currency, "" if it has no
// settlement account in that currency.
func (r *refData) Bank(ctx context.Context, member, currency string) (string, error) {
	a, err := r.Account(ctx, member, currency)
	return a.Bank, err
}

// Account returns the member's settlement account in a currency (zero if it
// has none).
func (r *refData) Account(ctx context.Context, member, currency string) (memberAccount, error) {
	m, err := r.Banks(ctx, member)
	if err != nil {
		return memberAccount{}, err
	}
	return m[currency], nil
}

// Forget drops a member's cached accounts (after a miss that may be stale).
func (r *refData) Forget(member string) {
	r.mu.Lock()
	delete(r.accounts, member)
	r.mu.Unlock()
}

// Tolerance returns a commodity's over/under-weight delivery tolerance as a
// fraction (0 when listing sets none).
func (r *refData) Tolerance(ctx context.Context, commodity string) (decimal.Decimal, error) {
	if v, err, ok := getCached(ctx, r, r.tolerances, commodity); ok {
		return v, err
	}
	resp, err := r.listing.GetCommodity(ctx, &listingv1.GetCommodityRequest{Code: commodity})
	if err != nil {
		err = listingErr(err, "commodity "+commodity)
		if errors.Is(err, errUnknown) {
			putCached(r, &r.tolerances, commodity, decimal.Zero, err)
		}
		return decimal.Decimal{}, err
	}
	tol := decimal.Zero
	if s := resp.GetCommodity().GetDeliveryTolerance(); s != "" {
		if tol, err = pkgmoney.ParseDecimal(s); err != nil {
			return decimal.Decimal{}, fmt.Errorf("commodity %s delivery tolerance: %w", commodity, err)
		}
	}
	putCached(r, &r.tolerances, commodity, tol, nil)
	return tol, nil
}
