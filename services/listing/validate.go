package listing

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/shopspring/decimal"

	"github.com/bcx-exchange/bcx/pkg/money"
	"github.com/bcx-exchange/bcx/pkg/orderbook"
	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
)

// Codes (commodity, warehouse, symbol, participant id): upper-case letters,
// digits and '-', starting with a letter or digit, at most 32 characters.
var codePattern = regexp.MustCompile(`^[A-Z0-9][A-Z0-9-]{0,31}$`)

func validCode(field, v string) error {
	if !codePattern.MatchString(v) {
		return rpcerr.Invalid(field, "%q: want 1-32 of A-Z, 0-9 and '-', starting with a letter or digit", v)
	}
	return nil
}

func required(field, v string) error {
	if v == "" {
		return rpcerr.Invalid(field, "is required")
	}
	return nil
}

// positiveDecimal parses a decimal field that must be > 0.
func positiveDecimal(field, v string) (decimal.Decimal, error) {
	d, err := money.ParseDecimal(v)
	if err != nil {
		return d, rpcerr.Invalid(field, "%q is not a decimal number", v)
	}
	if !d.IsPositive() {
		return d, rpcerr.Invalid(field, "%s must be positive", v)
	}
	return d, nil
}

func validateCommodity(c *listingv1.Commodity) error {
	if c == nil {
		return rpcerr.Invalid("commodity", "is required")
	}
	if err := validCode("commodity.code", c.Code); err != nil {
		return err
	}
	if err := required("commodity.name", c.Name); err != nil {
		return err
	}
	if c.Unit != "t" {
		return rpcerr.Invalid("commodity.unit", "%q: only tonnes (\"t\") are supported", c.Unit)
	}
	if c.WeightScale < 0 || c.WeightScale > 6 {
		return rpcerr.Invalid("commodity.weight_scale", "%d: want 0 to 6 decimal places", c.WeightScale)
	}
	if len(c.Grades) == 0 {
		return rpcerr.Invalid("commodity.grades", "at least one grade is required")
	}
	for i, g := range c.Grades {
		if err := validCode(fmt.Sprintf("commodity.grades[%d]", i), g); err != nil {
			return err
		}
		if slices.Contains(c.Grades[:i], g) {
			return rpcerr.Invalid(fmt.Sprintf("commodity.grades[%d]", i), "grade %s listed twice", g)
		}
	}
	tol, err := money.ParseDecimal(c.DeliveryTolerance)
	if err != nil || tol.IsNegative() || tol.GreaterThanOrEqual(decimal.NewFromFloat(0.5)) {
		return rpcerr.Invalid("commodity.delivery_tolerance", "%q: want a fraction from 0 to below 0.5, e.g. \"0.02\"", c.DeliveryTolerance)
	}
	return nil
}

func validateWarehouse(w *listingv1.Warehouse) error {
	if w == nil {
		return rpcerr.Invalid("warehouse", "is required")
	}
	if err := validCode("warehouse.code", w.Code); err != nil {
		return err
	}
	if err := required("warehouse.name", w.Name); err != nil {
		return err
	}
	return required("warehouse.operator_participant_id", w.OperatorParticipantId)
}

// specLookup is what spec validation needs from the store.
type specLookup interface {
	GetCommodity(ctx context.Context, q Q, code string) (*listingv1.Commodity, error)
	GetWarehouse(ctx context.Context, q Q, code string) (*listingv1.Warehouse, error)
}

// Params are an instrument's numbers in the units the core uses.
type Params struct {
	Currency       money.Currency
	LotSize        decimal.Decimal // tonnes per lot
	Tick           decimal.Decimal // currency per tonne per tick
	ReferenceTicks int64
	BandTicks      int64 // half-width of the band in ticks, rounded down
	Schedule       *Schedule
}

