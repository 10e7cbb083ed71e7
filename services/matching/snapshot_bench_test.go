package matching

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/bcx-exchange/bcx/services/matching/core"
)

// snapshotBenchCore is a core the size of the one `bcx bench grpc` leaves:
// 400k resting orders and 2M client order ids of the day.
func snapshotBenchCore(tb testing.TB) *core.Core { return snapshotCore(tb, 2_000_000, false) }

// snapshotCore places n orders, a fifth of which stay resting. realistic
// stamps them with nanosecond times of 2026 and gives them 36-character
// client order ids (UUIDs), the longest encodings the core sees in use;
// else the times are sequence numbers and the ids short.
func snapshotCore(tb testing.TB, n int, realistic bool) *core.Core {
	c, apply, res := benchCore(core.Limits{MaxOrdersPerBook: 1 << 20})
	if realistic {
		seq := c.LastSeq()
		apply = func(cmd *core.Command) {
			seq++
			c.Apply(seq, 1_790_000_000_000_000_000+int64(seq)*1000, cmd, res)
			if !res.Changed {
				seq--
			}
		}
	}
	for i := range n {
		side, price := core.Side(0), int64(1<<16-1-i%500)
		if i%2 == 1 {
			side, price = 1, int64(1<<16+1+i%500)
		}
		part := int64(1 + i%benchParticipants)
		cloid := "s" + strconv.Itoa(i)
		if realistic {
			cloid = fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", i*2654435761%(1<<32), i%65536, i%4096, i%4093, i*40503)
		}
		cmd := core.Command{Kind: core.CmdPlace, Participant: part, Instrument: 1,
			ClientOrderID: cloid, Side: side, Price: price, Qty: 1}
		apply(&cmd)
		if res.Status != core.StatusOK {
			tb.Fatalf("order %d refused: %+v", i, res)
		}
		if i%5 != 0 {
			cmd = core.Command{Kind: core.CmdCancel, Participant: part, OrderID: res.Order.ID}
			apply(&cmd)
		}
	}
	return c
}

// TestSnapshotSizeHint: the hint the sequencer sizes a scheduled
// snapshot's buffers by is above what the encoding takes, and within 4
// times it, for short ids and small times as for UUIDs and nanosecond
// times.
func TestSnapshotSizeHint(t *testing.T) {
	for _, realistic := range []bool{false, true} {
		c := snapshotCore(t, 100_000, realistic)
		pre, tailPre, rest := c.SnapshotPartsDeferred(nil, nil, nil)
		head, tail := rest.Encode(nil, nil, pre, tailPre)
		hh, ht := c.SnapshotSizeHint()
		t.Logf("realistic %v: head %d (hint %d), tail %d (hint %d)", realistic, len(head), hh, len(tail), ht)
		if len(head) > hh || len(tail) > ht || hh > 4*len(head) || ht > 4*len(tail) {
			t.Fatalf("realistic %v: snapshot head %d, tail %d bytes; hinted %d and %d: want above, within 4 times",
				realistic, len(head), len(tail), hh, ht)
		}
	}
}

// BenchmarkSnapshot measures encoding a snapshot of a large core: "serial"
// is AppendSnapshot, what the snapshotter spends on its replica for a
// scheduled snapshot; "parts" the two halves on two goroutines
// (core.SnapshotParts), what an operator's snapshot costs the sequencer;
// "deferred-stop" what a scheduled one made on the sequencer stops it for
// (core.SnapshotPartsDeferred, the bulk left to the snapshotter).
//
// A Freeze-style deep copy of the same core, for encoding elsewhere, was
// measured at 170-230 ms against 240-250 ms for the serial encoding: the
// copy is mostly pointerful memory, copied with write barriers, and
// garbage that the collector must then mark. So the orders are frozen
// instead and copied a page at a time as the sequencer touches them
// (core.SnapshotPartsDeferred), or the snapshot is made from a replica
// kept current from the journal (see snapshotter).
func BenchmarkSnapshot(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 2M-order core")
	}
	c := snapshotBenchCore(b)
	b.Run("serial", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf = c.AppendSnapshot(buf[:0])
		}
		b.ReportMetric(float64(len(buf))/(1<<20), "MB")
	})
	b.Run("deferred-stop", func(b *testing.B) {
		// What a scheduled snapshot stops the sequencer for; the rest is
		// encoded after (SnapshotRest.Encode), here not at all.
		var pre, tailPre []byte
		for b.Loop() {
			var rest *core.SnapshotRest
			pre, tailPre, rest = c.SnapshotPartsDeferred(pre[:0], tailPre[:0], nil)
			rest.Release()
		}
	})
	b.Run("parts", func(b *testing.B) {
		var head, tail []byte
		for b.Loop() {
			head, tail = c.SnapshotParts(head[:0], tail[:0])
		}
		b.ReportMetric(float64(len(head))/(1<<20), "head-MB")
		b.ReportMetric(float64(len(tail))/(1<<20), "tail-MB")
	})
}
