package core

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bcx-exchange/bcx/pkg/orderbook"
)

// TestSnapshotPartsDeferred: a snapshot's rest, encoded on another
// goroutine while the core goes on through random commands (ends of days
// included, which wait for the logs), is what it was when the snapshot was
// taken. Under -race it also checks that the encoding reads nothing the
// core writes meanwhile. (This core has few orders: a page or two;
// TestDeferredBooksCopyOnWrite has many.)
func TestSnapshotPartsDeferred(t *testing.T) {
	for seed := range 4 {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		h := newHarness(t)
		h.setup()
		for range 1500 {
			h.do(randomCommand(rng, h))
		}
		want := h.c.AppendSnapshot(nil)
		pre, tail, rest := h.c.SnapshotPartsDeferred(nil, nil, nil)
		got := make(chan []byte, 1)
		go func() {
			time.Sleep(time.Millisecond) // let the core move on first
			head, tail := rest.Encode(nil, nil, pre, tail)
			got <- append(head, tail...)
		}()
		days := 0
		for range 1500 {
			cmd := randomCommand(rng, h)
			if r := h.do(cmd); r.Changed && cmd.EndOfDay {
				days++
			}
		}
		if full := <-got; !bytes.Equal(full, want) {
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
	pre, tail, rest := h.c.SnapshotPartsDeferred(nil, nil, nil)
	got := make(chan []byte, 1)
	go func() {
		time.Sleep(time.Millisecond)
		head, tail := rest.Encode(nil, nil, pre, tail)
		got <- append(head, tail...)
	}()
	for i := range 9000 {
		order(1<<pageBits + i)
		if i%10 == 0 {
			h.credit(alpha, "CNY", 100)
		}
	}
	if full := <-got; !bytes.Equal(full, want) {
		t.Fatalf("deferred snapshot (%d bytes) differs from the encoding when taken (%d bytes)", len(full), len(want))
	}
	if len(h.c.cloids.log.pages) < 3 {
		t.Fatalf("the log has %d pages: it did not grow past the snapshot's", len(h.c.cloids.log.pages))
	}
}

// bookHarness is a core with 800 resting buys and 11 resting sells over
// more than 10 order pages, and mutate, which fills, cancels and replaces
// them, reusing their slots.
func bookHarness(t *testing.T) (h *harness, mutate func(n int)) {
	h = newHarness(t)
	h.setup()
	h.credit(alpha, "CNY", 1e12)
	h.credit(gamma, "CNY", 1e12)
	for i := range 80 {
		h.deposit(beta, fmt.Sprint("R", i), 5_000_000, cotton) // a lot each
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 400 {
		h.ok(limit(alpha, fmt.Sprint("a", i), orderbook.Buy, 2900+rng.Int64N(90), 1+rng.Int64N(3)))
		h.ok(limit(gamma, fmt.Sprint("g", i), orderbook.Buy, 2900+rng.Int64N(90), 1+rng.Int64N(3)))
	}
	for i := range 10 {
		// Three lots from three receipts: reservations beyond the first
		// (order.wn), changed in place by fills.
		h.ok(limit(beta, fmt.Sprint("s", i), orderbook.Sell, 3050+int64(i), 3))
	}
	h.deposit(gamma, "K0", 5_000_000, cotton)
	h.ok(limit(gamma, "k", orderbook.Sell, 3100, 1)) // above every buy below
	if pages := len(h.c.orders.pages); pages < 10 {
		t.Fatalf("%d order pages: too few for the test", pages)
	}
	mutate = func(n int) {
		for range n {
			i := rng.IntN(400)
			switch k := rng.IntN(4); k {
			case 0: // cancel, and a new order in the slot
				if r := h.do(Command{Kind: CmdCancel, Participant: alpha, OrigClientOrderID: fmt.Sprint("a", i)}); r.Status == StatusOK {
					h.ok(limit(alpha, fmt.Sprint("a", i, "x", h.seq), orderbook.Buy, 2900+rng.Int64N(90), 1))
				}
			case 1:
				h.do(Command{Kind: CmdReplace, Participant: gamma, OrigClientOrderID: fmt.Sprint("g", i), Price: 2900 + rng.Int64N(90), Qty: 4})
			case 2: // a resting sell partly filled
				h.do(Command{Kind: CmdPlace, Participant: alpha, Instrument: cotton, ClientOrderID: fmt.Sprint("t", h.seq),
					Side: orderbook.Buy, TIF: orderbook.IOC, Price: 3059, Qty: 1})
			default: // a bid filled
				h.do(Command{Kind: CmdPlace, Participant: beta, Instrument: cotton, ClientOrderID: fmt.Sprint("h", h.seq),
					Side: orderbook.Sell, TIF: orderbook.IOC, Price: 2900, Qty: 1})
			}
		}
	}
	return h, mutate
}

// TestDeferredBooksCopyOnWrite: a snapshot's books, encoded while and after
// the core fills, cancels and replaces most of the orders they held, reuses
// their slots and changes sell reservations spread over several receipts,
// are what they were when the snapshot was taken; once it is encoded the
// core writes its pages in place again.
func TestDeferredBooksCopyOnWrite(t *testing.T) {
	h, mutate := bookHarness(t)
	// The first snapshot's copies are made into pages prepared ahead.
	h.c.PrepareDeferredSnapshot()
	for deadline := time.Now().Add(10 * time.Second); !h.c.orders.spares.Ready(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the pages for copies were never prepared")
		}
	}
	want := h.c.AppendSnapshot(nil)
	copies := h.c.orders.copies
	pre, tail, rest := h.c.SnapshotPartsDeferred(nil, nil, nil)
	prepared := len(h.c.orders.spare)
	if prepared < len(h.c.orders.pages) {
		t.Fatalf("%d pages prepared for copies, want %d", prepared, len(h.c.orders.pages))
	}

	mutate(300)
	got := make(chan []byte, 1)
	go func() {
		head, tail := rest.Encode(nil, nil, pre, tail)
		got <- append(head, tail...)
	}()
	mutate(300) // under -race: nothing the encoder reads is written
	if full := <-got; !bytes.Equal(full, want) {
		t.Fatalf("deferred snapshot (%d bytes) differs from the encoding when taken (%d bytes)", len(full), len(want))
	}
	copied := h.c.orders.copies - copies
	t.Logf("%d of %d order pages copied on write", copied, len(h.c.orders.pages))
	if used := prepared - len(h.c.orders.spare); int64(used) != copied {
		t.Fatalf("%d prepared pages used for %d copies", used, copied)
	}
	if copied < 5 {
		t.Fatalf("%d order pages copied on write: a weak test", copied)
	}
	if h.c.orders.readers.Load() != 0 {
		t.Fatalf("%d readers left after the encoding", h.c.orders.readers.Load())
	}
	copies = h.c.orders.copies
	mutate(300)
	if h.c.orders.copies != copies {
		t.Fatalf("%d pages copied with no snapshot reading them", h.c.orders.copies-copies)
	}

	// The next snapshot's copies are made into the pages the first one
	// read. Its encoder starts at once, and the core writes pages it has
	// not read yet; a receipt a frozen sell reserved from is withdrawn
	// meanwhile, and another takes its pool's slot.
	want = h.c.AppendSnapshot(nil)
	pre, tail, rest = h.c.SnapshotPartsDeferred(nil, nil, nil)
	if len(h.c.orders.spare) == 0 {
		t.Fatal("no spare pages after the first snapshot's copies")
	}
	spare := len(h.c.orders.spare)
	go func() {
		head, tail := rest.Encode(nil, nil, pre, tail)
		got <- append(head, tail...)
	}()
	k := h.c.poolByRc["K0"]
	h.ok(Command{Kind: CmdCancel, Participant: gamma, OrigClientOrderID: "k"})
	h.ok(Command{Kind: CmdDebitPosition, Participant: gamma, Key: "w/K0", Receipt: "K0"})
	h.deposit(gamma, "N0", 5_000_000, cotton)
	if s := h.c.poolByRc["N0"]; s != k {
		t.Fatalf("the new receipt is in pool %d, the withdrawn one's was %d", s, k)
	}
	mutate(600)
	if full := <-got; !bytes.Equal(full, want) {
		t.Fatalf("second deferred snapshot (%d bytes) differs from the encoding when taken (%d bytes)", len(full), len(want))
	}
	if len(h.c.orders.spare) >= spare {
		t.Fatalf("%d spare pages before, %d after copies: none reused", spare, len(h.c.orders.spare))
	}
}

// TestOverlappingDeferredSnapshots: a second snapshot frozen while the
// first is still unread: each reads what it was when taken, and pages
// copied away from under the first are not reused for the second's copies
// while the first may still read them.
func TestOverlappingDeferredSnapshots(t *testing.T) {
	h, mutate := bookHarness(t)
	type snap struct {
		want, pre, tail []byte
		rest            *SnapshotRest
	}
	take := func() snap {
		sn := snap{want: h.c.AppendSnapshot(nil)}
		sn.pre, sn.tail, sn.rest = h.c.SnapshotPartsDeferred(nil, nil, nil)
		return sn
	}
	check := func(name string, sn snap) {
		head, tail := sn.rest.Encode(nil, nil, sn.pre, sn.tail)
		if got := append(head, tail...); !bytes.Equal(got, sn.want) {
			t.Fatalf("%s snapshot (%d bytes) differs from the encoding when taken (%d bytes)", name, len(got), len(sn.want))
		}
	}
	first := take()
	mutate(300)
	second := take()
	mutate(300)
	check("second", second)
	mutate(300)
	third := take() // the first is still unread: nothing retired is reused
	mutate(300)
	check("first", first)
	check("third", third)
	if n := h.c.orders.readers.Load(); n != 0 {
		t.Fatalf("%d readers left", n)
	}
}
