package listing

import (
	"fmt"
	"time"

	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
)

// ExchangeTimeZone is where the exchange's trading day is defined.
const ExchangeTimeZone = "Asia/Shanghai"

// Schedule is a parsed, validated daily session schedule.
type Schedule struct {
	loc      *time.Location
	phases   []phase
	weekdays [8]bool // ISO: 1 = Monday ... 7 = Sunday
}

type phase struct {
	kind       listingv1.PhaseKind
	start, end int // minutes after local midnight; end exclusive
}

// ParseSchedule validates a schedule: a known time zone, at least one phase,
// each "HH:MM" start before its end, phases in time order and not overlapping,
// ISO weekdays without repeats. field prefixes the field names in errors.
func ParseSchedule(field string, s *listingv1.SessionSchedule) (*Schedule, error) {
	if s == nil {
		return nil, rpcerr.Invalid(field, "a session schedule is required")
	}
	tz := s.TimeZone
	if tz == "" {
		tz = ExchangeTimeZone
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, rpcerr.Invalid(field+".time_zone", "unknown time zone %q", s.TimeZone)
	}
	out := &Schedule{loc: loc}
	if len(s.Phases) == 0 {
		return nil, rpcerr.Invalid(field+".phases", "at least one phase is required")
	}
	for i, p := range s.Phases {
		f := fmt.Sprintf("%s.phases[%d]", field, i)
		if p.Kind != listingv1.PhaseKind_PHASE_KIND_CALL_AUCTION && p.Kind != listingv1.PhaseKind_PHASE_KIND_CONTINUOUS {
			return nil, rpcerr.Invalid(f+".kind", "must be PHASE_KIND_CALL_AUCTION or PHASE_KIND_CONTINUOUS")
		}
		start, err := parseClock(p.Start)
		if err != nil {
			return nil, rpcerr.Invalid(f+".start", "%v", err)
		}
		end, err := parseClock(p.End)
		if err != nil {
			return nil, rpcerr.Invalid(f+".end", "%v", err)
		}
		if start >= end {
			return nil, rpcerr.Invalid(f+".end", "phase ends at %s, not after its start %s", p.End, p.Start)
		}
		if i > 0 && start < out.phases[i-1].end {
			return nil, rpcerr.Invalid(f+".start", "phase starting %s overlaps the previous phase ending %s (phases must be in time order and not overlap)",
				p.Start, s.Phases[i-1].End)
		}
		out.phases = append(out.phases, phase{kind: p.Kind, start: start, end: end})
	}
	days := s.TradingWeekdays
	if len(days) == 0 {
		days = []int32{1, 2, 3, 4, 5}
	}
	for i, d := range days {
		if d < 1 || d > 7 {
			return nil, rpcerr.Invalid(fmt.Sprintf("%s.trading_weekdays[%d]", field, i), "weekday %d: want 1 (Monday) to 7 (Sunday)", d)
		}
		if out.weekdays[d] {
			return nil, rpcerr.Invalid(fmt.Sprintf("%s.trading_weekdays[%d]", field, i), "weekday %d listed twice", d)
		}
		out.weekdays[d] = true
	}
	return out, nil
}

func parseClock(s string) (int, error) {
	var h, m int
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Errorf("%q: want HH:MM", s)
	}
	if _, err := fmt.Sscanf(s, "%02d:%02d", &h, &m); err != nil || h > 23 || m > 59 || h < 0 || m < 0 {
		return 0, fmt.Errorf("%q: want HH:MM between 00:00 and 23:59", s)
	}
	return h*60 + m, nil
}

func isoWeekday(t time.Time) int {
	if d := int(t.Weekday()); d != 0 {
		return d
	}
	return 7
}

func (s *Schedule) at(day time.Time, minutes int) time.Time {
	return time.Date(day.Year(), day.Month(), day.Day(), minutes/60, minutes%60, 0, 0, s.loc)
}

// State is where a schedule is at one moment.
type State struct {
	// Phase is PHASE_KIND_UNSPECIFIED when closed (break, before the open,
	// after the close, or a non-trading day).
	Phase listingv1.PhaseKind
	// TradingDate is the local date, "YYYY-MM-DD".
	TradingDate string
	// PhaseEndsAt is when the current phase or the current closed stretch ends.
	PhaseEndsAt time.Time
	// NextSessionStartsAt is the first phase start of the next trading day
	// strictly after the moment (today's open if it has not come yet).
	NextSessionStartsAt time.Time
}

// At returns the schedule's state at t.
func (s *Schedule) At(t time.Time) State {
	local := t.In(s.loc)
	st := State{TradingDate: local.Format(time.DateOnly), NextSessionStartsAt: s.NextSessionStart(t)}
	if s.weekdays[isoWeekday(local)] {
		for _, p := range s.phases {
			start, end := s.at(local, p.start), s.at(local, p.end)
			if !t.Before(start) && t.Before(end) {
				st.Phase, st.PhaseEndsAt = p.kind, end
				return st
			}
			if t.Before(start) {
				st.PhaseEndsAt = start // closed until this phase
				return st
			}
		}
	}
	st.PhaseEndsAt = st.NextSessionStartsAt
	return st
}

// NextSessionStart is the opening (first phase start) of the first trading
// day whose opening is after t. Amendments take effect there.
func (s *Schedule) NextSessionStart(t time.Time) time.Time {
	local := t.In(s.loc)
	for i := 0; i < 8; i++ {
		day := local.AddDate(0, 0, i)
		if !s.weekdays[isoWeekday(day)] {
			continue
		}
		if open := s.at(day, s.phases[0].start); open.After(t) {
			return open
		}
	}
	// Unreachable for a validated schedule (at least one weekday trades).
	return local.AddDate(0, 0, 7)
}

// Close is the end of the last phase on t's local day.
func (s *Schedule) Close(t time.Time) time.Time {
	return s.at(t.In(s.loc), s.phases[len(s.phases)-1].end)
}
