package ledger

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"sort"
	"sync/atomic"
	"time"

	"github.com/bcx-exchange/bcx/pkg/sqlstore"
	"github.com/bcx-exchange/bcx/services/settlement/internal/bulk"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrDuplicate means a transaction with the same kind and reference exists.
var ErrDuplicate = errors.New("transaction already booked")

// Ledger writes and reads the ledger in a SQL database (PostgreSQL or SQLite).
//
// Transaction and posting ids are allocated in memory from the maxima found
// at Open: the settlement service is the ledger's one writer (it is the single
// consumer of the core's event log), and the primary keys turn a second
// writer's clash into an error, never into a silent overwrite.
type Ledger struct {
	db          *sqlstore.DB
	nextTxn     atomic.Int64
	nextPosting atomic.Int64
}

// Open migrates the ledger's tables and returns the ledger.
func Open(ctx context.Context, db *sqlstore.DB) (*Ledger, error) {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, "settlement_ledger", sub); err != nil {
		return nil, err
	}
	l := &Ledger{db: db}
	var maxTxn, maxPosting int64
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(transaction_id), 0) FROM ledger_transactions`).Scan(&maxTxn); err != nil {
		return nil, err
	}
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(posting_id), 0) FROM ledger_postings`).Scan(&maxPosting); err != nil {
		return nil, err
	}
	l.nextTxn.Store(maxTxn)
	l.nextPosting.Store(maxPosting)
	return l, nil
}

