// Package bulk writes many rows with few statements: multi-row INSERTs in the
// one SQL dialect both engines accept, chunked under the smaller engine's
// bound on bind parameters.
//
// The statements differ by engine, and only here. PostgreSQL gets one
// INSERT ... SELECT FROM unnest($1::bigint[], $2::text[], ...) with one array
// per column: a constant statement whatever the row count, which the server
// parses and plans once instead of binding tens of thousands of parameters.
// SQLite gets multi-row VALUES with plain "?" placeholders, because it
// resolves "$N" as a named parameter with a linear search per parameter,
// which makes a statement of thousands of parameters quadratic to prepare.
//
// InsertColumns without a suffix (plain appends: the ledger's transactions
// and postings, the booked trades) goes further on PostgreSQL: inside a
// transaction sqlstore.InTx runs it loads the rows with COPY
// (sqlstore.CopyFrom), which the server writes a page at a time.
package bulk

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/bcx-exchange/bcx/pkg/sqlstore"
)

// MaxParams bounds the bind parameters of one statement: SQLite allows 32,766,
// PostgreSQL 65,535.
const MaxParams = 30000

// Insert writes rows (each len(cols) values) into table, appending suffix
// (e.g. "ON CONFLICT (k) DO NOTHING") to every statement. It returns the
// number of rows the engine reports as affected.
func Insert(ctx context.Context, q *sql.Tx, d sqlstore.Dialect, table string, cols []string, rows [][]any, suffix string) (int64, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	if d == sqlstore.Postgres {
		return insertUnnest(ctx, q, table, cols, rows, suffix)
	}
	per := MaxParams / len(cols)
	var affected int64
	for start := 0; start < len(rows); start += per {
		end := min(start+per, len(rows))
		chunk := rows[start:end]
		var b strings.Builder
		b.Grow(64 + len(chunk)*len(cols)*7)
		b.WriteString("INSERT INTO ")
		b.WriteString(table)
		b.WriteString(" (")
		b.WriteString(strings.Join(cols, ", "))
		b.WriteString(") VALUES ")
		args := make([]any, 0, len(chunk)*len(cols))
		n := 1
		for i, r := range chunk {
			if len(r) != len(cols) {
				return affected, fmt.Errorf("bulk insert into %s: row has %d values, want %d", table, len(r), len(cols))
			}
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('(')
			for j := range r {
				if j > 0 {
					b.WriteByte(',')
				}
				if d == sqlstore.SQLite {
					b.WriteByte('?')
				} else {
					b.WriteByte('$')
					b.WriteString(strconv.Itoa(n))
				}
				n++
			}
			b.WriteByte(')')
			args = append(args, r...)
		}
		if suffix != "" {
			b.WriteByte(' ')
			b.WriteString(suffix)
		}
		res, err := q.ExecContext(ctx, b.String(), args...)
		if err != nil {
			return affected, fmt.Errorf("bulk insert into %s: %w", table, err)
		}
		if n, err := res.RowsAffected(); err == nil {
			affected += n
		}
	}
	return affected, nil
}

// InList returns "$k,$k+1,..." for n parameters starting at k, for IN lists.
func InList(k, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(k + i))
	}
	return b.String()
}

// Chunks calls fn with consecutive slices of at most size items.
func Chunks[T any](items []T, size int, fn func([]T) error) error {
	for start := 0; start < len(items); start += size {
		if err := fn(items[start:min(start+size, len(items))]); err != nil {
			return err
		}
	}
	return nil
}

// insertUnnest is Insert for PostgreSQL: one array parameter per column.
func insertUnnest(ctx context.Context, q *sql.Tx, table string, cols []string, rows [][]any, suffix string) (int64, error) {
	arrays := make([]any, len(cols))
	for j := range cols {
		switch rows[0][j].(type) {
		case int64, int, int32:
			a := make([]int64, len(rows))
			for i, r := range rows {
				switch v := r[j].(type) {
				case int64:
					a[i] = v
				case int:
					a[i] = int64(v)
				case int32:
					a[i] = int64(v)
				default:
					return 0, fmt.Errorf("bulk insert into %s: column %s: %T among integers", table, cols[j], v)
				}
			}
			arrays[j] = a
		case string:
			a := make([]string, len(rows))
			for i, r := range rows {
				v, ok := r[j].(string)
				if !ok {
					return 0, fmt.Errorf("bulk insert into %s: column %s: %T among strings", table, cols[j], r[j])
				}
				a[i] = v
			}
			arrays[j] = a
		case []byte:
			a := make([][]byte, len(rows))
			for i, r := range rows {
				v, ok := r[j].([]byte)
				if !ok {
					return 0, fmt.Errorf("bulk insert into %s: column %s: %T among byte strings", table, cols[j], r[j])
				}
				a[i] = v
			}
			arrays[j] = a
		default:
			return 0, fmt.Errorf("bulk insert into %s: column %s: unsupported type %T", table, cols[j], rows[0][j])
		}
	}
	for _, r := range rows {
		if len(r) != len(cols) {
			return 0, fmt.Errorf("bulk insert into %s: row has %d values, want %d", table, len(r), len(cols))
		}
	}
	return execUnnest(ctx, q, table, cols, arrays, suffix)
}

