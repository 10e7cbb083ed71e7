package settlement

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	"github.com/bcx-exchange/bcx/pkg/sqlstore"
	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	"github.com/bcx-exchange/bcx/services/settlement/ledger"
)

// withdrawalRequested is a withdrawal reserved in the ledger whose debit in
// the core has not been answered yet; the API never shows it (it answers
// Unavailable, and a retry with the same key, or the recovery loop, carries
// it on).
const withdrawalRequested = settlementv1.WithdrawalStatus_WITHDRAWAL_STATUS_UNSPECIFIED

type withdrawal struct {
	ID            string
	Member        string
	Currency      string
	AmountMinor   int64
	Bank          string
	Status        settlementv1.WithdrawalStatus
	Reason        string
	InstructionID string
	UpdatedAt     time.Time
}

const withdrawalCols = `withdrawal_id, participant_id, currency, amount_minor, bank, status, reason, instruction_id, updated_at`

func scanWithdrawal(row interface{ Scan(...any) error }) (*withdrawal, error) {
	var (
		w       withdrawal
		st      int32
		updated int64
	)
	if err := row.Scan(&w.ID, &w.Member, &w.Currency, &w.AmountMinor, &w.Bank, &st, &w.Reason, &w.InstructionID, &updated); err != nil {
		return nil, sqlstore.NoRows(err)
	}
	w.Status, w.UpdatedAt = settlementv1.WithdrawalStatus(st), time.Unix(0, updated)
	return &w, nil
}

func (w *withdrawal) response() *settlementv1.RequestWithdrawalResponse {
	return &settlementv1.RequestWithdrawalResponse{WithdrawalId: w.ID, Status: w.Status, InstructionId: w.InstructionID}
}

