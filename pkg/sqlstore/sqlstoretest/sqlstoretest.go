// Package sqlstoretest gives store tests every backend they should run
// against: the embedded SQLite engine always, and PostgreSQL whenever
// BCX_TEST_POSTGRES_URL points at a reachable server. Each test gets its own
// SQLite file or its own PostgreSQL schema, so parallel tests and packages
// never see each other's rows.
package sqlstoretest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bcx-exchange/bcx/pkg/sqlstore"
)

// EnvPostgres names the variable with the PostgreSQL URL for tests.
const EnvPostgres = "BCX_TEST_POSTGRES_URL"

// Backend opens a fresh, empty database for one test.
type Backend struct {
	Name string
	Open func(t testing.TB) *sqlstore.DB
}

// Backends lists the backends. PostgreSQL is always listed: when it is not
// configured its Open skips the test and says why, so a run shows plainly
// what was not tested.
func Backends() []Backend {
	return []Backend{{Name: "sqlite", Open: OpenSQLite}, {Name: "postgres", Open: OpenPostgres}}
}

// OpenSQLite opens an SQLite database in the test's temp directory.
func OpenSQLite(t testing.TB) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// OpenPostgres creates a schema of its own for the test on the server named by
// BCX_TEST_POSTGRES_URL and returns a DB whose search_path is that schema. It
// skips the test when the variable is unset, and fails it when the server is
// configured but unreachable (CI must not silently skip).
func OpenPostgres(t testing.TB) *sqlstore.DB {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" {
		t.Skipf("skipping PostgreSQL: %s is not set", EnvPostgres)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := sqlstore.Open(ctx, base)
	if err != nil {
		t.Fatalf("%s is set but PostgreSQL is not reachable: %v", EnvPostgres, err)
	}
	defer admin.Close()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvPostgres, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := sqlstore.Open(ctx, u.String())
	if err != nil {
		t.Fatalf("open postgres schema: %v", err)
	}
	t.Cleanup(func() {
		db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if admin, err := sqlstore.Open(ctx, base); err == nil {
			_, _ = admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE")
			admin.Close()
		}
	})
	return db
}
