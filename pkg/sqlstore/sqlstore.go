// Package sqlstore opens the SQL database a service keeps its records in —
// PostgreSQL through pgx in production, an embedded pure-Go SQLite file in
// `bcx dev` and in tests without servers — applies the service's embedded
// migrations, and runs transactions.
//
// Stores write one dialect of SQL that both engines accept: $N placeholders,
// BIGINT/TEXT/BYTEA/BOOLEAN columns, INSERT ... ON CONFLICT, no sequences (ids
// are allocated by the service), times as BIGINT unix nanoseconds. That keeps a
// single store implementation per service and lets one store test suite run
// against every backend.
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"           // registers the "sqlite" driver (pure Go)
)

// Dialect says which engine is behind a DB.
type Dialect int

const (
	Postgres Dialect = iota + 1
	SQLite
)

func (d Dialect) String() string {
	switch d {
	case Postgres:
		return "postgres"
	case SQLite:
		return "sqlite"
	}
	return "unknown"
}

// DB is an open database.
type DB struct {
	*sql.DB
	Dialect Dialect
}

// Open connects to a database. A URL starting with postgres:// or
// postgresql:// is PostgreSQL; anything else is a path to an SQLite file
// (created if missing).
func Open(ctx context.Context, url string) (*DB, error) {
	if strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://") {
		db, err := sql.Open("pgx", url)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		db.SetMaxOpenConns(16)
		db.SetMaxIdleConns(16)
		db.SetConnMaxIdleTime(5 * time.Minute)
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("connect postgres: %w", err)
		}
		return &DB{DB: db, Dialect: Postgres}, nil
	}
	path := strings.TrimPrefix(url, "sqlite://")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite directory: %w", err)
	}
	// WAL lets readers run beside the one writer; _txlock=immediate takes the
	// write lock at BEGIN, so two writers queue on busy_timeout instead of one
	// failing half-way through; foreign keys are off by default in SQLite.
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	db.SetMaxOpenConns(4)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return &DB{DB: db, Dialect: SQLite}, nil
}

