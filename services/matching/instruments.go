package matching

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/shopspring/decimal"

	"github.com/bcx-exchange/bcx/pkg/money"
	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/listing"
	"github.com/bcx-exchange/bcx/services/matching/core"
)

// instSchedule is an instrument's session schedule as the scheduler uses
// it.
type instSchedule struct {
	number int64
	sched  *listing.Schedule
}

// DefFromListing converts a listing instrument into the core's definition.
// Decimals become integers exactly or not at all: the lot in micro-units,
// the tick in minor units, the band rounded down to whole ticks (as the
// listing service does).
func DefFromListing(inst *listingv1.Instrument, currencies *money.Registry) (core.InstrumentDef, *listing.Schedule, error) {
	spec := inst.GetSpec()
	if spec == nil {
		return core.InstrumentDef{}, nil, fmt.Errorf("instrument %s has no spec", inst.Symbol)
	}
	cur, err := currencies.Lookup(spec.QuoteCurrency)
	if err != nil {
		return core.InstrumentDef{}, nil, err
	}
	dec := func(field, s string) (decimal.Decimal, error) {
		d, err := money.ParseDecimal(s)
		if err != nil || !d.IsPositive() {
			return d, fmt.Errorf("%s %q: want a positive decimal", field, s)
		}
		return d, nil
	}
	lot, err := dec("lot_size", spec.LotSize)
	if err != nil {
		return core.InstrumentDef{}, nil, err
	}
	tick, err := dec("price_tick", spec.PriceTick)
	if err != nil {
		return core.InstrumentDef{}, nil, err
	}
	ref, err := dec("reference_price", spec.ReferencePrice)
	if err != nil {
		return core.InstrumentDef{}, nil, err
	}
	band, err := money.ParseDecimal(spec.PriceBand)
	if err != nil || band.IsNegative() || band.GreaterThanOrEqual(decimal.NewFromInt(1)) {
		return core.InstrumentDef{}, nil, fmt.Errorf("price_band %q: want a fraction below 1", spec.PriceBand)
	}
	lotMicro, err := money.Steps(lot, decimal.New(1, -6))
	if err != nil {
		return core.InstrumentDef{}, nil, fmt.Errorf("lot_size %s: %w", spec.LotSize, err)
	}
	tickMinor, err := money.Steps(tick, cur.MinorUnit())
	if err != nil {
		return core.InstrumentDef{}, nil, fmt.Errorf("price_tick %s: %w", spec.PriceTick, err)
	}
	tickLot, err := money.Steps(tick.Mul(lot), cur.MinorUnit())
	if err != nil {
		return core.InstrumentDef{}, nil, fmt.Errorf("tick x lot: %w", err)
	}
	refTicks, err := money.Steps(ref, tick)
	if err != nil {
		return core.InstrumentDef{}, nil, fmt.Errorf("reference_price %s: %w", spec.ReferencePrice, err)
	}
	sched, err := listing.ParseSchedule("schedule", spec.Schedule)
	if err != nil {
		return core.InstrumentDef{}, nil, err
	}
	return core.InstrumentDef{
		Number: inst.Number, Symbol: inst.Symbol, Version: inst.Version,
		Currency: cur.Code, CurrencyExp: cur.Exponent,
		LotMicro: lotMicro, TickMinor: tickMinor, TickLotMinor: tickLot,
		ReferenceTicks: refTicks, BandTicks: ref.Mul(band).Div(tick).Floor().IntPart(),
		CallAuction: slices.Contains(spec.Modes, typev1.TradingMode_TRADING_MODE_CALL_AUCTION),
		Continuous:  slices.Contains(spec.Modes, typev1.TradingMode_TRADING_MODE_CONTINUOUS),
		Listing:     slices.Contains(spec.Modes, typev1.TradingMode_TRADING_MODE_LISTING),
		OneSided:    slices.Contains(spec.Modes, typev1.TradingMode_TRADING_MODE_ONE_SIDED_AUCTION),
		Delisted:    inst.Status == listingv1.InstrumentStatus_INSTRUMENT_STATUS_DELISTED,
	}, sched, nil
}