// requestWithdrawal: a member asks for money out. In order:
//
//  1. In one transaction, the request is recorded under its idempotency key
//     and the amount moves from the member's available to its reserved
//     account; the ledger refuses it if available funds do not cover it
//     (money leaves only against settled funds).
//  2. The core is asked to debit the member's trading funds (DebitFunds,
//     key "withdrawal/<id>"): it refuses if they are not available.
//  3. Accepted: a payment instruction goes to the member's clearing bank.
//     Refused: the reservation is released and the request answered
//     FailedPrecondition. No answer: Unavailable; a retry with the same key,
//     or the recovery loop, asks the core again with the same key.
//
// The bank then confirms (reserved funds leave through the exchange's account
// at the bank) or rejects (the reservation returns to available and the
// core's trading funds are credited back, once, through the outbox).
func (s *Service) requestWithdrawal(ctx context.Context, req *settlementv1.RequestWithdrawalRequest) (*settlementv1.RequestWithdrawalResponse, error) {
	p, err := auth.MustFromContext(ctx)
	if err != nil {
		return nil, err
	}
	if req.IdempotencyKey == "" {
		return nil, rpcerr.Invalid("idempotency_key", "required: a withdrawal must be safe to retry")
	}
	cur, amount, err := s.parseMoney("amount", req.Amount)
	if err != nil {
		return nil, err
	}
	acct, err := s.ref.Account(ctx, p.ParticipantID, cur.Code)
	if err != nil {
		return nil, err
	}
	if acct.Bank == "" {
		return nil, rpcerr.Precondition("NO_SETTLEMENT_ACCOUNT", "no %s settlement account to pay to", cur.Code)
	}
	reqBytes, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return nil, err
	}
	hash := sqlstore.RequestHash(reqBytes)
	w, err := inTx(ctx, s, func(q *sql.Tx) (*withdrawal, error) {
		var prevHash []byte
		w, err := scanWithdrawal(q.QueryRowContext(ctx, `SELECT `+withdrawalCols+` FROM stl_withdrawals
			WHERE participant_id = $1 AND idem_key = $2`, p.ParticipantID, req.IdempotencyKey))
		if err == nil {
			if err := q.QueryRowContext(ctx, `SELECT request_hash FROM stl_withdrawals WHERE withdrawal_id = $1`, w.ID).Scan(&prevHash); err != nil {
				return nil, err
			}
			if string(prevHash) != string(hash) {
				return nil, rpcerr.Invalid("idempotency_key", "%q was used before with a different request", req.IdempotencyKey)
			}
			return w, nil
		}
		if !errors.Is(err, sqlstore.ErrNotFound) {
			return nil, err
		}
		now := s.now()
		w = &withdrawal{ID: withdrawalID(s.store.withdrawal.Add(1)), Member: p.ParticipantID, Currency: cur.Code,
			AmountMinor: amount, Bank: acct.Bank, Status: withdrawalRequested, UpdatedAt: now}
		txn := &ledger.Transaction{Kind: ledger.KindWithdrawal, Reference: "reserve/" + w.ID, BookedAt: now,
			NonNegative: []string{ledger.Available(w.Member, w.Currency).Name}}
		txn.Move(ledger.Available(w.Member, w.Currency), ledger.Reserved(w.Member, w.Currency), amount, ledger.KindWithdrawal)
		if err := s.ledger.Post(ctx, q, txn); errors.Is(err, ledger.ErrNegativeBalance) {
			return nil, rpcerr.Precondition("INSUFFICIENT_FUNDS", "available %s funds do not cover %s", cur.Code, cur.FormatAmount(amount))
		} else if err != nil {
			return nil, err
		}
		_, err = q.ExecContext(ctx, `INSERT INTO stl_withdrawals (withdrawal_id, participant_id, idem_key, request_hash, currency,
			amount_minor, bank, status, reason, instruction_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '', '', $9, $9)`,
			w.ID, w.Member, req.IdempotencyKey, hash, w.Currency, w.AmountMinor, w.Bank, int32(w.Status), now.UnixNano())
		return w, err
	})
	if err != nil {
		return nil, err
	}
	switch {
	case w.Status == settlementv1.WithdrawalStatus_WITHDRAWAL_STATUS_REJECTED && w.InstructionID == "":
		return nil, rpcerr.Precondition("INSUFFICIENT_FUNDS", "%s", w.Reason) // the core refused it: same answer again
	case w.Status != withdrawalRequested:
		return w.response(), nil
	}
	return s.advanceWithdrawal(ctx, w)
}

