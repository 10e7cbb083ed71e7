package receipts

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/shopspring/decimal"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	"github.com/bcx-exchange/bcx/pkg/sqlstore"
	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
	receiptsv1 "github.com/bcx-exchange/bcx/proto/bcx/receipts/v1"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
)

// Core is the part of the matching core's CoreService the registry uses;
// tradingv1.CoreServiceClient satisfies it.
//
// How the registry and the core stay in step. A deposited receipt is a pool of
// weight in the core, keyed by receipt number. The registry never changes a
// receipt's custody on the strength of a command's answer alone: it marks the
// command pending on the receipt (with its idempotency key), sends it, and
// applies it when the core's event log shows it (a PositionEvent carrying the
// key), in the log's order, in the same transaction as the log position. So a
// trade that the core sequenced before a withdrawal is always delivered before
// the withdrawal frees the receipt, however the answers race.
//
//   - Deposit: custody begins at once (a pledge or a second deposit can no
//     longer win the receipt) and is chained as "deposited"; the credit's
//     PositionEvent clears the pending mark. A refusal by the core ends custody
//     ("deposit_refused").
//   - Withdraw: the debit's PositionEvent ends custody ("withdrawn"); a refusal
//     (lots reserved by an order or listing) clears the mark and changes
//     nothing else.
//   - Keys: "deposit/<receipt>/<n>" and "withdraw/<receipt>/<n>", n counting
//     the commands started for the receipt: a resend is the same command with
//     the same key; a new attempt (after a refusal, say) is a new command, so
//     a core that remembers refusals by key never answers it with an old one.
//   - A command left pending (the core was unreachable, the process died) is
//     resent by Run's resender, and may be completed by repeating the RPC
//     with the same idempotency key.
type Core interface {
	CreditPosition(ctx context.Context, in *tradingv1.CreditPositionRequest, opts ...grpc.CallOption) (*tradingv1.CreditPositionResponse, error)
	DebitPosition(ctx context.Context, in *tradingv1.DebitPositionRequest, opts ...grpc.CallOption) (*tradingv1.DebitPositionResponse, error)
	SubscribeEvents(ctx context.Context, in *tradingv1.SubscribeEventsRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[tradingv1.SubscribeEventsResponse], error)
}

// refusedByCore says whether the core's answer is a decision (the command
// will never take effect) rather than a failure to answer (it may have).
func refusedByCore(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.NotFound, codes.AlreadyExists, codes.OutOfRange:
		return true
	}
	return false
}

func pendingErr(what, number string, err error) error {
	return status.Errorf(codes.Unavailable, "%s of receipt %s is waiting for the matching core (%s); the registry resends it, and repeating the request with the same idempotency key completes it",
		what, number, status.Convert(err).Message())
}

// qualifying lists the active instruments a receipt's goods can be delivered
// against: same commodity and customs status, grade and warehouse among the
// instrument's, with the weight credited in whole lots of each.
func (s *Server) qualifying(ctx context.Context, r *receipt) ([]*receiptsv1.PositionCredit, error) {
	insts, err := s.ref.instruments(ctx, r.Commodity)
	if err != nil {
		return nil, err
	}
	weight := decimal.New(r.Weight, -r.Scale)
	var out []*receiptsv1.PositionCredit
	for _, in := range insts {
		sp := in.Spec
		if in.Status != listingv1.InstrumentStatus_INSTRUMENT_STATUS_ACTIVE || sp == nil || sp.Commodity != r.Commodity ||
			sp.CustomsStatus != r.Customs || !contains(sp.Grades, r.Grade) || !contains(sp.Warehouses, r.Warehouse) {
			continue
		}
		lot, err := decimal.NewFromString(sp.LotSize)
		if err != nil || !lot.IsPositive() {
			continue // the listing service validates lot sizes; a bad one qualifies nothing
		}
		lots := weight.Div(lot).Floor()
		out = append(out, &receiptsv1.PositionCredit{Symbol: in.Symbol, Quantity: lots.Mul(lot).String()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Symbol < out[j].Symbol })
	return out, nil
}

func symbolsOf(cs []*receiptsv1.PositionCredit) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Symbol
	}
	return out
}

