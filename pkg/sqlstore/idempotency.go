package sqlstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrKeyReused means an idempotency key came back with a different request.
var ErrKeyReused = errors.New("idempotency key reused with a different request")

const idempotencyDDL = `CREATE TABLE IF NOT EXISTS idempotency_keys (
	scope TEXT NOT NULL, key TEXT NOT NULL, request_hash BYTEA NOT NULL,
	response BYTEA NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (scope, key))`

// RequestHash is the fingerprint an idempotency record compares requests by.
func RequestHash(request []byte) []byte {
	h := sha256.Sum256(request)
	return h[:]
}

// Recall looks up an idempotency key inside the caller's transaction. It
// returns the stored response when the same request was seen before, and
// ErrKeyReused when the key was used for a different one. scope separates keys
// per caller and method ("listing.CreateInstrument/OP-1").
func Recall(ctx context.Context, tx *sql.Tx, scope, key string, requestHash []byte) (response []byte, found bool, err error) {
	var storedHash []byte
	err = tx.QueryRowContext(ctx, `SELECT request_hash, response FROM idempotency_keys WHERE scope = $1 AND key = $2`,
		scope, key).Scan(&storedHash, &response)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("recall idempotency key: %w", err)
	}
	if !bytes.Equal(storedHash, requestHash) {
		return nil, false, ErrKeyReused
	}
	return response, true, nil
}

// Remember stores the response for a key in the same transaction as the
// effects it describes, so a retry after a crash sees both or neither.
func Remember(ctx context.Context, tx *sql.Tx, scope, key string, requestHash, response []byte) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO idempotency_keys (scope, key, request_hash, response, created_at) VALUES ($1, $2, $3, $4, $5)`,
		scope, key, requestHash, response, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("remember idempotency key: %w", err)
	}
	return nil
}

// Claim takes an idempotency key for this transaction before the work it
// guards. On PostgreSQL a concurrent claim of the same key waits for this
// transaction and then finds the key taken, so two racing retries cannot
// both do the work. It returns claimed=false with the stored response when
// the same request completed before, and ErrKeyReused for another request.
func Claim(ctx context.Context, tx *sql.Tx, scope, key string, requestHash []byte) (claimed bool, response []byte, err error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO idempotency_keys (scope, key, request_hash, response, created_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope, key) DO NOTHING`, scope, key, requestHash, []byte{}, time.Now().UnixNano())
	if err != nil {
		return false, nil, fmt.Errorf("claim idempotency key: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, nil, err
	} else if n == 1 {
		return true, nil, nil
	}
	response, found, err := Recall(ctx, tx, scope, key, requestHash)
	if err != nil {
		return false, nil, err
	}
	if !found {
		return false, nil, fmt.Errorf("idempotency key %q vanished: %w", key, ErrRetry)
	}
	return false, response, nil
}

// Complete stores the response for a key claimed in this transaction.
func Complete(ctx context.Context, tx *sql.Tx, scope, key string, response []byte) error {
	_, err := tx.ExecContext(ctx, `UPDATE idempotency_keys SET response = $3 WHERE scope = $1 AND key = $2`, scope, key, response)
	if err != nil {
		return fmt.Errorf("complete idempotency key: %w", err)
	}
	return nil
}
