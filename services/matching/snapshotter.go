package matching

import (
	"context"
	"fmt"
	"io"

	"github.com/bcx-exchange/bcx/services/matching/core"
)

// snapshotter writes the scheduled snapshots. With SnapshotsOnSequencer
// the sequencer has encoded their small parts and frozen the core's orders
// (core.SnapshotPartsDeferred, 10-17 ms for 400k resting orders), and the
// snapshotter encodes the bulk and writes them; with SnapshotsFromReplica
// it makes them itself, off the sequencer. Encoding a large core takes
// 200-250 ms (400k resting orders, 2M client order ids), too long to hold
// orders for. With a replica the snapshotter keeps a second *core.Core,
// built and brought forward exactly as recovery builds the live one
// (newest snapshot, then replay of the journal with the determinism
// check), and snapshots that: the sequencer only hands it a sequence
// number.
//
// The replica doubles the memory the core takes; that is accepted (the
// service runs on a 24 GiB machine). It also applies every command a
// second time, in bursts of SnapshotEvery records on another core: about
// half a core at a million commands a second. On a 2-core machine that
// competes with the sequencer (bench matching: ~20% less throughput on the
// project's VM); with a core to spare it is free, and the sequencer never
// stops for a scheduled snapshot.
//
// The snapshot store serializes its writes (SnapshotStore.Save holds its
// lock from the temp file to the pruning), so an operator's snapshot,
// written by TakeSnapshot's caller, and a scheduled one never interleave;
// at the same sequence number both are the same canonical bytes. Journal
// segments are deleted only below the oldest valid snapshot
// (Journal.DeleteSegmentsBefore, which the service does not call today);
// the replica stands at or past the last snapshot it wrote, and if
// on-demand snapshots ever pushed its records out, its replay fails with
// ErrCompacted and it is rebuilt from the newest snapshot on the next job.
type snapshotter struct {
	s       *Service
	replica *core.Core // nil before the first job and after a failed one
	buf     []byte     // the last encoding's buffer, reused
}

// snapshotLoop runs the snapshotter until ctx is done. The replica lives
// on this goroutine only.
func (s *Service) snapshotLoop(ctx context.Context) {
	// Logs of jobs still queued are then nobody's to encode: an end of day
	// the sequencer applies before it stops must not wait for them. Nor
	// should the order store go on copying pages for a queued job's frozen
	// view: it is released, and no job is handed over after (snapBusy
	// stays set).
	defer func() {
		s.snapBusy.Store(true)
		select {
		case job := <-s.snapCh:
			if job.rest != nil {
				job.rest.Release()
			}
		default:
		}
		close(s.snapExit)
	}()
	sn := &snapshotter{s: s}
	for {
		select {
		case job := <-s.snapCh:
			var err error
			if job.head != nil || job.rest != nil {
				// Encoded on the sequencer (SnapshotsOnSequencer), but for
				// its bulk, encoded first: the sequencer's next end of a
				// day waits for the logs.
				if job.rest != nil {
					job.head, job.tail = job.rest.Encode(job.head, job.tail, job.pre, job.tailPre)
				}
				if err = s.writeSnapshot(ctx, job); err == nil {
					s.snapWritten.Store(job.seq)
				}
				s.recycleSnapshot(job)
			} else {
				err = sn.snapshot(ctx, job.seq)
			}
			if err != nil && ctx.Err() == nil {
				s.log.Error("scheduled snapshot failed", "seq", job.seq, "error", err)
			}
			s.snapBusy.Store(false)
		case <-ctx.Done():
			return
		}
	}
}

// snapshot brings the replica to seq and writes its snapshot at seq. A
// replica whose replay fails is dropped (the next job rebuilds it), and
// nothing is written from it.
func (sn *snapshotter) snapshot(ctx context.Context, seq uint64) error {
	s := sn.s
	// The replica reads durable records only, and a snapshot must not be
	// ahead of the journal.
	if _, err := s.j.WaitDurable(ctx, seq); err != nil {
		return err
	}
	if sn.replica == nil {
		c, _, _, err := loadSnapshot(s.j, s.cfg.Limits)
		if err != nil {
			return err
		}
		sn.replica = c
	}
	if sn.replica.LastSeq() > seq {
		// Rebuilt from a newer (on-demand) snapshot: seq's adds nothing.
		return nil
	}
	if _, err := replay(ctx, sn.replica, s.j, seq); err != nil {
		sn.replica = nil
		return fmt.Errorf("replica dropped: %w", err)
	}
	if got := sn.replica.LastSeq(); got != seq {
		// Not reached (replay stops at upto exactly), but a replica
		// anywhere else is not seq's state: never write it as such.
		sn.replica = nil
		return fmt.Errorf("replica dropped: at %d after replaying to %d", got, seq)
	}
	// One goroutine (AppendSnapshot, not SnapshotParts): nothing waits for
	// the encoding, and the sequencer keeps the other core.
	sn.buf = sn.replica.AppendSnapshot(sn.buf[:0])
	if err := s.j.SaveSnapshot(seq, func(w io.Writer) error {
		_, err := w.Write(sn.buf)
		return err
	}); err != nil {
		return err
	}
	s.snapWritten.Store(seq)
	return nil
}
