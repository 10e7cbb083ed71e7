package matching

import (
	"context"
	"time"

	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	"github.com/bcx-exchange/bcx/services/matching/core"
)

// SetFxRate publishes a rate to the core, which converts the orders of
// FX-funded members at the rate valid when each order entered.
func (c *coreServer) SetFxRate(ctx context.Context, req *tradingv1.SetFxRateRequest) (*tradingv1.SetFxRateResponse, error) {
	if req.RateId == "" {
		return nil, rpcerr.Invalid("rate_id", "is required")
	}
	base, err := c.s.cfg.Currencies.Lookup(req.BaseCurrency)
	if err != nil {
		return nil, rpcerr.InvalidReason("base_currency", "REJECT_REASON_WRONG_CURRENCY", "unknown currency %q", req.BaseCurrency)
	}
	quote, err := c.s.cfg.Currencies.Lookup(req.QuoteCurrency)
	if err != nil {
		return nil, rpcerr.InvalidReason("quote_currency", "REJECT_REASON_WRONG_CURRENCY", "unknown currency %q", req.QuoteCurrency)
	}
	if base.Code == quote.Code {
		return nil, rpcerr.Invalid("quote_currency", "is the base currency")
	}
	coef, exact, err := parseFixed(req.Rate, core.FXRateDecimals)
	if err != nil || !exact || coef <= 0 || coef > core.MaxFXRateCoef {
		return nil, rpcerr.Invalid("rate", "%q: want a positive decimal below 1,000,000 with at most %d fraction digits", req.Rate, core.FXRateDecimals)
	}
	if req.ValidFrom == nil || req.ValidUntil == nil || !unixNanoFits(req.ValidFrom.AsTime()) || !unixNanoFits(req.ValidUntil.AsTime()) {
		return nil, rpcerr.Invalid("valid_until", "valid_from and valid_until are required, between 1678 and 2261")
	}
	from, until := req.ValidFrom.AsTime().UnixNano(), req.ValidUntil.AsTime().UnixNano()
	if until <= from {
		return nil, rpcerr.Invalid("valid_until", "must be after valid_from")
	}
	res, err := c.run(ctx, core.Command{Kind: core.CmdSetFXRate, Key: req.RateId, Currency: base.Code, CurrencyExp: base.Exponent,
		CounterCurrency: quote.Code, CounterExp: quote.Exponent, Amount: coef, ValidFrom: from, ValidUntil: until, Version: req.RateNumber})
	if err != nil {
		return nil, err
	}
	return &tradingv1.SetFxRateResponse{Sequence: int64(res.Seq), Duplicate: res.Duplicate}, nil
}

// SetFundingCurrency records the currency a member's orders in
// trade_currency reserve and pay in from its next order on.
func (c *coreServer) SetFundingCurrency(ctx context.Context, req *tradingv1.SetFundingCurrencyRequest) (*tradingv1.SetFundingCurrencyResponse, error) {
	if err := requireKey(req.IdempotencyKey); err != nil {
		return nil, err
	}
	trade, err := c.s.cfg.Currencies.Lookup(req.TradeCurrency)
	if err != nil {
		return nil, rpcerr.InvalidReason("trade_currency", "REJECT_REASON_WRONG_CURRENCY", "unknown currency %q", req.TradeCurrency)
	}
	cmd := core.Command{Kind: core.CmdSetFunding, Key: req.IdempotencyKey, Currency: trade.Code, CurrencyExp: trade.Exponent, Version: req.Version}
	if req.FundingCurrency != "" {
		funding, err := c.s.cfg.Currencies.Lookup(req.FundingCurrency)
		if err != nil {
			return nil, rpcerr.InvalidReason("funding_currency", "REJECT_REASON_WRONG_CURRENCY", "unknown currency %q", req.FundingCurrency)
		}
		if funding.Code == trade.Code {
			return nil, rpcerr.Invalid("funding_currency", "is the trade currency")
		}
		cmd.CounterCurrency, cmd.CounterExp = funding.Code, funding.Exponent
	}
	if cmd.Participant, err = c.s.participantNumber(ctx, req.ParticipantId); err != nil {
		return nil, err
	}
	cmd.ParticipantID = req.ParticipantId
	res, err := c.run(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return &tradingv1.SetFundingCurrencyResponse{Sequence: int64(res.Seq), Duplicate: res.Duplicate}, nil
}

// unixNanoFits reports whether t is representable in int64 nanoseconds.
func unixNanoFits(t time.Time) bool { return t.Year() >= 1678 && t.Year() <= 2261 }

// fxConversion renders a trade side's FX leg, or nil when it has none. A
// leg the registry cannot render (which would be a bug) is rendered with
// rate_id "unknown" and no rate, so settlement parks the trade loudly
// instead of booking it unconverted.
func (r *registry) fxConversion(l core.FXLeg) *tradingv1.FxConversion {
	if l.Rate == 0 {
		return nil
	}
	if l.Rate < 0 || int(l.Rate) > len(r.core.FXRates) || l.Currency < 0 || int(l.Currency) >= len(r.core.Currencies) {
		return &tradingv1.FxConversion{RateId: "unknown"}
	}
	rate := &r.core.FXRates[l.Rate-1]
	return &tradingv1.FxConversion{Amount: moneyMinor(r.core.Currencies[l.Currency], r.core.CurrencyExps[l.Currency], l.Amount),
		RateId: rate.Key, BaseCurrency: rate.Base, QuoteCurrency: rate.Quote, Rate: formatFixed(rate.Coef, core.FXRateDecimals, true)}
}
