package journal

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/bcx-exchange/bcx/pkg/journal/crashtest"
)

const roleWriter = "journal-writer"

// runWriterChild appends batches forever and reports each sequence number once it is
// durable. It is the child side of TestKill9; it never returns.
func runWriterChild() {
	dir, async := os.Getenv("JOURNAL_DIR"), os.Getenv("JOURNAL_ASYNC") == "1"
	j, err := Open(dir, Options{SegmentSize: 64 << 10})
	if err != nil {
		crashtest.Fatal("open: %v", err)
	}
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(time.Now().UnixNano())))
	reported := make(chan uint64, 1)
	if async {
		// Acknowledge from another goroutine, as the matching service will.
		go func() {
			for target := range reported {
				d, err := j.WaitDurable(context.Background(), target)
				if err != nil {
					crashtest.Fatal("wait: %v", err)
				}
				crashtest.Report(strconv.FormatUint(d, 10))
			}
		}()
	}
	for {
		for k := 1 + rng.IntN(400); k > 0; k-- {
			s := j.NextSeq()
			if _, err := j.Append(kindFor(s), tsFor(s), payloadFor(s)); err != nil {
				crashtest.Fatal("append: %v", err)
			}
		}
		if async {
			target, err := j.SyncAsync()
			if err != nil {
				crashtest.Fatal("sync: %v", err)
			}
			reported <- target
			continue
		}
		if err := j.Sync(); err != nil {
			crashtest.Fatal("sync: %v", err)
		}
		crashtest.Report(strconv.FormatUint(j.DurableSeq(), 10))
	}
}

// TestKill9 kills a writing child process with SIGKILL at random moments and checks
// that every sequence number it reported as durable survived, and that the journal
// recovers consistent: contiguous, checksummed, every record exactly as written.
func TestKill9(t *testing.T) {
	if crashtest.Role() == roleWriter {
		runWriterChild()
		return
	}
	if testing.Short() {
		t.Skip("starts child processes")
	}
	for _, mode := range []string{"sync", "async"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
			var acked uint64
			for round := range 4 {
				env := []string{"JOURNAL_DIR=" + dir, "JOURNAL_ASYNC=0"}
				if mode == "async" {
					env[1] = "JOURNAL_ASYNC=1"
				}
				c := crashtest.Start(t, roleWriter, env...)
				c.WaitReports(1+rng.IntN(40), 20*time.Second)
				time.Sleep(time.Duration(rng.IntN(20_000)) * time.Microsecond)
				reports := c.Kill()
				for _, line := range reports {
					seq, err := strconv.ParseUint(line, 10, 64)
					if err != nil {
						t.Fatalf("bad report %q", line)
					}
					if seq < acked {
						t.Fatalf("child reported %d after %d", seq, acked)
					}
					acked = seq
				}
				j, err := Open(dir, Options{SegmentSize: 64 << 10})
				if err != nil {
					t.Fatalf("round %d: Open after kill: %v", round, err)
				}
				rec := j.Recovery()
				t.Logf("round %d: %d reports, last acked %d, recovered %d records in %d segments, cut %d bytes",
					round, len(reports), acked, rec.LastSeq, rec.Segments, rec.TruncatedBytes)
				if rec.LastSeq < acked {
					t.Fatalf("round %d: recovered up to %d, but %d was acknowledged", round, rec.LastSeq, acked)
				}
				verifyRange(t, j, 1, rec.LastSeq)
				if err := j.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
