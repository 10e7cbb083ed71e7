package matching

import (
	"bytes"
	"context"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/bcx-exchange/bcx/services/matching/core"
)

// waitSnapshotter waits until the snapshotter is done with the job it was
// handed, if any.
func waitSnapshotter(t *testing.T, s *Service) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.snapBusy.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the snapshotter is still busy after 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// latestSnapshot returns the store's newest snapshot, read whole.
func latestSnapshot(t *testing.T, s *Service) (uint64, []byte) {
	t.Helper()
	snap, _, err := s.j.LoadLatestSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	b, err := io.ReadAll(snap)
	if err != nil {
		t.Fatal(err)
	}
	return snap.Seq, b
}

// TestScheduledSnapshots: every SnapshotEvery records the snapshotter
// writes, encoded on the sequencer or from its replica, exactly the bytes
// the live core encodes at the sequence number handed over; an operator's
// snapshot in between changes nothing; and a restart recovers from the
// newest scheduled snapshot to the live core's state.
func TestScheduledSnapshots(t *testing.T) {
	for _, mode := range []SnapshotMode{SnapshotsOnSequencer, SnapshotsFromReplica} {
		t.Run(map[SnapshotMode]string{SnapshotsOnSequencer: "sequencer", SnapshotsFromReplica: "replica"}[mode], func(t *testing.T) {
			testScheduledSnapshots(t, mode)
		})
	}
}