// Migrate applies, in order, the migrations in fsys that have not been applied
// for this component yet. Files are named "NNNN_description.sql"; each runs in
// its own transaction together with its bookkeeping row.
func (db *DB) Migrate(ctx context.Context, component string, fsys fs.FS) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		component TEXT NOT NULL, version BIGINT NOT NULL, applied_at BIGINT NOT NULL,
		PRIMARY KEY (component, version))`); err != nil {
		return fmt.Errorf("migrations table: %w", err)
	}
	if _, err := db.ExecContext(ctx, idempotencyDDL); err != nil {
		return fmt.Errorf("idempotency table: %w", err)
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		numStr, _, ok := strings.Cut(name, "_")
		version, err := strconv.ParseInt(numStr, 10, 64)
		if !ok || err != nil {
			return fmt.Errorf("migration %s: name must be NNNN_description.sql", name)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		err = db.InTx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE component = $1 AND version = $2`,
				component, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			for _, stmt := range splitStatements(string(body)) {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (component, version, applied_at) VALUES ($1, $2, $3)`,
				component, version, time.Now().UnixNano())
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate %s: %w", component, err)
		}
	}
	return nil
}

// splitStatements splits a migration on semicolons at line ends; migrations
// keep to plain DDL so this is enough (and works for both engines).
func splitStatements(body string) []string {
	var out []string
	for _, part := range strings.Split(body, ";\n") {
		var lines []string
		for _, l := range strings.Split(part, "\n") {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "--") {
				lines = append(lines, l)
			}
		}
		if stmt := strings.TrimSuffix(strings.TrimSpace(strings.Join(lines, "\n")), ";"); stmt != "" {
			out = append(out, stmt)
		}
	}
	return out
}

// InTx runs fn in a transaction and commits it, retrying a few times when the
// engine reports a serialization failure or deadlock (PostgreSQL) or a busy
// database (SQLite). fn must therefore be safe to run again. On PostgreSQL
// fn may use CopyFrom with the transaction it is given.
func (db *DB) InTx(ctx context.Context, fn func(*sql.Tx) error) error {
	// Enough attempts for n racers that each lose to one winner per round
	// (e.g. creates picking the same next number), with jitter so that
	// racers retrying together do not collide again in lockstep.
	const attempts = 12
	var err error
	for i := 0; i < attempts; i++ {
		err = db.inTxOnce(ctx, fn)
		if err == nil || !retryable(err) {
			return err
		}
		backoff := time.Duration(min(i+1, 8))*5*time.Millisecond + rand.N(5*time.Millisecond)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
	}
	return err
}

func (db *DB) inTxOnce(ctx context.Context, fn func(*sql.Tx) error) (err error) {
	tx, release, err := db.begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer release()
	defer func() {
		if err != nil {
			_ = tx.Rollback() // the error that made us roll back is the one to report
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// txConns maps each transaction InTx runs on PostgreSQL (*sql.Tx) to the
// connection it runs on (*sql.Conn), for CopyFrom. database/sql does not
// expose a transaction's connection, so InTx takes one and begins the
// transaction on it.
var txConns sync.Map

// begin starts InTx's transaction: on PostgreSQL on a connection of its own,
// recorded in txConns until release. release ends the transaction if InTx
// did not (fn panicked) and gives the connection back to the pool.
func (db *DB) begin(ctx context.Context) (tx *sql.Tx, release func(), err error) {
	if db.Dialect != Postgres {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return nil, nil, err
		}
		return tx, func() { _ = tx.Rollback() }, nil
	}
	// Like DB.BeginTx, take another connection when a pooled one turns out
	// to be dead (driver.ErrBadConn: nothing was sent on it).
	const attempts = 3
	for i := 1; ; i++ {
		conn, err := db.Conn(ctx)
		if err != nil {
			return nil, nil, err
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			_ = conn.Close()
			if errors.Is(err, driver.ErrBadConn) && i < attempts {
				continue
			}
			return nil, nil, err
		}
		txConns.Store(tx, conn)
		return tx, func() {
			// A no-op (sql.ErrTxDone) once committed or rolled back; Close
			// would wait forever for a transaction left open.
			_ = tx.Rollback()
			txConns.Delete(tx)
			_ = conn.Close()
		}, nil
	}
}

// CopySource yields the rows CopyFrom writes: Next advances to the next row
// (false at the end), Values returns its values in column order (the slice
// may be reused: each row is encoded before the next is asked for), Err
// reports a failure of the source.
type CopySource = pgx.CopyFromSource

// CopyFrom appends rows to table (an unqualified name, found on the
// search_path) with PostgreSQL's COPY FROM STDIN in binary format, inside
// tx: the rows commit or roll back with it, like an INSERT's. The server
// writes COPY rows a page at a time (one WAL record per page, not per row)
// and parses no SQL, so it is the fastest way to append many rows. COPY
// has no ON CONFLICT: a duplicate key fails the statement, and so the
// transaction, with a unique violation, as a plain INSERT would.
//
// ok is false and nothing is written when tx is not a PostgreSQL
// transaction that InTx is running (SQLite, or a transaction begun
// elsewhere): the caller then writes the rows with SQL.
func CopyFrom(ctx context.Context, tx *sql.Tx, table string, cols []string, rows CopySource) (n int64, ok bool, err error) {
	c, found := txConns.Load(tx)
	if !found {
		return 0, false, nil
	}
	err = c.(*sql.Conn).Raw(func(driverConn any) error {
		pc, isPgx := driverConn.(*stdlib.Conn)
		if !isPgx {
			return errNotPgx
		}
		// Never COPY outside the transaction (a tx that fn already ended
		// but that InTx has not released yet).
		if st := pc.Conn().PgConn().TxStatus(); st != 'T' && st != 'E' {
			return fmt.Errorf("copy into %s: the connection is not in a transaction (status %q)", table, st)
		}
		var err error
		n, err = pc.Conn().CopyFrom(ctx, pgx.Identifier{table}, cols, rows)
		return err
	})
	if errors.Is(err, errNotPgx) {
		return 0, false, nil
	}
	return n, true, err
}

var errNotPgx = errors.New("not a pgx connection")

// ErrRetry asks InTx to run the transaction again: the caller lost a race
// that a fresh attempt will see the outcome of (e.g. two creates picking the
// same next number).
var ErrRetry = errors.New("transaction lost a race; retry")

func retryable(err error) bool {
	if errors.Is(err, ErrRetry) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	msg := err.Error()
	return strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked")
}

// IsUniqueViolation reports whether err is a unique or primary key violation.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// UniqueConstraint names what a unique violation was on: the constraint
// name on PostgreSQL ("participants_number_key"), the columns on SQLite
// ("participants.number"). Empty when err is not a unique violation.
func UniqueConstraint(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return pgErr.ConstraintName
	}
	if err != nil {
		if _, after, ok := strings.Cut(err.Error(), "UNIQUE constraint failed: "); ok {
			return after
		}
	}
	return ""
}

// ErrNotFound is what stores return for a missing row.
var ErrNotFound = errors.New("not found")

// NoRows maps sql.ErrNoRows to ErrNotFound.
func NoRows(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}
