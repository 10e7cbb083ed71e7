package receipts

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/shopspring/decimal"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
)

// MemCore is an in-memory stand-in for the matching core's side of the
// registry's contract: receipt pools credited and debited by idempotency key,
// and a sequenced event log to which trades can be appended. `bcx bench
// receipts` and the tests run the registry against it. It matches no orders;
// a trade is whatever the caller appends.
type MemCore struct {
	mu      sync.Mutex
	log     []*tradingv1.SubscribeEventsResponse
	seq     int64
	keys    map[string]int64
	pools   map[string]*memPool
	wake    chan struct{}
	gen     int
	failErr error
	fails   int
	credits []*tradingv1.CreditPositionRequest
	debits  []*tradingv1.DebitPositionRequest
	// ReplayAll makes every subscription start from the first event, whatever
	// it asks for: a core that redelivers.
	ReplayAll bool
}

type memPool struct {
	participant      string
	weight, reserved decimal.Decimal
}

// NewMemCore returns an empty core.
func NewMemCore() *MemCore {
	return &MemCore{keys: map[string]int64{}, pools: map[string]*memPool{}, wake: make(chan struct{})}
}

var _ Core = (*MemCore)(nil)

// appendLocked adds an event at a new sequence number and wakes subscribers.
func (c *MemCore) appendLocked(ev *tradingv1.SubscribeEventsResponse) int64 {
	c.seq++
	ev.Sequence = c.seq
	ev.Time = timestamppb.New(time.Now())
	c.log = append(c.log, ev)
	close(c.wake)
	c.wake = make(chan struct{})
	return c.seq
}

// FailNext makes the next n position commands fail with err (before taking
// effect), e.g. status.Error(codes.Unavailable, ...).
func (c *MemCore) FailNext(n int, err error) {
	c.mu.Lock()
	c.fails, c.failErr = n, err
	c.mu.Unlock()
}

func (c *MemCore) failing() error {
	if c.fails > 0 {
		c.fails--
		return c.failErr
	}
	return nil
}

// CreditPosition implements Core.
func (c *MemCore) CreditPosition(_ context.Context, in *tradingv1.CreditPositionRequest, _ ...grpc.CallOption) (*tradingv1.CreditPositionResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.credits = append(c.credits, proto.Clone(in).(*tradingv1.CreditPositionRequest))
	if err := c.failing(); err != nil {
		return nil, err
	}
	if seq, ok := c.keys[in.IdempotencyKey]; ok {
		return &tradingv1.CreditPositionResponse{Sequence: seq, Duplicate: true}, nil
	}
	w, err := decimal.NewFromString(in.Weight)
	if err != nil || !w.IsPositive() || len(in.Symbols) == 0 || in.IdempotencyKey == "" {
		return nil, status.Errorf(codes.InvalidArgument, "bad credit %v", in)
	}
	if p, ok := c.pools[in.ReceiptNumber]; ok && p.weight.IsPositive() {
		return nil, status.Errorf(codes.FailedPrecondition, "receipt %s already has a pool", in.ReceiptNumber)
	}
	c.pools[in.ReceiptNumber] = &memPool{participant: in.ParticipantId, weight: w}
	seq := c.appendLocked(&tradingv1.SubscribeEventsResponse{Event: &tradingv1.SubscribeEventsResponse_Position{Position: &tradingv1.PositionEvent{
		IdempotencyKey: in.IdempotencyKey, ParticipantId: in.ParticipantId, ReceiptNumber: in.ReceiptNumber,
		Symbols: in.Symbols, Weight: in.Weight}}})
	c.keys[in.IdempotencyKey] = seq
	return &tradingv1.CreditPositionResponse{Sequence: seq}, nil
}

// DebitPosition implements Core.
func (c *MemCore) DebitPosition(_ context.Context, in *tradingv1.DebitPositionRequest, _ ...grpc.CallOption) (*tradingv1.DebitPositionResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.debits = append(c.debits, proto.Clone(in).(*tradingv1.DebitPositionRequest))
	if err := c.failing(); err != nil {
		return nil, err
	}
	if seq, ok := c.keys[in.IdempotencyKey]; ok {
		return &tradingv1.DebitPositionResponse{Sequence: seq, Duplicate: true}, nil
	}
	p, ok := c.pools[in.ReceiptNumber]
	if !ok || p.participant != in.ParticipantId {
		return nil, status.Errorf(codes.NotFound, "no pool for receipt %s", in.ReceiptNumber)
	}
	if p.reserved.IsPositive() {
		return nil, status.Errorf(codes.FailedPrecondition, "%s t of receipt %s is reserved by orders", p.reserved, in.ReceiptNumber)
	}
	delete(c.pools, in.ReceiptNumber)
	seq := c.appendLocked(&tradingv1.SubscribeEventsResponse{Event: &tradingv1.SubscribeEventsResponse_Position{Position: &tradingv1.PositionEvent{
		IdempotencyKey: in.IdempotencyKey, ParticipantId: in.ParticipantId, ReceiptNumber: in.ReceiptNumber,
		Weight: p.weight.Neg().String()}}})
	c.keys[in.IdempotencyKey] = seq
	return &tradingv1.DebitPositionResponse{Sequence: seq}, nil
}