// Post validates txns and writes them, with their balance updates, inside
// the caller's database transaction. Before it returns it re-reads the
// postings it wrote and fails if any transaction does not balance per
// currency, so a bug between validation and SQL cannot commit an unbalanced
// ledger. On error the caller must roll back.
func (l *Ledger) Post(ctx context.Context, q *sql.Tx, txns ...*Transaction) error {
	if len(txns) == 0 {
		return nil
	}
	nPostings := 0
	for _, t := range txns {
		if err := t.Validate(); err != nil {
			return err
		}
		nPostings += len(t.Postings)
	}
	firstTxn := l.nextTxn.Add(int64(len(txns))) - int64(len(txns)) + 1
	firstPosting := l.nextPosting.Add(int64(nPostings)) - int64(nPostings) + 1
	nextPosting := firstPosting

	var (
		tID, tCorrects, tAt           = make([]int64, len(txns)), make([]int64, len(txns)), make([]int64, len(txns))
		tKind, tRef                   = make([]string, len(txns)), make([]string, len(txns))
		pID, pTxn, pAmount, pAt       = make([]int64, 0, nPostings), make([]int64, 0, nPostings), make([]int64, 0, nPostings), make([]int64, 0, nPostings)
		pAccount, pOwner, pCcy, pKind = make([]string, 0, nPostings), make([]string, 0, nPostings), make([]string, 0, nPostings), make([]string, 0, nPostings)
	)
	type delta struct {
		a     Account
		sum   int64
		first int64 // booked_at of the first posting, for created_at
	}
	deltas := make(map[string]*delta, nPostings)
	for i, t := range txns {
		t.ID = firstTxn + int64(i)
		at := t.BookedAt.UnixNano()
		tID[i], tKind[i], tRef[i], tCorrects[i], tAt[i] = t.ID, t.Kind, t.Reference, t.Corrects, at
		for _, p := range t.Postings {
			pID, pTxn, pAmount, pAt = append(pID, nextPosting), append(pTxn, t.ID), append(pAmount, p.AmountMinor), append(pAt, at)
			pAccount, pOwner, pCcy, pKind = append(pAccount, p.Account.Name), append(pOwner, p.Account.Owner), append(pCcy, p.Account.Currency), append(pKind, p.Kind)
			nextPosting++
			d := deltas[p.Account.Name]
			if d == nil {
				d = &delta{a: p.Account, first: at}
				deltas[p.Account.Name] = d
			}
			s, ok := addChecked(d.sum, p.AmountMinor)
			if !ok {
				return fmt.Errorf("%w: account %s", ErrOverflow, p.Account.Name)
			}
			d.sum = s
		}
	}
	if _, err := bulk.InsertColumns(ctx, q, l.db.Dialect, "ledger_transactions",
		[]string{"transaction_id", "kind", "reference", "corrects_transaction_id", "booked_at"},
		[]any{tID, tKind, tRef, tCorrects, tAt}, ""); err != nil {
		if sqlstore.IsUniqueViolation(err) {
			return fmt.Errorf("%w: %v", ErrDuplicate, err)
		}
		return err
	}
	if _, err := bulk.InsertColumns(ctx, q, l.db.Dialect, "ledger_postings",
		[]string{"posting_id", "transaction_id", "account", "owner", "currency", "amount_minor", "kind", "booked_at"},
		[]any{pID, pTxn, pAccount, pOwner, pCcy, pAmount, pKind, pAt}, ""); err != nil {
		return err
	}
	// Balance rows are updated in account order so that concurrent writers
	// lock them in the same order and cannot deadlock each other.
	names := make([]string, 0, len(deltas))
	for n := range deltas {
		names = append(names, n)
	}
	sort.Strings(names)
	balRows := make([][]any, 0, len(names))
	for _, n := range names {
		d := deltas[n]
		balRows = append(balRows, []any{n, int32(d.a.Kind), d.a.Owner, d.a.Currency, d.sum, d.first})
	}
	if _, err := bulk.Insert(ctx, q, l.db.Dialect, "ledger_accounts",
		[]string{"account", "kind", "owner", "currency", "balance_minor", "created_at"}, balRows,
		"ON CONFLICT (account) DO UPDATE SET balance_minor = ledger_accounts.balance_minor + excluded.balance_minor"); err != nil {
		return err
	}
	for _, t := range txns {
		for _, name := range t.NonNegative {
			a, err := ParseAccount(name)
			if err != nil {
				return err
			}
			bal, err := l.Balance(ctx, q, name)
			if err != nil {
				return err
			}
			if bal*a.Kind.NormalSign() < 0 {
				return fmt.Errorf("%w: %s", ErrNegativeBalance, name)
			}
		}
	}
	var unbalanced int64
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT transaction_id, currency FROM ledger_postings
		WHERE posting_id >= $1 AND posting_id < $2 GROUP BY transaction_id, currency HAVING SUM(amount_minor) <> 0) u`,
		firstPosting, nextPosting).Scan(&unbalanced); err != nil {
		return err
	}
	if unbalanced != 0 {
		return fmt.Errorf("%w: %d transactions do not balance after writing", ErrUnbalanced, unbalanced)
	}
	return nil
}

// Balance returns an account's stored balance (exchange's books: credit
// positive); 0 for an account with no postings.
func (l *Ledger) Balance(ctx context.Context, q *sql.Tx, account string) (int64, error) {
	var b int64
	err := q.QueryRowContext(ctx, `SELECT balance_minor FROM ledger_accounts WHERE account = $1`, account).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return b, err
}

// AccountBalance is an account with its stored balance.
type AccountBalance struct {
	Account      Account
	BalanceMinor int64
}

// Held is the balance as the account holder sees it.
func (b AccountBalance) Held() int64 { return b.BalanceMinor * b.Account.Kind.NormalSign() }

// Balances returns every account of an owner (a member id or ExchangeOwner),
// ordered by name.
func (l *Ledger) Balances(ctx context.Context, q *sql.Tx, owner string) ([]AccountBalance, error) {
	rows, err := q.QueryContext(ctx, `SELECT account, balance_minor FROM ledger_accounts WHERE owner = $1 ORDER BY account`, owner)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AccountBalance
	for rows.Next() {
		var name string
		var bal int64
		if err := rows.Scan(&name, &bal); err != nil {
			return nil, err
		}
		a, err := ParseAccount(name)
		if err != nil {
			return nil, err
		}
		out = append(out, AccountBalance{Account: a, BalanceMinor: bal})
	}
	return out, rows.Err()
}

// Entry is a stored posting with its transaction's reference.
type Entry struct {
	PostingID     int64
	TransactionID int64
	Account       Account
	AmountMinor   int64
	Kind          string
	Reference     string
	Corrects      int64
	BookedAt      time.Time
}

// Held is the amount as the account holder sees it.
func (e Entry) Held() int64 { return e.AmountMinor * e.Account.Kind.NormalSign() }

const entryCols = `p.posting_id, p.transaction_id, p.account, p.amount_minor, p.kind, t.reference, t.corrects_transaction_id, p.booked_at`

func scanEntries(rows *sql.Rows) ([]Entry, error) {
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var (
			e    Entry
			name string
			at   int64
		)
		if err := rows.Scan(&e.PostingID, &e.TransactionID, &name, &e.AmountMinor, &e.Kind, &e.Reference, &e.Corrects, &at); err != nil {
			return nil, err
		}
		a, err := ParseAccount(name)
		if err != nil {
			return nil, err
		}
		e.Account, e.BookedAt = a, time.Unix(0, at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// TransactionEntries returns a transaction's postings, or none if there is
// no such transaction.
func (l *Ledger) TransactionEntries(ctx context.Context, q *sql.Tx, id int64) ([]Entry, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+entryCols+` FROM ledger_postings p JOIN ledger_transactions t ON t.transaction_id = p.transaction_id
		WHERE p.transaction_id = $1 ORDER BY p.posting_id`, id)
	if err != nil {
		return nil, err
	}
	return scanEntries(rows)
}

// Cursor is a position in an owner's postings: booking time, then id.
type Cursor struct {
	BookedAt  int64
	PostingID int64
}

// Postings returns up to limit postings of an owner's accounts (in one
// currency, or all when currency is empty) after a cursor, in booking order.
func (l *Ledger) Postings(ctx context.Context, q *sql.Tx, owner, currency string, after Cursor, limit int) ([]Entry, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+entryCols+` FROM ledger_postings p JOIN ledger_transactions t ON t.transaction_id = p.transaction_id
		WHERE p.owner = $1 AND ($2 = '' OR p.currency = $2) AND (p.booked_at, p.posting_id) > ($3, $4)
		ORDER BY p.booked_at, p.posting_id LIMIT $5`, owner, currency, after.BookedAt, after.PostingID, limit)
	if err != nil {
		return nil, err
	}
	return scanEntries(rows)
}

// PostingsBetween returns up to limit postings of an owner's accounts in a
// currency booked in [from, to), in booking order.
func (l *Ledger) PostingsBetween(ctx context.Context, q *sql.Tx, owner, currency string, from, to time.Time, limit int) ([]Entry, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+entryCols+` FROM ledger_postings p JOIN ledger_transactions t ON t.transaction_id = p.transaction_id
		WHERE p.owner = $1 AND p.currency = $2 AND p.booked_at >= $3 AND p.booked_at < $4 ORDER BY p.booked_at, p.posting_id LIMIT $5`,
		owner, currency, from.UnixNano(), to.UnixNano(), limit)
	if err != nil {
		return nil, err
	}
	return scanEntries(rows)
}

// HeldBefore is the sum, as the holder sees it, of an owner's postings in a
// currency booked before a moment: a statement's opening balance.
func (l *Ledger) HeldBefore(ctx context.Context, q *sql.Tx, owner, currency string, before time.Time) (int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT account, CAST(COALESCE(SUM(amount_minor), 0) AS TEXT) FROM ledger_postings
		WHERE owner = $1 AND currency = $2 AND booked_at < $3 GROUP BY account`, owner, currency, before.UnixNano())
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	total := new(big.Int)
	for rows.Next() {
		var name, sum string
		if err := rows.Scan(&name, &sum); err != nil {
			return 0, err
		}
		a, err := ParseAccount(name)
		if err != nil {
			return 0, err
		}
		v, ok := new(big.Int).SetString(sum, 10)
		if !ok {
			return 0, fmt.Errorf("sum %q is not an integer", sum)
		}
		total.Add(total, v.Mul(v, big.NewInt(a.Kind.NormalSign())))
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if !total.IsInt64() {
		return 0, ErrOverflow
	}
	return total.Int64(), nil
}

