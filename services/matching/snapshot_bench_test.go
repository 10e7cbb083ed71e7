package matching

import (
	"strconv"
	"testing"

	"github.com/bcx-exchange/bcx/services/matching/core"
)

// snapshotBenchCore is a core the size of the one `bcx bench grpc` leaves:
// 400k resting orders and 2M client order ids of the day.
func snapshotBenchCore(tb testing.TB) *core.Core {
	c, apply, res := benchCore(core.Limits{MaxOrdersPerBook: 1 << 20})
	for i := range 2_000_000 {
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
