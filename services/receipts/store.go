package receipts

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/bcx-exchange/bcx/pkg/sqlstore"
	receiptsv1 "github.com/bcx-exchange/bcx/proto/bcx/receipts/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// errConflict means a receipt row changed between our read and our write (its
// version moved): the whole transaction is run again on fresh data, where the
// loser of a race then sees the winner's state and is refused by it.
var errConflict = errors.New("receipt changed concurrently")

// store keeps the registry in SQL. Every change goes through a txn, which
// buffers receipt writes, piece claims and chain events and writes them in a
// few multi-row statements at the end (flush): that keeps both the per-RPC
// transactions and the consumer's batches to a handful of round trips.
type store struct {
	db *sqlstore.DB
}

func openStore(ctx context.Context, db *sqlstore.DB) (*store, error) {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, "receipts", sub); err != nil {
		return nil, err
	}
	return &store{db: db}, nil
}

// run executes fn and the flush of what it buffered in one transaction,
// starting over on a version conflict.
func (s *store) run(ctx context.Context, now func() time.Time, fn func(t *txn) error) error {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		err = s.db.InTx(ctx, func(tx *sql.Tx) error {
			t := &txn{ctx: ctx, tx: tx, now: now().UnixNano(), cache: map[string]*receipt{}, heads: map[string]string{},
				anon: s.db.Dialect == sqlstore.SQLite}
			if err := fn(t); err != nil {
				return err
			}
			return t.flush()
		})
		if !errors.Is(err, errConflict) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * time.Millisecond):
		}
	}
	return err
}

// txn is one transaction's view of the registry.
type txn struct {
	ctx   context.Context
	tx    *sql.Tx
	anon  bool // SQLite: bulk placeholders are "?" (see placeholders)
	now   int64
	cache map[string]*receipt
	dirty []*receipt
	// piece numbers claimed (issue) and released (load-out).
	pieceClaims, pieceReleases []string
	events                     []pendingEvent
	heads                      map[string]string
	deliveries                 []deliveryRow
	trades                     [][2]int64 // trade id, sequence
	breaks                     []breakRow
	legs                       []goodsLeg // goods legs for settlement's outbox
	position                   *[2]int64  // old, new consumer sequence
	outbox                     []*receipt // buyers' receipts waiting for their credit
	hooks                      []func() error
}

type pendingEvent struct {
	receipt string
	kind    string
	actor   string
	state   chainState
	detail  map[string]any
}

type deliveryRow struct {
	tradeID                    int64
	from, to                   string
	sequence                   int64
	symbol, seller, buyer      string
	scale                      int32
	allocated, delivered, diff int64
	within                     bool
	priceCurrency, price       string
}

type breakRow struct {
	sequence, tradeID int64
	receipt, reason   string
}

// then runs fn after the flush, inside the transaction (responses need the
// events' hashes; idempotency records must commit with the effects).
func (t *txn) then(fn func() error) { t.hooks = append(t.hooks, fn) }

const receiptCols = `receipt_number, warehouse, commodity, grade, brand, origin, production_date, customs_status,
	weight_scale, delivery_tolerance, net_weight, pieces, inspection_certificate, storage_paid_through, expiry_date,
	holder, encumbrance, pledge_bank, pledge_loan, pledge_currency, pledge_amount, status, issued_at, version,
	children, commands, pool, pending, pending_key, pending_symbols, pending_request, pending_after`

const receiptNCols = 32

// receiptColsWithoutPieces is receiptCols less pieces (the 12th column).
var receiptColsWithoutPieces = strings.Replace(receiptCols, " pieces,", "", 1)

type scanner interface{ Scan(dest ...any) error }

