package settlement

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	"github.com/bcx-exchange/bcx/pkg/sqlstore"
	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/settlement/fees"
	"github.com/bcx-exchange/bcx/services/settlement/fx"
	"github.com/bcx-exchange/bcx/services/settlement/internal/bulk"
	"github.com/bcx-exchange/bcx/services/settlement/ledger"
)

var _ settlementv1.SettlementAdminServiceServer = (*adminServer)(nil)

// adminServer implements bcx.settlement.v1.SettlementAdminService.
type adminServer struct {
	settlementv1.UnimplementedSettlementAdminServiceServer
	s *Service
}

func scope(ctx context.Context, method string) (string, error) {
	p, err := auth.MustFromContext(ctx)
	if err != nil {
		return "", err
	}
	return "settlement." + method + "/" + p.ParticipantID, nil
}

// SetFeeSchedule stores an instrument's fees (per side: a rate of the
// trade's value or an amount per lot, with a minimum; package fees has the
// rounding rule) and forwards them to the core, which charges them on trades
// from then on. The forward goes through the outbox with the key
// "fee-schedule/<symbol>/<version>", so it reaches the core once, even
// across restarts.
func (a *adminServer) SetFeeSchedule(ctx context.Context, req *settlementv1.SetFeeScheduleRequest) (*settlementv1.SetFeeScheduleResponse, error) {
	s := a.s
	sc, err := scope(ctx, "SetFeeSchedule")
	if err != nil {
		return nil, err
	}
	sch := req.Schedule
	if sch == nil || sch.Symbol == "" {
		return nil, rpcerr.Invalid("schedule.symbol", "required")
	}
	in, err := s.ref.Instrument(ctx, sch.Symbol)
	if errors.Is(err, errUnknown) {
		return nil, rpcerr.NotFound("instrument", sch.Symbol)
	}
	if err != nil {
		return nil, err
	}
	cur, err := s.currency("schedule.symbol", in.Currency)
	if err != nil {
		return nil, err
	}
	for _, side := range []struct {
		name string
		rule *typev1.FeeRule
	}{{"buyer", sch.Buyer}, {"seller", sch.Seller}} {
		if _, field, err := fees.ParseRule(side.rule, cur); err != nil {
			if field == "" {
				field = "basis"
			}
			return nil, rpcerr.Invalid("schedule."+side.name+"."+field, "%v", err)
		}
	}
	var e effects
	resp, err := idempotent(ctx, s, sc, req.IdempotencyKey, req, func(q *sql.Tx) (*settlementv1.SetFeeScheduleResponse, error) {
		e = effects{}
		var version int64
		err := q.QueryRowContext(ctx, `SELECT version FROM stl_fee_schedules WHERE symbol = $1`, sch.Symbol).Scan(&version)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		version++
		body, err := proto.MarshalOptions{Deterministic: true}.Marshal(sch)
		if err != nil {
			return nil, err
		}
		now := s.now()
		if _, err := q.ExecContext(ctx, `INSERT INTO stl_fee_schedules (symbol, version, body, updated_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (symbol) DO UPDATE SET version = excluded.version, body = excluded.body, updated_at = excluded.updated_at`,
			sch.Symbol, version, body, now.UnixNano()); err != nil {
			return nil, err
		}
		key := "fee-schedule/" + sch.Symbol + "/" + strconv.FormatInt(version, 10)
		e.outbox = []outboxCmd{{Kind: outboxFeeSchedule, Key: key, Payload: &tradingv1.SetFeeScheduleRequest{IdempotencyKey: key,
			Symbol: sch.Symbol, Buyer: sch.Buyer, Seller: sch.Seller}}}
		if err := s.write(ctx, q, &e, now); err != nil {
			return nil, err
		}
		return &settlementv1.SetFeeScheduleResponse{Schedule: sch}, nil
	})
	if err != nil {
		return nil, err
	}
	s.afterCommit(&e)
	return resp, nil
}

func (a *adminServer) GetFeeSchedule(ctx context.Context, req *settlementv1.GetFeeScheduleRequest) (*settlementv1.GetFeeScheduleResponse, error) {
	s := a.s
	sch, err := inTx(ctx, s, func(q *sql.Tx) (*settlementv1.FeeSchedule, error) {
		var body []byte
		if err := q.QueryRowContext(ctx, `SELECT body FROM stl_fee_schedules WHERE symbol = $1`, req.Symbol).Scan(&body); err != nil {
			return nil, sqlstore.NoRows(err)
		}
		sch := &settlementv1.FeeSchedule{}
		return sch, proto.Unmarshal(body, sch)
	})
	if errors.Is(err, sqlstore.ErrNotFound) {
		return nil, rpcerr.NotFound("fee schedule", req.Symbol)
	}
	if err != nil {
		return nil, err
	}
	return &settlementv1.GetFeeScheduleResponse{Schedule: sch}, nil
}