// execUnnest inserts one typed slice per column in one statement.
func execUnnest(ctx context.Context, q *sql.Tx, table string, cols []string, arrays []any, suffix string) (int64, error) {
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(table)
	b.WriteString(" (")
	b.WriteString(strings.Join(cols, ", "))
	b.WriteString(") SELECT * FROM unnest(")
	for j, a := range arrays {
		if j > 0 {
			b.WriteString(", ")
		}
		t := "bigint[]"
		switch a.(type) {
		case []string:
			t = "text[]"
		case [][]byte:
			t = "bytea[]"
		}
		fmt.Fprintf(&b, "$%d::%s", j+1, t)
	}
	b.WriteString(")")
	if suffix != "" {
		b.WriteByte(' ')
		b.WriteString(suffix)
	}
	res, err := q.ExecContext(ctx, b.String(), arrays...)
	if err != nil {
		return 0, fmt.Errorf("bulk insert into %s: %w", table, err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// InsertColumns is Insert with the values given column by column, each a
// []int64, []string or [][]byte of the same length: the hot paths build
// these directly, which spares PostgreSQL's path boxing every value.
//
// Without a suffix, on PostgreSQL, in a transaction sqlstore.InTx runs, the
// rows are loaded with COPY: the same rows in the same transaction, a
// duplicate key fails it with the same unique violation, and the server
// does a fraction of the work of an INSERT per row. Elsewhere (a suffix,
// SQLite, a transaction begun outside InTx) it is the INSERT Insert makes.
func InsertColumns(ctx context.Context, q *sql.Tx, d sqlstore.Dialect, table string, cols []string, columns []any, suffix string) (int64, error) {
	if len(columns) != len(cols) {
		return 0, fmt.Errorf("bulk insert into %s: %d columns of values for %d names", table, len(columns), len(cols))
	}
	n := -1
	for j, c := range columns {
		var l int
		switch v := c.(type) {
		case []int64:
			l = len(v)
		case []string:
			l = len(v)
		case [][]byte:
			l = len(v)
		default:
			return 0, fmt.Errorf("bulk insert into %s: column %s: unsupported %T", table, cols[j], c)
		}
		if n >= 0 && l != n {
			return 0, fmt.Errorf("bulk insert into %s: column %s has %d values, not %d", table, cols[j], l, n)
		}
		n = l
	}
	if n <= 0 {
		return 0, nil
	}
	if d == sqlstore.Postgres {
		if suffix == "" {
			copied, ok, err := sqlstore.CopyFrom(ctx, q, table, cols, &columnSource{columns: columns, n: n, i: -1, row: make([]any, len(columns))})
			if err != nil {
				return copied, fmt.Errorf("bulk insert into %s: %w", table, err)
			}
			if ok {
				return copied, nil
			}
		}
		return execUnnest(ctx, q, table, cols, columns, suffix)
	}
	rows := make([][]any, n)
	flat := make([]any, n*len(cols))
	for i := range rows {
		rows[i] = flat[i*len(cols) : (i+1)*len(cols)]
	}
	for j, c := range columns {
		switch v := c.(type) {
		case []int64:
			for i, x := range v {
				rows[i][j] = x
			}
		case []string:
			for i, x := range v {
				rows[i][j] = x
			}
		case [][]byte:
			for i, x := range v {
				rows[i][j] = x
			}
		}
	}
	return Insert(ctx, q, d, table, cols, rows, suffix)
}

// columnSource feeds COPY one row at a time from one typed slice per column
// (as InsertColumns checked them), reusing one slice of values: the driver
// encodes each row before it asks for the next.
type columnSource struct {
	columns []any
	n, i    int
	row     []any
}

func (s *columnSource) Next() bool {
	s.i++
	return s.i < s.n
}

func (s *columnSource) Values() ([]any, error) {
	for j, c := range s.columns {
		switch v := c.(type) {
		case []int64:
			s.row[j] = v[s.i]
		case []string:
			s.row[j] = v[s.i]
		case [][]byte:
			s.row[j] = v[s.i]
		}
	}
	return s.row, nil
}

func (s *columnSource) Err() error { return nil }
