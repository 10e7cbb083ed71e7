package settlement

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/bcx-exchange/bcx/pkg/idempotency"
	"github.com/bcx-exchange/bcx/pkg/sqlstore"
	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	"github.com/bcx-exchange/bcx/services/settlement/internal/bulk"
	"github.com/bcx-exchange/bcx/services/settlement/ledger"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// store allocates the settlement service's ids. Like the ledger's, they are
// allocated in memory from the maxima found at start (one writer per
// database); primary keys turn a clash into an error.
type store struct {
	movement, outbox, instruction, withdrawal, rate, run atomic.Int64
}

func openStore(ctx context.Context, db *sqlstore.DB) (*store, error) {
	st := &store{}
	for _, c := range []struct {
		n     *atomic.Int64
		query string
	}{
		{&st.movement, `SELECT COALESCE(MAX(movement_id), 0) FROM stl_bank_movements`},
		{&st.outbox, `SELECT COALESCE(MAX(id), 0) FROM stl_outbox`},
		{&st.rate, `SELECT COALESCE(MAX(rate_id), 0) FROM stl_fx_rates`},
		{&st.run, `SELECT COALESCE(MAX(run_id), 0) FROM stl_cycle_runs`},
	} {
		var n int64
		if err := db.QueryRowContext(ctx, c.query).Scan(&n); err != nil {
			return nil, err
		}
		c.n.Store(n)
	}
	// Text ids are zero-padded, so the largest sorts last.
	for _, c := range []struct {
		n      *atomic.Int64
		query  string
		prefix string
	}{
		{&st.instruction, `SELECT COALESCE(MAX(instruction_id), '') FROM stl_instructions`, "I"},
		{&st.withdrawal, `SELECT COALESCE(MAX(withdrawal_id), '') FROM stl_withdrawals`, "W"},
	} {
		var s string
		if err := db.QueryRowContext(ctx, c.query).Scan(&s); err != nil {
			return nil, err
		}
		if s != "" {
			var n int64
			if _, err := fmt.Sscanf(s, c.prefix+"%d", &n); err != nil {
				return nil, fmt.Errorf("id %q: %w", s, err)
			}
			c.n.Store(n)
		}
	}
	return st, nil
}

func instructionID(n int64) string { return fmt.Sprintf("I%012d", n) }
func withdrawalID(n int64) string  { return fmt.Sprintf("W%012d", n) }

