// Package coretest is an in-memory stand-in for the matching core's
// CoreService, for settlement's tests and benchmark: it applies CreditFunds
// and DebitFunds once per idempotency key (refusing a debit the funds do not
// cover), records every command, and serves an event log the test appends
// to, from any sequence number, then live. Failures can be injected: calls
// that fail before applying, acknowledgements lost after applying, streams
// cut, and redelivery from the start whatever sequence is asked for.
package coretest

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/shopspring/decimal"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
)

// Call is one command the core received.
type Call struct {
	Method string // "CreditFunds", "DebitFunds", "SetFeeSchedule"
	Key    string
	// Applied is true when this call changed the core's state.
	Applied bool
}

// Core is the fake.
type Core struct {
	mu      sync.Mutex
	log     []*tradingv1.SubscribeEventsResponse
	seq     int64
	keys    map[string]bool
	funds   map[string]decimal.Decimal // member/currency
	calls   []Call
	wake    chan struct{}
	streams int

	// FailBefore makes the next n calls of a method fail with Unavailable
	// without applying anything.
	FailBefore map[string]int
	// LoseAck makes the next n calls of a method apply and then fail with
	// Unavailable, as if the answer were lost.
	LoseAck map[string]int
	// RedeliverFromStart makes SubscribeEvents ignore from_sequence and
	// send the whole log.
	RedeliverFromStart bool
	// Shared makes streams hand out the stored events instead of copies
	// (for the benchmark: the core is another process in production, and
	// copying here would bill its cost to settlement). Consumers must not
	// modify them.
	Shared bool
	// Schedules holds the fee schedules received, by symbol.
	Schedules map[string]*tradingv1.SetFeeScheduleRequest
	// rates and funding are the FX rates and funding currencies (by
	// member/trade currency) forwarded to the core.
	rates          []*tradingv1.SetFxRateRequest
	funding        map[string]string
	fundingVersion map[string]int64
	// cut, when closed, ends every open stream.
	cut chan struct{}
}

// New returns an empty core.
func New() *Core {
	return &Core{keys: map[string]bool{}, funds: map[string]decimal.Decimal{}, wake: make(chan struct{}),
		FailBefore: map[string]int{}, LoseAck: map[string]int{}, Schedules: map[string]*tradingv1.SetFeeScheduleRequest{},
		funding: map[string]string{}, fundingVersion: map[string]int64{},
		cut: make(chan struct{})}
}

func (c *Core) command(method, key string, apply func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.FailBefore[method] > 0 {
		c.FailBefore[method]--
		c.calls = append(c.calls, Call{Method: method, Key: key})
		return status.Error(codes.Unavailable, "injected: core unavailable")
	}
	call := Call{Method: method, Key: key}
	if !c.keys[key] {
		if err := apply(); err != nil {
			c.calls = append(c.calls, call)
			return err
		}
		c.keys[key] = true
		call.Applied = true
	}
	c.calls = append(c.calls, call)
	if c.LoseAck[method] > 0 {
		c.LoseAck[method]--
		return status.Error(codes.Unavailable, "injected: acknowledgement lost")
	}
	return nil
}

func fundsKey(member, ccy string) string { return member + "/" + ccy }