// ValidateSpec checks an instrument definition against the commodity, the
// warehouses and the currency registry, and returns its parameters. Every
// failure is InvalidArgument naming the field under "spec.".
func ValidateSpec(ctx context.Context, q Q, look specLookup, currencies *money.Registry, spec *listingv1.InstrumentSpec) (*Params, error) {
	if spec == nil {
		return nil, rpcerr.Invalid("spec", "is required")
	}
	if err := required("spec.commodity", spec.Commodity); err != nil {
		return nil, err
	}
	commodity, err := look.GetCommodity(ctx, q, spec.Commodity)
	if errors.Is(err, ErrNotFound) {
		return nil, rpcerr.Invalid("spec.commodity", "unknown commodity %q", spec.Commodity)
	} else if err != nil {
		return nil, err
	}
	if len(spec.Grades) == 0 {
		return nil, rpcerr.Invalid("spec.grades", "at least one qualifying grade is required")
	}
	for i, g := range spec.Grades {
		if !slices.Contains(commodity.Grades, g) {
			return nil, rpcerr.Invalid(fmt.Sprintf("spec.grades[%d]", i), "grade %q is not a grade of %s (%v)", g, commodity.Code, commodity.Grades)
		}
		if slices.Contains(spec.Grades[:i], g) {
			return nil, rpcerr.Invalid(fmt.Sprintf("spec.grades[%d]", i), "grade %s listed twice", g)
		}
	}
	bonded := spec.CustomsStatus == typev1.CustomsStatus_CUSTOMS_STATUS_BONDED
	if spec.CustomsStatus == typev1.CustomsStatus_CUSTOMS_STATUS_UNSPECIFIED {
		return nil, rpcerr.Invalid("spec.customs_status", "must be CUSTOMS_STATUS_BONDED or CUSTOMS_STATUS_DUTY_PAID")
	}
	if len(spec.Warehouses) == 0 {
		return nil, rpcerr.Invalid("spec.warehouses", "at least one qualifying warehouse is required")
	}
	for i, code := range spec.Warehouses {
		f := fmt.Sprintf("spec.warehouses[%d]", i)
		w, err := look.GetWarehouse(ctx, q, code)
		if errors.Is(err, ErrNotFound) {
			return nil, rpcerr.Invalid(f, "unknown warehouse %q", code)
		} else if err != nil {
			return nil, err
		}
		if w.Bonded != bonded {
			return nil, rpcerr.Invalid(f, "warehouse %s is bonded=%v but the instrument is %s", code, w.Bonded, spec.CustomsStatus)
		}
		if slices.Contains(spec.Warehouses[:i], code) {
			return nil, rpcerr.Invalid(f, "warehouse %s listed twice", code)
		}
	}
	cur, err := currencies.Lookup(spec.QuoteCurrency)
	if err != nil {
		return nil, rpcerr.Invalid("spec.quote_currency", "unknown currency %q (known: %v)", spec.QuoteCurrency, currencies.Codes())
	}
	// Duty-paid goods settle in onshore renminbi; bonded goods in foreign
	// currency (DESIGN.md section 4).
	if !bonded && cur.Code != "CNY" {
		return nil, rpcerr.Invalid("spec.quote_currency", "a duty-paid instrument trades in CNY, not %s", cur.Code)
	}
	if bonded && (cur.Code == "CNY") {
		return nil, rpcerr.Invalid("spec.quote_currency", "a bonded instrument trades in foreign currency, not CNY")
	}
	if spec.Unit != commodity.Unit {
		return nil, rpcerr.Invalid("spec.unit", "%q: %s is quoted per %q", spec.Unit, commodity.Code, commodity.Unit)
	}
	lot, err := positiveDecimal("spec.lot_size", spec.LotSize)
	if err != nil {
		return nil, err
	}
	if _, err := money.Steps(lot, decimal.New(1, -commodity.WeightScale)); err != nil {
		return nil, rpcerr.Invalid("spec.lot_size", "%s has more decimal places than %s weights (%d)", spec.LotSize, commodity.Code, commodity.WeightScale)
	}
	tick, err := positiveDecimal("spec.price_tick", spec.PriceTick)
	if err != nil {
		return nil, err
	}
	// A tick must be a whole number of minor units, and so must the value of
	// one tick on one lot: then every price x quantity is exact in fen/cents.
	if _, err := money.Steps(tick, cur.MinorUnit()); err != nil {
		return nil, rpcerr.Invalid("spec.price_tick", "%s does not divide into %s minor units (%s)", spec.PriceTick, cur.Code, cur.MinorUnit())
	}
	if _, err := money.Steps(tick.Mul(lot), cur.MinorUnit()); err != nil {
		return nil, rpcerr.Invalid("spec.lot_size", "one tick on one lot (%s x %s) is not a whole number of %s minor units", spec.PriceTick, spec.LotSize, cur.Code)
	}
	ref, err := positiveDecimal("spec.reference_price", spec.ReferencePrice)
	if err != nil {
		return nil, err
	}
	refTicks, err := money.Steps(ref, tick)
	if errors.Is(err, money.ErrTooLarge) {
		return nil, rpcerr.Invalid("spec.reference_price", "%s is too large", spec.ReferencePrice)
	} else if err != nil {
		return nil, rpcerr.Invalid("spec.reference_price", "%s is not a multiple of the tick %s", spec.ReferencePrice, spec.PriceTick)
	}
	band, err := positiveDecimal("spec.price_band", spec.PriceBand)
	if err != nil {
		return nil, err
	}
	if band.GreaterThanOrEqual(decimal.NewFromInt(1)) {
		return nil, rpcerr.Invalid("spec.price_band", "%s: want a fraction below 1, e.g. \"0.04\" for ±4%%", spec.PriceBand)
	}
	// The band is reference x fraction, rounded down to whole ticks so that a
	// price at the band's edge is always on the tick grid and inside the band.
	bandTicks := ref.Mul(band).Div(tick).Floor().IntPart()
	if bandTicks < 1 {
		return nil, rpcerr.Invalid("spec.price_band", "%s of %s is less than one tick (%s): only the reference price could trade", spec.PriceBand, spec.ReferencePrice, spec.PriceTick)
	}
	if bandTicks > orderbook.MaxBandTicks/2 {
		return nil, rpcerr.Invalid("spec.price_band", "%s of %s is %d ticks each side; the order book holds at most %d ticks in all", spec.PriceBand, spec.ReferencePrice, bandTicks, orderbook.MaxBandTicks)
	}
	if len(spec.Modes) == 0 {
		return nil, rpcerr.Invalid("spec.modes", "at least one trading mode is required")
	}
	for i, m := range spec.Modes {
		if m == typev1.TradingMode_TRADING_MODE_UNSPECIFIED || typev1.TradingMode_name[int32(m)] == "" {
			return nil, rpcerr.Invalid(fmt.Sprintf("spec.modes[%d]", i), "unknown trading mode %d", m)
		}
		if slices.Contains(spec.Modes[:i], m) {
			return nil, rpcerr.Invalid(fmt.Sprintf("spec.modes[%d]", i), "mode %s listed twice", m)
		}
	}
	sched, err := ParseSchedule("spec.schedule", spec.Schedule)
	if err != nil {
		return nil, err
	}
	for i, p := range sched.phases {
		if p.kind == listingv1.PhaseKind_PHASE_KIND_CALL_AUCTION && !slices.Contains(spec.Modes, typev1.TradingMode_TRADING_MODE_CALL_AUCTION) {
			return nil, rpcerr.Invalid(fmt.Sprintf("spec.schedule.phases[%d].kind", i), "a call auction phase needs TRADING_MODE_CALL_AUCTION in spec.modes")
		}
	}
	switch spec.SettlementCycle {
	case listingv1.SettlementCycle_SETTLEMENT_CYCLE_T0_GROSS, listingv1.SettlementCycle_SETTLEMENT_CYCLE_T1_NET:
	default:
		return nil, rpcerr.Invalid("spec.settlement_cycle", "must be SETTLEMENT_CYCLE_T0_GROSS or SETTLEMENT_CYCLE_T1_NET")
	}
	return &Params{Currency: cur, LotSize: lot, Tick: tick, ReferenceTicks: refTicks, BandTicks: bandTicks, Schedule: sched}, nil
}

// normalizeSpec fills defaults so that what is stored is what is in effect.
func normalizeSpec(spec *listingv1.InstrumentSpec) {
	if spec == nil {
		return
	}
	if spec.Schedule != nil && spec.Schedule.TimeZone == "" {
		spec.Schedule.TimeZone = ExchangeTimeZone
	}
	if spec.Schedule != nil && len(spec.Schedule.TradingWeekdays) == 0 {
		spec.Schedule.TradingWeekdays = []int32{1, 2, 3, 4, 5}
	}
	if spec.SettlementCycle == listingv1.SettlementCycle_SETTLEMENT_CYCLE_UNSPECIFIED {
		spec.SettlementCycle = listingv1.SettlementCycle_SETTLEMENT_CYCLE_T0_GROSS
	}
	if spec.Unit == "" {
		spec.Unit = "t"
	}
}
