package matching

import (
	"testing"

	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	"github.com/bcx-exchange/bcx/services/matching/core"
)

// Every core refusal that has a RejectReason must reach stream clients as
// that enum value, not as UNSPECIFIED.
func TestRejectReasonsReachTheStream(t *testing.T) {
	for r, want := range map[core.Reject]tradingv1.RejectReason{
		core.RejectInstrumentAmended: tradingv1.RejectReason_REJECT_REASON_INSTRUMENT_AMENDED,
		core.RejectNoChange:          tradingv1.RejectReason_REJECT_REASON_NO_CHANGE,
		core.RejectBookFull:          tradingv1.RejectReason_REJECT_REASON_BOOK_FULL,
	} {
		name := rejectName(r)
		if got := tradingv1.RejectReason(tradingv1.RejectReason_value[name]); got != want {
			t.Errorf("core reject %d renders as %q (%v), want %v", r, name, got, want)
		}
	}
}
