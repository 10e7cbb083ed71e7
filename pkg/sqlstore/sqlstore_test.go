package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"testing/fstest"

	"github.com/bcx-exchange/bcx/pkg/sqlstore"
	"github.com/bcx-exchange/bcx/pkg/sqlstore/sqlstoretest"
)

var migrations = fstest.MapFS{
	"0001_things.sql": {Data: []byte("-- things\nCREATE TABLE things (id TEXT PRIMARY KEY, n BIGINT NOT NULL);\nCREATE INDEX things_n ON things (n);\n")},
	"0002_more.sql":   {Data: []byte("ALTER TABLE things ADD COLUMN label TEXT NOT NULL DEFAULT '';\n")},
}

func TestStore(t *testing.T) {
	for _, b := range sqlstoretest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := b.Open(t)
			for i := 0; i < 2; i++ { // applying twice is a no-op
				if err := db.Migrate(ctx, "test", migrations); err != nil {
					t.Fatalf("migrate #%d: %v", i+1, err)
				}
			}
			var applied int
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE component = 'test'`).Scan(&applied); err != nil || applied != 2 {
				t.Fatalf("applied migrations = %d, %v; want 2", applied, err)
			}

			// A failing transaction leaves nothing behind.
			boom := errors.New("boom")
			err := db.InTx(ctx, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO things (id, n) VALUES ($1, $2)`, "a", 1); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("InTx error = %v, want boom", err)
			}
			var n int
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM things`).Scan(&n); err != nil || n != 0 {
				t.Fatalf("rows after rollback = %d, %v", n, err)
			}

			// Unique violations are recognised on both engines.
			insert := func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO things (id, n) VALUES ($1, $2)`, "a", 1)
				return err
			}
			if err := db.InTx(ctx, insert); err != nil {
				t.Fatal(err)
			}
			if err := db.InTx(ctx, insert); !sqlstore.IsUniqueViolation(err) {
				t.Fatalf("second insert error = %v, want unique violation", err)
			}

			// Idempotency keys: same request recalls, different request is refused.
			h1, h2 := sqlstore.RequestHash([]byte("req1")), sqlstore.RequestHash([]byte("req2"))
			err = db.InTx(ctx, func(tx *sql.Tx) error {
				if _, found, err := sqlstore.Recall(ctx, tx, "s", "k", h1); err != nil || found {
					t.Fatalf("recall before remember: found=%v err=%v", found, err)
				}
				return sqlstore.Remember(ctx, tx, "s", "k", h1, []byte("resp"))
			})
			if err != nil {
				t.Fatal(err)
			}
			_ = db.InTx(ctx, func(tx *sql.Tx) error {
				resp, found, err := sqlstore.Recall(ctx, tx, "s", "k", h1)
				if err != nil || !found || string(resp) != "resp" {
					t.Fatalf("recall = %q %v %v", resp, found, err)
				}
				if _, _, err := sqlstore.Recall(ctx, tx, "s", "k", h2); !errors.Is(err, sqlstore.ErrKeyReused) {
					t.Fatalf("recall with other request: %v, want ErrKeyReused", err)
				}
				if _, found, _ := sqlstore.Recall(ctx, tx, "other-scope", "k", h2); found {
					t.Fatal("key leaked across scopes")
				}
				return nil
			})
		})
	}
}

// rowSource is a sqlstore.CopySource over rows of values.
type rowSource struct {
	rows [][]any
	i    int
}

func (s *rowSource) Next() bool             { s.i++; return s.i <= len(s.rows) }
func (s *rowSource) Values() ([]any, error) { return s.rows[s.i-1], nil }
func (s *rowSource) Err() error             { return nil }

// TestCopyFrom: COPY runs inside InTx's transaction on PostgreSQL (its rows
// roll back and commit with it, a duplicate is a unique violation) and
// declines everywhere else, writing nothing.
func TestCopyFrom(t *testing.T) {
	for _, b := range sqlstoretest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := b.Open(t)
			if err := db.Migrate(ctx, "test", migrations); err != nil {
				t.Fatal(err)
			}
			cols := []string{"id", "n", "label"}
			src := func(ids ...string) sqlstore.CopySource {
				s := &rowSource{}
				for i, id := range ids {
					s.rows = append(s.rows, []any{id, int64(i), "l-" + id})
				}
				return s
			}
			count := func() int {
				var n int
				if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM things`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			pg := db.Dialect == sqlstore.Postgres

			boom := errors.New("boom")
			err := db.InTx(ctx, func(tx *sql.Tx) error {
				n, ok, err := sqlstore.CopyFrom(ctx, tx, "things", cols, src("a", "b"))
				if err != nil || ok != pg || (ok && n != 2) {
					t.Fatalf("copy = %d, %v, %v; want ok = %v", n, ok, err, pg)
				}
				// The copied rows are visible inside the transaction.
				var in int
				if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM things`).Scan(&in); err != nil || (pg && in != 2) || (!pg && in != 0) {
					t.Fatalf("rows inside the transaction = %d, %v", in, err)
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("InTx = %v, want boom", err)
			}
			if n := count(); n != 0 {
				t.Fatalf("%d rows after rollback, want 0", n)
			}
			if !pg {
				return
			}

			if err := db.InTx(ctx, func(tx *sql.Tx) error {
				_, _, err := sqlstore.CopyFrom(ctx, tx, "things", cols, src("a", "b", "c"))
				return err
			}); err != nil {
				t.Fatal(err)
			}
			var label string
			var n int64
			if err := db.QueryRowContext(ctx, `SELECT n, label FROM things WHERE id = 'c'`).Scan(&n, &label); err != nil || n != 2 || label != "l-c" {
				t.Fatalf("row c = %d %q %v", n, label, err)
			}
			err = db.InTx(ctx, func(tx *sql.Tx) error {
				_, _, err := sqlstore.CopyFrom(ctx, tx, "things", cols, src("d", "b"))
				return err
			})
			if !sqlstore.IsUniqueViolation(err) {
				t.Fatalf("copy of a duplicate: %v, want a unique violation", err)
			}
			if n := count(); n != 3 {
				t.Fatalf("%d rows after the failed copy, want 3", n)
			}

			// A transaction InTx does not run: declined, nothing written.
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			if _, ok, err := sqlstore.CopyFrom(ctx, tx, "things", cols, src("e")); ok || err != nil {
				t.Fatalf("copy outside InTx: ok=%v err=%v, want declined", ok, err)
			}
		})
	}
}

// TestInTxPanic: a panicking fn rolls back and gives its connection back
// (the panic propagates; InTx does not hang on the open transaction).
func TestInTxPanic(t *testing.T) {
	for _, b := range sqlstoretest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := b.Open(t)
			if err := db.Migrate(ctx, "test", migrations); err != nil {
				t.Fatal(err)
			}
			db.SetMaxOpenConns(1)
			func() {
				defer func() {
					if recover() == nil {
						t.Fatal("no panic")
					}
				}()
				_ = db.InTx(ctx, func(tx *sql.Tx) error {
					if _, err := tx.ExecContext(ctx, `INSERT INTO things (id, n) VALUES ('p', 1)`); err != nil {
						t.Fatal(err)
					}
					panic("boom")
				})
			}()
			var n int
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM things`).Scan(&n); err != nil || n != 0 {
				t.Fatalf("rows after the panic = %d, %v", n, err)
			}
		})
	}
}
