package settlement

import (
	"context"
	"testing"
	"time"
)

// SetTestHook makes the booking transaction run fn (with the last sequence
// of the batch) after writing and before commit; an error rolls it back, as
// a crash would.
func SetTestHook(s *Service, fn func(seq int64) error) { s.testHookBeforeCommit = fn }

// ParkedEvents counts the events the consumer parked.
func ParkedEvents(t testing.TB, s *Service) int {
	t.Helper()
	var n int
	if err := s.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM stl_parked_events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// InsertLegacyFX records a rate and a funding preference the way a
// settlement from before the core converted FX did: in the tables only,
// with nothing in the outbox.
func InsertLegacyFX(t testing.TB, s *Service, member, trade, funding string, rate string, from, until time.Time) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.db.ExecContext(ctx, `INSERT INTO stl_fx_rates (rate_id, base_currency, quote_currency, rate, valid_from, valid_until,
		source, published_at) VALUES ($1, $2, $3, $4, $5, $6, 'operator', $5)`, s.store.rate.Add(1), trade, funding, rate,
		from.UnixNano(), until.UnixNano()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO stl_fx_preferences (participant_id, trade_currency, funding_currency, updated_at)
		VALUES ($1, $2, $3, 0)`, member, trade, funding); err != nil {
		t.Fatal(err)
	}
}
