package idempotency_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/bcx-exchange/bcx/pkg/idempotency"
	"github.com/bcx-exchange/bcx/pkg/sqlstore/sqlstoretest"
	"testing/fstest"
)

func TestDo(t *testing.T) {
	for _, b := range sqlstoretest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			db := b.Open(t)
			if err := db.Migrate(ctx, "test", fstest.MapFS{}); err != nil {
				t.Fatal(err)
			}
			calls := 0
			run := func(req string, fail error) (*wrapperspb.StringValue, error) {
				return idempotency.Do(ctx, db, "s", "k", wrapperspb.String(req), func(*sql.Tx) (*wrapperspb.StringValue, error) {
					calls++
					if fail != nil {
						return nil, fail
					}
					return wrapperspb.String("response to " + req), nil
				})
			}
			boom := errors.New("boom")
			if _, err := run("a", boom); !errors.Is(err, boom) {
				t.Fatalf("failing fn: %v", err)
			}
			// A failure stores nothing: the retry runs fn again.
			first, err := run("a", nil)
			if err != nil || first.Value != "response to a" || calls != 2 {
				t.Fatalf("first = %v, %v, calls %d", first, err, calls)
			}
			again, err := run("a", nil)
			if err != nil || again.Value != "response to a" || calls != 2 {
				t.Fatalf("repeat = %v, %v, calls %d (fn must not run again)", again, err, calls)
			}
			_, err = run("b", nil)
			if status.Code(err) != codes.InvalidArgument || calls != 2 {
				t.Fatalf("other request under the same key: %v, calls %d", err, calls)
			}
		})
	}
}
