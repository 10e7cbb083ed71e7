// Package idempotency makes a mutating RPC safe to retry: the request's
// idempotency key and a hash of the request are stored with the response in
// the same transaction as the effects, so a retry returns the first answer,
// a different request under a used key is refused, and a crash leaves both
// or neither.
package idempotency

import (
	"context"
	"database/sql"
	"errors"

	"google.golang.org/protobuf/proto"

	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	"github.com/bcx-exchange/bcx/pkg/sqlstore"
)

// Do runs fn in a transaction on db guarded by key within scope (scope keeps
// callers and methods apart, e.g. "listing.CreateInstrument/OPS"). An empty
// key just runs fn. A key seen before with the same request returns the
// stored response without running fn; with a different request it is
// InvalidArgument on field "idempotency_key".
func Do[T proto.Message](ctx context.Context, db *sqlstore.DB, scope, key string, req proto.Message, fn func(*sql.Tx) (T, error)) (T, error) {
	var zero T
	reqBytes, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return zero, err
	}
	hash := sqlstore.RequestHash(reqBytes)
	var out T
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		if key != "" {
			claimed, prev, err := sqlstore.Claim(ctx, tx, scope, key, hash)
			if errors.Is(err, sqlstore.ErrKeyReused) {
				return rpcerr.Invalid("idempotency_key", "%q was used before with a different request", key)
			}
			if err != nil {
				return err
			}
			if !claimed {
				out = zero.ProtoReflect().New().Interface().(T)
				return proto.Unmarshal(prev, out)
			}
		}
		res, err := fn(tx)
		if err != nil {
			return err
		}
		out = res
		if key == "" {
			return nil
		}
		b, err := proto.Marshal(res)
		if err != nil {
			return err
		}
		return sqlstore.Complete(ctx, tx, scope, key, b)
	})
	if err != nil {
		return zero, err
	}
	return out, nil
}