// CurrencyTotal is one currency's ledger: the sums of all debits and of all
// credits, in minor units.
type CurrencyTotal struct {
	Currency        string
	Debits, Credits *big.Int
	Postings        int64
}

// Balanced reports whether the currency's debits equal its credits.
func (c CurrencyTotal) Balanced() bool { return c.Debits.Cmp(c.Credits) == 0 }

// CheckResult is the proof that the whole ledger balances.
type CheckResult struct {
	Totals []CurrencyTotal
	// Transactions is the number of transactions in the ledger.
	Transactions int64
	// UnbalancedTransactions counts transactions whose postings do not sum
	// to zero in some currency (must be 0).
	UnbalancedTransactions int64
	// BalanceMismatches counts accounts whose stored balance differs from the
	// sum of their postings (must be 0).
	BalanceMismatches int64
}

// Balanced reports whether every check passed.
func (r *CheckResult) Balanced() bool {
	if r.UnbalancedTransactions != 0 || r.BalanceMismatches != 0 {
		return false
	}
	for _, t := range r.Totals {
		if !t.Balanced() {
			return false
		}
	}
	return true
}

// Check proves with queries over the whole ledger that debits equal credits
// per currency, that every single transaction balances, and that every
// account's balance is the sum of its postings.
func (l *Ledger) Check(ctx context.Context, q *sql.Tx) (*CheckResult, error) {
	r := &CheckResult{}
	rows, err := q.QueryContext(ctx, `SELECT currency,
		CAST(COALESCE(SUM(CASE WHEN amount_minor < 0 THEN -amount_minor ELSE 0 END), 0) AS TEXT),
		CAST(COALESCE(SUM(CASE WHEN amount_minor > 0 THEN amount_minor ELSE 0 END), 0) AS TEXT),
		COUNT(*) FROM ledger_postings GROUP BY currency ORDER BY currency`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			t       CurrencyTotal
			deb, cr string
		)
		if err := rows.Scan(&t.Currency, &deb, &cr, &t.Postings); err != nil {
			return nil, err
		}
		var ok1, ok2 bool
		t.Debits, ok1 = new(big.Int).SetString(deb, 10)
		t.Credits, ok2 = new(big.Int).SetString(cr, 10)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("ledger totals %q/%q are not integers", deb, cr)
		}
		r.Totals = append(r.Totals, t)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM ledger_transactions`).Scan(&r.Transactions); err != nil {
		return nil, err
	}
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT transaction_id, currency FROM ledger_postings
		GROUP BY transaction_id, currency HAVING SUM(amount_minor) <> 0) u`).Scan(&r.UnbalancedTransactions); err != nil {
		return nil, err
	}
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM ledger_accounts a LEFT JOIN
		(SELECT account, SUM(amount_minor) AS s FROM ledger_postings GROUP BY account) p ON p.account = a.account
		WHERE p.s IS NULL OR p.s <> a.balance_minor`).Scan(&r.BalanceMismatches); err != nil {
		return nil, err
	}
	var orphans int64
	if err := q.QueryRowContext(ctx, `SELECT COUNT(DISTINCT p.account) FROM ledger_postings p
		LEFT JOIN ledger_accounts a ON a.account = p.account WHERE a.account IS NULL`).Scan(&orphans); err != nil {
		return nil, err
	}
	r.BalanceMismatches += orphans
	return r, nil
}