// CreditFunds implements settlement.Core.
func (c *Core) CreditFunds(_ context.Context, in *tradingv1.CreditFundsRequest, _ ...grpc.CallOption) (*tradingv1.CreditFundsResponse, error) {
	err := c.command("CreditFunds", in.IdempotencyKey, func() error {
		amt, err := decimal.NewFromString(in.Amount.GetAmount())
		if err != nil || !amt.IsPositive() {
			return status.Error(codes.InvalidArgument, "amount")
		}
		k := fundsKey(in.ParticipantId, in.Amount.Currency)
		c.funds[k] = c.funds[k].Add(amt)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &tradingv1.CreditFundsResponse{}, nil
}

// DebitFunds implements settlement.Core; it refuses with FailedPrecondition
// when the member's funds do not cover the amount.
func (c *Core) DebitFunds(_ context.Context, in *tradingv1.DebitFundsRequest, _ ...grpc.CallOption) (*tradingv1.DebitFundsResponse, error) {
	err := c.command("DebitFunds", in.IdempotencyKey, func() error {
		amt, err := decimal.NewFromString(in.Amount.GetAmount())
		if err != nil || !amt.IsPositive() {
			return status.Error(codes.InvalidArgument, "amount")
		}
		k := fundsKey(in.ParticipantId, in.Amount.Currency)
		if c.funds[k].LessThan(amt) {
			return status.Error(codes.FailedPrecondition, "REJECT_REASON_INSUFFICIENT_FUNDS")
		}
		c.funds[k] = c.funds[k].Sub(amt)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &tradingv1.DebitFundsResponse{}, nil
}

// SetFeeSchedule implements settlement.Core.
func (c *Core) SetFeeSchedule(_ context.Context, in *tradingv1.SetFeeScheduleRequest, _ ...grpc.CallOption) (*tradingv1.SetFeeScheduleResponse, error) {
	err := c.command("SetFeeSchedule", in.IdempotencyKey, func() error {
		c.Schedules[in.Symbol] = proto.Clone(in).(*tradingv1.SetFeeScheduleRequest)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &tradingv1.SetFeeScheduleResponse{}, nil
}

// SetFxRate implements settlement.Core.
func (c *Core) SetFxRate(_ context.Context, in *tradingv1.SetFxRateRequest, _ ...grpc.CallOption) (*tradingv1.SetFxRateResponse, error) {
	err := c.command("SetFxRate", in.RateId, func() error {
		c.rates = append(c.rates, proto.Clone(in).(*tradingv1.SetFxRateRequest))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &tradingv1.SetFxRateResponse{}, nil
}

// SetFundingCurrency implements settlement.Core.
func (c *Core) SetFundingCurrency(_ context.Context, in *tradingv1.SetFundingCurrencyRequest, _ ...grpc.CallOption) (*tradingv1.SetFundingCurrencyResponse, error) {
	err := c.command("SetFundingCurrency", in.IdempotencyKey, func() error {
		// As the core: a change older than the one held is ignored.
		k := fundsKey(in.ParticipantId, in.TradeCurrency)
		if in.Version > c.fundingVersion[k] {
			c.funding[k], c.fundingVersion[k] = in.FundingCurrency, in.Version
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &tradingv1.SetFundingCurrencyResponse{}, nil
}

// SetFunds sets a member's trading funds (as trading would have moved them).
func (c *Core) SetFunds(member, ccy, amount string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.funds[fundsKey(member, ccy)] = decimal.RequireFromString(amount)
}

// Funds returns a member's trading funds in a currency.
func (c *Core) Funds(member, ccy string) decimal.Decimal {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.funds[fundsKey(member, ccy)]
}

// Rates returns the FX rates the core received, in order.
func (c *Core) Rates() []*tradingv1.SetFxRateRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*tradingv1.SetFxRateRequest(nil), c.rates...)
}

// FundingOf returns the funding currency the core holds for a member's
// trades in ccy.
func (c *Core) FundingOf(member, ccy string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.funding[fundsKey(member, ccy)]
}

// Calls returns the commands received so far.
func (c *Core) Calls() []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Call(nil), c.calls...)
}

// Applied reports how many calls with a key changed state (0 or 1) and how
// many were received.
func (c *Core) Applied(key string) (applied, received int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, call := range c.calls {
		if call.Key == key {
			received++
			if call.Applied {
				applied++
			}
		}
	}
	return applied, received
}

// Push appends events under one new sequence number (a command that caused
// several events) and returns the sequence.
func (c *Core) Push(at time.Time, events ...*tradingv1.SubscribeEventsResponse) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	for _, e := range events {
		e.Sequence, e.Time = c.seq, timestamppb.New(at)
		c.log = append(c.log, e)
	}
	close(c.wake)
	c.wake = make(chan struct{})
	return c.seq
}

// PushTrades appends trades under one sequence number.
func (c *Core) PushTrades(at time.Time, trades ...*tradingv1.TradeEvent) int64 {
	evs := make([]*tradingv1.SubscribeEventsResponse, len(trades))
	for i, t := range trades {
		evs[i] = &tradingv1.SubscribeEventsResponse{Event: &tradingv1.SubscribeEventsResponse_Trade{Trade: t}}
	}
	return c.Push(at, evs...)
}

// Cut ends every open event stream (the consumer must reconnect).
func (c *Core) Cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	close(c.cut)
	c.cut = make(chan struct{})
}

// Streams returns how many event subscriptions were opened.
func (c *Core) Streams() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streams
}

// SubscribeEvents implements settlement.Core.
func (c *Core) SubscribeEvents(ctx context.Context, in *tradingv1.SubscribeEventsRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[tradingv1.SubscribeEventsResponse], error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.streams++
	from := in.FromSequence
	if c.RedeliverFromStart {
		from = 1
	}
	return &stream{c: c, ctx: ctx, from: from, cut: c.cut}, nil
}

type stream struct {
	grpc.ClientStream // not used; Recv and Context are what consumers call
	c                 *Core
	ctx               context.Context
	from              int64
	pos               int
	cut               chan struct{}
}

func (s *stream) Context() context.Context { return s.ctx }

func (s *stream) Recv() (*tradingv1.SubscribeEventsResponse, error) {
	for {
		s.c.mu.Lock()
		for s.pos < len(s.c.log) && s.c.log[s.pos].Sequence < s.from {
			s.pos++
		}
		if s.pos < len(s.c.log) {
			ev := s.c.log[s.pos]
			if !s.c.Shared {
				ev = proto.Clone(ev).(*tradingv1.SubscribeEventsResponse)
			}
			s.pos++
			s.c.mu.Unlock()
			return ev, nil
		}
		wake := s.c.wake
		s.c.mu.Unlock()
		select {
		case <-s.ctx.Done():
			return nil, status.FromContextError(s.ctx.Err()).Err()
		case <-s.cut:
			return nil, io.EOF
		case <-wake:
		}
	}
}
