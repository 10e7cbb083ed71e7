package listing

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bcx-exchange/bcx/pkg/sqlstore"
	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrNotFound is returned for a missing row.
var ErrNotFound = sqlstore.ErrNotFound

// ErrExists is returned when a natural key (code, symbol, id) is taken.
var ErrExists = errors.New("already exists")

// Store keeps the listing service's records in SQL (PostgreSQL or SQLite).
type Store struct {
	db *sqlstore.DB
}

// Q is what store functions run their SQL on: a transaction.
type Q = *sql.Tx

// NewStore migrates db and returns a store on it.
func NewStore(ctx context.Context, db *sqlstore.DB) (*Store, error) {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, "listing", sub); err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

// InTx runs fn in one transaction.
func (s *Store) InTx(ctx context.Context, fn func(q Q) error) error {
	return s.db.InTx(ctx, fn)
}

func insertErr(err error, what string) error {
	// Two concurrent creates can pick the same next core number (MAX + 1
	// under READ COMMITTED): that is a lost race, not a duplicate.
	if c := sqlstore.UniqueConstraint(err); strings.Contains(c, "number") {
		return fmt.Errorf("%s: %w", what, sqlstore.ErrRetry)
	}
	if sqlstore.IsUniqueViolation(err) {
		return fmt.Errorf("%s: %w", what, ErrExists)
	}
	return err
}

// --- commodities and warehouses -------------------------------------------

func (s *Store) CreateCommodity(ctx context.Context, q Q, c *listingv1.Commodity, now time.Time) error {
	body, err := proto.Marshal(c)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, `INSERT INTO commodities (code, body, created_at) VALUES ($1, $2, $3)`, c.Code, body, now.UnixNano())
	return insertErr(err, "commodity "+c.Code)
}

func (s *Store) GetCommodity(ctx context.Context, q Q, code string) (*listingv1.Commodity, error) {
	var body []byte
	if err := q.QueryRowContext(ctx, `SELECT body FROM commodities WHERE code = $1`, code).Scan(&body); err != nil {
		return nil, sqlstore.NoRows(err)
	}
	c := &listingv1.Commodity{}
	return c, proto.Unmarshal(body, c)
}

// ListCommodities returns up to limit commodities with code > after, by code.
func (s *Store) ListCommodities(ctx context.Context, q Q, after string, limit int) ([]*listingv1.Commodity, error) {
	return listBodies(ctx, q, `SELECT body FROM commodities WHERE code > $1 ORDER BY code LIMIT $2`,
		func() *listingv1.Commodity { return &listingv1.Commodity{} }, after, limit)
}

func (s *Store) CreateWarehouse(ctx context.Context, q Q, w *listingv1.Warehouse, now time.Time) error {
	body, err := proto.Marshal(w)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, `INSERT INTO warehouses (code, operator_participant_id, body, created_at) VALUES ($1, $2, $3, $4)`,
		w.Code, w.OperatorParticipantId, body, now.UnixNano())
	return insertErr(err, "warehouse "+w.Code)
}

func (s *Store) GetWarehouse(ctx context.Context, q Q, code string) (*listingv1.Warehouse, error) {
	var body []byte
	if err := q.QueryRowContext(ctx, `SELECT body FROM warehouses WHERE code = $1`, code).Scan(&body); err != nil {
		return nil, sqlstore.NoRows(err)
	}
	w := &listingv1.Warehouse{}
	return w, proto.Unmarshal(body, w)
}

func (s *Store) ListWarehouses(ctx context.Context, q Q, after string, limit int) ([]*listingv1.Warehouse, error) {
	return listBodies(ctx, q, `SELECT body FROM warehouses WHERE code > $1 ORDER BY code LIMIT $2`,
		func() *listingv1.Warehouse { return &listingv1.Warehouse{} }, after, limit)
}

func listBodies[T proto.Message](ctx context.Context, q Q, query string, mk func() T, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		m := mk()
		if err := proto.Unmarshal(body, m); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// --- instruments -------------------------------------------------------------

// CreateInstrument stores a new instrument, in effect from now, with the next
// free core number.
func (s *Store) CreateInstrument(ctx context.Context, q Q, symbol string, spec *listingv1.InstrumentSpec, now time.Time) error {
	var number int64
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(number), 0) + 1 FROM instruments`).Scan(&number); err != nil {
		return err
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO instruments (symbol, number, commodity, created_at) VALUES ($1, $2, $3, $4)`,
		symbol, number, spec.Commodity, now.UnixNano()); err != nil {
		return insertErr(err, "instrument "+symbol)
	}
	return s.AddInstrumentVersion(ctx, q, symbol, 1, spec, listingv1.InstrumentStatus_INSTRUMENT_STATUS_ACTIVE, now, now)
}