func scanReceipt(sc scanner) (*receipt, error) {
	var r receipt
	var customs, enc, status int32
	var pieces, symbols string
	err := sc.Scan(&r.Number, &r.Warehouse, &r.Commodity, &r.Grade, &r.Brand, &r.Origin, &r.ProductionDate, &customs,
		&r.Scale, &r.Tolerance, &r.Weight, &pieces, &r.Inspection, &r.StoragePaidThrough, &r.Expiry,
		&r.Holder, &enc, &r.PledgeBank, &r.PledgeLoan, &r.PledgeCurrency, &r.PledgeAmount, &status, &r.IssuedAt, &r.Version,
		&r.Children, &r.Commands, &r.Pool, &r.Pending, &r.PendingKey, &symbols, &r.PendingRequest, &r.PendingAfter)
	if err != nil {
		return nil, err
	}
	r.Customs, r.Enc, r.Status = typev1.CustomsStatus(customs), receiptsv1.Encumbrance(enc), receiptsv1.ReceiptStatus(status)
	if err := json.Unmarshal([]byte(pieces), &r.Pieces); err != nil {
		return nil, fmt.Errorf("receipt %s pieces: %w", r.Number, err)
	}
	if symbols != "" {
		r.PendingSymbols = strings.Split(symbols, ",")
	}
	r.origVersion = r.Version
	return &r, nil
}

func (r *receipt) args() []any {
	pieces, _ := json.Marshal(r.Pieces) // a slice of plain structs always marshals
	return []any{r.Number, r.Warehouse, r.Commodity, r.Grade, r.Brand, r.Origin, r.ProductionDate, int32(r.Customs),
		r.Scale, r.Tolerance, r.Weight, string(pieces), r.Inspection, r.StoragePaidThrough, r.Expiry,
		r.Holder, int32(r.Enc), r.PledgeBank, r.PledgeLoan, r.PledgeCurrency, r.PledgeAmount, int32(r.Status), r.IssuedAt, r.Version,
		r.Children, r.Commands, r.Pool, r.Pending, r.PendingKey, joinSymbols(r.PendingSymbols), r.PendingRequest, r.PendingAfter}
}

// argsLight is args with an empty pieces value, for upsertWithoutPieces,
// which leaves the stored pieces as they are. (The column stays in the
// statement: the engines check NOT NULL on the row proposed for insertion
// before they find the conflict.)
func (r *receipt) argsLight() []any {
	a := r.args()
	a[11] = ""
	return a
}

// get returns the receipt as this transaction sees it (sqlstore.ErrNotFound
// if there is none). Callers mutate it and call save.
func (t *txn) get(number string) (*receipt, error) {
	if r, ok := t.cache[number]; ok {
		return r, nil
	}
	r, err := scanReceipt(t.tx.QueryRowContext(t.ctx, `SELECT `+receiptCols+` FROM receipts WHERE receipt_number = $1`, number))
	if err != nil {
		return nil, sqlstore.NoRows(err)
	}
	t.cache[number] = r
	return r, nil
}

// prefetch loads many receipts in a few queries; missing ones are skipped.
func (t *txn) prefetch(numbers []string) error {
	var want []string
	seen := map[string]bool{}
	for _, n := range numbers {
		if _, ok := t.cache[n]; !ok && !seen[n] {
			seen[n] = true
			want = append(want, n)
		}
	}
	args := make([]any, len(want))
	for i, n := range want {
		args[i] = n
	}
	return t.inList(`SELECT `+receiptCols+` FROM receipts WHERE receipt_number`, args, func(rows *sql.Rows) error {
		r, err := scanReceipt(rows)
		if err == nil {
			t.cache[r.Number] = r
		}
		return err
	})
}

// save marks a receipt as changed in this transaction.
func (t *txn) save(r *receipt) {
	if r.isNew || r.Version != r.origVersion {
		return // created here (create listed it) or already marked
	}
	r.Version = r.origVersion + 1
	t.dirty = append(t.dirty, r)
}

// create adds a new receipt. Its pieces are claimed separately: afresh when
// issued (claim), moved from the receipts it was made of otherwise.
func (t *txn) create(r *receipt) {
	r.isNew, r.Version, r.origVersion = true, 1, 0
	t.cache[r.Number] = r
	t.dirty = append(t.dirty, r)
}

// claim claims a new receipt's piece numbers; the flush fails with a unique
// violation if any is on another live receipt. A claim lasts while the goods
// are in the warehouse: split, merge and delivery hand pieces from receipt to
// receipt without touching it, and only the load-out releases it.
func (t *txn) claim(ps []piece) {
	for _, p := range ps {
		t.pieceClaims = append(t.pieceClaims, p.Number)
	}
}