// advanceWithdrawal asks the core to debit a requested withdrawal and moves
// it on by the answer. Safe to run concurrently for the same withdrawal: the
// core deduplicates by key, and only the first to change the row acts.
func (s *Service) advanceWithdrawal(ctx context.Context, w *withdrawal) (*settlementv1.RequestWithdrawalResponse, error) {
	cur, err := s.cfg.Currencies.Lookup(w.Currency)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, coreErr := s.cfg.Core.DebitFunds(cctx, &tradingv1.DebitFundsRequest{IdempotencyKey: "withdrawal/" + w.ID,
		ParticipantId: w.Member, Amount: money(w.Currency, cur.FormatAmount(w.AmountMinor))})
	cancel()
	code := status.Code(coreErr)
	refused := code == codes.FailedPrecondition || code == codes.InvalidArgument || code == codes.NotFound
	if coreErr != nil && !refused {
		s.logger.Warn("withdrawal: the core did not answer DebitFunds", "withdrawal", w.ID, "error", coreErr)
		return nil, status.Error(codes.Unavailable, "the matching core did not answer; retry with the same idempotency key")
	}
	acct, err := s.ref.Account(ctx, w.Member, w.Currency)
	if err != nil {
		return nil, err
	}
	var e effects
	out, err := inTx(ctx, s, func(q *sql.Tx) (*withdrawal, error) {
		e = effects{}
		now := s.now()
		cur, err := scanWithdrawal(q.QueryRowContext(ctx, `SELECT `+withdrawalCols+` FROM stl_withdrawals WHERE withdrawal_id = $1`, w.ID))
		if err != nil {
			return nil, err
		}
		if cur.Status != withdrawalRequested {
			return cur, nil // someone else moved it on
		}
		if refused {
			cur.Status, cur.Reason = settlementv1.WithdrawalStatus_WITHDRAWAL_STATUS_REJECTED, "trading funds not available: "+status.Convert(coreErr).Message()
			txn := &ledger.Transaction{Kind: ledger.KindWithdrawal, Reference: "release/" + w.ID, BookedAt: now}
			txn.Move(ledger.Reserved(w.Member, w.Currency), ledger.Available(w.Member, w.Currency), w.AmountMinor, ledger.KindWithdrawal)
			e.txns = append(e.txns, txn)
		} else {
			in := &instruction{Bank: w.Bank, Kind: settlementv1.InstructionKind_INSTRUCTION_KIND_WITHDRAWAL,
				DebitAccount: ledger.BankAccount(w.Bank, w.Currency).Name, CreditAccount: acct.Number,
				Currency: w.Currency, AmountMinor: w.AmountMinor, Source: w.ID}
			if in.CreditAccount == "" {
				in.CreditAccount = "member:" + w.Member
			}
			e.instructions = append(e.instructions, in)
		}
		if err := s.write(ctx, q, &e, now); err != nil {
			return nil, err
		}
		if !refused {
			cur.Status, cur.InstructionID = settlementv1.WithdrawalStatus_WITHDRAWAL_STATUS_PENDING, e.instructions[0].ID
		}
		_, err = q.ExecContext(ctx, `UPDATE stl_withdrawals SET status = $2, reason = $3, instruction_id = $4, updated_at = $5
			WHERE withdrawal_id = $1`, w.ID, int32(cur.Status), cur.Reason, cur.InstructionID, now.UnixNano())
		return cur, err
	})
	if err != nil {
		return nil, err
	}
	s.afterCommit(&e)
	if out.Status == settlementv1.WithdrawalStatus_WITHDRAWAL_STATUS_REJECTED && refused {
		return nil, rpcerr.Precondition("INSUFFICIENT_FUNDS", "%s", out.Reason)
	}
	return out.response(), nil
}

// recoverWithdrawals carries on withdrawals whose core debit was never
// answered (the process stopped, or the core was down), with the same key.
func (s *Service) recoverWithdrawals(ctx context.Context) error {
	t := time.NewTicker(max(s.cfg.OutboxInterval, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := s.RecoverWithdrawals(ctx, 5*time.Second); err != nil && ctx.Err() == nil {
			s.logger.Warn("withdrawal recovery", "error", err)
		}
	}
}

// RecoverWithdrawals asks the core again about every withdrawal left
// requested for longer than age.
func (s *Service) RecoverWithdrawals(ctx context.Context, age time.Duration) error {
	ws, err := inTx(ctx, s, func(q *sql.Tx) ([]*withdrawal, error) {
		rows, err := q.QueryContext(ctx, `SELECT `+withdrawalCols+` FROM stl_withdrawals WHERE status = $1 AND updated_at <= $2
			ORDER BY withdrawal_id LIMIT 100`, int32(withdrawalRequested), s.now().Add(-age).UnixNano())
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []*withdrawal
		for rows.Next() {
			w, err := scanWithdrawal(rows)
			if err != nil {
				return nil, err
			}
			out = append(out, w)
		}
		return out, rows.Err()
	})
	if err != nil {
		return err
	}
	for _, w := range ws {
		if _, err := s.advanceWithdrawal(ctx, w); err != nil {
			var re *rpcerr.Error
			if errors.As(err, &re) && re.Code == codes.FailedPrecondition {
				continue // refused and released: done
			}
			return fmt.Errorf("withdrawal %s: %w", w.ID, err)
		}
	}
	return nil
}