// instruction is a payment or transfer instruction to a clearing bank.
type instruction struct {
	ID                 string
	Bank               string
	Cursor             int64
	Kind               settlementv1.InstructionKind
	DebitAccount       string
	CreditAccount      string
	Currency           string
	AmountMinor        int64
	CounterCurrency    string
	CounterAmountMinor int64
	EndToEndID         string
	Status             settlementv1.InstructionStatus
	BankReference      string
	RejectReason       string
	// Source is what the instruction is for: a withdrawal id, "trade/<id>",
	// "cycle/<run>".
	Source    string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// movement is a bank movement the ledger expects, for reconciliation.
type movement struct {
	Bank          string
	Currency      string
	AmountMinor   int64 // as the bank shows it: + credit to the exchange's account
	EndToEndID    string
	BankReference string
	ValueDate     string
	Source        string
	TransactionID int64
}

// outboxCmd is a command for the core, sent until acknowledged.
type outboxCmd struct {
	Kind    string // outboxCredit, outboxDebit, outboxFeeSchedule
	Key     string
	Payload proto.Message
}

// effects is what one business event does beyond its own rows: ledger
// transactions, bank instructions, expected bank movements and core
// commands, all written in the caller's database transaction.
type effects struct {
	txns         []*ledger.Transaction
	instructions []*instruction
	movements    []movement
	outbox       []outboxCmd
}

func (e *effects) merge(o *effects) {
	e.txns = append(e.txns, o.txns...)
	e.instructions = append(e.instructions, o.instructions...)
	e.movements = append(e.movements, o.movements...)
	e.outbox = append(e.outbox, o.outbox...)
}

// write stores the effects. Movements may name their transaction with
// TransactionID < 0 meaning "the index of a transaction in txns, negated
// minus one", resolved after the ledger assigns ids.
func (s *Service) write(ctx context.Context, q *sql.Tx, e *effects, now time.Time) error {
	if err := s.ledger.Post(ctx, q, e.txns...); err != nil {
		return err
	}
	if err := s.insertInstructions(ctx, q, e.instructions, now); err != nil {
		return err
	}
	if len(e.movements) > 0 {
		rows := make([][]any, 0, len(e.movements))
		for _, m := range e.movements {
			txnID := m.TransactionID
			if txnID < 0 {
				txnID = e.txns[-txnID-1].ID
			}
			rows = append(rows, []any{s.store.movement.Add(1), m.Bank, m.Currency, m.AmountMinor, m.EndToEndID, m.BankReference,
				m.ValueDate, m.Source, txnID, now.UnixNano()})
		}
		if _, err := bulk.Insert(ctx, q, s.db.Dialect, "stl_bank_movements", []string{"movement_id", "bank", "currency", "amount_minor",
			"end_to_end_id", "bank_reference", "value_date", "source", "transaction_id", "created_at"}, rows, ""); err != nil {
			return err
		}
	}
	for _, c := range e.outbox {
		if err := s.enqueue(ctx, q, c, now); err != nil {
			return err
		}
	}
	return nil
}

// afterCommit wakes the workers that wait for what effects created.
func (s *Service) afterCommit(e *effects) {
	if len(e.outbox) > 0 {
		s.wakeOutbox()
	}
	if len(e.instructions) > 0 {
		s.instructionsCreated()
	}
}

// txRef returns the placeholder for "the i-th transaction of these effects".
func txRef(i int) int64 { return -int64(i) - 1 }

// insertInstructions stores new instructions. Each bank's cursors come from
// a counter row that stays locked until commit, so a bank's instructions
// commit in cursor order and a stream that reads "after cursor N" can never
// miss one that commits late. Banks are locked in name order, so two
// writers cannot deadlock.
func (s *Service) insertInstructions(ctx context.Context, q *sql.Tx, ins []*instruction, now time.Time) error {
	if len(ins) == 0 {
		return nil
	}
	byBank := map[string][]*instruction{}
	var banks []string
	for _, in := range ins {
		if byBank[in.Bank] == nil {
			banks = append(banks, in.Bank)
		}
		byBank[in.Bank] = append(byBank[in.Bank], in)
	}
	sort.Strings(banks)
	rows := make([][]any, 0, len(ins))
	for _, bank := range banks {
		group := byBank[bank]
		var last int64
		if err := q.QueryRowContext(ctx, `INSERT INTO stl_bank_cursors (bank, last_cursor) VALUES ($1, $2)
			ON CONFLICT (bank) DO UPDATE SET last_cursor = stl_bank_cursors.last_cursor + excluded.last_cursor RETURNING last_cursor`,
			bank, int64(len(group))).Scan(&last); err != nil {
			return fmt.Errorf("instruction cursor: %w", err)
		}
		for i, in := range group {
			if in.ID == "" {
				in.ID = instructionID(s.store.instruction.Add(1))
			}
			if in.EndToEndID == "" {
				in.EndToEndID = "BCX" + in.ID
			}
			in.Cursor = last - int64(len(group)) + 1 + int64(i)
			in.Status = settlementv1.InstructionStatus_INSTRUCTION_STATUS_PENDING
			in.CreatedAt, in.UpdatedAt = now, now
			rows = append(rows, []any{in.ID, in.Bank, in.Cursor, int64(in.Kind), in.DebitAccount, in.CreditAccount, in.Currency,
				in.AmountMinor, in.CounterCurrency, in.CounterAmountMinor, in.EndToEndID, int64(in.Status), "", "", in.Source,
				now.UnixNano(), now.UnixNano()})
		}
	}
	_, err := bulk.Insert(ctx, q, s.db.Dialect, "stl_instructions", instructionColumns, rows, "")
	return err
}

var instructionColumns = strings.Fields(strings.ReplaceAll(instructionCols, ",", " "))

const instructionCols = `instruction_id, bank, seq_cursor, kind, debit_account, credit_account, currency, amount_minor,
	counter_currency, counter_amount_minor, end_to_end_id, status, bank_reference, reject_reason, source, created_at, updated_at`

func scanInstruction(row interface{ Scan(...any) error }) (*instruction, error) {
	var (
		in                   instruction
		kind, status         int32
		created, updatedNano int64
	)
	if err := row.Scan(&in.ID, &in.Bank, &in.Cursor, &kind, &in.DebitAccount, &in.CreditAccount, &in.Currency, &in.AmountMinor,
		&in.CounterCurrency, &in.CounterAmountMinor, &in.EndToEndID, &status, &in.BankReference, &in.RejectReason, &in.Source,
		&created, &updatedNano); err != nil {
		return nil, sqlstore.NoRows(err)
	}
	in.Kind, in.Status = settlementv1.InstructionKind(kind), settlementv1.InstructionStatus(status)
	in.CreatedAt, in.UpdatedAt = time.Unix(0, created), time.Unix(0, updatedNano)
	return &in, nil
}

func (s *Service) getInstruction(ctx context.Context, q *sql.Tx, id string) (*instruction, error) {
	return scanInstruction(q.QueryRowContext(ctx, `SELECT `+instructionCols+` FROM stl_instructions WHERE instruction_id = $1`, id))
}

func (s *Service) listInstructions(ctx context.Context, q *sql.Tx, bank string, after int64, limit int) ([]*instruction, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+instructionCols+` FROM stl_instructions WHERE bank = $1 AND seq_cursor > $2
		ORDER BY seq_cursor LIMIT $3`, bank, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*instruction
	for rows.Next() {
		in, err := scanInstruction(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// idempotent runs fn in a transaction guarded by an idempotency key.
func idempotent[T proto.Message](ctx context.Context, s *Service, scope, key string, req proto.Message, fn func(q *sql.Tx) (T, error)) (T, error) {
	return idempotency.Do(ctx, s.db, scope, key, req, fn)
}

// inTx runs fn in a transaction and returns its value.
func inTx[T any](ctx context.Context, s *Service, fn func(q *sql.Tx) (T, error)) (T, error) {
	var out T
	err := s.db.InTx(ctx, func(q *sql.Tx) error {
		var err error
		out, err = fn(q)
		return err
	})
	return out, err
}
