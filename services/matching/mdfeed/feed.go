// Package mdfeed fans market data out from the matching service's publisher
// to the processes that serve subscribers: in-process for `bcx dev` (Local),
// or through Redis pub/sub (Redis) so several gateway processes can serve
// many subscribers.
//
// The publisher owns each instrument's per-instrument sequence: every
// message it publishes carries the next number, and with the messages it
// stores the instrument's State as of the last one. A subscriber starts from
// a State and then receives exactly the messages after it, in order. A
// subscriber that falls too far behind is cut off (ErrSlow); a subscriber
// that sees a gap (a message lost in transit) is cut off too (ErrGap): in
// both cases the client resubscribes and starts from a fresh snapshot.
// Publishing never waits for a subscriber.
package mdfeed

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	marketdatav1 "github.com/bcx-exchange/bcx/proto/bcx/marketdata/v1"
)

// Msg is one market data message.
type Msg = marketdatav1.StreamMarketDataResponse

// State is an instrument's market data as of message Seq. Published States
// are immutable: readers share them.
type State struct {
	Seq    int64
	Depth  *marketdatav1.Depth
	Ticker *marketdatav1.Ticker
	Trades []*marketdatav1.Trade // recent trades, oldest first
}

var (
	// ErrSlow ends a subscription whose buffer overflowed.
	ErrSlow = errors.New("mdfeed: subscriber fell too far behind")
	// ErrGap ends a subscription that missed messages.
	ErrGap = errors.New("mdfeed: market data gap; resubscribe")
	// ErrUnknown is returned for an instrument nothing was published for.
	ErrUnknown = errors.New("mdfeed: no market data for the instrument")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("mdfeed: closed")
)

// Feed carries market data from one publisher to any number of readers.
type Feed interface {
	// Publish stores st as the instrument's state and delivers msgs, whose
	// sequence numbers run on from the previous state's and end at st.Seq.
	// It never blocks on subscribers.
	Publish(ctx context.Context, symbol string, st *State, msgs []*Msg) error
	// State returns the instrument's latest state.
	State(ctx context.Context, symbol string) (*State, error)
	// Subscribe returns the instrument's state and, after it, every
	// message, buffering at most buffer of them.
	Subscribe(ctx context.Context, symbol string, buffer int) (Subscription, error)
	Close() error
}

// Subscription is one subscriber's view of an instrument.
type Subscription interface {
	// Snapshot is the state the subscription starts from.
	Snapshot() *State
	// C delivers the messages after the snapshot. It is closed when the
	// subscription ends; Err then says why.
	C() <-chan *Msg
	Err() error
	Close()
}

// Local is the in-process Feed.
type Local struct {
	mu     sync.Mutex
	topics map[string]*topic
	closed bool
}

type topic struct {
	state *State
	subs  map[*localSub]struct{}
}

// NewLocal returns an in-process feed.
func NewLocal() *Local { return &Local{topics: map[string]*topic{}} }

func (l *Local) topic(symbol string) *topic {
	t := l.topics[symbol]
	if t == nil {
		t = &topic{subs: map[*localSub]struct{}{}}
		l.topics[symbol] = t
	}
	return t
}

// Publish implements Feed.
func (l *Local) Publish(_ context.Context, symbol string, st *State, msgs []*Msg) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	t := l.topic(symbol)
	t.state = st
	for s := range t.subs {
		for _, m := range msgs {
			select {
			case s.ch <- m:
			default:
				s.end(ErrSlow)
				delete(t.subs, s)
			}
			if s.err != nil {
				break
			}
		}
	}
	return nil
}

// State implements Feed.
func (l *Local) State(_ context.Context, symbol string) (*State, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.topics[symbol]
	if t == nil || t.state == nil {
		return nil, ErrUnknown
	}
	return t.state, nil
}

// Subscribe implements Feed.
func (l *Local) Subscribe(_ context.Context, symbol string, buffer int) (Subscription, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	t := l.topics[symbol]
	if t == nil || t.state == nil {
		return nil, ErrUnknown
	}
	s := &localSub{l: l, symbol: symbol, snap: t.state, ch: make(chan *Msg, max(buffer, 1))}
	t.subs[s] = struct{}{}
	return s, nil
}

// Close ends every subscription.
func (l *Local) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for _, t := range l.topics {
		for s := range t.subs {
			s.end(ErrClosed)
		}
		clear(t.subs)
	}
	return nil
}

type localSub struct {
	l      *Local
	symbol string
	snap   *State
	ch     chan *Msg
	err    error // set under l.mu before ch is closed
}

func (s *localSub) end(err error) {
	if s.err == nil {
		s.err = err
		close(s.ch)
	}
}

func (s *localSub) Snapshot() *State { return s.snap }
func (s *localSub) C() <-chan *Msg   { return s.ch }

func (s *localSub) Err() error {
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	return s.err
}

func (s *localSub) Close() {
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	if t := s.l.topics[s.symbol]; t != nil {
		delete(t.subs, s)
	}
	s.end(context.Canceled)
}

// EncodeMsgs encodes messages as a sequence of length-delimited protobufs.
func EncodeMsgs(b []byte, msgs []*Msg) ([]byte, error) {
	for _, m := range msgs {
		p, err := proto.Marshal(m)
		if err != nil {
			return nil, err
		}
		b = protowire.AppendBytes(b, p)
	}
	return b, nil
}

// DecodeMsgs decodes EncodeMsgs' output.
func DecodeMsgs(b []byte) ([]*Msg, error) {
	var out []*Msg
	for len(b) > 0 {
		p, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, fmt.Errorf("mdfeed: malformed message list: %v", protowire.ParseError(n))
		}
		m := &Msg{}
		if err := proto.Unmarshal(p, m); err != nil {
			return nil, err
		}
		out = append(out, m)
		b = b[n:]
	}
	return out, nil
}

// EncodeState encodes a state as messages: the depth snapshot (carrying
// Seq), the ticker, then the recent trades.
func EncodeState(st *State) ([]byte, error) {
	msgs := []*Msg{{Sequence: st.Seq, Payload: &marketdatav1.StreamMarketDataResponse_Snapshot{Snapshot: st.Depth}}}
	if st.Ticker != nil {
		msgs = append(msgs, &Msg{Payload: &marketdatav1.StreamMarketDataResponse_Ticker{Ticker: st.Ticker}})
	}
	for _, t := range st.Trades {
		msgs = append(msgs, &Msg{Payload: &marketdatav1.StreamMarketDataResponse_Trade{Trade: t}})
	}
	return EncodeMsgs(nil, msgs)
}

// DecodeState decodes EncodeState's output.
func DecodeState(b []byte) (*State, error) {
	msgs, err := DecodeMsgs(b)
	if err != nil {
		return nil, err
	}
	if len(msgs) == 0 || msgs[0].GetSnapshot() == nil {
		return nil, errors.New("mdfeed: state without a snapshot")
	}
	st := &State{Seq: msgs[0].Sequence, Depth: msgs[0].GetSnapshot()}
	for _, m := range msgs[1:] {
		switch {
		case m.GetTicker() != nil:
			st.Ticker = m.GetTicker()
		case m.GetTrade() != nil:
			st.Trades = append(st.Trades, m.GetTrade())
		}
	}
	return st, nil
}