// custodyCall is the shared shape of DepositReceipt and WithdrawReceipt: a
// stored answer if the request was answered before; else start (or resume)
// the pending command, send it, wait until the consumer has applied the core's
// confirmation, and answer.
type custodyCall struct {
	method string // "DepositReceipt" | "WithdrawReceipt"
	key    string
	number string
	req    proto.Message
	// classify looks at the receipt as read: done (answer now), resume (send
	// the pending command again) or start; or refuses.
	classify func(r *receipt, today string) (done, resume bool, err error)
	// start marks the command pending on the receipt (in a transaction).
	start func(t *txn, r *receipt, p auth.Principal, today string) error
	// send sends the pending command; it returns the core's sequence.
	send func(ctx context.Context, r *receipt) (int64, error)
	// refused undoes the pending mark after the core's refusal.
	refused func(ctx context.Context, r *receipt, err error) error
	answer  func(t *txn, r *receipt, today string) (proto.Message, error)
}

func (s *Server) custody(ctx context.Context, c custodyCall) (proto.Message, error) {
	p, err := auth.MustFromContext(ctx)
	if err != nil {
		return nil, err
	}
	if err := validKey(c.key); err != nil {
		return nil, err
	}
	reqBytes, err := proto.MarshalOptions{Deterministic: true}.Marshal(c.req)
	if err != nil {
		return nil, err
	}
	hash, scope := sqlstore.RequestHash(reqBytes), "receipts."+c.method+"/"+p.ParticipantID
	today := s.today()
	var r *receipt
	var stored []byte
	var done, resume bool
	// Phase 1: a stored answer, or the receipt and what to do with it; and if
	// the command is new, mark it pending (custody is decided here, under the
	// version guard: of two racing deposits or a deposit and a pledge, one wins).
	err = s.store.run(ctx, s.now, func(t *txn) error {
		stored, r = nil, nil
		if c.key != "" {
			prev, found, err := sqlstore.Recall(ctx, t.tx, scope, c.key, hash)
			if errors.Is(err, sqlstore.ErrKeyReused) {
				return rpcerr.Invalid("idempotency_key", "%q was used before with a different request", c.key)
			}
			if err != nil {
				return err
			}
			if found {
				stored = prev
				return nil
			}
		}
		cur, err := s.visible(ctx, t, p, "receipt_number", c.number)
		if err != nil {
			return err
		}
		if done, resume, err = c.classify(cur, today); err != nil {
			return err
		}
		if !done && !resume {
			if err := c.start(t, cur, p, today); err != nil {
				return err
			}
			t.save(cur)
		}
		r = cur.clone()
		return nil
	})
	if err != nil {
		return nil, err
	}
	if stored != nil {
		out := c.answerType()
		return out, proto.Unmarshal(stored, out)
	}
	if !done {
		seq, err := c.send(ctx, r)
		if err != nil {
			if refusedByCore(err) {
				if rerr := c.refused(ctx, r, err); rerr != nil {
					return nil, rerr
				}
				action := map[string]string{"DepositReceipt": "deposit", "WithdrawReceipt": "withdraw"}[c.method]
				return nil, rpcerr.Precondition("CORE_REFUSED", "cannot %s receipt %s (it was %s): the matching core refused: %s",
					action, r.Number, r.describe(today), status.Convert(err).Message())
			}
			return nil, pendingErr(c.method, r.Number, err)
		}
		if err := s.waitApplied(ctx, seq); err != nil {
			return nil, pendingErr(c.method, r.Number, err)
		}
	}
	// Answer, and remember the answer with the key.
	var out proto.Message
	err = s.store.run(ctx, s.now, func(t *txn) error {
		out = nil
		if c.key != "" {
			prev, found, err := sqlstore.Recall(ctx, t.tx, scope, c.key, hash)
			if err != nil {
				return err
			}
			if found { // a concurrent repeat of this request answered first
				out = c.answerType()
				return proto.Unmarshal(prev, out)
			}
		}
		cur, err := s.visible(ctx, t, p, "receipt_number", c.number)
		if err != nil {
			return err
		}
		if out, err = c.answer(t, cur, today); err != nil {
			return err
		}
		if c.key == "" {
			return nil
		}
		b, err := proto.Marshal(out)
		if err != nil {
			return err
		}
		return sqlstore.Remember(ctx, t.tx, scope, c.key, hash, b)
	})
	return out, err
}

func (c custodyCall) answerType() proto.Message {
	if c.method == "DepositReceipt" {
		return &receiptsv1.DepositReceiptResponse{}
	}
	return &receiptsv1.WithdrawReceiptResponse{}
}

