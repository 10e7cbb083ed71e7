package matching

import (
	"strconv"
	"testing"

	"github.com/bcx-exchange/bcx/services/matching/core"
)

// snapshotBenchCore is a core the size of the one `bcx bench grpc` leaves:
// 400k resting orders and 2M client order ids of the day.
func snapshotBenchCore(tb testing.TB) *core.Core { return snapshotCore(tb, 2_000_000) }

// snapshotCore places n orders, a fifth of which stay resting.
func snapshotCore(tb testing.TB, n int) *core.Core {
	c, apply, res := benchCore(core.Limits{MaxOrdersPerBook: 1 << 20})
	for i := range n {
		side, price := core.Side(0), int64(1<<16-1-i%500)
		if i%2 == 1 {
			side, price = 1, int64(1<<16+1+i%500)
		}
		part := int64(1 + i%benchParticipants)
		cmd := core.Command{Kind: core.CmdPlace, Participant: part, Instrument: 1,
			ClientOrderID: "s" + strconv.Itoa(i), Side: side, Price: price, Qty: 1}
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

// TestSnapshotSizeHint: the hint the sequencer sizes snapshot buffers by
// is above what the encoding takes, and not far above.
func TestSnapshotSizeHint(t *testing.T) {
	c := snapshotCore(t, 100_000)
	head, tail := c.SnapshotParts(nil, nil)
	hh, ht := c.SnapshotSizeHint()
	t.Logf("head %d (hint %d), tail %d (hint %d)", len(head), hh, len(tail), ht)
	if len(head) > hh || len(tail) > ht || hh > 3*len(head) || ht > 3*len(tail) {
		t.Fatalf("snapshot head %d, tail %d bytes; hinted %d and %d: want above, within 3 times", len(head), len(tail), hh, ht)
	}
}

// BenchmarkSnapshot measures encoding a snapshot of a large core: "serial"
// is AppendSnapshot, what the snapshotter spends on its replica for a
// scheduled snapshot; "parts" the two halves on two goroutines
// (core.SnapshotParts), what an operator's snapshot costs the sequencer.
//
// A Freeze-style deep copy of the same core, for encoding elsewhere, was
// measured at 170-230 ms against 240-250 ms for the serial encoding: the
// copy is mostly pointerful memory, copied with write barriers, and
// garbage that the collector must then mark. So scheduled snapshots are
// taken off the sequencer by a replica kept current from the journal (see
// snapshotter), not by a copy.
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
	b.Run("parts", func(b *testing.B) {
		var head, tail []byte
		for b.Loop() {
			head, tail = c.SnapshotParts(head[:0], tail[:0])
		}
		b.ReportMetric(float64(len(head))/(1<<20), "head-MB")
		b.ReportMetric(float64(len(tail))/(1<<20), "tail-MB")
	})
}
