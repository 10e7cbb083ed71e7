package mdfeed

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Redis is the Feed for several processes: the publisher stores each
// instrument's state in a key and publishes its messages on a channel, in
// one MULTI/EXEC so that the key and the channel agree. A subscriber
// SUBSCRIBEs first and then reads the key: messages up to the state's
// sequence are skipped, later ones must follow on without a gap.
//
//	<prefix>state:<symbol>  the State (EncodeState)
//	<prefix>md:<symbol>     channel of message batches (EncodeMsgs)
type Redis struct {
	c      *redis.Client
	prefix string
}

// NewRedis returns a feed over a go-redis client; prefix namespaces keys
// and channels (e.g. "bcx:").
func NewRedis(c *redis.Client, prefix string) *Redis { return &Redis{c: c, prefix: prefix} }

func (r *Redis) stateKey(symbol string) string { return r.prefix + "state:" + symbol }
func (r *Redis) channel(symbol string) string  { return r.prefix + "md:" + symbol }

// Publish implements Feed.
func (r *Redis) Publish(ctx context.Context, symbol string, st *State, msgs []*Msg) error {
	state, err := EncodeState(st)
	if err != nil {
		return err
	}
	payload, err := EncodeMsgs(nil, msgs)
	if err != nil {
		return err
	}
	_, err = r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, r.stateKey(symbol), state, 0)
		if len(msgs) > 0 {
			p.Publish(ctx, r.channel(symbol), payload)
		}
		return nil
	})
	return err
}

// State implements Feed.
func (r *Redis) State(ctx context.Context, symbol string) (*State, error) {
	b, err := r.c.Get(ctx, r.stateKey(symbol)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrUnknown
	}
	if err != nil {
		return nil, err
	}
	return DecodeState(b)
}

// Subscribe implements Feed.
func (r *Redis) Subscribe(ctx context.Context, symbol string, buffer int) (Subscription, error) {
	ps := r.c.Subscribe(ctx, r.channel(symbol))
	// Wait for the confirmation: from here on every published batch reaches
	// us, so the state read next leaves no hole.
	if _, err := ps.Receive(ctx); err != nil {
		ps.Close()
		return nil, err
	}
	st, err := r.State(ctx, symbol)
	if err != nil {
		ps.Close()
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	s := &redisSub{ps: ps, snap: st, ch: make(chan *Msg, max(buffer, 1)), cancel: cancel}
	go s.run(rctx, st.Seq+1)
	return s, nil
}

// Close closes the client.
func (r *Redis) Close() error { return r.c.Close() }

type redisSub struct {
	ps     *redis.PubSub
	snap   *State
	ch     chan *Msg
	cancel context.CancelFunc

	mu  sync.Mutex
	err error
}

func (s *redisSub) run(ctx context.Context, next int64) {
	defer s.ps.Close()
	for {
		m, err := s.ps.ReceiveMessage(ctx)
		if err != nil {
			s.end(err)
			return
		}
		msgs, err := DecodeMsgs([]byte(m.Payload))
		if err != nil {
			s.end(err)
			return
		}
		for _, x := range msgs {
			switch {
			case x.Sequence < next:
				continue // covered by the snapshot
			case x.Sequence > next:
				s.end(fmt.Errorf("%w: expected %d, got %d", ErrGap, next, x.Sequence))
				return
			}
			select {
			case s.ch <- x:
				next++
			default:
				s.end(ErrSlow)
				return
			}
		}
	}
}

func (s *redisSub) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
		close(s.ch)
	}
}

func (s *redisSub) Snapshot() *State { return s.snap }
func (s *redisSub) C() <-chan *Msg   { return s.ch }

func (s *redisSub) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *redisSub) Close() { s.cancel() }
