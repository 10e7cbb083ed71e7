package bulk_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"github.com/bcx-exchange/bcx/pkg/sqlstore/sqlstoretest"
	"github.com/bcx-exchange/bcx/services/settlement/internal/bulk"
)

// TestInsert writes more rows than one statement may bind (SQLite chunks,
// PostgreSQL sends arrays), with every column type, and an upsert.
func TestInsert(t *testing.T) {
	for _, b := range sqlstoretest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := b.Open(t)
			if _, err := db.ExecContext(ctx, `CREATE TABLE things (id BIGINT PRIMARY KEY, name TEXT NOT NULL, body BYTEA NOT NULL, n INTEGER NOT NULL)`); err != nil {
				t.Fatal(err)
			}
			const rows = bulk.MaxParams/4*2 + 17
			var vals [][]any
			for i := 0; i < rows; i++ {
				vals = append(vals, []any{int64(i), fmt.Sprint("thing ", i), []byte{byte(i)}, int32(i % 7)})
			}
			cols := []string{"id", "name", "body", "n"}
			err := db.InTx(ctx, func(q *sql.Tx) error {
				n, err := bulk.Insert(ctx, q, db.Dialect, "things", cols, vals, "")
				if err == nil && n != rows {
					err = fmt.Errorf("%d rows affected, want %d", n, rows)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			err = db.InTx(ctx, func(q *sql.Tx) error {
				_, err := bulk.Insert(ctx, q, db.Dialect, "things", cols, [][]any{{int64(5), "x", []byte{1}, 100}, {int64(rows), "new", []byte{}, 1}},
					"ON CONFLICT (id) DO UPDATE SET n = things.n + excluded.n")
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			var count, sum int64
			var name string
			var body []byte
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*), SUM(n) FROM things`).Scan(&count, &sum); err != nil {
				t.Fatal(err)
			}
			if err := db.QueryRowContext(ctx, `SELECT name, body FROM things WHERE id = 1234`).Scan(&name, &body); err != nil {
				t.Fatal(err)
			}
			var want int64
			for i := 0; i < rows; i++ {
				want += int64(i % 7)
			}
			if count != rows+1 || sum != want+100+1 || name != "thing 1234" || len(body) != 1 || body[0] != byte(1234%256) {
				t.Fatalf("count %d sum %d (want %d) name %q body %v", count, sum, want+101, name, body)
			}
		})
	}
}
