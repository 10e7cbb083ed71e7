package core

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bcx-exchange/bcx/pkg/orderbook"
)

// TestSnapshotPartsDeferred: a snapshot's logs, encoded on another
// goroutine while the core goes on (ends of days included, which wait for
// them), are what they were when the snapshot was taken. Under -race it
// also checks that the encoding reads nothing the core writes meanwhile.
func TestSnapshotPartsDeferred(t *testing.T) {
	for seed := range 4 {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		h := newHarness(t)
		h.setup()
		for range 1500 {
			h.do(randomCommand(rng, h))
		}
		want := h.c.AppendSnapshot(nil)
		head, tail, logs := h.c.SnapshotPartsDeferred(nil, nil, nil)
		got := make(chan []byte, 1)
		go func() {
			time.Sleep(time.Millisecond) // let the core move on first
			got <- logs.Append(tail)
		}()
		days := 0
		for range 1500 {
			cmd := randomCommand(rng, h)
			if r := h.do(cmd); r.Changed && cmd.EndOfDay {
				days++
			}
		}
		if full := append(head, <-got...); !bytes.Equal(full, want) {
			t.Fatalf("seed %d: deferred snapshot (%d bytes) differs from the core's encoding when taken (%d bytes)", seed, len(full), len(want))
		}
		if bytes.Equal(want, h.c.AppendSnapshot(nil)) {
			t.Fatalf("seed %d: the core did not change after the snapshot: a weak test", seed)
		}
		t.Logf("seed %d: %d ends of day while the logs were pending or after", seed, days)
	}
}

// TestDayEndWaitsForSnapshotLogs: ending a day forgets client order ids,
// writing the log a pending snapshot still reads: it waits for the
// snapshot's logs to be encoded or released.
func TestDayEndWaitsForSnapshotLogs(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.credit(alpha, "CNY", 1e12)
	h.ok(limit(alpha, "gone", orderbook.Buy, 3000, 1))
	h.ok(Command{Kind: CmdCancel, Participant: alpha, OrigClientOrderID: "gone"})
	_, _, logs := h.c.SnapshotPartsDeferred(nil, nil, nil)

	done := make(chan Result)
	go func() {
		var res Result
		h.c.Apply(h.seq+1, int64(h.seq+1)*1000, &Command{Kind: CmdSetPhase, Instrument: cotton, Phase: PhaseClosed, EndOfDay: true}, &res)
		done <- res
	}()
	select {
	case <-done:
		t.Fatal("the day ended while a snapshot's logs were still to be encoded")
	case <-time.After(50 * time.Millisecond):
	}
	logs.Release()
	select {
	case res := <-done:
		if !res.Changed {
			t.Fatalf("end of day: %+v", res)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the day did not end once the logs were released")
	}
	if _, ok := h.c.cloids.get(cloidKey{alpha, "gone"}); ok {
		t.Fatal("the finished order's id outlived the day")
	}
	logs.Release() // idempotent

	// Logs whose encoder has stopped (abandon closed) hold nothing up.
	h.seq++
	h.ok(Command{Kind: CmdSetPhase, Instrument: cotton, Phase: PhaseContinuous})
	h.ok(limit(alpha, "gone2", orderbook.Buy, 3000, 1))
	h.ok(Command{Kind: CmdCancel, Participant: alpha, OrigClientOrderID: "gone2"})
	abandon := make(chan struct{})
	h.c.SnapshotPartsDeferred(nil, nil, abandon)
	close(abandon)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		var res Result
		h.c.Apply(h.seq+1, int64(h.seq+1)*1000, &Command{Kind: CmdSetPhase, Instrument: cotton, Phase: PhaseClosed, EndOfDay: true}, &res)
	}()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the day waited for abandoned logs")
	}
}

// TestSnapshotLogsAcrossPages: the id log grows past its last page (and
// the key log past its capacity) while a snapshot's logs are encoded.
func TestSnapshotLogsAcrossPages(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.credit(alpha, "CNY", 1e12)
	order := func(i int) {
		id := fmt.Sprint("p", i)
		h.ok(limit(alpha, id, orderbook.Buy, 3000, 1))
		h.ok(Command{Kind: CmdCancel, Participant: alpha, OrigClientOrderID: id})
	}
	for i := range 1<<pageBits - 1 {
		order(i)
	}
	if n := h.c.cloids.log.len(); n != 1<<pageBits-1 {
		t.Fatalf("%d ids in the log, want %d", n, 1<<pageBits-1)
	}
	want := h.c.AppendSnapshot(nil)
	head, tail, logs := h.c.SnapshotPartsDeferred(nil, nil, nil)
	got := make(chan []byte, 1)
	go func() {
		time.Sleep(time.Millisecond)
		got <- logs.Append(tail)
	}()
	for i := range 9000 {
		order(1<<pageBits + i)
		if i%10 == 0 {
			h.credit(alpha, "CNY", 100)
		}
	}
	if full := append(head, <-got...); !bytes.Equal(full, want) {
		t.Fatalf("deferred snapshot (%d bytes) differs from the encoding when taken (%d bytes)", len(full), len(want))
	}
	if len(h.c.cloids.log.pages) < 3 {
		t.Fatalf("the log has %d pages: it did not grow past the snapshot's", len(h.c.cloids.log.pages))
	}
}
