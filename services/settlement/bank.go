package settlement

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"google.golang.org/grpc"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	"github.com/bcx-exchange/bcx/pkg/sqlstore"
	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	"github.com/bcx-exchange/bcx/services/settlement/ledger"
)

var _ settlementv1.BankServiceServer = (*bankServer)(nil)

// bankServer implements bcx.settlement.v1.BankService. A bank sees and acts
// on only its own instructions, reports and clients' accounts; anything else
// answers NotFound, exactly like something that does not exist.
type bankServer struct {
	settlementv1.UnimplementedBankServiceServer
	s *Service
}

const maxReferenceLen = 140

// PostDepositNotice credits a member after its clearing bank received funds
// into the exchange's account. The bank must hold the member's settlement
// account in that currency. A notice is booked once per bank reference,
// however often it is repeated; the same reference with different content is
// refused. The core's trading funds are credited through the outbox, with
// the key "deposit/<bank>/<reference>", so exactly once as well.
func (b *bankServer) PostDepositNotice(ctx context.Context, req *settlementv1.PostDepositNoticeRequest) (*settlementv1.PostDepositNoticeResponse, error) {
	s := b.s
	p, err := auth.MustFromContext(ctx)
	if err != nil {
		return nil, err
	}
	if req.BankReference == "" || len(req.BankReference) > maxReferenceLen {
		return nil, rpcerr.Invalid("bank_reference", "required, at most %d characters", maxReferenceLen)
	}
	if len(req.EndToEndId) > maxReferenceLen {
		return nil, rpcerr.Invalid("end_to_end_id", "at most %d characters", maxReferenceLen)
	}
	if req.ParticipantId == "" {
		return nil, rpcerr.Invalid("participant_id", "required")
	}
	cur, amount, err := s.parseMoney("amount", req.Amount)
	if err != nil {
		return nil, err
	}
	valueDate := req.ValueDate
	if valueDate == "" {
		valueDate = s.date(s.now())
	} else if _, err := parseDate("value_date", valueDate); err != nil {
		return nil, err
	}
	acct, err := s.ref.Account(ctx, req.ParticipantId, cur.Code)
	if err == nil && acct.Bank != p.ParticipantID {
		s.ref.Forget(req.ParticipantId) // an account may have been added since we cached
		acct, err = s.ref.Account(ctx, req.ParticipantId, cur.Code)
	}
	if errors.Is(err, errUnknown) || (err == nil && acct.Bank != p.ParticipantID) {
		return nil, rpcerr.NotFound("settlement account", req.ParticipantId+" "+cur.Code)
	}
	if err != nil {
		return nil, err
	}
	source := "deposit/" + p.ParticipantID + "/" + req.BankReference
	var e effects
	resp, err := inTx(ctx, s, func(q *sql.Tx) (*settlementv1.PostDepositNoticeResponse, error) {
		e = effects{}
		var (
			member, ccy, e2e, vd string
			amt, txnID           int64
		)
		err := q.QueryRowContext(ctx, `SELECT participant_id, currency, amount_minor, end_to_end_id, value_date, transaction_id
			FROM stl_deposits WHERE bank = $1 AND bank_reference = $2`, p.ParticipantID, req.BankReference).Scan(&member, &ccy, &amt, &e2e, &vd, &txnID)
		if err == nil {
			if member != req.ParticipantId || ccy != cur.Code || amt != amount || e2e != req.EndToEndId || (req.ValueDate != "" && vd != req.ValueDate) {
				return nil, rpcerr.Invalid("bank_reference", "%q was used for a different deposit", req.BankReference)
			}
			return &settlementv1.PostDepositNoticeResponse{TransactionId: txnID, Duplicate: true}, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		now := s.now()
		txn := &ledger.Transaction{Kind: ledger.KindDeposit, Reference: p.ParticipantID + "/" + req.BankReference, BookedAt: now}
		txn.Add(ledger.BankAccount(p.ParticipantID, cur.Code), -amount, ledger.KindDeposit) // the exchange's cash at the bank grows
		txn.Add(ledger.Available(req.ParticipantId, cur.Code), amount, ledger.KindDeposit)
		e.txns = []*ledger.Transaction{txn}
		e.movements = []movement{{Bank: p.ParticipantID, Currency: cur.Code, AmountMinor: amount, EndToEndID: req.EndToEndId,
			BankReference: req.BankReference, ValueDate: valueDate, Source: source, TransactionID: txRef(0)}}
		e.outbox = []outboxCmd{creditCmd(source, req.ParticipantId, cur.FormatAmount(amount), cur.Code)}
		if err := s.write(ctx, q, &e, now); err != nil {
			return nil, err
		}
		if _, err := q.ExecContext(ctx, `INSERT INTO stl_deposits (bank, bank_reference, participant_id, currency, amount_minor,
			end_to_end_id, value_date, transaction_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			p.ParticipantID, req.BankReference, req.ParticipantId, cur.Code, amount, req.EndToEndId, valueDate, txn.ID, now.UnixNano()); err != nil {
			return nil, err
		}
		return &settlementv1.PostDepositNoticeResponse{TransactionId: txn.ID}, nil
	})
	if err != nil {
		return nil, err
	}
	s.afterCommit(&e)
	return resp, nil
}

func (s *Service) instructionProto(in *instruction) *settlementv1.Instruction {
	out := &settlementv1.Instruction{InstructionId: in.ID, Kind: in.Kind, BankParticipantId: in.Bank,
		DebitAccount: in.DebitAccount, CreditAccount: in.CreditAccount, Amount: s.moneyOf(in.Currency, in.AmountMinor),
		EndToEndId: in.EndToEndID, Status: in.Status, BankReference: in.BankReference, RejectReason: in.RejectReason,
		Cursor: in.Cursor, CreatedAt: ts(in.CreatedAt)}
	if in.CounterCurrency != "" {
		out.CounterAmount = s.moneyOf(in.CounterCurrency, in.CounterAmountMinor)
	}
	return out
}

// streamPage bounds one read of a bank's instructions.
const streamPage = 200

// StreamInstructions sends the bank's instructions after a cursor, then new
// ones as they are created. Each carries its cursor: a bank that reconnects
// with the last cursor it processed misses nothing.
func (b *bankServer) StreamInstructions(req *settlementv1.StreamInstructionsRequest, stream settlementv1.BankService_StreamInstructionsServer) error {
	s := b.s
	ctx := stream.Context()
	p, err := auth.MustFromContext(ctx)
	if err != nil {
		return err
	}
	if req.AfterCursor < 0 {
		return rpcerr.Invalid("after_cursor", "must not be negative")
	}
	cursor := req.AfterCursor
	poll := time.NewTicker(time.Second) // instructions created by another process
	defer poll.Stop()
	for {
		wake := s.instructionWaiter()
		ins, err := inTx(ctx, s, func(q *sql.Tx) ([]*instruction, error) {
			return s.listInstructions(ctx, q, p.ParticipantID, cursor, streamPage)
		})
		if err != nil {
			return err
		}
		for _, in := range ins {
			if err := stream.Send(&settlementv1.StreamInstructionsResponse{Instruction: s.instructionProto(in)}); err != nil {
				return err
			}
			cursor = in.Cursor
		}
		if len(ins) == streamPage {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-poll.C:
		}
	}
}

// ownInstruction loads an instruction for update by the calling bank.
func (s *Service) ownInstruction(ctx context.Context, q *sql.Tx, id string) (*instruction, auth.Principal, error) {
	p, err := auth.MustFromContext(ctx)
	if err != nil {
		return nil, p, err
	}
	in, err := s.getInstruction(ctx, q, id)
	if errors.Is(err, sqlstore.ErrNotFound) || (err == nil && in.Bank != p.ParticipantID) {
		return nil, p, rpcerr.NotFound("instruction", id)
	}
	return in, p, err
}

func (s *Service) setInstructionStatus(ctx context.Context, q *sql.Tx, in *instruction, now time.Time) error {
	in.UpdatedAt = now
	_, err := q.ExecContext(ctx, `UPDATE stl_instructions SET status = $2, bank_reference = $3, reject_reason = $4, updated_at = $5
		WHERE instruction_id = $1`, in.ID, int32(in.Status), in.BankReference, in.RejectReason, now.UnixNano())
	return err
}

func (b *bankServer) AcknowledgeInstruction(ctx context.Context, req *settlementv1.AcknowledgeInstructionRequest) (*settlementv1.AcknowledgeInstructionResponse, error) {
	s := b.s
	in, err := inTx(ctx, s, func(q *sql.Tx) (*instruction, error) {
		in, _, err := s.ownInstruction(ctx, q, req.InstructionId)
		if err != nil {
			return nil, err
		}
		if in.Status == settlementv1.InstructionStatus_INSTRUCTION_STATUS_PENDING {
			in.Status = settlementv1.InstructionStatus_INSTRUCTION_STATUS_ACKNOWLEDGED
			if err := s.setInstructionStatus(ctx, q, in, s.now()); err != nil {
				return nil, err
			}
		}
		return in, nil
	})
	if err != nil {
		return nil, err
	}
	return &settlementv1.AcknowledgeInstructionResponse{Instruction: s.instructionProto(in)}, nil
}

// ConfirmInstruction records that the bank executed an instruction, with its
// reference, and books what that means: a withdrawal's reserved funds leave
// through the exchange's account at the bank; an interbank transfer moves
// cash between the exchange's accounts; an FX conversion closes the FX
// positions it opened. Each confirmation also records the bank movements
// reconciliation expects on the banks' statements. Confirming again with the
// same reference changes nothing.
func (b *bankServer) ConfirmInstruction(ctx context.Context, req *settlementv1.ConfirmInstructionRequest) (*settlementv1.ConfirmInstructionResponse, error) {
	s := b.s
	if req.BankReference == "" || len(req.BankReference) > maxReferenceLen {
		return nil, rpcerr.Invalid("bank_reference", "required, at most %d characters", maxReferenceLen)
	}
	var e effects
	in, err := inTx(ctx, s, func(q *sql.Tx) (*instruction, error) {
		e = effects{}
		in, _, err := s.ownInstruction(ctx, q, req.InstructionId)
		if err != nil {
			return nil, err
		}
		switch in.Status {
		case settlementv1.InstructionStatus_INSTRUCTION_STATUS_CONFIRMED:
			if in.BankReference != req.BankReference {
				return nil, rpcerr.Precondition("INSTRUCTION_CONFIRMED", "instruction %s was confirmed with reference %q", in.ID, in.BankReference)
			}
			return in, nil
		case settlementv1.InstructionStatus_INSTRUCTION_STATUS_REJECTED:
			return nil, rpcerr.Precondition("INSTRUCTION_REJECTED", "instruction %s was rejected", in.ID)
		}
		now := s.now()
		valueDate := s.date(now)
		mv := func(bank, ccy string, amt int64, ref string) movement {
			return movement{Bank: bank, Currency: ccy, AmountMinor: amt, EndToEndID: in.EndToEndID, BankReference: ref,
				ValueDate: valueDate, Source: "instruction/" + in.ID, TransactionID: txRef(0)}
		}
		switch in.Kind {
		case settlementv1.InstructionKind_INSTRUCTION_KIND_WITHDRAWAL:
			w, err := scanWithdrawal(q.QueryRowContext(ctx, `SELECT `+withdrawalCols+` FROM stl_withdrawals WHERE withdrawal_id = $1`, in.Source))
			if err != nil {
				return nil, err
			}
			txn := &ledger.Transaction{Kind: ledger.KindWithdrawal, Reference: "withdrawal/" + w.ID, BookedAt: now}
			txn.Add(ledger.Reserved(w.Member, w.Currency), -w.AmountMinor, ledger.KindWithdrawal)
			txn.Add(ledger.BankAccount(in.Bank, w.Currency), w.AmountMinor, ledger.KindWithdrawal) // cash leaves the bank account
			e.txns = append(e.txns, txn)
			e.movements = append(e.movements, mv(in.Bank, in.Currency, -in.AmountMinor, req.BankReference))
			if _, err := q.ExecContext(ctx, `UPDATE stl_withdrawals SET status = $2, updated_at = $3 WHERE withdrawal_id = $1`,
				w.ID, int32(settlementv1.WithdrawalStatus_WITHDRAWAL_STATUS_CONFIRMED), now.UnixNano()); err != nil {
				return nil, err
			}
		case settlementv1.InstructionKind_INSTRUCTION_KIND_INTERBANK_TRANSFER:
			to, err := ledger.ParseAccount(in.CreditAccount)
			if err != nil {
				return nil, err
			}
			txn := &ledger.Transaction{Kind: ledger.KindTransfer, Reference: "transfer/" + in.ID, BookedAt: now}
			txn.Add(ledger.BankAccount(in.Bank, in.Currency), in.AmountMinor, ledger.KindTransfer)
			txn.Add(to, -in.AmountMinor, ledger.KindTransfer)
			e.txns = append(e.txns, txn)
			e.movements = append(e.movements, mv(in.Bank, in.Currency, -in.AmountMinor, req.BankReference),
				mv(ledger.BankOf(to), in.Currency, in.AmountMinor, ""))
		case settlementv1.InstructionKind_INSTRUCTION_KIND_FX_CONVERSION:
			from, err1 := ledger.ParseAccount(in.DebitAccount)
			to, err2 := ledger.ParseAccount(in.CreditAccount)
			if err := errors.Join(err1, err2); err != nil {
				return nil, err
			}
			txn := &ledger.Transaction{Kind: ledger.KindFX, Reference: "fxconv/" + in.ID, BookedAt: now}
			txn.Add(from, in.AmountMinor, ledger.KindFX) // sold: leaves the bank account
			txn.Add(ledger.FXAccount(in.Currency), -in.AmountMinor, ledger.KindFX)
			txn.Add(to, -in.CounterAmountMinor, ledger.KindFX) // bought: arrives
			txn.Add(ledger.FXAccount(in.CounterCurrency), in.CounterAmountMinor, ledger.KindFX)
			e.txns = append(e.txns, txn)
			e.movements = append(e.movements, mv(in.Bank, in.Currency, -in.AmountMinor, req.BankReference),
				mv(in.Bank, in.CounterCurrency, in.CounterAmountMinor, req.BankReference))
		}
		if err := s.write(ctx, q, &e, now); err != nil {
			return nil, err
		}
		in.Status, in.BankReference = settlementv1.InstructionStatus_INSTRUCTION_STATUS_CONFIRMED, req.BankReference
		return in, s.setInstructionStatus(ctx, q, in, now)
	})
	if err != nil {
		return nil, err
	}
	s.afterCommit(&e)
	return &settlementv1.ConfirmInstructionResponse{Instruction: s.instructionProto(in)}, nil
}

// RejectInstruction records that the bank will not execute an instruction. A
// rejected withdrawal returns the reserved funds to the member's available
// account and credits the core's trading funds back (outbox key
// "withdrawal-reversal/<id>", so once). A rejected transfer or conversion
// moved nothing in the ledger; it is logged for operators to re-instruct.
func (b *bankServer) RejectInstruction(ctx context.Context, req *settlementv1.RejectInstructionRequest) (*settlementv1.RejectInstructionResponse, error) {
	s := b.s
	if req.Reason == "" || len(req.Reason) > 1000 {
		return nil, rpcerr.Invalid("reason", "required, at most 1000 characters")
	}
	var e effects
	in, err := inTx(ctx, s, func(q *sql.Tx) (*instruction, error) {
		e = effects{}
		in, _, err := s.ownInstruction(ctx, q, req.InstructionId)
		if err != nil {
			return nil, err
		}
		switch in.Status {
		case settlementv1.InstructionStatus_INSTRUCTION_STATUS_REJECTED:
			return in, nil
		case settlementv1.InstructionStatus_INSTRUCTION_STATUS_CONFIRMED:
			return nil, rpcerr.Precondition("INSTRUCTION_CONFIRMED", "instruction %s was confirmed", in.ID)
		}
		now := s.now()
		if in.Kind == settlementv1.InstructionKind_INSTRUCTION_KIND_WITHDRAWAL {
			w, err := scanWithdrawal(q.QueryRowContext(ctx, `SELECT `+withdrawalCols+` FROM stl_withdrawals WHERE withdrawal_id = $1`, in.Source))
			if err != nil {
				return nil, err
			}
			cur, err := s.cfg.Currencies.Lookup(w.Currency)
			if err != nil {
				return nil, err
			}
			txn := &ledger.Transaction{Kind: ledger.KindWithdrawal, Reference: "release/" + w.ID, BookedAt: now}
			txn.Move(ledger.Reserved(w.Member, w.Currency), ledger.Available(w.Member, w.Currency), w.AmountMinor, ledger.KindWithdrawal)
			e.txns = append(e.txns, txn)
			e.outbox = append(e.outbox, creditCmd("withdrawal-reversal/"+w.ID, w.Member, cur.FormatAmount(w.AmountMinor), w.Currency))
			if _, err := q.ExecContext(ctx, `UPDATE stl_withdrawals SET status = $2, reason = $3, updated_at = $4 WHERE withdrawal_id = $1`,
				w.ID, int32(settlementv1.WithdrawalStatus_WITHDRAWAL_STATUS_REJECTED), "rejected by the bank: "+req.Reason, now.UnixNano()); err != nil {
				return nil, err
			}
		} else {
			s.logger.Error("bank rejected an instruction: operators must re-instruct", "instruction", in.ID, "kind", in.Kind, "reason", req.Reason)
		}
		if err := s.write(ctx, q, &e, now); err != nil {
			return nil, err
		}
		in.Status, in.RejectReason = settlementv1.InstructionStatus_INSTRUCTION_STATUS_REJECTED, req.Reason
		return in, s.setInstructionStatus(ctx, q, in, now)
	})
	if err != nil {
		return nil, err
	}
	s.afterCommit(&e)
	return &settlementv1.RejectInstructionResponse{Instruction: s.instructionProto(in)}, nil
}

func (b *bankServer) ImportStatement(ctx context.Context, req *settlementv1.ImportStatementRequest) (*settlementv1.ImportStatementResponse, error) {
	return b.s.importStatement(ctx, req.Content, req.FileName)
}

func (b *bankServer) UploadStatement(stream grpc.ClientStreamingServer[settlementv1.UploadStatementRequest, settlementv1.UploadStatementResponse]) error {
	return b.s.uploadStatement(stream)
}

func (b *bankServer) GetReconciliationReport(ctx context.Context, req *settlementv1.GetReconciliationReportRequest) (*settlementv1.GetReconciliationReportResponse, error) {
	return b.s.getReport(ctx, req)
}

func (b *bankServer) ListReconciliationReports(ctx context.Context, req *settlementv1.ListReconciliationReportsRequest) (*settlementv1.ListReconciliationReportsResponse, error) {
	return b.s.listReports(ctx, req)
}
