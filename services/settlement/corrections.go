package settlement

import (
	"context"
	"database/sql"
	"errors"
	"strconv"

	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	"github.com/bcx-exchange/bcx/services/settlement/ledger"
)

// maxCorrectionLines bounds one correction.
const maxCorrectionLines = 100

// PostCorrection books an operator's correction of a transaction: its
// reversal, or lines the operator gives, as a new transaction that
// references it (postings are never changed). The lines must balance per
// currency. A member's available funds are also its trading funds in the
// matching core, so their net movement per member and currency is sent to
// the core (credit or debit, once, through the outbox); a debit the member
// can no longer cover there is refused by the core and reported for
// operators, as for any settlement command.
func (a *adminServer) PostCorrection(ctx context.Context, req *settlementv1.PostCorrectionRequest) (*settlementv1.PostCorrectionResponse, error) {
	s := a.s
	switch {
	case req.IdempotencyKey == "":
		return nil, rpcerr.Invalid("idempotency_key", "is required")
	case req.CorrectsTransactionId <= 0:
		return nil, rpcerr.Invalid("corrects_transaction_id", "is required")
	case req.Reason == "" || len(req.Reason) > 500:
		return nil, rpcerr.Invalid("reason", "is required, at most 500 bytes")
	case req.Reverse == (len(req.Lines) > 0):
		return nil, rpcerr.Invalid("lines", "either reverse the transaction or give lines, not both")
	case len(req.Lines) > maxCorrectionLines:
		return nil, rpcerr.Invalid("lines", "at most %d lines", maxCorrectionLines)
	}
	// Lines are checked before the transaction: a malformed request
	// changes nothing and names its line.
	var lines []ledger.Posting
	for i, l := range req.Lines {
		field := "lines[" + strconv.Itoa(i) + "]"
		acc, err := ledger.ParseAccount(l.Account)
		if err != nil {
			return nil, rpcerr.Invalid(field+".account", "%v", err)
		}
		if l.Amount == nil || l.Amount.Currency != acc.Currency {
			return nil, rpcerr.Invalid(field+".amount.currency", "must be the account's currency %s", acc.Currency)
		}
		cur, err := s.currency(field+".amount.currency", l.Amount.Currency)
		if err != nil {
			return nil, err
		}
		held, err := cur.ParseAmount(l.Amount.Amount)
		if err != nil || held == 0 {
			return nil, rpcerr.Invalid(field+".amount.amount", "a non-zero amount of %s", cur.Code)
		}
		lines = append(lines, ledger.Posting{Account: acc, AmountMinor: held * acc.Kind.NormalSign(), Kind: ledger.KindCorrection})
	}
	sc, err := scope(ctx, "PostCorrection")
	if err != nil {
		return nil, err
	}
	var e effects
	resp, err := idempotent(ctx, s, sc, req.IdempotencyKey, req, func(q *sql.Tx) (*settlementv1.PostCorrectionResponse, error) {
		e = effects{}
		orig, err := s.ledger.TransactionEntries(ctx, q, req.CorrectsTransactionId)
		if err != nil {
			return nil, err
		}
		if len(orig) == 0 {
			return nil, rpcerr.NotFound("transaction", strconv.FormatInt(req.CorrectsTransactionId, 10))
		}
		now := s.now()
		txn := &ledger.Transaction{Kind: ledger.KindCorrection, Corrects: req.CorrectsTransactionId, BookedAt: now,
			Reference: "correction/" + strconv.FormatInt(req.CorrectsTransactionId, 10) + "/" + sc + "/" + req.IdempotencyKey}
		if req.Reverse {
			for _, p := range orig {
				txn.Add(p.Account, -p.AmountMinor, ledger.KindCorrection)
			}
		} else {
			txn.Postings = lines
		}
		if err := txn.Validate(); err != nil {
			return nil, rpcerr.Invalid("lines", "%v", err)
		}
		// A correction may not overdraw a member: what it takes must be
		// there (else it is refused and changes nothing).
		for _, p := range txn.Postings {
			if p.Account.Owner != ledger.ExchangeOwner && p.AmountMinor*p.Account.Kind.NormalSign() < 0 {
				txn.NonNegative = append(txn.NonNegative, p.Account.Name)
			}
		}
		e.txns = []*ledger.Transaction{txn}
		if e.outbox, err = coreMovements(s, txn); err != nil {
			return nil, err
		}
		if err := s.write(ctx, q, &e, now); err != nil {
			if errors.Is(err, ledger.ErrUnbalanced) || errors.Is(err, ledger.ErrBadAccount) {
				return nil, rpcerr.Invalid("lines", "%v", err)
			}
			if errors.Is(err, ledger.ErrNegativeBalance) {
				return nil, rpcerr.Precondition("NEGATIVE_BALANCE", "the correction would overdraw a member: %v", err)
			}
			return nil, err
		}
		out := &settlementv1.PostCorrectionResponse{TransactionId: txn.ID}
		booked, err := s.ledger.TransactionEntries(ctx, q, txn.ID)
		if err != nil {
			return nil, err
		}
		for _, b := range booked {
			out.Postings = append(out.Postings, s.postingProto(b))
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	s.afterCommit(&e)
	return resp, nil
}

// coreMovements turns a correction's moves of members' available funds into
// core commands, keyed by the transaction.
func coreMovements(s *Service, txn *ledger.Transaction) ([]outboxCmd, error) {
	var moves []memberLeg
	for _, p := range txn.Postings {
		if p.Account.Kind == ledger.MemberAvailable {
			moves = append(moves, memberLeg{Member: p.Account.Owner, Currency: p.Account.Currency,
				AmountMinor: p.AmountMinor * p.Account.Kind.NormalSign()})
		}
	}
	return s.fundsCmds(txn.Reference, moves)
}