// peek reads a receipt the caller may see, outside any later transaction.
func (s *Server) peek(ctx context.Context, number string) (*receipt, error) {
	p, err := auth.MustFromContext(ctx)
	if err != nil {
		return nil, err
	}
	var r *receipt
	err = s.store.run(ctx, s.now, func(t *txn) error {
		cur, err := s.visible(ctx, t, p, "receipt_number", number)
		r = cur
		return err
	})
	return r, err
}

// DepositReceipt puts a free receipt into trading custody and has the core
// credit its holder with a pool of its weight in every qualifying instrument.
// Expired and pledged receipts are refused.
func (s *Server) DepositReceipt(ctx context.Context, req *receiptsv1.DepositReceiptRequest) (*receiptsv1.DepositReceiptResponse, error) {
	if err := validReceiptNumber("receipt_number", req.ReceiptNumber); err != nil {
		return nil, err
	}
	if err := validKey(req.IdempotencyKey); err != nil {
		return nil, err
	}
	// The instruments come from the listing service: ask before any
	// transaction (a receipt's goods never change, so what qualifies now still
	// does when custody begins).
	r, err := s.peek(ctx, req.ReceiptNumber)
	if err != nil {
		return nil, err
	}
	credits, err := s.qualifying(ctx, r)
	if err != nil {
		return nil, err
	}
	marker := "deposit:" + req.IdempotencyKey
	out, err := s.custody(ctx, custodyCall{
		method: "DepositReceipt", key: req.IdempotencyKey, number: req.ReceiptNumber, req: req,
		classify: func(r *receipt, today string) (bool, bool, error) {
			if req.IdempotencyKey != "" && r.PendingRequest == marker && r.Enc == receiptsv1.Encumbrance_ENCUMBRANCE_TRADING_CUSTODY {
				return r.Pending == pendingNone, r.Pending == pendingCredit, nil
			}
			return false, false, requireFree(r, today, "deposit")
		},
		start: func(t *txn, r *receipt, p auth.Principal, today string) error {
			if len(credits) == 0 {
				return rpcerr.Precondition("NO_QUALIFYING_INSTRUMENT", "no active instrument accepts receipt %s (%s %s in %s, %s)",
					r.Number, r.Commodity, r.Grade, r.Warehouse, r.Customs)
			}
			r.Enc = receiptsv1.Encumbrance_ENCUMBRANCE_TRADING_CUSTODY
			r.Commands++
			r.Pool = r.Weight
			r.Pending, r.PendingKey = pendingCredit, fmt.Sprintf("deposit/%s/%d", r.Number, r.Commands)
			r.PendingSymbols, r.PendingRequest, r.PendingAfter = symbolsOf(credits), marker, t.now+s.resendAfter.Nanoseconds()
			credited := map[string]string{}
			for _, c := range credits {
				credited[c.Symbol] = c.Quantity
			}
			t.emit(r, kindDeposited, p.ParticipantID, map[string]any{"core_key": r.PendingKey, "credited": credited})
			return nil
		},
		send: func(ctx context.Context, r *receipt) (int64, error) {
			resp, err := s.core.CreditPosition(ctx, &tradingv1.CreditPositionRequest{IdempotencyKey: r.PendingKey,
				ParticipantId: r.Holder, ReceiptNumber: r.Number, Symbols: r.PendingSymbols, Weight: formatWeight(r.Weight, r.Scale)})
			if err != nil {
				return 0, err
			}
			return resp.Sequence, nil
		},
		refused: func(ctx context.Context, r *receipt, cause error) error {
			return s.endPending(ctx, r.Number, r.PendingKey, cause)
		},
		answer: func(t *txn, r *receipt, today string) (proto.Message, error) {
			out, err := s.render(t, r, today)
			if err != nil {
				return nil, err
			}
			resp := &receiptsv1.DepositReceiptResponse{Receipt: out}
			for _, c := range credits {
				if contains(r.PendingSymbols, c.Symbol) {
					resp.Credited = append(resp.Credited, c)
				}
			}
			return resp, nil
		},
	})
	if err != nil {
		return nil, err
	}
	return out.(*receiptsv1.DepositReceiptResponse), nil
}