// AddInstrumentVersion records a definition that takes effect at effectiveFrom.
func (s *Store) AddInstrumentVersion(ctx context.Context, q Q, symbol string, version int64, spec *listingv1.InstrumentSpec,
	status listingv1.InstrumentStatus, effectiveFrom, now time.Time) error {
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(spec)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, `INSERT INTO instrument_versions (symbol, version, status, effective_from, spec, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, symbol, version, int32(status), effectiveFrom.UnixNano(), body, now.UnixNano())
	return insertErr(err, fmt.Sprintf("instrument %s version %d", symbol, version))
}

// DropPendingVersions removes versions not yet in effect at now, so that a new
// amendment replaces a pending one instead of queueing behind it.
func (s *Store) DropPendingVersions(ctx context.Context, q Q, symbol string, now time.Time) error {
	_, err := q.ExecContext(ctx, `DELETE FROM instrument_versions WHERE symbol = $1 AND effective_from > $2`, symbol, now.UnixNano())
	return err
}

// GetInstrument returns the instrument as in effect at now, with the pending
// change if one is scheduled.
func (s *Store) GetInstrument(ctx context.Context, q Q, symbol string, now time.Time) (*listingv1.Instrument, error) {
	var number, created int64
	if err := q.QueryRowContext(ctx, `SELECT number, created_at FROM instruments WHERE symbol = $1`, symbol).Scan(&number, &created); err != nil {
		return nil, sqlstore.NoRows(err)
	}
	rows, err := q.QueryContext(ctx, `SELECT version, status, effective_from, spec FROM instrument_versions
		WHERE symbol = $1 ORDER BY version`, symbol)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	inst := &listingv1.Instrument{Symbol: symbol, Number: number, CreatedAt: timestamppb.New(time.Unix(0, created))}
	for rows.Next() {
		var (
			version, effective int64
			status             int32
			body               []byte
		)
		if err := rows.Scan(&version, &status, &effective, &body); err != nil {
			return nil, err
		}
		spec := &listingv1.InstrumentSpec{}
		if err := proto.Unmarshal(body, spec); err != nil {
			return nil, err
		}
		if effective <= now.UnixNano() {
			inst.Spec, inst.Status, inst.Version, inst.Pending = spec, listingv1.InstrumentStatus(status), version, nil
		} else {
			inst.Pending = &listingv1.PendingChange{Spec: spec, Status: listingv1.InstrumentStatus(status), Version: version,
				EffectiveFrom: timestamppb.New(time.Unix(0, effective))}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if inst.Spec == nil {
		return nil, fmt.Errorf("instrument %s has no version in effect", symbol)
	}
	return inst, nil
}

// ListInstrumentSymbols returns up to limit symbols > after, by symbol.
func (s *Store) ListInstrumentSymbols(ctx context.Context, q Q, after, commodity string, limit int) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT symbol FROM instruments WHERE symbol > $1 AND ($2 = '' OR commodity = $2)
		ORDER BY symbol LIMIT $3`, after, commodity, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// --- participants and credentials ---------------------------------------------

func (s *Store) CreateParticipant(ctx context.Context, q Q, p *listingv1.Participant, now time.Time) error {
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(number), 0) + 1 FROM participants`).Scan(&p.Number); err != nil {
		return err
	}
	p.CreatedAt = timestamppb.New(now)
	_, err := q.ExecContext(ctx, `INSERT INTO participants (id, number, name, role, status, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		p.Id, p.Number, p.Name, int32(p.Role), int32(p.Status), now.UnixNano())
	return insertErr(err, "participant "+p.Id)
}

const participantCols = `id, number, name, role, status, created_at`

func scanParticipant(row interface{ Scan(...any) error }) (*listingv1.Participant, error) {
	var (
		p            listingv1.Participant
		role, status int32
		created      int64
	)
	if err := row.Scan(&p.Id, &p.Number, &p.Name, &role, &status, &created); err != nil {
		return nil, sqlstore.NoRows(err)
	}
	p.Role, p.Status, p.CreatedAt = typev1.Role(role), listingv1.ParticipantStatus(status), timestamppb.New(time.Unix(0, created))
	return &p, nil
}

func (s *Store) GetParticipant(ctx context.Context, q Q, id string) (*listingv1.Participant, error) {
	return scanParticipant(q.QueryRowContext(ctx, `SELECT `+participantCols+` FROM participants WHERE id = $1`, id))
}