// releasePieces frees the piece numbers of goods that left the warehouse.
func (t *txn) releasePieces(ps []piece) {
	for _, p := range ps {
		t.pieceReleases = append(t.pieceReleases, p.Number)
	}
}

// emit appends an event for r, with r's state as it is now.
func (t *txn) emit(r *receipt, kind, actor string, detail map[string]any) {
	t.events = append(t.events, pendingEvent{receipt: r.Number, kind: kind, actor: actor, state: r.chainState(), detail: detail})
}

// claimedPieces returns which of the given piece numbers are on live receipts.
func (t *txn) claimedPieces(numbers []string) (map[string]bool, error) {
	out := map[string]bool{}
	args := make([]any, len(numbers))
	for i, n := range numbers {
		args[i] = n
	}
	err := t.inList(`SELECT piece_number FROM live_pieces WHERE piece_number`, args, func(rows *sql.Rows) error {
		var p string
		err := rows.Scan(&p)
		out[p] = true
		return err
	})
	return out, err
}

// placeholders returns "$from, ..., $(from+n-1)" for PostgreSQL and "?, ..., ?"
// for SQLite. They must be the statement's last parameters, in order. SQLite
// resolves every "$N" by scanning the names it has seen so far, which makes
// parsing a statement with thousands of them quadratic (it was most of a
// batch's time); an anonymous "?" just takes the next number.
func (t *txn) placeholders(from, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		if t.anon {
			b.WriteByte('?')
		} else {
			fmt.Fprintf(&b, "$%d", from+i)
		}
	}
	return b.String()
}

