package settlement

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
)

// Outbox command kinds.
const (
	outboxCredit      = "credit_funds"
	outboxDebit       = "debit_funds"
	outboxFeeSchedule = "set_fee_schedule"
	outboxFxRate      = "set_fx_rate"
	outboxFunding     = "set_funding_currency"
)

// Outbox row states.
const (
	outboxPending = 0
	outboxDone    = 1
	// outboxRefused: the core refused the command for good (e.g. a debit
	// the member's trading funds no longer cover). Logged as an error for
	// operators; never retried.
	outboxRefused = 2
)

// outboxBatch bounds how many commands one pass sends.
const outboxBatch = 100

// enqueue writes a command for the core in the caller's transaction. The
// idempotency key is both the outbox row's key (a second enqueue of the same
// key is a no-op) and the key the core deduplicates by, so the command takes
// effect once however often it is sent.
func (s *Service) enqueue(ctx context.Context, q *sql.Tx, c outboxCmd, now time.Time) error {
	payload, err := proto.Marshal(c.Payload)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, `INSERT INTO stl_outbox (id, kind, idem_key, payload, status, attempts, next_attempt_at, last_error,
		created_at, done_at) VALUES ($1, $2, $3, $4, 0, 0, $5, '', $6, 0) ON CONFLICT (idem_key) DO NOTHING`,
		s.store.outbox.Add(1), c.Kind, c.Key, payload, time.Now().UnixNano(), now.UnixNano())
	return err
}

func creditCmd(key, member string, amount string, currency string) outboxCmd {
	return outboxCmd{Kind: outboxCredit, Key: key, Payload: &tradingv1.CreditFundsRequest{IdempotencyKey: key, ParticipantId: member,
		Amount: money(currency, amount)}}
}

func debitCmd(key, member string, amount string, currency string) outboxCmd {
	return outboxCmd{Kind: outboxDebit, Key: key, Payload: &tradingv1.DebitFundsRequest{IdempotencyKey: key, ParticipantId: member,
		Amount: money(currency, amount)}}
}

// runOutbox sends due commands until ctx is done: woken when a transaction
// enqueues one, and every OutboxInterval for retries and for commands left
// by a previous run of the process.
func (s *Service) runOutbox(ctx context.Context) error {
	t := time.NewTicker(s.cfg.OutboxInterval)
	defer t.Stop()
	for {
		for {
			n, err := s.DeliverOutbox(ctx)
			if err != nil && ctx.Err() == nil {
				s.logger.Error("outbox", "error", err)
			}
			if n < outboxBatch || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.outboxWake:
		case <-t.C:
		}
	}
}

type outboxRow struct {
	id       int64
	kind     string
	key      string
	payload  []byte
	attempts int
}

// DeliverOutbox sends the commands that are due once and returns how many it
// tried. A command the core acknowledges (applied now or before: the key
// makes it once) is done; one it refuses for good (InvalidArgument,
// FailedPrecondition, NotFound) is marked refused and logged; anything else
// is retried with exponential backoff.
//
// Retry times are on the wall clock (not Config.Clock): they pace calls to a
// real process.
func (s *Service) DeliverOutbox(ctx context.Context) (int, error) {
	now := time.Now()
	var due []outboxRow
	err := s.db.InTx(ctx, func(q *sql.Tx) error {
		due = due[:0]
		rows, err := q.QueryContext(ctx, `SELECT id, kind, idem_key, payload, attempts FROM stl_outbox
			WHERE status = 0 AND next_attempt_at <= $1 ORDER BY id LIMIT $2`, now.UnixNano(), outboxBatch)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r outboxRow
			if err := rows.Scan(&r.id, &r.kind, &r.key, &r.payload, &r.attempts); err != nil {
				return err
			}
			due = append(due, r)
		}
		return rows.Err()
	})
	if err != nil {
		return 0, err
	}
	for _, r := range due {
		sendErr := s.send(ctx, r)
		if ctx.Err() != nil {
			return len(due), ctx.Err()
		}
		st, msg, next := outboxDone, "", int64(0)
		switch code := status.Code(sendErr); {
		case sendErr == nil:
		case code == codes.InvalidArgument || code == codes.FailedPrecondition || code == codes.NotFound:
			st, msg = outboxRefused, sendErr.Error()
			what := "the core refused a settlement command; operators must reconcile the member's trading funds"
			switch r.kind {
			case outboxFxRate, outboxFunding:
				what = "the core refused an FX rate or funding preference; FX-funded orders will not use it"
			case outboxFeeSchedule:
				what = "the core refused a fee schedule; it charges the previous one"
			}
			s.logger.Error(what, "kind", r.kind, "key", r.key, "error", sendErr)
		default:
			st, msg = outboxPending, sendErr.Error()
			backoff := time.Duration(1<<min(r.attempts, 16)) * 100 * time.Millisecond
			next = time.Now().Add(min(backoff, s.cfg.RetryMax)).UnixNano()
			s.logger.Warn("core command not acknowledged; will retry", "kind", r.kind, "key", r.key, "attempt", r.attempts+1, "error", sendErr)
		}
		done := int64(0)
		if st != outboxPending {
			done = s.now().UnixNano()
		}
		if err := s.db.InTx(ctx, func(q *sql.Tx) error {
			_, err := q.ExecContext(ctx, `UPDATE stl_outbox SET status = $2, attempts = attempts + 1, next_attempt_at = $3,
				last_error = $4, done_at = $5 WHERE id = $1`, r.id, st, next, msg, done)
			return err
		}); err != nil {
			return len(due), err
		}
	}
	return len(due), nil
}