func (s *Store) ListParticipants(ctx context.Context, q Q, after string, role typev1.Role, limit int) ([]*listingv1.Participant, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+participantCols+` FROM participants WHERE id > $1 AND ($2 = 0 OR role = $2)
		ORDER BY id LIMIT $3`, after, int32(role), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*listingv1.Participant
	for rows.Next() {
		p, err := scanParticipant(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// CountParticipants tells a fresh database from a seeded one.
func (s *Store) CountParticipants(ctx context.Context, q Q) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM participants`).Scan(&n)
	return n, err
}

func (s *Store) CreateCredential(ctx context.Context, q Q, c *listingv1.Credential, secretHash []byte, now time.Time) error {
	c.CreatedAt = timestamppb.New(now)
	_, err := q.ExecContext(ctx, `INSERT INTO credentials (id, participant_id, label, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)`,
		c.Id, c.ParticipantId, c.Label, secretHash, now.UnixNano())
	return insertErr(err, "credential "+c.Id)
}

const credentialCols = `id, participant_id, label, secret_hash, created_at, revoked_at`

func scanCredential(row interface{ Scan(...any) error }) (*listingv1.Credential, []byte, error) {
	var (
		id, participantID, label string
		hash                     []byte
		created, revoked         int64
	)
	if err := row.Scan(&id, &participantID, &label, &hash, &created, &revoked); err != nil {
		return nil, nil, sqlstore.NoRows(err)
	}
	out := &listingv1.Credential{Id: id, ParticipantId: participantID, Label: label, CreatedAt: timestamppb.New(time.Unix(0, created))}
	if revoked != 0 {
		out.RevokedAt = timestamppb.New(time.Unix(0, revoked))
	}
	return out, hash, nil
}

// GetCredential returns a credential and its stored secret hash.
func (s *Store) GetCredential(ctx context.Context, q Q, id string) (*listingv1.Credential, []byte, error) {
	return scanCredential(q.QueryRowContext(ctx, `SELECT `+credentialCols+` FROM credentials WHERE id = $1`, id))
}

// RevokeCredential marks a credential revoked from at on; a credential
// already revoked earlier keeps its earlier time (a rotation schedules a
// revocation in the future; an explicit revocation brings it forward).
func (s *Store) RevokeCredential(ctx context.Context, q Q, id string, at time.Time) error {
	res, err := q.ExecContext(ctx, `UPDATE credentials SET revoked_at = $2 WHERE id = $1 AND (revoked_at = 0 OR revoked_at > $2)`, id, at.UnixNano())
	if err != nil {
		return err
	}
	_, err = res.RowsAffected()
	return err
}

func (s *Store) ListCredentials(ctx context.Context, q Q, participantID, after string, limit int) ([]*listingv1.Credential, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+credentialCols+` FROM credentials WHERE participant_id = $1 AND id > $2
		ORDER BY id LIMIT $3`, participantID, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*listingv1.Credential
	for rows.Next() {
		c, _, err := scanCredential(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// --- settlement accounts -------------------------------------------------------

func (s *Store) AddSettlementAccount(ctx context.Context, q Q, a *listingv1.SettlementAccount, now time.Time) error {
	_, err := q.ExecContext(ctx, `INSERT INTO settlement_accounts (participant_id, currency, bank_participant_id, account_number, created_at)
		VALUES ($1, $2, $3, $4, $5)`, a.ParticipantId, a.Currency, a.BankParticipantId, a.AccountNumber, now.UnixNano())
	return insertErr(err, "settlement account "+a.ParticipantId+" "+a.Currency)
}

// ListSettlementAccounts returns up to limit accounts of a member, or (with
// bank set) that a bank holds, ordered by member and currency, after the
// (member, currency) position given; either filter may be empty.
func (s *Store) ListSettlementAccounts(ctx context.Context, q Q, participantID, bankID, afterMember, afterCurrency string, limit int) ([]*listingv1.SettlementAccount, error) {
	rows, err := q.QueryContext(ctx, `SELECT participant_id, currency, bank_participant_id, account_number FROM settlement_accounts
		WHERE ($1 = '' OR participant_id = $1) AND ($2 = '' OR bank_participant_id = $2)
		AND (participant_id > $3 OR (participant_id = $3 AND currency > $4))
		ORDER BY participant_id, currency LIMIT $5`,
		participantID, bankID, afterMember, afterCurrency, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*listingv1.SettlementAccount
	for rows.Next() {
		a := &listingv1.SettlementAccount{}
		if err := rows.Scan(&a.ParticipantId, &a.Currency, &a.BankParticipantId, &a.AccountNumber); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
