package matching

import (
	"testing"

	"github.com/bcx-exchange/bcx/services/matching/core"
)

// BenchmarkCoreApply measures the core alone on the standard workload, the
// way the sequencer applies it, without the journal's I/O: "apply" is
// Core.Apply, "apply+encode" adds the record encoding the journal would
// write. Run with -count and compare with benchstat; unlike `bcx bench
// matching` it has no fsync or batching in it, so it resolves small
// changes to the core.
func BenchmarkCoreApply(b *testing.B) {
	for _, encode := range []bool{false, true} {
		name := "apply"
		if encode {
			name = "apply+encode"
		}
		b.Run(name, func(b *testing.B) {
			c, apply, res := benchCore(core.Limits{MaxOrdersPerBook: 1 << 14})
			prefill, cmds, err := benchWorkload(1, int64(b.N), 1)
			if err != nil {
				b.Fatal(err)
			}
			var cmd core.Command
			for i := range prefill {
				prefill[i].fill(&cmd)
				apply(&cmd)
			}
			buf := make([]byte, 0, 4096)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range cmds {
				cmds[i].fill(&cmd)
				apply(&cmd)
				if encode && res.Changed {
					buf = core.AppendRecord(buf[:0], &cmd, c.Events())
				}
			}
		})
	}
}

// benchCore is a core with the bench instrument and members set up, and a
// function applying a command to it the way the sequencer does (the next
// sequence number if it changed state); res is each command's result.
func benchCore(lim core.Limits) (c *core.Core, apply func(cmd *core.Command), res *core.Result) {
	c = core.New(lim)
	res = &core.Result{}
	seq := uint64(0)
	apply = func(cmd *core.Command) {
		seq++
		c.Apply(seq, int64(seq), cmd, res)
		if !res.Changed {
			seq--
		}
	}
	setup := benchSetupCommands()
	for i := range setup {
		apply(&setup[i])
	}
	return c, apply, res
}
