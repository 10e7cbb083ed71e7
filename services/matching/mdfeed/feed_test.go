package mdfeed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	marketdatav1 "github.com/bcx-exchange/bcx/proto/bcx/marketdata/v1"
)

func level(seq int64, price string) *Msg {
	return &Msg{Sequence: seq, Payload: &marketdatav1.StreamMarketDataResponse_Level{Level: &marketdatav1.LevelUpdate{
		Level: &marketdatav1.PriceLevel{Quantity: price}}}}
}

func state(seq int64) *State {
	return &State{Seq: seq, Depth: &marketdatav1.Depth{Symbol: "X", Sequence: seq}, Ticker: &marketdatav1.Ticker{Symbol: "X", Sequence: seq}}
}

// feedContract runs the same checks against every implementation.
func feedContract(t *testing.T, f Feed) {
	ctx := context.Background()
	sym := fmt.Sprint("SYM-", time.Now().UnixNano())
	if _, err := f.State(ctx, sym); !errors.Is(err, ErrUnknown) {
		t.Fatalf("state of an unknown instrument: %v", err)
	}
	if err := f.Publish(ctx, sym, state(10), nil); err != nil {
		t.Fatal(err)
	}
	sub, err := f.Subscribe(ctx, sym, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if sub.Snapshot().Seq != 10 || sub.Snapshot().Depth.Sequence != 10 {
		t.Fatalf("snapshot %+v", sub.Snapshot())
	}
	// Messages after the snapshot arrive in order.
	for seq := int64(11); seq <= 13; seq++ {
		if err := f.Publish(ctx, sym, state(seq), []*Msg{level(seq, fmt.Sprint(seq))}); err != nil {
			t.Fatal(err)
		}
	}
	for want := int64(11); want <= 13; want++ {
		select {
		case m := <-sub.C():
			if m.Sequence != want {
				t.Fatalf("got seq %d, want %d", m.Sequence, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no message %d", want)
		}
	}
	if st, err := f.State(ctx, sym); err != nil || st.Seq != 13 {
		t.Fatalf("state %+v, %v", st, err)
	}
	// A subscriber that does not read is cut off, and publishing goes on.
	slow, err := f.Subscribe(ctx, sym, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	for seq := int64(14); seq <= 30; seq++ {
		if err := f.Publish(ctx, sym, state(seq), []*Msg{level(seq, "")}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-slow.C():
			if !ok {
				if !errors.Is(slow.Err(), ErrSlow) {
					t.Fatalf("slow subscriber ended with %v", slow.Err())
				}
				return
			}
		case <-deadline:
			t.Fatal("slow subscriber was not cut off")
		}
		time.Sleep(50 * time.Millisecond) // read slower than the publisher writes
	}
}

func TestLocal(t *testing.T) { feedContract(t, NewLocal()) }

func TestRedis(t *testing.T) {
	url := os.Getenv("BCX_TEST_REDIS_URL")
	if url == "" {
		t.Skip("BCX_TEST_REDIS_URL is not set; skipping the Redis feed test")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	f := NewRedis(redis.NewClient(opts), fmt.Sprint("bcxtest:", os.Getpid(), ":"))
	defer f.Close()
	feedContract(t, f)

	// A gap (a batch lost in transit) ends the subscription.
	ctx := context.Background()
	sym := "GAP"
	if err := f.Publish(ctx, sym, state(1), nil); err != nil {
		t.Fatal(err)
	}
	sub, err := f.Subscribe(ctx, sym, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := f.Publish(ctx, sym, state(3), []*Msg{level(3, "")}); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-sub.C():
		if ok || !errors.Is(sub.Err(), ErrGap) {
			t.Fatalf("after a gap: ok %v err %v", ok, sub.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("gap not detected")
	}
}

func TestStateRoundTrip(t *testing.T) {
	st := state(42)
	st.Trades = []*marketdatav1.Trade{{TradeId: 1}, {TradeId: 2}}
	b, err := EncodeState(st)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeState(b)
	if err != nil || got.Seq != 42 || len(got.Trades) != 2 || got.Trades[1].TradeId != 2 || got.Ticker.Sequence != 42 {
		t.Fatalf("%+v %v", got, err)
	}
}
