package bulk_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"github.com/bcx-exchange/bcx/pkg/sqlstore"
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

// TestInsertColumns appends column-wise values (COPY on PostgreSQL inside
// InTx, INSERT otherwise): the rows arrive intact, roll back with their
// transaction, and a duplicate key is a unique violation on every path.
func TestInsertColumns(t *testing.T) {
	for _, b := range sqlstoretest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := b.Open(t)
			if _, err := db.ExecContext(ctx, `CREATE TABLE things (id BIGINT PRIMARY KEY, name TEXT NOT NULL, body BYTEA NOT NULL, n INTEGER NOT NULL)`); err != nil {
				t.Fatal(err)
			}
			cols := []string{"id", "name", "body", "n"}
			const rows = 5000
			values := func(first int64, n int) []any {
				id, name, body, k := make([]int64, n), make([]string, n), make([][]byte, n), make([]int64, n)
				for i := range n {
					id[i], name[i], body[i], k[i] = first+int64(i), fmt.Sprint("thing ", first+int64(i)), []byte{byte(i), 0}, int64(i%7)
				}
				body[0] = []byte{} // empty, not NULL
				return []any{id, name, body, k}
			}
			count := func() (n, sum int64) {
				if err := db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(n), 0) FROM things`).Scan(&n, &sum); err != nil {
					t.Fatal(err)
				}
				return n, sum
			}
			boom := fmt.Errorf("boom")
			err := db.InTx(ctx, func(q *sql.Tx) error {
				if _, err := bulk.InsertColumns(ctx, q, db.Dialect, "things", cols, values(0, rows), ""); err != nil {
					return err
				}
				return boom
			})
			if err != boom {
				t.Fatalf("InTx = %v, want boom", err)
			}
			if n, _ := count(); n != 0 {
				t.Fatalf("%d rows after rollback", n)
			}
			err = db.InTx(ctx, func(q *sql.Tx) error {
				n, err := bulk.InsertColumns(ctx, q, db.Dialect, "things", cols, values(0, rows), "")
				if err == nil && n != rows {
					err = fmt.Errorf("%d rows affected, want %d", n, rows)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			// A transaction begun outside InTx takes the INSERT path.
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if n, err := bulk.InsertColumns(ctx, tx, db.Dialect, "things", cols, values(rows, 3), ""); err != nil || n != 3 {
				t.Fatalf("insert outside InTx = %d, %v", n, err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			var want int64
			for i := 0; i < rows; i++ {
				want += int64(i % 7)
			}
			if n, sum := count(); n != rows+3 || sum != want+0+1+2 {
				t.Fatalf("count %d sum %d, want %d %d", n, sum, rows+3, want+3)
			}
			var name string
			var body []byte
			if err := db.QueryRowContext(ctx, `SELECT name, body FROM things WHERE id = 1234`).Scan(&name, &body); err != nil {
				t.Fatal(err)
			}
			if name != "thing 1234" || len(body) != 2 || body[0] != byte(1234%256) {
				t.Fatalf("row 1234: %q %v", name, body)
			}
			var empty int
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM things WHERE id = 0 AND body IS NOT NULL AND length(body) = 0`).Scan(&empty); err != nil || empty != 1 {
				t.Fatalf("row 0 with an empty body: %d, %v; want 1", empty, err)
			}
			err = db.InTx(ctx, func(q *sql.Tx) error {
				_, err := bulk.InsertColumns(ctx, q, db.Dialect, "things", cols, values(rows+3-1, 2), "")
				return err
			})
			if !sqlstore.IsUniqueViolation(err) {
				t.Fatalf("duplicate: %v, want a unique violation", err)
			}
			if n, _ := count(); n != rows+3 {
				t.Fatalf("%d rows after the failed insert, want %d", n, rows+3)
			}
		})
	}
}
