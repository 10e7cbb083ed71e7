package listing

import (
	"testing"
	"time"

	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
)

func TestScheduleAt(t *testing.T) {
	sched, err := ParseSchedule("s", continuousDay(true)) // call 08:55-09:00; 09:00-10:15, 10:30-11:30, 13:30-15:00
	if err != nil {
		t.Fatal(err)
	}
	sh, _ := time.LoadLocation(ExchangeTimeZone)
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.ParseInLocation("2006-01-02 15:04", s, sh)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	const (
		call   = listingv1.PhaseKind_PHASE_KIND_CALL_AUCTION
		cont   = listingv1.PhaseKind_PHASE_KIND_CONTINUOUS
		closed = listingv1.PhaseKind_PHASE_KIND_UNSPECIFIED
	)
	// 2026-11-27 is a Friday.
	for _, tc := range []struct {
		now       string
		phase     listingv1.PhaseKind
		ends      string
		nextStart string
	}{
		{"2026-11-27 08:00", closed, "2026-11-27 08:55", "2026-11-27 08:55"},
		{"2026-11-27 08:55", call, "2026-11-27 09:00", "2026-11-30 08:55"},
		{"2026-11-27 09:00", cont, "2026-11-27 10:15", "2026-11-30 08:55"},
		{"2026-11-27 10:20", closed, "2026-11-27 10:30", "2026-11-30 08:55"}, // the morning break
		{"2026-11-27 14:59", cont, "2026-11-27 15:00", "2026-11-30 08:55"},
		{"2026-11-27 15:00", closed, "2026-11-30 08:55", "2026-11-30 08:55"}, // close is exclusive
		{"2026-11-28 10:00", closed, "2026-11-30 08:55", "2026-11-30 08:55"}, // Saturday
		{"2026-11-29 23:59", closed, "2026-11-30 08:55", "2026-11-30 08:55"},
	} {
		st := sched.At(at(tc.now))
		if st.Phase != tc.phase || !st.PhaseEndsAt.Equal(at(tc.ends)) || !st.NextSessionStartsAt.Equal(at(tc.nextStart)) {
			t.Errorf("At(%s) = %v ends %v next %v; want %v ends %s next %s", tc.now, st.Phase,
				st.PhaseEndsAt.In(sh), st.NextSessionStartsAt.In(sh), tc.phase, tc.ends, tc.nextStart)
		}
	}
	// The same instant seen from UTC gives the same answer.
	if st := sched.At(at("2026-11-27 09:30").UTC()); st.Phase != cont || st.TradingDate != "2026-11-27" {
		t.Errorf("UTC instant: %+v", st)
	}
	if got := sched.Close(at("2026-11-27 09:30")); !got.Equal(at("2026-11-27 15:00")) {
		t.Errorf("Close = %v", got)
	}
}