// Reserve marks weight of a receipt's pool as reserved by an order, which
// makes a debit fail.
func (c *MemCore) Reserve(receipt, weight string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.pools[receipt]
	if !ok {
		return fmt.Errorf("no pool for %s", receipt)
	}
	p.reserved = p.reserved.Add(decimal.RequireFromString(weight))
	return nil
}

// Pool returns the participant and weight of a receipt's pool.
func (c *MemCore) Pool(receipt string) (participant, weight string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.pools[receipt]
	if !ok {
		return "", "", false
	}
	return p.participant, p.weight.String(), true
}

// Trade appends trades, all at one new sequence number (as one command's
// fills are), taking the allocated weights from the pools; it returns the
// sequence.
func (c *MemCore) Trade(trades ...*tradingv1.TradeEvent) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	seq := c.seq + 1
	for _, tr := range trades {
		for _, a := range tr.Allocations {
			if p, ok := c.pools[a.ReceiptNumber]; ok {
				if w, err := decimal.NewFromString(a.Weight); err == nil {
					p.weight = p.weight.Sub(w)
					p.reserved = decimal.Max(decimal.Zero, p.reserved.Sub(w))
					if !p.weight.IsPositive() {
						delete(c.pools, a.ReceiptNumber)
					}
				}
			}
		}
		c.log = append(c.log, &tradingv1.SubscribeEventsResponse{Sequence: seq, Time: timestamppb.New(time.Now()),
			Event: &tradingv1.SubscribeEventsResponse_Trade{Trade: proto.Clone(tr).(*tradingv1.TradeEvent)}})
	}
	c.seq = seq
	close(c.wake)
	c.wake = make(chan struct{})
	return seq
}

// Redeliver appends copies of already-logged events (by position in the log)
// to the log's end, as a core that delivers an event twice would.
func (c *MemCore) Redeliver(from, to int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range c.log[from:to] {
		c.log = append(c.log, proto.Clone(ev).(*tradingv1.SubscribeEventsResponse))
	}
	close(c.wake)
	c.wake = make(chan struct{})
}

// Disconnect ends every open subscription with Unavailable.
func (c *MemCore) Disconnect() {
	c.mu.Lock()
	c.gen++
	close(c.wake)
	c.wake = make(chan struct{})
	c.mu.Unlock()
}

// Sequence is the last sequence number used.
func (c *MemCore) Sequence() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seq
}

// LogLen is the number of events logged.
func (c *MemCore) LogLen() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.log)
}

// Credits and Debits return the commands received, in order.
func (c *MemCore) Credits() []*tradingv1.CreditPositionRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*tradingv1.CreditPositionRequest(nil), c.credits...)
}

// Debits returns the debit commands received, in order.
func (c *MemCore) Debits() []*tradingv1.DebitPositionRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*tradingv1.DebitPositionRequest(nil), c.debits...)
}

// SubscribeEvents implements Core.
func (c *MemCore) SubscribeEvents(ctx context.Context, in *tradingv1.SubscribeEventsRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[tradingv1.SubscribeEventsResponse], error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	from := in.FromSequence
	if c.ReplayAll {
		from = 0
	}
	return &memStream{c: c, ctx: ctx, from: from, gen: c.gen}, nil
}

type memStream struct {
	c    *MemCore
	ctx  context.Context
	from int64
	next int
	gen  int
}

func (s *memStream) Recv() (*tradingv1.SubscribeEventsResponse, error) {
	for {
		s.c.mu.Lock()
		if s.gen != s.c.gen {
			s.c.mu.Unlock()
			return nil, status.Error(codes.Unavailable, "core disconnected")
		}
		for s.next < len(s.c.log) {
			ev := s.c.log[s.next]
			s.next++
			if ev.Sequence >= s.from {
				s.c.mu.Unlock()
				return proto.Clone(ev).(*tradingv1.SubscribeEventsResponse), nil
			}
		}
		wake := s.c.wake
		s.c.mu.Unlock()
		select {
		case <-wake:
		case <-s.ctx.Done():
			return nil, status.FromContextError(s.ctx.Err()).Err()
		}
	}
}

func (s *memStream) Header() (metadata.MD, error) { return nil, nil }
func (s *memStream) Trailer() metadata.MD         { return nil }
func (s *memStream) CloseSend() error             { return nil }
func (s *memStream) Context() context.Context     { return s.ctx }
func (s *memStream) SendMsg(any) error            { return nil }
func (s *memStream) RecvMsg(m any) error {
	ev, err := s.Recv()
	if err != nil {
		return err
	}
	proto.Merge(m.(proto.Message), ev)
	return nil
}
