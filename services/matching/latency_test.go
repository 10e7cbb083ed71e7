package matching

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bcx-exchange/bcx/services/matching/core"
)

// TestAnswerLatency checks that every command the sequencer answers, and
// no query, is timed from enqueue to answer, within the time the caller
// waited.
func TestAnswerLatency(t *testing.T) {
	s, stop := startService(t, Config{DataDir: t.TempDir(), NoSync: true})
	defer stop()
	ctx := context.Background()
	before := s.AnswerLatency()
	var longest time.Duration
	const n = 20
	for i := range n {
		start := time.Now()
		cmd := core.Command{Kind: core.CmdCreditFunds, Participant: 1, ParticipantID: "M-1",
			Key: fmt.Sprintf("lat-%d", i), Currency: "CNY", CurrencyExp: 2, Amount: 100}
		if i == n-1 {
			// A refused command is answered by the sequencer too.
			cmd.Kind, cmd.Amount = core.CmdDebitFunds, 1<<40
		}
		if _, err := s.command(ctx, cmd); err != nil {
			t.Fatal(err)
		}
		longest = max(longest, time.Since(start))
		if _, _, err := s.StateHash(ctx); err != nil { // a query: not timed
			t.Fatal(err)
		}
	}
	h := s.AnswerLatency().Sub(before)
	if h.Count() != n {
		t.Fatalf("%d answers timed, want %d", h.Count(), n)
	}
	if q := h.Quantile(1); q <= 0 || q > longest {
		t.Fatalf("longest timed answer %v, want in (0, %v]", q, longest)
	}
}
