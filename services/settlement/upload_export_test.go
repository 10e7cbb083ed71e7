package settlement

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"github.com/bcx-exchange/bcx/services/settlement/internal/bulk"
)

// ExpectedMovement is a bank movement the ledger expects, for tests that
// need thousands of them (posting as many deposits would take minutes).
type ExpectedMovement struct {
	AmountMinor int64
	EndToEndID  string
	// ValueDate is "YYYY-MM-DD".
	ValueDate string
}

// ExpectMovements writes expected movements of a bank in one currency
// directly, as benchRecon does.
func ExpectMovements(t testing.TB, s *Service, bank, currency string, ms []ExpectedMovement) {
	t.Helper()
	rows := make([][]any, len(ms))
	for i, m := range ms {
		id := s.store.movement.Add(1)
		rows[i] = []any{id, bank, currency, m.AmountMinor, m.EndToEndID, "", m.ValueDate, fmt.Sprintf("test/%d", id), int64(0), int64(0)}
	}
	ctx := context.Background()
	if err := s.db.InTx(ctx, func(q *sql.Tx) error {
		_, err := bulk.Insert(ctx, q, s.db.Dialect, "stl_bank_movements", []string{"movement_id", "bank", "currency", "amount_minor",
			"end_to_end_id", "bank_reference", "value_date", "source", "transaction_id", "created_at"}, rows, "")
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// ReconCounts returns how many reports are stored and how many ledger
// movements reports matched (responses trim the matched list; the store
// keeps every match).
func ReconCounts(t testing.TB, s *Service) (reports, matches int) {
	t.Helper()
	ctx := context.Background()
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM stl_recon_reports`).Scan(&reports); err != nil {
		t.Fatal(err)
	}
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM stl_recon_matches`).Scan(&matches); err != nil {
		t.Fatal(err)
	}
	return reports, matches
}
