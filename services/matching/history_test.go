package matching

import (
	"context"
	"fmt"
	"testing"

	"github.com/bcx-exchange/bcx/pkg/auth"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/matching/core"
)

// listAllExecutions pages through a member's executions with page size 3.
func listAllExecutions(t *testing.T, s *Service, member int64, symbol string) []*tradingv1.Execution {
	t.Helper()
	ctx := auth.WithPrincipal(context.Background(), auth.Principal{ParticipantID: fmt.Sprint("M-", member), Number: member, Role: typev1.Role_ROLE_MEMBER})
	var out []*tradingv1.Execution
	token := ""
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("paging does not end")
		}
		resp, err := (&tradingServer{s: s}).ListExecutions(ctx, &tradingv1.ListExecutionsRequest{Symbol: symbol, PageSize: 3, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Executions) > 3 {
			t.Fatalf("page of %d", len(resp.Executions))
		}
		out = append(out, resp.Executions...)
		if token = resp.NextPageToken; token == "" {
			return out
		}
	}
}

// TestExecutionHistory checks that ListExecutions pages through all of a
// member's executions of the day, that the history is rebuilt from the
// journal on restart (with a snapshot in between), and that an
// instrument's executions go at the end of its day.
func TestExecutionHistory(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DataDir: dir, NoSync: true}
	s, stop := startService(t, cfg)
	for _, cmd := range benchSetupCommands()[:7] { // the instrument and members 1 and 2
		mustCommand(t, s, cmd)
	}
	traded := 0
	trade := func(n int) {
		for range n {
			traded++
			cloid := fmt.Sprint("t", traded)
			if r := mustCommand(t, s, core.Command{Kind: core.CmdPlace, Participant: 1, Instrument: 1, ClientOrderID: "b" + cloid,
				Side: core.Side(0), TIF: 0, Price: 1 << 16, Qty: 1}); r.Status != core.StatusOK {
				t.Fatalf("buy refused: %+v", r)
			}
			if r := mustCommand(t, s, core.Command{Kind: core.CmdPlace, Participant: 2, Instrument: 1, ClientOrderID: "s" + cloid,
				Side: core.Side(1), TIF: 0, Price: 1 << 16, Qty: 1}); r.Status != core.StatusOK || len(r.Fills) != 1 {
				t.Fatalf("sell did not trade: %+v", r)
			}
		}
	}
	check := func(when string, want int) {
		t.Helper()
		for _, m := range []int64{1, 2} {
			got := listAllExecutions(t, s, m, "")
			if len(got) != want {
				t.Fatalf("%s: member %d has %d executions listed, want %d", when, m, len(got), want)
			}
			for i := 1; i < len(got); i++ {
				if got[i].TradeId <= got[i-1].TradeId {
					t.Fatalf("%s: executions out of order: %v", when, got)
				}
			}
			if len(got) > 0 && (got[0].Side == typev1.Side_SIDE_BUY) != (m == 1) {
				t.Fatalf("%s: member %d got the other side: %v", when, m, got[0])
			}
		}
		if got := listAllExecutions(t, s, 1, "BENCH"); len(got) != want {
			t.Fatalf("%s: %d executions in BENCH, want %d", when, len(got), want)
		}
	}
	trade(7)
	check("live", 7)
	if _, _, err := s.TakeSnapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	trade(2)
	check("after the snapshot", 9)
	stop()

	s, stop = startService(t, cfg)
	check("after a restart", 9)
	trade(1)
	check("after a restart and a trade", 10)
	mustCommand(t, s, core.Command{Kind: core.CmdSetPhase, Instrument: 1, Phase: core.PhaseClosed, PhaseSource: core.SourceOperator, EndOfDay: true})
	check("after the end of the day", 0)
	stop()
	s, _ = startService(t, cfg)
	check("after the end of the day and a restart", 0)
}
