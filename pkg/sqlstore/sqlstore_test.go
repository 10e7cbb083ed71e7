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