func testScheduledSnapshots(t *testing.T, mode SnapshotMode) {
	const every = 50
	dir := t.TempDir()
	s, stop := startService(t, Config{DataDir: dir, SnapshotEvery: every, Snapshots: mode, NoSync: true})
	ctx := context.Background()
	seedMarket(t, s, 5) // fewer than every records
	// live is the live core's encoding after each command, by sequence
	// number (every command is a batch of its own here).
	live := map[uint64][]byte{}
	capture := func() {
		if err := s.query(ctx, func(c *core.Core) { live[c.LastSeq()] = c.AppendSnapshot(nil) }); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var trades, written int
	var last uint64
	// Sequencer mode: snapshots whose head or tail buffer was the one
	// before's.
	var lastBufs [2]*byte
	var reused int
	for i := range 600 {
		trades += len(mustCommand(t, s, randomOrderCommand(rng, 5, int64(i))).Fills)
		capture()
		if i == 300 {
			seq, hash, err := s.TakeSnapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			h := fnv.New64a()
			h.Write(live[seq])
			if hash != h.Sum64() {
				t.Fatalf("operator's snapshot at %d: hash %x, live core's %x", seq, hash, h.Sum64())
			}
		}
		// The job is handed in the batch of the command that reached
		// every records; waiting for it to finish makes the next hand
		// exactly every records later.
		waitSnapshotter(t, s)
		seq := s.snapWritten.Load()
		if seq == last {
			continue
		}
		if seq != last+every {
			t.Fatalf("scheduled snapshot at %d after %d, want every %d records", seq, last, every)
		}
		got, b := latestSnapshot(t, s)
		if got != seq {
			t.Fatalf("newest snapshot in the store is %d, the snapshotter wrote %d", got, seq)
		}
		if !bytes.Equal(b, live[seq]) {
			t.Fatalf("scheduled snapshot at %d (%d bytes) differs from the live core's encoding (%d bytes)", seq, len(b), len(live[seq]))
		}
		last = seq
		written++
		if mode == SnapshotsOnSequencer {
			// The written snapshot's buffers are back for the next one.
			select {
			case bufs := <-s.snapBufs:
				now := [2]*byte{unsafe.SliceData(bufs[0]), unsafe.SliceData(bufs[1])}
				if now[0] == lastBufs[0] || now[1] == lastBufs[1] {
					reused++
				}
				lastBufs = now
				s.snapBufs <- bufs
			default:
				t.Fatalf("snapshot %d's buffers were not given back", seq)
			}
		}
	}
	if trades == 0 || written < 5 {
		t.Fatalf("%d trades, %d scheduled snapshots: a weak test", trades, written)
	}
	// The sequencer stopped for each snapshot it encoded: the scheduled
	// ones in sequencer mode, and the operator's.
	wantStalls := uint64(1)
	if mode == SnapshotsOnSequencer {
		wantStalls += uint64(written)
	}
	if st := s.SnapshotStalls(); st.Count() != wantStalls || st.Max() <= 0 {
		t.Fatalf("%d sequencer stalls for snapshots (longest %v), want %d", st.Count(), st.Max(), wantStalls)
	}
	if mode == SnapshotsOnSequencer && reused < 2 {
		// The state grows, so a buffer is now and then outgrown.
		t.Fatalf("%d snapshots, %d encoded into the one before's buffers: not reused", written, reused)
	}
	wantHash, wantSeq, err := s.StateHash(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stop()

	s2, _ := startService(t, Config{DataDir: dir, NoSync: true})
	rec := s2.Recovery()
	h, seq, err := s2.StateHash(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rec.SnapshotSeq != last || rec.Replayed != wantSeq-last || seq != wantSeq || h != wantHash {
		t.Fatalf("recovered %+v at %d hash %x; want snapshot %d, state at %d hash %x", rec, seq, h, last, wantSeq, wantHash)
	}
}

// TestSnapshotterDropsFailedReplica: a journal record the replica does not
// reproduce is logged, writes no snapshot, and drops the replica; the next
// job rebuilds it from the newest snapshot.
func TestSnapshotterDropsFailedReplica(t *testing.T) {
	dir := t.TempDir()
	s, stop := startService(t, Config{DataDir: dir, NoSync: true})
	seedMarket(t, s, 2)
	stop()

	var logs bytes.Buffer
	s2, err := New(Config{DataDir: dir, NoSync: true, Snapshots: SnapshotsFromReplica, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	ctx := context.Background()
	sn := &snapshotter{s: s2}
	good := s2.j.DurableSeq()
	if err := sn.snapshot(ctx, good); err != nil {
		t.Fatal(err)
	}
	if seq, _ := latestSnapshot(t, s2); seq != good || sn.replica == nil || sn.replica.LastSeq() != good {
		t.Fatalf("after a job at %d: newest snapshot %d, replica %v", good, seq, sn.replica)
	}
	// A record whose events are not what its command produces (the live
	// core never saw it: the service is not running).
	cmd := core.Command{Kind: core.CmdCreditFunds, Participant: 1, ParticipantID: "M-1", Key: "forged", Currency: "CNY", CurrencyExp: 2, Amount: 5}
	// The event's payload index is 0: Details[0].
	ev := &core.Events{List: []core.Event{{Kind: core.EvFunds}},
		Details: []core.EventDetail{{Participant: 0, Currency: 0, Amount: 6, Key: "forged"}}}
	forged, err := s2.j.Append(1, time.Now().UnixNano(), core.AppendRecord(nil, &cmd, ev))
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.j.Sync(); err != nil {
		t.Fatal(err)
	}
	err = sn.snapshot(ctx, forged)
	if err == nil || !strings.Contains(err.Error(), "determinism broken") || sn.replica != nil {
		t.Fatalf("job over a forged record: %v, replica %v", err, sn.replica)
	}
	if seqs, err := s2.j.Snapshots().Seqs(); err != nil || len(seqs) != 1 || seqs[0] != good {
		t.Fatalf("snapshots %v (%v), want only %d", seqs, err, good)
	}

	// Through the loop, as the sequencer hands jobs: the failure is logged,
	// and the replica rebuilt from the snapshot at good fails the same way.
	loopCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s2.snapshotLoop(loopCtx); close(done) }()
	defer func() { cancel(); <-done }()
	s2.snapBusy.Store(true)
	s2.snapCh <- snapJob{seq: forged}
	waitSnapshotter(t, s2)
	if out := logs.String(); !strings.Contains(out, "scheduled snapshot failed") || !strings.Contains(out, "determinism broken") {
		t.Fatalf("log: %q", out)
	}
	if seqs, _ := s2.j.Snapshots().Seqs(); len(seqs) != 1 || s2.snapWritten.Load() != good {
		t.Fatalf("snapshots %v, last written %d: a failed replica wrote one", seqs, s2.snapWritten.Load())
	}
}

// TestReplayUpTo: replay stops at the record asked for, continues from
// there, and reports a record asked for that is not durable.
func TestReplayUpTo(t *testing.T) {
	dir := t.TempDir()
	s, _ := startService(t, Config{DataDir: dir, NoSync: true})
	seedMarket(t, s, 3)
	ctx := context.Background()
	want, end, err := s.StateHash(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := core.New(core.Limits{})
	if n, err := replay(ctx, c, s.j, 4); n != 4 || err != nil || c.LastSeq() != 4 {
		t.Fatalf("replay to 4: %d records, %v, core at %d", n, err, c.LastSeq())
	}
	if n, err := replay(ctx, c, s.j, 2); n != 0 || err != nil || c.LastSeq() != 4 {
		t.Fatalf("replay to 2 from 4: %d records, %v, core at %d", n, err, c.LastSeq())
	}
	if n, err := replay(ctx, c, s.j, 0); n != end-4 || err != nil || c.StateHash() != want {
		t.Fatalf("replay to the end: %d records, %v, hash %x want %x", n, err, c.StateHash(), want)
	}
	if _, err := replay(ctx, c, s.j, end+1); err == nil || !strings.Contains(err.Error(), "not durable") {
		t.Fatalf("replay past the durable end: %v", err)
	}
}
