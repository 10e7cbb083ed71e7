package settlement

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/bcx-exchange/bcx/pkg/paging"
	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	"github.com/bcx-exchange/bcx/pkg/sqlstore"
	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
)

// parkedToken is a ListParkedEvents page token: the last (sequence, index)
// returned.
func parkedToken(seq, idx int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(seq, 10) + "." + strconv.FormatInt(idx, 10)))
}

func parseParkedToken(token string) (seq, idx int64, err error) {
	if token == "" {
		return 0, -1, nil // before every event: sequences start at 1
	}
	bad := rpcerr.Invalid("page_token", "malformed page token")
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, 0, bad
	}
	a, c, ok := strings.Cut(string(b), ".")
	if !ok {
		return 0, 0, bad
	}
	if seq, err = strconv.ParseInt(a, 10, 64); err != nil {
		return 0, 0, bad
	}
	if idx, err = strconv.ParseInt(c, 10, 64); err != nil {
		return 0, 0, bad
	}
	return seq, idx, nil
}

// decodeParked decodes a parked row's body: the core event as the consumer
// received it (park).
func decodeParked(body []byte) (*tradingv1.SubscribeEventsResponse, error) {
	ev := &tradingv1.SubscribeEventsResponse{}
	if err := proto.Unmarshal(body, ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// ListParkedEvents returns the trade events the consumer parked, oldest
// (lowest sequence, then index) first.
func (a *adminServer) ListParkedEvents(ctx context.Context, req *settlementv1.ListParkedEventsRequest) (*settlementv1.ListParkedEventsResponse, error) {
	s := a.s
	size, err := paging.Size(req.PageSize)
	if err != nil {
		return nil, err
	}
	afterSeq, afterIdx, err := parseParkedToken(req.PageToken)
	if err != nil {
		return nil, err
	}
	evs, err := inTx(ctx, s, func(q *sql.Tx) ([]*settlementv1.ParkedEvent, error) {
		rows, err := q.QueryContext(ctx, `SELECT sequence, idx, body, reason, created_at FROM stl_parked_events
			WHERE sequence > $1 OR (sequence = $1 AND idx > $2) ORDER BY sequence, idx LIMIT $3`, afterSeq, afterIdx, size)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []*settlementv1.ParkedEvent
		for rows.Next() {
			var (
				p       settlementv1.ParkedEvent
				body    []byte
				created int64
			)
			if err := rows.Scan(&p.Sequence, &p.Index, &body, &p.Reason, &created); err != nil {
				return nil, err
			}
			// An undecodable body is listed all the same (trade_id 0): it
			// is what the operator has to look at.
			if ev, err := decodeParked(body); err == nil {
				p.TradeId = ev.GetTrade().GetTradeId()
			}
			p.ParkedAt = ts(time.Unix(0, created))
			out = append(out, &p)
		}
		return out, rows.Err()
	})
	if err != nil {
		return nil, err
	}
	resp := &settlementv1.ListParkedEventsResponse{Events: evs}
	if n := len(evs); n == size {
		resp.NextPageToken = parkedToken(evs[n-1].Sequence, evs[n-1].Index)
	}
	return resp, nil
}

// parkedTrade loads a parked event and its trade.
func (s *Service) parkedTrade(ctx context.Context, q *sql.Tx, seq, idx int64) (*tradingv1.SubscribeEventsResponse, *tradingv1.TradeEvent, error) {
	var body []byte
	err := q.QueryRowContext(ctx, `SELECT body FROM stl_parked_events WHERE sequence = $1 AND idx = $2`, seq, idx).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, rpcerr.NotFound("parked event", fmt.Sprintf("%d/%d", seq, idx))
	}
	if err != nil {
		return nil, nil, err
	}
	ev, err := decodeParked(body)
	if err != nil {
		return nil, nil, rpcerr.Precondition("EVENT_CANNOT_BE_BOOKED", "parked event %d/%d cannot be decoded: %v", seq, idx, err)
	}
	t := ev.GetTrade()
	if t == nil {
		return nil, nil, rpcerr.Precondition("EVENT_CANNOT_BE_BOOKED", "parked event %d/%d is not a trade", seq, idx)
	}
	return ev, t, nil
}

// RetryParkedEvent books a parked trade event the way the consumer books
// one (planTrade, writeTrades), in one transaction that also deletes the
// parked row. The trade's reference data is fetched afresh from listing
// first: the usual cause of parking is an instrument listing did not know,
// and "unknown" is cached. A trade that still cannot be booked stays parked
// (with the new reason) and the answer is FailedPrecondition; a trade that
// is already booked is not booked again: its parked row is deleted and its
// settlement returned.
func (a *adminServer) RetryParkedEvent(ctx context.Context, req *settlementv1.RetryParkedEventRequest) (*settlementv1.RetryParkedEventResponse, error) {
	s := a.s
	// Reference data first, outside the transaction, as the consumer does.
	_, t, err := inTx2(ctx, s, func(q *sql.Tx) (*tradingv1.SubscribeEventsResponse, *tradingv1.TradeEvent, error) {
		return s.parkedTrade(ctx, q, req.Sequence, req.Index)
	})
	if err != nil {
		return nil, err
	}
	s.ref.forgetTrade(t)
	if err := s.prefetchTrade(ctx, t); err != nil {
		return nil, err
	}
	var (
		e        effects
		stillBad error
	)
	txCtx := noRPC(ctx)
	row, err := inTx(ctx, s, func(q *sql.Tx) (*tradeRow, error) {
		ctx := txCtx
		e, stillBad = effects{}, nil
		// The consumer's lock: a receipts leg arriving meanwhile waits for
		// the trade, and two retries of one event run one after the other.
		if err := s.lockPosition(ctx, q); err != nil {
			return nil, err
		}
		ev, t, err := s.parkedTrade(ctx, q, req.Sequence, req.Index)
		if err != nil {
			return nil, err
		}
		unpark := func() error {
			_, err := q.ExecContext(ctx, `DELETE FROM stl_parked_events WHERE sequence = $1 AND idx = $2`, req.Sequence, req.Index)
			return err
		}
		booked, err := s.getTrade(ctx, q, t.TradeId)
		if err == nil {
			s.logger.Warn("parked trade event was already booked; unparked", "sequence", req.Sequence, "index", req.Index, "trade_id", t.TradeId)
			return booked, unpark()
		}
		if !errors.Is(err, errNoTrade) {
			return nil, err
		}
		now := s.now()
		p, err := s.planTrade(ctx, q, ev.Sequence, ev.GetTime().AsTime(), t)
		if errors.Is(err, errPoison) {
			stillBad = err
			_, err := q.ExecContext(ctx, `UPDATE stl_parked_events SET reason = $3 WHERE sequence = $1 AND idx = $2`,
				req.Sequence, req.Index, stillBad.Error())
			return nil, err
		}
		if err != nil {
			return nil, err
		}
		if err := s.writeTrades(ctx, q, []*tradePlan{p}, []any{t.TradeId}, &e, now); err != nil {
			return nil, err
		}
		return p.row, unpark()
	})
	if err != nil {
		return nil, err
	}
	if stillBad != nil {
		return nil, rpcerr.Precondition("EVENT_CANNOT_BE_BOOKED", "parked event %d/%d still cannot be booked: %v", req.Sequence, req.Index, stillBad)
	}
	s.afterCommit(&e)
	s.logger.Info("parked trade event booked", "sequence", req.Sequence, "index", req.Index, "trade_id", row.TradeID)
	return &settlementv1.RetryParkedEventResponse{Settlement: s.tradeProto(row)}, nil
}

// inTx2 is inTx for two values.
func inTx2[A, B any](ctx context.Context, s *Service, fn func(q *sql.Tx) (A, B, error)) (A, B, error) {
	var (
		a A
		b B
	)
	err := s.db.InTx(ctx, func(q *sql.Tx) error {
		var err error
		a, b, err = fn(q)
		return err
	})
	return a, b, err
}

// reissueSource is the Source of an instruction that reissues another.
func reissueSource(id string) string { return "reissue/" + id }

// ReissueInstruction issues a rejected interbank transfer or FX conversion
// again: a new PENDING instruction to the same bank for the same movement
// (kind, accounts, currencies, amounts), with its own id and end-to-end id,
// whose source is "reissue/<rejected id>". Neither creating nor rejecting
// such an instruction books anything (its confirmation does), so the ledger
// needs nothing more: confirming the new one books what confirming the
// rejected one would have. A rejected withdrawal is refused: its rejection
// already returned the funds to the member, who requests it again. An
// instruction is reissued at most once (a rejected reissue is reissued in
// turn), so one movement never gets two live instructions.
func (a *adminServer) ReissueInstruction(ctx context.Context, req *settlementv1.ReissueInstructionRequest) (*settlementv1.ReissueInstructionResponse, error) {
	s := a.s
	if req.InstructionId == "" {
		return nil, rpcerr.Invalid("instruction_id", "required")
	}
	sc, err := scope(ctx, "ReissueInstruction")
	if err != nil {
		return nil, err
	}
	var e effects
	resp, err := idempotent(ctx, s, sc, req.IdempotencyKey, req, func(q *sql.Tx) (*settlementv1.ReissueInstructionResponse, error) {
		e = effects{}
		// Lock the rejected instruction's row first: two reissues of it
		// (under different keys) run one after the other, and the second
		// sees the first's instruction.
		res, err := q.ExecContext(ctx, `UPDATE stl_instructions SET updated_at = updated_at WHERE instruction_id = $1`, req.InstructionId)
		if err != nil {
			return nil, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, err
		} else if n == 0 {
			return nil, rpcerr.NotFound("instruction", req.InstructionId)
		}
		in, err := s.getInstruction(ctx, q, req.InstructionId)
		if errors.Is(err, sqlstore.ErrNotFound) {
			return nil, rpcerr.NotFound("instruction", req.InstructionId)
		}
		if err != nil {
			return nil, err
		}
		if in.Status != settlementv1.InstructionStatus_INSTRUCTION_STATUS_REJECTED {
			return nil, rpcerr.Precondition("INSTRUCTION_NOT_REJECTED", "instruction %s is %s: only a rejected instruction can be reissued",
				in.ID, in.Status)
		}
		switch in.Kind {
		case settlementv1.InstructionKind_INSTRUCTION_KIND_INTERBANK_TRANSFER, settlementv1.InstructionKind_INSTRUCTION_KIND_FX_CONVERSION:
		case settlementv1.InstructionKind_INSTRUCTION_KIND_WITHDRAWAL:
			return nil, rpcerr.Precondition("WITHDRAWAL_NOT_REISSUABLE", "instruction %s is a withdrawal: its rejection returned the "+
				"funds to the member's available account (withdrawal %s); the member must request the withdrawal again", in.ID, in.Source)
		default:
			return nil, rpcerr.Precondition("INSTRUCTION_NOT_REISSUABLE", "instruction %s is of kind %s, which cannot be reissued", in.ID, in.Kind)
		}
		var prior string
		err = q.QueryRowContext(ctx, `SELECT instruction_id FROM stl_instructions WHERE bank = $1 AND source = $2`,
			in.Bank, reissueSource(in.ID)).Scan(&prior)
		if err == nil {
			return nil, rpcerr.Precondition("INSTRUCTION_REISSUED", "instruction %s was already reissued as %s", in.ID, prior)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		out := &instruction{Bank: in.Bank, Kind: in.Kind, DebitAccount: in.DebitAccount, CreditAccount: in.CreditAccount,
			Currency: in.Currency, AmountMinor: in.AmountMinor, CounterCurrency: in.CounterCurrency,
			CounterAmountMinor: in.CounterAmountMinor, Source: reissueSource(in.ID)}
		e.instructions = []*instruction{out}
		if err := s.write(ctx, q, &e, s.now()); err != nil {
			return nil, err
		}
		s.logger.Info("instruction reissued", "rejected", in.ID, "instruction", out.ID, "kind", in.Kind, "bank", in.Bank)
		return &settlementv1.ReissueInstructionResponse{Instruction: s.instructionProto(out)}, nil
	})
	if err != nil {
		return nil, err
	}
	s.afterCommit(&e)
	return resp, nil
}

// forgetTrade marks the cached reference data a trade's booking reads as
// expired, so the next lookup outside a transaction asks listing again.
// Entries stay (expired entries are still used inside a transaction), so a
// consumer batch prefetched meanwhile does not lose them.
func (r *refData) forgetTrade(t *tradingv1.TradeEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.instruments[t.Symbol]; ok && c.err == nil {
		expire(r.tolerances, c.v.Commodity)
	}
	expire(r.instruments, t.Symbol)
	expire(r.accounts, t.BuyerParticipantId)
	expire(r.accounts, t.SellerParticipantId)
}

func expire[T any](m map[string]cached[T], key string) {
	if c, ok := m[key]; ok {
		c.expires = time.Time{}
		m[key] = c
	}
}