func (s *Service) send(ctx context.Context, r outboxRow) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	switch r.kind {
	case outboxCredit:
		return sendAs(ctx, r.payload, &tradingv1.CreditFundsRequest{}, s.cfg.Core.CreditFunds)
	case outboxDebit:
		return sendAs(ctx, r.payload, &tradingv1.DebitFundsRequest{}, s.cfg.Core.DebitFunds)
	case outboxFeeSchedule:
		return sendAs(ctx, r.payload, &tradingv1.SetFeeScheduleRequest{}, s.cfg.Core.SetFeeSchedule)
	case outboxFxRate:
		return sendAs(ctx, r.payload, &tradingv1.SetFxRateRequest{}, s.cfg.Core.SetFxRate)
	case outboxFunding:
		return sendAs(ctx, r.payload, &tradingv1.SetFundingCurrencyRequest{}, s.cfg.Core.SetFundingCurrency)
	}
	return status.Error(codes.InvalidArgument, fmt.Sprintf("unknown outbox kind %q", r.kind))
}

// fundsCmds moves members' trading funds in the core by their net
// movements: one command per member and currency (credit or debit by
// sign), keyed ref/core/<member>/<currency>, in member and currency order.
func (s *Service) fundsCmds(ref string, moves []memberLeg) ([]outboxCmd, error) {
	type key struct{ member, currency string }
	net := map[key]int64{}
	var keys []key
	for _, m := range moves {
		k := key{m.Member, m.Currency}
		if _, seen := net[k]; !seen {
			keys = append(keys, k)
		}
		net[k] += m.AmountMinor
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].member < keys[j].member || (keys[i].member == keys[j].member && keys[i].currency < keys[j].currency)
	})
	var out []outboxCmd
	for _, k := range keys {
		n := net[k]
		if n == 0 {
			continue
		}
		cur, err := s.cfg.Currencies.Lookup(k.currency)
		if err != nil {
			return nil, err
		}
		id := ref + "/core/" + k.member + "/" + k.currency
		if n > 0 {
			out = append(out, creditCmd(id, k.member, cur.FormatAmount(n), k.currency))
		} else {
			out = append(out, debitCmd(id, k.member, cur.FormatAmount(-n), k.currency))
		}
	}
	return out, nil
}

// sendAs decodes an outbox payload into req and sends it with call.
func sendAs[Req proto.Message, Resp any](ctx context.Context, payload []byte, req Req,
	call func(context.Context, Req, ...grpc.CallOption) (Resp, error)) error {
	if err := proto.Unmarshal(payload, req); err != nil {
		return err
	}
	_, err := call(ctx, req)
	return err
}

// OutboxStatus reports a command's state by key (for tests and operators):
// pending, done or refused, and the attempts made.
func (s *Service) OutboxStatus(ctx context.Context, key string) (state string, attempts int, err error) {
	var st int
	if err = s.db.QueryRowContext(ctx, `SELECT status, attempts FROM stl_outbox WHERE idem_key = $1`, key).Scan(&st, &attempts); err != nil {
		return "", 0, err
	}
	return map[int]string{outboxPending: "pending", outboxDone: "done", outboxRefused: "refused"}[st], attempts, nil
}
