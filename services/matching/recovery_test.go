package matching

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/bcx-exchange/bcx/pkg/journal"
	"github.com/bcx-exchange/bcx/pkg/orderbook"
	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	"github.com/bcx-exchange/bcx/services/matching/core"
)

// testDef is a cotton-like instrument: 5 t lots, tick 5.00 CNY, reference
// 15,000, band 120 ticks.
func testDef() core.InstrumentDef {
	return core.InstrumentDef{Number: 1, Symbol: "CF", Version: 1, Currency: "CNY", CurrencyExp: 2, LotMicro: 5_000_000,
		TickMinor: 500, TickLotMinor: 2500, ReferenceTicks: 3000, BandTicks: 120, CallAuction: true, Continuous: true}
}

// startService runs a service on dir until the test ends or stop is called.
func startService(t *testing.T, cfg Config) (*Service, func()) {
	t.Helper()
	if cfg.ScheduleTick == 0 {
		cfg.ScheduleTick = -1
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}
	t.Cleanup(stop)
	return s, stop
}

func mustCommand(t testing.TB, s *Service, cmd core.Command) core.Result {
	t.Helper()
	res, err := s.command(context.Background(), cmd)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// seedMarket defines the test instrument, opens it, and funds n
// participants (numbers 1..n) with money and a receipt each.
func seedMarket(t testing.TB, s *Service, n int) {
	t.Helper()
	ctx := context.Background()
	if err := s.DefineInstrument(ctx, testDef()); err != nil {
		t.Fatal(err)
	}
	mustCommand(t, s, core.Command{Kind: core.CmdSetPhase, Instrument: 1, Phase: core.PhaseContinuous, PhaseSource: core.SourceOperator})
	for p := int64(1); p <= int64(n); p++ {
		id := fmt.Sprint("M-", p)
		mustCommand(t, s, core.Command{Kind: core.CmdCreditFunds, Participant: p, ParticipantID: id, Key: "fund/" + id,
			Currency: "CNY", CurrencyExp: 2, Amount: 1e13})
		mustCommand(t, s, core.Command{Kind: core.CmdCreditPosition, Participant: p, ParticipantID: id, Key: "rc/" + id,
			Receipt: "WR-" + id, Symbols: []int64{1}, WeightMicro: 1e15})
	}
}

func randomOrderCommand(rng *rand.Rand, n int, nextID int64) core.Command {
	p := 1 + rng.Int64N(int64(n))
	switch k := rng.IntN(10); {
	case k < 6:
		return core.Command{Kind: core.CmdPlace, Participant: p, Instrument: 1, ClientOrderID: fmt.Sprint("c", rng.Uint64()),
			Side: core.Side(rng.IntN(2)), TIF: core.TIF(rng.IntN(3)), Price: 2990 + rng.Int64N(21), Qty: 1 + rng.Int64N(9)}
	case k < 8:
		return core.Command{Kind: core.CmdCancel, Participant: p, OrderID: 1 + rng.Int64N(max(nextID, 1))}
	default:
		return core.Command{Kind: core.CmdReplace, Participant: p, OrderID: 1 + rng.Int64N(max(nextID, 1)),
			Price: 2990 + rng.Int64N(21), Qty: 1 + rng.Int64N(9), OpenQty: true}
	}
}

// TestReplayDeterminism runs commands through the service with real fsyncs
// and a snapshot in the middle, then recovers twice: from the snapshot plus
// the journal tail, and (snapshots removed) from the whole journal. Both
// must reach the state hash the running service had.
func TestReplayDeterminism(t *testing.T) {
	dir := t.TempDir()
	s, stop := startService(t, Config{DataDir: dir, SegmentSize: 256 << 10})
	seedMarket(t, s, 5)
	rng := rand.New(rand.NewPCG(1, 2))
	var trades int
	ctx := context.Background()
	for i := range 4000 {
		res := mustCommand(t, s, randomOrderCommand(rng, 5, int64(i)))
		trades += len(res.Fills)
		if i == 2000 {
			if _, _, err := s.TakeSnapshot(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if trades == 0 {
		t.Fatal("no trades: a weak test")
	}
	wantHash, wantSeq, err := s.StateHash(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stop()

	s2, stop2 := startService(t, Config{DataDir: dir})
	rec := s2.Recovery()
	if h, _, _ := s2.StateHash(ctx); rec.SnapshotSeq == 0 || rec.Replayed == 0 || h != wantHash || rec.LastSeq != wantSeq {
		t.Fatalf("snapshot + tail: %+v hash %x, want hash %x at %d", rec, h, wantHash, wantSeq)
	}
	stop2()

	if err := os.RemoveAll(filepath.Join(dir, "journal", "snapshots")); err != nil {
		t.Fatal(err)
	}
	s3, stop3 := startService(t, Config{DataDir: dir})
	rec = s3.Recovery()
	if h, _, _ := s3.StateHash(ctx); rec.SnapshotSeq != 0 || rec.Replayed != wantSeq || h != wantHash {
		t.Fatalf("full replay: %+v hash %x, want hash %x at %d", rec, h, wantHash, wantSeq)
	}
	// And the recovered service keeps working from there.
	mustCommand(t, s3, core.Command{Kind: core.CmdPlace, Participant: 1, Instrument: 1, ClientOrderID: "after",
		Side: orderbook.Buy, Price: 3000, Qty: 1})
	stop3()
}

// TestReplayDetectsDivergence: a journal record whose events do not match
// what the command produces stops recovery.
func TestReplayDetectsDivergence(t *testing.T) {
	dir := t.TempDir()
	s, stop := startService(t, Config{DataDir: dir, NoSync: true})
	seedMarket(t, s, 1)
	stop()
	// Append a record claiming a credit of one amount with another's event.
	s2, err := New(Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	cmd := core.Command{Kind: core.CmdCreditFunds, Participant: 1, ParticipantID: "M-1", Key: "forged", Currency: "CNY", CurrencyExp: 2, Amount: 5}
	// The event's payload index is 0: Details[0].
	ev := &core.Events{List: []core.Event{{Kind: core.EvFunds}},
		Details: []core.EventDetail{{Participant: 0, Currency: 0, Amount: 6, Key: "forged"}}}
	if _, err := s2.j.Append(1, time.Now().UnixNano(), core.AppendRecord(nil, &cmd, ev)); err != nil {
		t.Fatal(err)
	}
	if err := s2.j.Sync(); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if _, err := New(Config{DataDir: dir}); err == nil {
		t.Fatal("recovery accepted a record its command does not reproduce")
	}
}

// TestWriterFailure: a record the journal refuses (here one over its size
// limit) stops the service: that command and everything after it are
// answered Unavailable, Run reports the error, and a restart recovers the
// journal. Unavailable means the outcome is unknown: records before the
// refused one in its batch may still be durable. Here the refused command
// is alone in its batch, so the state is exactly as before it.
func TestWriterFailure(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Config{DataDir: dir, NoSync: true, ScheduleTick: -1})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	seedMarket(t, s, 2)
	want, wantSeq, err := s.StateHash(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	unavailable := func(err error) bool {
		var re *rpcerr.Error
		return errors.As(err, &re) && re.Code == codes.Unavailable
	}
	huge := core.Command{Kind: core.CmdCreditFunds, Participant: 1, ParticipantID: "M-1", Key: strings.Repeat("k", 17<<20),
		Currency: "CNY", CurrencyExp: 2, Amount: 1}
	if _, err := s.command(context.Background(), huge); !unavailable(err) {
		t.Fatalf("the refused record's command: %v, want Unavailable", err)
	}
	if _, err := s.command(context.Background(), core.Command{Kind: core.CmdCreditFunds, Participant: 2, ParticipantID: "M-2",
		Key: "after", Currency: "CNY", CurrencyExp: 2, Amount: 1}); !unavailable(err) {
		t.Fatalf("a command after the failure: %v, want Unavailable", err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "too large") {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
	s.Close()

	s2, stop := startService(t, Config{DataDir: dir, NoSync: true})
	defer stop()
	h, seq, err := s2.StateHash(context.Background())
	if err != nil || h != want || seq != wantSeq {
		t.Fatalf("after restart: %x at %d (%v), want %x at %d", h, seq, err, want, wantSeq)
	}
}

// TestWriterFailureAnswersMatchDurability hands the writer one-command
// batches back to back, the last failing the writer's sequence check, and
// checks after a restart that exactly the commands answered OK are in the
// journal: a batch appended behind the fsync in flight when the writer
// fails is answered Unavailable and must never become durable (it did:
// Close synced it), and a batch whose fsync completed is answered OK.
// Small commands arrive within microseconds of each other, so the failure
// usually finds one batch in flight and others appended; the test insists
// that it did at least once.
func TestWriterFailureAnswersMatchDurability(t *testing.T) {
	caughtAppended := false
	for round := range 20 {
		s, err := New(Config{DataDir: t.TempDir(), ScheduleTick: -1})
		if err != nil {
			t.Fatal(err)
		}
		q := s.seq
		q.startWriter()
		var reqs []*request
		for i := range 3 + round%3 {
			r := getRequest()
			r.cmd = core.Command{Kind: core.CmdCreditFunds, Participant: 1, ParticipantID: "M-1", Key: fmt.Sprintf("ok-%d", i),
				Currency: "CNY", CurrencyExp: 2, Amount: 1}
			reqs = append(reqs, r)
		}
		for i, r := range reqs {
			b, err := q.freeBatch()
			if err != nil {
				break // the writer stopped: r is never handed
			}
			b.reqs = append(b.reqs, r)
			q.applyBatch(b)
			if !r.res.Changed {
				t.Fatalf("round %d: command not applied: %+v", round, r.res)
			}
			if i == len(reqs)-1 {
				r.seq += 100 // the writer refuses a record under a number the journal would not give it
			}
			if err := q.hand(b); err != nil {
				r.err = errUnavailable(err)
				r.done <- struct{}{}
			}
		}
		close(q.out)
		<-q.wExit
		jdir := s.j.Dir()
		s.Close()

		j, err := journal.Open(jdir, journal.Options{})
		if err != nil {
			t.Fatal(err)
		}
		last := j.Recovery().LastSeq
		j.Close()
		for i, r := range reqs {
			if r.seq == 0 {
				continue // never handed
			}
			select {
			case <-r.done:
			case <-time.After(10 * time.Second):
				t.Fatalf("round %d: command %d never answered", round, i)
			}
			durable := r.seq <= last
			if durable != (r.err == nil) {
				t.Fatalf("round %d: command %d (seq %d): answered %v, durable %v (journal ends at %d)",
					round, i, r.seq, r.err, durable, last)
			}
			if r.err != nil && i < len(reqs)-1 {
				caughtAppended = true
			}
		}
		if r := reqs[len(reqs)-1]; r.err == nil {
			t.Fatalf("round %d: the refused record's command was answered OK", round)
		}
	}
	if !caughtAppended {
		t.Fatal("no round failed with a good batch not yet durable: the test proved nothing")
	}
}