// PublishFxRate records a rate for a currency pair and its validity window.
// Conversions use the rate valid at the trade's time; when windows overlap,
// the one that started latest wins. A bank publishing a rate is its source;
// an operator's rate is "operator".
func (a *adminServer) PublishFxRate(ctx context.Context, req *settlementv1.PublishFxRateRequest) (*settlementv1.PublishFxRateResponse, error) {
	s := a.s
	p, err := auth.MustFromContext(ctx)
	if err != nil {
		return nil, err
	}
	r := req.Rate
	if r == nil {
		return nil, rpcerr.Invalid("rate", "required")
	}
	if _, err := s.currency("rate.base_currency", r.BaseCurrency); err != nil {
		return nil, err
	}
	if _, err := s.currency("rate.quote_currency", r.QuoteCurrency); err != nil {
		return nil, err
	}
	if r.BaseCurrency == r.QuoteCurrency {
		return nil, rpcerr.Invalid("rate.quote_currency", "is the base currency")
	}
	rate, err := fx.ParseRate(r.Rate)
	if err != nil {
		return nil, rpcerr.Invalid("rate.rate", "%v", err)
	}
	if !rate.LessThan(fx.MaxRate) {
		return nil, rpcerr.Invalid("rate.rate", "must be below %s", fx.MaxRate)
	}
	if r.ValidFrom == nil || r.ValidFrom.CheckValid() != nil || !fx.TimeFits(r.ValidFrom.AsTime()) {
		return nil, rpcerr.Invalid("rate.valid_from", "required, between 1678 and 2261")
	}
	if r.ValidUntil == nil || r.ValidUntil.CheckValid() != nil || !fx.TimeFits(r.ValidUntil.AsTime()) || !r.ValidUntil.AsTime().After(r.ValidFrom.AsTime()) {
		return nil, rpcerr.Invalid("rate.valid_until", "required, after valid_from, before 2262")
	}
	out := proto.Clone(r).(*settlementv1.FxRate)
	out.Rate = rate.String()
	out.Source = "operator"
	if p.Role == typev1.Role_ROLE_CLEARING_BANK {
		out.Source = p.ParticipantID
	}
	sc, err := scope(ctx, "PublishFxRate")
	if err != nil {
		return nil, err
	}
	var e effects
	resp, err := idempotent(ctx, s, sc, req.IdempotencyKey, req, func(q *sql.Tx) (*settlementv1.PublishFxRateResponse, error) {
		e = effects{}
		id, now := s.store.rate.Add(1), s.now()
		_, err := q.ExecContext(ctx, `INSERT INTO stl_fx_rates (rate_id, base_currency, quote_currency, rate, valid_from, valid_until,
			source, published_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, id, out.BaseCurrency, out.QuoteCurrency,
			out.Rate, out.ValidFrom.AsTime().UnixNano(), out.ValidUntil.AsTime().UnixNano(), out.Source, now.UnixNano())
		if err != nil {
			return nil, err
		}
		// The core converts FX-funded orders itself, so it gets every rate
		// (once, by the rate's id).
		e.outbox = []outboxCmd{fxRateCmd(id, out)}
		if err := s.write(ctx, q, &e, now); err != nil {
			return nil, err
		}
		return &settlementv1.PublishFxRateResponse{Rate: out}, nil
	})
	if err != nil {
		return nil, err
	}
	s.afterCommit(&e)
	return resp, nil
}

// fxRateKey is a rate's id in the core (and in trade events' conversions).
func fxRateKey(id int64) string { return "fxrate/" + strconv.FormatInt(id, 10) }

// fxRateCmd forwards rate number id to the core.
func fxRateCmd(id int64, r *settlementv1.FxRate) outboxCmd {
	key := fxRateKey(id)
	return outboxCmd{Kind: outboxFxRate, Key: key, Payload: &tradingv1.SetFxRateRequest{RateId: key, RateNumber: id,
		BaseCurrency: r.BaseCurrency, QuoteCurrency: r.QuoteCurrency, Rate: r.Rate, ValidFrom: r.ValidFrom, ValidUntil: r.ValidUntil}}
}

// fundingCmd forwards version version of a member's funding preference.
func fundingCmd(member, trade, funding string, version int64) outboxCmd {
	key := "fxpref/" + member + "/" + trade + "/v" + strconv.FormatInt(version, 10)
	return outboxCmd{Kind: outboxFunding, Key: key, Payload: &tradingv1.SetFundingCurrencyRequest{IdempotencyKey: key,
		ParticipantId: member, TradeCurrency: trade, FundingCurrency: funding, Version: version}}
}

// forwardFX enqueues, once, every rate still valid and every funding
// preference for the core: it runs at start, so what was recorded before
// the core converted FX itself (or whose outbox row was lost) reaches it.
// The keys are the ones PublishFxRate and SetFxPreference use, so nothing
// is sent twice.
func (s *Service) forwardFX(ctx context.Context) error {
	var e effects
	now := s.now()
	err := s.db.InTx(ctx, func(q *sql.Tx) error {
		e = effects{}
		rows, err := q.QueryContext(ctx, `SELECT rate_id, base_currency, quote_currency, rate, valid_from, valid_until FROM stl_fx_rates
			WHERE valid_until > $1 ORDER BY rate_id`, now.UnixNano())
		if err != nil {
			return err
		}
		for rows.Next() {
			var id, from, until int64
			r := &settlementv1.FxRate{}
			if err := rows.Scan(&id, &r.BaseCurrency, &r.QuoteCurrency, &r.Rate, &from, &until); err != nil {
				rows.Close()
				return err
			}
			r.ValidFrom, r.ValidUntil = timestamppb.New(time.Unix(0, from)), timestamppb.New(time.Unix(0, until))
			e.outbox = append(e.outbox, fxRateCmd(id, r))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = q.QueryContext(ctx, `SELECT participant_id, trade_currency, funding_currency, version FROM stl_fx_preferences
			ORDER BY participant_id, trade_currency`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var m, t, f string
			var v int64
			if err := rows.Scan(&m, &t, &f, &v); err != nil {
				return err
			}
			e.outbox = append(e.outbox, fundingCmd(m, t, f, v))
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return s.write(ctx, q, &e, now)
	})
	if err == nil {
		s.afterCommit(&e)
	}
	return err
}

// ListFxRates returns, per currency pair, the rate conversions would use at
// a moment (default now).
func (a *adminServer) ListFxRates(ctx context.Context, req *settlementv1.ListFxRatesRequest) (*settlementv1.ListFxRatesResponse, error) {
	s := a.s
	at := s.now()
	if req.At != nil {
		if err := req.At.CheckValid(); err != nil {
			return nil, rpcerr.Invalid("at", "%v", err)
		}
		at = req.At.AsTime()
	}
	rates, err := inTx(ctx, s, func(q *sql.Tx) ([]*settlementv1.FxRate, error) {
		rows, err := q.QueryContext(ctx, `SELECT base_currency, quote_currency, rate, valid_from, valid_until, source FROM stl_fx_rates
			WHERE valid_from <= $1 AND valid_until > $1 ORDER BY base_currency, quote_currency, valid_from DESC, rate_id DESC`, at.UnixNano())
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []*settlementv1.FxRate
		for rows.Next() {
			var r settlementv1.FxRate
			var from, until int64
			if err := rows.Scan(&r.BaseCurrency, &r.QuoteCurrency, &r.Rate, &from, &until, &r.Source); err != nil {
				return nil, err
			}
			if n := len(out); n > 0 && out[n-1].BaseCurrency == r.BaseCurrency && out[n-1].QuoteCurrency == r.QuoteCurrency {
				continue // an older rate of the same pair
			}
			r.ValidFrom, r.ValidUntil = timestamppb.New(time.Unix(0, from)), timestamppb.New(time.Unix(0, until))
			out = append(out, &r)
		}
		return out, rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return &settlementv1.ListFxRatesResponse{Rates: rates}, nil
}

// RunSettlementCycle runs the T+1 batch for a business date: every T+1
// trade of that date (or an earlier one not yet settled) is settled at once,
// netted per member and currency — each member's pending settlement balance
// from those trades moves to its available funds in one line per currency —
// and the net cash each clearing bank's members gained or lost becomes
// interbank transfer instructions between the exchange's accounts. Running it
// again settles only trades booked since.
func (a *adminServer) RunSettlementCycle(ctx context.Context, req *settlementv1.RunSettlementCycleRequest) (*settlementv1.RunSettlementCycleResponse, error) {
	s := a.s
	if _, err := parseDate("business_date", req.BusinessDate); err != nil {
		return nil, err
	}
	sc, err := scope(ctx, "RunSettlementCycle")
	if err != nil {
		return nil, err
	}
	var e effects
	resp, err := idempotent(ctx, s, sc, req.IdempotencyKey, req, func(q *sql.Tx) (*settlementv1.RunSettlementCycleResponse, error) {
		var (
			settled int
			err     error
		)
		e, settled, err = s.runCycle(ctx, q, req.BusinessDate)
		if err != nil {
			return nil, err
		}
		return &settlementv1.RunSettlementCycleResponse{TradesSettled: int64(settled), InstructionsCreated: int64(len(e.instructions))}, nil
	})
	if err != nil {
		return nil, err
	}
	s.afterCommit(&e)
	return resp, nil
}

type netKey struct{ member, currency string }

func (s *Service) runCycle(ctx context.Context, q *sql.Tx, date string) (effects, int, error) {
	var e effects
	// cycle = 2 (T1_NET) is written out so the partial index applies.
	rows, err := q.QueryContext(ctx, `SELECT trade_id, legs FROM stl_trades WHERE cycle = 2 AND cash_settled = 0 AND business_date <= $1
		ORDER BY trade_id`, date)
	if err != nil {
		return e, 0, err
	}
	var ids []any
	net := map[netKey]int64{}
	var needs []cashNeed
	for rows.Next() {
		var id int64
		var body []byte
		if err := rows.Scan(&id, &body); err != nil {
			rows.Close()
			return e, 0, err
		}
		var legs tradeLegs
		if err := json.Unmarshal(body, &legs); err != nil {
			rows.Close()
			return e, 0, fmt.Errorf("trade %d legs: %w", id, err)
		}
		ids = append(ids, id)
		for _, l := range legs.Members {
			net[netKey{l.Member, l.Currency}] += l.AmountMinor
		}
		needs = append(needs, legs.Needs...)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return e, 0, err
	}
	now := s.now()
	run := s.store.run.Add(1)
	source := "cycle/" + strconv.FormatInt(run, 10)
	keys := make([]netKey, 0, len(net))
	for k := range net {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].currency != keys[j].currency {
			return keys[i].currency < keys[j].currency
		}
		return keys[i].member < keys[j].member
	})
	byCcy := map[string]*ledger.Transaction{}
	for _, k := range keys {
		n := net[k]
		if n == 0 {
			continue
		}
		txn := byCcy[k.currency]
		if txn == nil {
			txn = &ledger.Transaction{Kind: ledger.KindSettlement, Reference: source + "/" + k.currency, BookedAt: now}
			byCcy[k.currency] = txn
			e.txns = append(e.txns, txn)
		}
		txn.Add(ledger.Pending(k.member, k.currency), -n, ledger.KindSettlement)
		txn.Add(ledger.Available(k.member, k.currency), n, ledger.KindSettlement)
	}
	e.instructions = transfers(needs, source)
	if err := s.write(ctx, q, &e, now); err != nil {
		return e, 0, err
	}
	if err := bulk.Chunks(ids, 1000, func(chunk []any) error {
		args := append([]any{now.UnixNano()}, chunk...)
		_, err := q.ExecContext(ctx, `UPDATE stl_trades SET cash_settled = 1, cash_settled_at = $1 WHERE trade_id IN (`+
			bulk.InList(2, len(chunk))+`)`, args...)
		return err
	}); err != nil {
		return e, 0, err
	}
	_, err = q.ExecContext(ctx, `INSERT INTO stl_cycle_runs (run_id, business_date, trades_settled, instructions_created, ran_at)
		VALUES ($1, $2, $3, $4, $5)`, run, date, len(ids), len(e.instructions), now.UnixNano())
	return e, len(ids), err
}

// CheckLedger proves with queries over the whole ledger that debits equal
// credits in every currency, that every transaction balances, and that every
// account's balance is the sum of its postings.
func (a *adminServer) CheckLedger(ctx context.Context, _ *settlementv1.CheckLedgerRequest) (*settlementv1.CheckLedgerResponse, error) {
	s := a.s
	r, err := inTx(ctx, s, func(q *sql.Tx) (*ledger.CheckResult, error) { return s.ledger.Check(ctx, q) })
	if err != nil {
		return nil, err
	}
	resp := &settlementv1.CheckLedgerResponse{Balanced: r.Balanced(), Transactions: r.Transactions}
	for _, t := range r.Totals {
		exp := int32(0)
		if c, err := s.cfg.Currencies.Lookup(t.Currency); err == nil {
			exp = c.Exponent
		}
		resp.Totals = append(resp.Totals, &settlementv1.CurrencyTotal{Currency: t.Currency,
			Debits: decimal.NewFromBigInt(t.Debits, -exp).StringFixed(exp), Credits: decimal.NewFromBigInt(t.Credits, -exp).StringFixed(exp),
			Balanced: t.Balanced()})
	}
	if !resp.Balanced {
		s.logger.Error("the ledger does not balance", "unbalanced_transactions", r.UnbalancedTransactions, "balance_mismatches", r.BalanceMismatches)
	}
	return resp, nil
}