// valuesList returns "($1, $2), ($3, $4)" for rows x cols (or with "?").
func (t *txn) valuesList(rows, cols int) string {
	var b strings.Builder
	for r := 0; r < rows; r++ {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(")
		b.WriteString(t.placeholders(r*cols+1, cols))
		b.WriteString(")")
	}
	return b.String()
}

// chunk returns how many of n remaining rows the next statement takes: the
// largest power of two not above n or limit. Statement texts then come in a
// few sizes only, which the driver's prepared-statement cache keeps, instead
// of one new text (parsed and planned afresh) per row count.
func chunk(n, limit int) int {
	c := 1
	for c*2 <= n && c*2 <= limit {
		c *= 2
	}
	return c
}

// maxParams bounds the parameters of one statement: PostgreSQL takes 65535,
// SQLite (since 3.32) 32766. Fewer, larger statements mean fewer round trips,
// which is what a batch's time goes on when the machine is busy.
const maxParams = 30000

// insertRows runs a multi-row INSERT in chunks that stay within both engines'
// limits on bound parameters.
func (t *txn) insertRows(prefix, suffix string, cols int, rows [][]any) (int64, error) {
	if !t.anon {
		return t.insertUnnest(prefix, suffix, cols, rows)
	}
	per := max(1, maxParams/cols)
	var affected int64
	for len(rows) > 0 {
		part := rows[:chunk(len(rows), per)]
		rows = rows[len(part):]
		args := make([]any, 0, len(part)*cols)
		for _, r := range part {
			args = append(args, r...)
		}
		res, err := t.tx.ExecContext(t.ctx, prefix+" VALUES "+t.valuesList(len(part), cols)+" "+suffix, args...)
		if err != nil {
			return affected, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return affected, err
		}
		affected += n
	}
	return affected, nil
}

// insertUnnest is insertRows for PostgreSQL: one array parameter per column,
// "INSERT ... SELECT * FROM unnest($1::bigint[], $2::text[], ...)". The
// statement text is the same for any number of rows (prepared once, cached)
// and PostgreSQL neither parses nor plans thousands of parameters.
func (t *txn) insertUnnest(prefix, suffix string, cols int, rows [][]any) (int64, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	args := make([]any, cols)
	casts := make([]string, cols)
	for c := 0; c < cols; c++ {
		switch rows[0][c].(type) {
		case int64:
			v := make([]int64, len(rows))
			for i, r := range rows {
				v[i] = r[c].(int64)
			}
			args[c], casts[c] = v, "bigint[]"
		case int32:
			v := make([]int32, len(rows))
			for i, r := range rows {
				v[i] = r[c].(int32)
			}
			args[c], casts[c] = v, "integer[]"
		case string:
			v := make([]string, len(rows))
			for i, r := range rows {
				v[i] = r[c].(string)
			}
			args[c], casts[c] = v, "text[]"
		case bool:
			v := make([]bool, len(rows))
			for i, r := range rows {
				v[i] = r[c].(bool)
			}
			args[c], casts[c] = v, "boolean[]"
		default:
			return 0, fmt.Errorf("insertUnnest: column %d has unsupported type %T", c, rows[0][c])
		}
		casts[c] = fmt.Sprintf("$%d::%s", c+1, casts[c])
	}
	res, err := t.tx.ExecContext(t.ctx, prefix+" SELECT * FROM unnest("+strings.Join(casts, ", ")+") "+suffix, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// in returns a membership test for the values, as parameters from $from on:
// "= ANY($from)" with one array parameter on PostgreSQL (one statement text
// for any number of values), "IN (?, ...)" on SQLite. The values are all
// strings or all int64s.
func (t *txn) in(from int, values []any) (string, []any) {
	if t.anon {
		return " IN (" + t.placeholders(from, len(values)) + ")", values
	}
	var arr any
	switch values[0].(type) {
	case int64:
		v := make([]int64, len(values))
		for i, x := range values {
			v[i] = x.(int64)
		}
		arr = v
	default:
		v := make([]string, len(values))
		for i, x := range values {
			v[i] = x.(string)
		}
		arr = v
	}
	return fmt.Sprintf(" = ANY($%d)", from), []any{arr}
}

// inChunks calls fn with the values in chunks small enough for one statement.
func (t *txn) inChunks(values []any, fn func(part []any) error) error {
	limit := len(values) // PostgreSQL: one array parameter, whatever its length
	if t.anon {
		limit = 4096
	}
	for len(values) > 0 {
		part := values[:min(len(values), limit)]
		values = values[len(part):]
		if err := fn(part); err != nil {
			return err
		}
	}
	return nil
}

// inList runs query, which ends in "WHERE <column>", for rows whose column is
// one of values, and calls scan for every row.
func (t *txn) inList(query string, values []any, scan func(*sql.Rows) error) error {
	return t.inChunks(values, func(part []any) error {
		clause, args := t.in(1, part)
		rows, err := t.tx.QueryContext(t.ctx, query+clause, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := scan(rows); err != nil {
				rows.Close()
				return err
			}
		}
		return rows.Close()
	})
}

// upsert returns the ON CONFLICT clause that makes a multi-row INSERT of
// existing receipts an update of the given columns.
func upsert(cols string) string {
	var sets []string
	for _, c := range strings.Split(strings.Join(strings.Fields(cols), " "), ", ")[1:] {
		sets = append(sets, c+" = excluded."+c)
	}
	// The guard: a row is only overwritten from the version this transaction
	// read; otherwise it counts as not affected and the transaction restarts.
	return "ON CONFLICT (receipt_number) DO UPDATE SET " + strings.Join(sets, ", ") +
		" WHERE receipts.version = excluded.version - 1"
}

var (
	upsertAll           = upsert(receiptCols)
	upsertWithoutPieces = upsert(receiptColsWithoutPieces)
)

// flush writes everything buffered, appends the events to the chain, then runs
// the hooks.
func (t *txn) flush() error {
	ctx := t.ctx
	// Rows in key order, so that concurrent transactions lock them in the same
	// order (PostgreSQL) and cannot deadlock on each other.
	sort.Slice(t.dirty, func(i, j int) bool { return t.dirty[i].Number < t.dirty[j].Number })
	var inserts, updates, lightUpdates [][]any
	for _, r := range t.dirty {
		switch {
		case r.isNew:
			inserts = append(inserts, r.args())
		case r.piecesChanged:
			updates = append(updates, r.args())
		default:
			lightUpdates = append(lightUpdates, r.argsLight())
		}
	}
	// Guarded updates first: a transaction that lost a race stops here, before
	// its new rows (a split's children, say) collide with the winner's.
	for _, u := range []struct {
		cols, suffix string
		rows         [][]any
	}{{receiptCols, upsertAll, updates}, {receiptCols, upsertWithoutPieces, lightUpdates}} {
		if len(u.rows) == 0 {
			continue
		}
		n, err := t.insertRows(`INSERT INTO receipts (`+u.cols+`)`, u.suffix, receiptNCols, u.rows)
		if err != nil {
			return err
		}
		if n != int64(len(u.rows)) {
			return errConflict
		}
	}
	if len(inserts) > 0 {
		if _, err := t.insertRows(`INSERT INTO receipts (`+receiptCols+`)`, "", receiptNCols, inserts); err != nil {
			return err
		}
	}
	if len(t.pieceReleases) > 0 {
		drops := make([]any, len(t.pieceReleases))
		for i, n := range t.pieceReleases {
			drops[i] = n
		}
		if err := t.inChunks(drops, func(part []any) error {
			clause, args := t.in(1, part)
			_, err := t.tx.ExecContext(ctx, `DELETE FROM live_pieces WHERE piece_number`+clause, args...)
			return err
		}); err != nil {
			return err
		}
	}
	if len(t.pieceClaims) > 0 {
		claims := append([]string(nil), t.pieceClaims...)
		sort.Strings(claims)
		rows := make([][]any, len(claims))
		for i, c := range claims {
			rows[i] = []any{c}
		}
		if _, err := t.insertRows(`INSERT INTO live_pieces (piece_number)`, "", 1, rows); err != nil {
			return err
		}
	}
	if len(t.deliveries) > 0 {
		rows := make([][]any, len(t.deliveries))
		for i, d := range t.deliveries {
			rows[i] = []any{d.tradeID, d.from, d.to, d.sequence, d.symbol, d.seller, d.buyer, d.scale, d.allocated,
				d.delivered, d.diff, d.within, d.priceCurrency, d.price, t.now}
		}
		if _, err := t.insertRows(`INSERT INTO deliveries (trade_id, from_receipt, to_receipt, sequence, symbol, seller, buyer,
			weight_scale, allocated, delivered, difference, within_tolerance, price_currency, price, at)`, "", 15, rows); err != nil {
			return err
		}
	}
	if len(t.trades) > 0 {
		rows := make([][]any, len(t.trades))
		for i, tr := range t.trades {
			rows[i] = []any{tr[0], tr[1]}
		}
		if _, err := t.insertRows(`INSERT INTO applied_trades (trade_id, sequence)`, "", 2, rows); err != nil {
			return err
		}
	}
	if len(t.breaks) > 0 {
		rows := make([][]any, len(t.breaks))
		for i, b := range t.breaks {
			rows[i] = []any{b.sequence, b.tradeID, b.receipt, b.reason, t.now}
		}
		if _, err := t.insertRows(`INSERT INTO breaks (sequence, trade_id, receipt_number, reason, at)`, "", 5, rows); err != nil {
			return err
		}
	}
	if len(t.legs) > 0 {
		rows := make([][]any, len(t.legs))
		for i, l := range t.legs {
			rows[i] = []any{l.tradeID, l.sequence, l.weight, l.reference, legPending, int64(0), int64(0), "", t.now, int64(0)}
		}
		if _, err := t.insertRows(`INSERT INTO goods_legs (trade_id, sequence, delivered_weight, reference, state, attempts,
			next_attempt, last_error, created_at, done_at)`, "", 10, rows); err != nil {
			return err
		}
	}
	if t.position != nil {
		res, err := t.tx.ExecContext(ctx, `UPDATE consumer_position SET sequence = $1 WHERE name = 'core' AND sequence = $2`,
			t.position[1], t.position[0])
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return errPositionMoved
		}
	}
	if err := t.appendChain(); err != nil {
		return err
	}
	for _, h := range t.hooks {
		if err := h(); err != nil {
			return err
		}
	}
	return nil
}

// errPositionMoved means another consumer applied events since this one read
// the position; this one drops its batch and resubscribes.
var errPositionMoved = errors.New("consumer position moved: another consumer is running")

// appendChain gives the buffered events their chain positions and hashes. It
// is the last write of the transaction, so the chain head's row lock (the one
// point every writer of the registry serializes on) is held only from here to
// the commit.
func (t *txn) appendChain() error {
	if len(t.events) == 0 {
		return nil
	}
	var last int64
	var prev string
	err := t.tx.QueryRowContext(t.ctx, `UPDATE chain_head SET idx = idx + $1, at = $2 WHERE id = 1 RETURNING idx, hash`,
		int64(len(t.events)), t.now).Scan(&last, &prev)
	if err != nil {
		return fmt.Errorf("chain head: %w", err)
	}
	at := formatTime(t.now)
	rows := make([][]any, len(t.events))
	for i, e := range t.events {
		idx := last - int64(len(t.events)) + int64(i) + 1
		var detail json.RawMessage
		if e.detail != nil {
			b, err := json.Marshal(e.detail) // maps marshal with sorted keys: canonical
			if err != nil {
				return err
			}
			detail = b
		}
		payload, err := json.Marshal(chainPayload{V: 1, Index: idx, Receipt: e.receipt, Kind: e.kind, At: at, Actor: e.actor,
			State: e.state, Detail: detail})
		if err != nil {
			return err
		}
		hash := chainHash(prev, e.receipt, sha256Hex(payload))
		rows[i] = []any{idx, e.receipt, e.kind, string(payload), prev, hash, t.now}
		prev = hash
		t.heads[e.receipt] = hash
	}
	if _, err := t.insertRows(`INSERT INTO events (idx, receipt_number, kind, payload, previous_hash, hash, at)`, "", 7, rows); err != nil {
		return err
	}
	_, err = t.tx.ExecContext(t.ctx, `UPDATE chain_head SET hash = $1 WHERE id = 1`, prev)
	return err
}

// head returns a receipt's latest event hash.
func (t *txn) head(number string) (string, error) {
	if h, ok := t.heads[number]; ok {
		return h, nil
	}
	var h string
	err := t.tx.QueryRowContext(t.ctx, `SELECT hash FROM events WHERE receipt_number = $1 ORDER BY idx DESC LIMIT 1`, number).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	t.heads[number] = h
	return h, err
}

func scanEvents(rows *sql.Rows) ([]storedEvent, error) {
	defer rows.Close()
	var out []storedEvent
	for rows.Next() {
		var e storedEvent
		if err := rows.Scan(&e.idx, &e.receipt, &e.kind, &e.payload, &e.prev, &e.hash, &e.at); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

type storedEvent struct {
	idx                                int64
	receipt, kind, payload, prev, hash string
	at                                 int64
}

const eventCols = `idx, receipt_number, kind, payload, previous_hash, hash, at`

func (t *txn) receiptEvents(number string) ([]storedEvent, error) {
	rows, err := t.tx.QueryContext(t.ctx, `SELECT `+eventCols+` FROM events WHERE receipt_number = $1 ORDER BY idx`, number)
	if err != nil {
		return nil, err
	}
	return scanEvents(rows)
}

func (t *txn) chainRange(from, to int64) ([]storedEvent, error) {
	rows, err := t.tx.QueryContext(t.ctx, `SELECT `+eventCols+` FROM events WHERE idx >= $1 AND idx <= $2 ORDER BY idx`, from, to)
	if err != nil {
		return nil, err
	}
	return scanEvents(rows)
}

func (t *txn) root() (idx int64, hash string, at int64, err error) {
	err = t.tx.QueryRowContext(t.ctx, `SELECT idx, hash, at FROM chain_head WHERE id = 1`).Scan(&idx, &hash, &at)
	return idx, hash, at, err
}

func (t *txn) consumerPosition() (int64, error) {
	var n int64
	err := t.tx.QueryRowContext(t.ctx, `SELECT sequence FROM consumer_position WHERE name = 'core'`).Scan(&n)
	return n, err
}

func joinSymbols(symbols []string) string { return strings.Join(symbols, ",") }