// WithdrawReceipt takes a receipt out of trading custody; the core refuses
// while any of its pool is reserved by an order or listing. A pledged receipt
// is never in custody (a receipt has one encumbrance), so withdrawing one is
// refused by its state like any other receipt not in trading.
func (s *Server) WithdrawReceipt(ctx context.Context, req *receiptsv1.WithdrawReceiptRequest) (*receiptsv1.WithdrawReceiptResponse, error) {
	if err := validReceiptNumber("receipt_number", req.ReceiptNumber); err != nil {
		return nil, err
	}
	marker := "withdraw:" + req.IdempotencyKey
	out, err := s.custody(ctx, custodyCall{
		method: "WithdrawReceipt", key: req.IdempotencyKey, number: req.ReceiptNumber, req: req,
		classify: func(r *receipt, today string) (bool, bool, error) {
			if req.IdempotencyKey != "" && r.PendingRequest == marker {
				if r.Pending == pendingDebit {
					return false, true, nil
				}
				if r.Enc == receiptsv1.Encumbrance_ENCUMBRANCE_NONE {
					return true, false, nil
				}
			}
			if r.Status != receiptsv1.ReceiptStatus_RECEIPT_STATUS_LIVE || r.Enc != receiptsv1.Encumbrance_ENCUMBRANCE_TRADING_CUSTODY ||
				r.Pending != pendingNone {
				return false, false, refuse(r, today, "withdraw")
			}
			return false, false, nil
		},
		start: func(t *txn, r *receipt, p auth.Principal, today string) error {
			r.Commands++
			r.Pending, r.PendingKey = pendingDebit, fmt.Sprintf("withdraw/%s/%d", r.Number, r.Commands)
			r.PendingRequest, r.PendingAfter = marker, t.now+s.resendAfter.Nanoseconds()
			return nil
		},
		send: func(ctx context.Context, r *receipt) (int64, error) {
			resp, err := s.core.DebitPosition(ctx, &tradingv1.DebitPositionRequest{IdempotencyKey: r.PendingKey,
				ParticipantId: r.Holder, ReceiptNumber: r.Number})
			if err != nil {
				return 0, err
			}
			return resp.Sequence, nil
		},
		refused: func(ctx context.Context, r *receipt, cause error) error {
			return s.endPending(ctx, r.Number, r.PendingKey, cause)
		},
		answer: func(t *txn, r *receipt, today string) (proto.Message, error) {
			out, err := s.render(t, r, today)
			return &receiptsv1.WithdrawReceiptResponse{Receipt: out}, err
		},
	})
	if err != nil {
		return nil, err
	}
	return out.(*receiptsv1.WithdrawReceiptResponse), nil
}

// endPending undoes a pending command the core refused: a refused credit ends
// custody (and says so in the chain), a refused debit leaves the receipt in
// custody as it was.
func (s *Server) endPending(ctx context.Context, number, key string, cause error) error {
	return s.store.run(ctx, s.now, func(t *txn) error {
		r, err := t.get(number)
		if err != nil {
			return err
		}
		if r.Pending == pendingNone || r.PendingKey != key {
			return nil // already settled by someone else
		}
		if r.Pending == pendingCredit {
			r.Enc, r.Pool, r.PendingSymbols = receiptsv1.Encumbrance_ENCUMBRANCE_NONE, 0, nil
			t.emit(r, kindDepositRefused, "core", map[string]any{"core_key": key, "reason": status.Convert(cause).Message()})
		}
		r.Pending, r.PendingKey, r.PendingAfter = pendingNone, "", 0
		t.save(r)
		return nil
	})
}

// setApplied records the consumer's progress and wakes waiters.
func (s *Server) setApplied(seq int64) {
	s.mu.Lock()
	if seq > s.applied {
		s.applied = seq
		close(s.advanced)
		s.advanced = make(chan struct{})
	}
	s.mu.Unlock()
}

var errNotApplied = errors.New("the core's confirmation has not been applied yet")

// waitApplied waits until the consumer has applied the core's events up to
// seq. The consumer may run in another process, so the stored position is
// polled as well.
func (s *Server) waitApplied(ctx context.Context, seq int64) error {
	deadline := time.NewTimer(s.applyWait)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		applied, advanced := s.applied, s.advanced
		s.mu.Unlock()
		if applied >= seq {
			return nil
		}
		var pos int64
		if err := s.store.run(ctx, s.now, func(t *txn) (err error) { pos, err = t.consumerPosition(); return err }); err != nil {
			return err
		}
		if pos >= seq {
			return nil
		}
		select {
		case <-advanced:
		case <-time.After(50 * time.Millisecond):
		case <-deadline.C:
			return errNotApplied
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
