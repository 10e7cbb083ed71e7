package settlement

import (
	"context"
	"testing"
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