func (s *Service) instrumentLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.InstrumentRefresh)
	defer t.Stop()
	for {
		if err := s.SyncInstruments(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("instrument sync failed; retrying", "error", err)
		} else if err == nil {
			if s.cfg.ScheduleTick > 0 {
				s.synced.Store(true)
				select {
				case s.schedKick <- struct{}{}:
				default:
				}
			} else {
				s.markReady()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SyncInstruments reads every instrument from the listing service and
// submits the new and amended ones to the core.
func (s *Service) SyncInstruments(ctx context.Context) error {
	var token string
	for {
		resp, err := s.cfg.Listing.ListInstruments(ctx, &listingv1.ListInstrumentsRequest{PageSize: 500, PageToken: token, IncludeDelisted: true})
		if err != nil {
			return err
		}
		for _, inst := range resp.Instruments {
			def, sched, err := DefFromListing(inst, s.cfg.Currencies)
			if err != nil {
				s.log.Warn("instrument skipped", "symbol", inst.Symbol, "error", err)
				continue
			}
			if err := s.DefineInstrument(ctx, def); err != nil {
				return fmt.Errorf("define %s: %w", inst.Symbol, err)
			}
			s.schedMu.Lock()
			s.schedules[def.Number] = &instSchedule{number: def.Number, sched: sched}
			s.commodityOf[def.Symbol] = inst.GetSpec().GetCommodity()
			s.schedMu.Unlock()
		}
		if resp.NextPageToken == "" {
			return nil
		}
		token = resp.NextPageToken
	}
}

// DefineInstrument submits a definition unless the core already has it
// (same or later version).
func (s *Service) DefineInstrument(ctx context.Context, def core.InstrumentDef) error {
	reg := s.registry()
	if i, ok := reg.byNumber[def.Number]; ok && reg.core.Defs[i].Version >= def.Version {
		return nil
	}
	res, err := s.command(ctx, core.Command{Kind: core.CmdDefineInstrument, Def: def})
	if err != nil {
		return err
	}
	return resultErr(&res)
}

// commodities maps symbols to their commodity codes, for the listing
// catalog's search.
func (s *Service) commodities() map[string]string {
	s.schedMu.Lock()
	defer s.schedMu.Unlock()
	return maps.Clone(s.commodityOf)
}

// SetSchedule sets (or with nil removes) the session schedule the scheduler
// drives an instrument by. The instrument sync sets it from the listing
// service; tests and tools may set it directly.
func (s *Service) SetSchedule(number int64, sched *listing.Schedule) {
	s.schedMu.Lock()
	defer s.schedMu.Unlock()
	if sched == nil {
		delete(s.schedules, number)
		return
	}
	s.schedules[number] = &instSchedule{number: number, sched: sched}
}

// scheduledPhase is what an instrument's schedule says at t: the phase and
// whether a close is the end of the trading day (not a break).
func scheduledPhase(sched *listing.Schedule, t time.Time) (core.Phase, bool) {
	st := sched.At(t)
	switch st.Phase {
	case listingv1.PhaseKind_PHASE_KIND_CALL_AUCTION:
		return core.PhasePreOpen, false
	case listingv1.PhaseKind_PHASE_KIND_CONTINUOUS:
		return core.PhaseContinuous, false
	}
	// Closed: a break if the next phase is later today (before the close
	// and not the next session's opening).
	brk := st.PhaseEndsAt.Before(sched.Close(t)) && !st.PhaseEndsAt.Equal(st.NextSessionStartsAt)
	return core.PhaseClosed, !brk
}

func (s *Service) scheduleLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.ScheduleTick)
	defer t.Stop()
	type target struct {
		phase core.Phase
		eod   bool
	}
	last := map[int64]target{}
	for {
		s.schedMu.Lock()
		scheds := make([]*instSchedule, 0, len(s.schedules))
		for _, sc := range s.schedules {
			scheds = append(scheds, sc)
		}
		s.schedMu.Unlock()
		slices.SortFunc(scheds, func(a, b *instSchedule) int { return int(a.number - b.number) })
		now := s.cfg.Clock()
		complete := s.synced.Load()
		for _, sc := range scheds {
			ph, eod := scheduledPhase(sc.sched, now)
			want := target{ph, eod}
			if prev, ok := last[sc.number]; ok && prev == want {
				continue
			}
			if _, ok := s.registry().byNumber[sc.number]; !ok {
				complete = false
				continue // not defined in the core yet
			}
			res, err := s.command(ctx, core.Command{Kind: core.CmdSetPhase, Instrument: sc.number, Phase: ph,
				PhaseSource: core.SourceSchedule, EndOfDay: eod})
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("scheduled phase change failed", "instrument", sc.number, "error", err)
				}
				complete = false
				continue
			}
			if res.Status != core.StatusOK {
				s.log.Warn("scheduled phase change refused", "instrument", sc.number, "phase", ph, "error", resultErr(&res))
			}
			last[sc.number] = want
		}
		if complete {
			s.markReady()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.schedKick:
		}
	}
}
