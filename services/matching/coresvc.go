package matching

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/matching/core"
)

// coreServer is the CoreService: commands from bcx's other services and
// operators, and the event log.
type coreServer struct {
	tradingv1.UnimplementedCoreServiceServer
	s *Service
}

var _ tradingv1.CoreServiceServer = (*coreServer)(nil)

// Policy says who may call each method of the three services.
func Policy() auth.Policy {
	p := auth.Policy{}
	members := []typev1.Role{typev1.Role_ROLE_MEMBER}
	for _, m := range tradingv1.TradingService_ServiceDesc.Methods {
		p["/"+tradingv1.TradingService_ServiceDesc.ServiceName+"/"+m.MethodName] = members
	}
	for _, m := range tradingv1.TradingService_ServiceDesc.Streams {
		p["/"+tradingv1.TradingService_ServiceDesc.ServiceName+"/"+m.StreamName] = members
	}
	services := []typev1.Role{typev1.Role_ROLE_SERVICE, typev1.Role_ROLE_OPERATOR}
	for _, m := range tradingv1.CoreService_ServiceDesc.Methods {
		p["/"+tradingv1.CoreService_ServiceDesc.ServiceName+"/"+m.MethodName] = services
	}
	for _, m := range tradingv1.CoreService_ServiceDesc.Streams {
		p["/"+tradingv1.CoreService_ServiceDesc.ServiceName+"/"+m.StreamName] = services
	}
	p["/"+tradingv1.CoreService_ServiceDesc.ServiceName+"/SetInstrumentPhase"] = []typev1.Role{typev1.Role_ROLE_OPERATOR}
	// FX rates and funding preferences come from settlement only: an
	// operator publishes rates and a member opts in there, where the
	// ledger and the bank instructions follow them.
	for _, m := range []string{"SetFxRate", "SetFundingCurrency"} {
		p["/"+tradingv1.CoreService_ServiceDesc.ServiceName+"/"+m] = []typev1.Role{typev1.Role_ROLE_SERVICE}
	}
	for name, roles := range MarketDataPolicy() {
		p[name] = roles
	}
	return p
}

// participantNumber maps a participant id to its core number (cached).
func (s *Service) participantNumber(ctx context.Context, id string) (int64, error) {
	if id == "" {
		return 0, rpcerr.Invalid("participant_id", "is required")
	}
	s.partsMu.Lock()
	n, ok := s.parts[id]
	s.partsMu.Unlock()
	if ok {
		return n, nil
	}
	var err error
	switch {
	case s.cfg.ResolveParticipant != nil:
		n, err = s.cfg.ResolveParticipant(ctx, id)
	case s.cfg.Listing != nil:
		var resp *listingv1.GetParticipantResponse
		resp, err = s.cfg.Listing.GetParticipant(ctx, &listingv1.GetParticipantRequest{Id: id})
		if status.Code(err) == codes.NotFound {
			return 0, rpcerr.Invalid("participant_id", "unknown participant %q", id)
		}
		if err == nil {
			n = resp.Participant.Number
		}
	default:
		return 0, rpcerr.Precondition("NO_PARTICIPANT_DIRECTORY", "the matching service has no participant directory")
	}
	if err != nil {
		return 0, fmt.Errorf("resolve participant %s: %w", id, err)
	}
	if n == 0 {
		return 0, rpcerr.Invalid("participant_id", "participant %q has no number", id)
	}
	s.partsMu.Lock()
	s.parts[id] = n
	s.partsMu.Unlock()
	return n, nil
}

func requireKey(key string) error {
	if key == "" {
		return rpcerr.Invalid("idempotency_key", "is required")
	}
	return nil
}

func (s *Service) fundsCommand(ctx context.Context, kind core.CmdKind, key, participant string, amount *typev1.Money) (core.Command, error) {
	if err := requireKey(key); err != nil {
		return core.Command{}, err
	}
	if amount == nil {
		return core.Command{}, rpcerr.Invalid("amount", "is required")
	}
	cur, err := s.cfg.Currencies.Lookup(amount.Currency)
	if err != nil {
		return core.Command{}, rpcerr.InvalidReason("amount.currency", "REJECT_REASON_WRONG_CURRENCY", "unknown currency %q", amount.Currency)
	}
	minor, err := cur.ParseAmount(amount.Amount)
	if err != nil {
		return core.Command{}, rpcerr.Invalid("amount.amount", "%v", err)
	}
	if minor <= 0 {
		return core.Command{}, rpcerr.Invalid("amount.amount", "must be positive")
	}
	n, err := s.participantNumber(ctx, participant)
	if err != nil {
		return core.Command{}, err
	}
	return core.Command{Kind: kind, Participant: n, ParticipantID: participant, Key: key, Currency: cur.Code,
		CurrencyExp: cur.Exponent, Amount: minor}, nil
}

func (c *coreServer) run(ctx context.Context, cmd core.Command) (core.Result, error) {
	res, err := c.s.command(ctx, cmd)
	if err != nil {
		return res, err
	}
	return res, resultErr(&res)
}

func (c *coreServer) CreditFunds(ctx context.Context, req *tradingv1.CreditFundsRequest) (*tradingv1.CreditFundsResponse, error) {
	cmd, err := c.s.fundsCommand(ctx, core.CmdCreditFunds, req.IdempotencyKey, req.ParticipantId, req.Amount)
	if err != nil {
		return nil, err
	}
	res, err := c.run(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return &tradingv1.CreditFundsResponse{Sequence: int64(res.Seq), Duplicate: res.Duplicate}, nil
}

func (c *coreServer) DebitFunds(ctx context.Context, req *tradingv1.DebitFundsRequest) (*tradingv1.DebitFundsResponse, error) {
	cmd, err := c.s.fundsCommand(ctx, core.CmdDebitFunds, req.IdempotencyKey, req.ParticipantId, req.Amount)
	if err != nil {
		return nil, err
	}
	res, err := c.run(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return &tradingv1.DebitFundsResponse{Sequence: int64(res.Seq), Duplicate: res.Duplicate}, nil
}

func (c *coreServer) CreditPosition(ctx context.Context, req *tradingv1.CreditPositionRequest) (*tradingv1.CreditPositionResponse, error) {
	if err := requireKey(req.IdempotencyKey); err != nil {
		return nil, err
	}
	if req.ReceiptNumber == "" {
		return nil, rpcerr.Invalid("receipt_number", "is required")
	}
	if len(req.Symbols) == 0 {
		return nil, rpcerr.Invalid("symbols", "at least one instrument is required")
	}
	reg := c.s.registry()
	nums := make([]int64, 0, len(req.Symbols))
	for i, sym := range req.Symbols {
		d, _, ok := reg.instrument(sym)
		if !ok {
			return nil, rpcerr.InvalidReason(fmt.Sprintf("symbols[%d]", i), "REJECT_REASON_UNKNOWN_INSTRUMENT", "unknown instrument %q", sym)
		}
		nums = append(nums, d.Number)
	}
	w, exact, err := parseFixed(req.Weight, 6)
	switch {
	case err != nil:
		return nil, rpcerr.Invalid("weight", "%q is not a decimal number", req.Weight)
	case !exact:
		return nil, rpcerr.Invalid("weight", "%s has more than 6 decimal places", req.Weight)
	case w <= 0:
		return nil, rpcerr.Invalid("weight", "must be positive")
	}
	n, err := c.s.participantNumber(ctx, req.ParticipantId)
	if err != nil {
		return nil, err
	}
	res, err := c.run(ctx, core.Command{Kind: core.CmdCreditPosition, Participant: n, ParticipantID: req.ParticipantId,
		Key: req.IdempotencyKey, Receipt: req.ReceiptNumber, Symbols: nums, WeightMicro: w})
	if err != nil {
		return nil, err
	}
	return &tradingv1.CreditPositionResponse{Sequence: int64(res.Seq), Duplicate: res.Duplicate}, nil
}

func (c *coreServer) DebitPosition(ctx context.Context, req *tradingv1.DebitPositionRequest) (*tradingv1.DebitPositionResponse, error) {
	if err := requireKey(req.IdempotencyKey); err != nil {
		return nil, err
	}
	n, err := c.s.participantNumber(ctx, req.ParticipantId)
	if err != nil {
		return nil, err
	}
	res, err := c.s.command(ctx, core.Command{Kind: core.CmdDebitPosition, Participant: n, ParticipantID: req.ParticipantId,
		Key: req.IdempotencyKey, Receipt: req.ReceiptNumber})
	if err != nil {
		return nil, err
	}
	if res.Status == core.StatusNotFound {
		return nil, rpcerr.NotFound("receipt", req.ReceiptNumber)
	}
	if res.Status == core.StatusRefused && res.Reject == core.RejectInsufficientPosition {
		return nil, rpcerr.Precondition("REJECT_REASON_INSUFFICIENT_POSITION", "receipt %s is reserved by open orders", req.ReceiptNumber)
	}
	if err := resultErr(&res); err != nil {
		return nil, err
	}
	return &tradingv1.DebitPositionResponse{Sequence: int64(res.Seq), Duplicate: res.Duplicate}, nil
}

// SetInstrumentPhase is the operator's control: HALTED stops order entry
// (cancels still work) until an operator sets another phase; PRE_OPEN
// collects a call auction; CONTINUOUS resumes (uncrossing a call auction
// first); CLOSED ends the trading day (day orders expire).
func (c *coreServer) SetInstrumentPhase(ctx context.Context, req *tradingv1.SetInstrumentPhaseRequest) (*tradingv1.SetInstrumentPhaseResponse, error) {
	d, _, ok := c.s.registry().instrument(req.Symbol)
	if !ok {
		return nil, unknownInstrument(req.Symbol)
	}
	if req.Phase < tradingv1.InstrumentPhase_INSTRUMENT_PHASE_CLOSED || req.Phase > tradingv1.InstrumentPhase_INSTRUMENT_PHASE_HALTED {
		return nil, rpcerr.Invalid("phase", "must be CLOSED, PRE_OPEN, CONTINUOUS or HALTED")
	}
	ph := core.Phase(req.Phase)
	res, err := c.run(ctx, core.Command{Kind: core.CmdSetPhase, Instrument: d.Number, Phase: ph,
		PhaseSource: core.SourceOperator, EndOfDay: ph == core.PhaseClosed})
	if err != nil {
		return nil, err
	}
	return &tradingv1.SetInstrumentPhaseResponse{Phase: tradingv1.InstrumentPhase(res.Phase), Sequence: int64(res.Seq)}, nil
}

// feeRule converts a FeeRule in an instrument's currency.
func feeRule(field string, r *typev1.FeeRule, d *core.InstrumentDef) (core.FeeRule, error) {
	var out core.FeeRule
	if r == nil {
		return out, nil
	}
	switch r.Basis {
	case typev1.FeeBasis_FEE_BASIS_UNSPECIFIED:
		if r.Value != "" {
			return out, rpcerr.Invalid(field+".basis", "a value needs a basis")
		}
	case typev1.FeeBasis_FEE_BASIS_RATE:
		v, exact, err := parseFixed(r.Value, 12)
		if err != nil || !exact || v < 0 || v >= core.RateScale {
			return out, rpcerr.Invalid(field+".value", "%q: want a fraction from 0 to below 1 with at most 12 decimals", r.Value)
		}
		out.Basis, out.RateE12 = core.FeeRate, v
	case typev1.FeeBasis_FEE_BASIS_PER_LOT:
		v, exact, err := parseFixed(r.Value, int(d.CurrencyExp))
		if err != nil || !exact || v < 0 {
			return out, rpcerr.Invalid(field+".value", "%q: want an amount of %s per lot", r.Value, d.Currency)
		}
		out.Basis, out.PerLotMinor = core.FeePerLot, v
	default:
		return out, rpcerr.Invalid(field+".basis", "unknown fee basis %d", r.Basis)
	}
	if m := r.Minimum; m != nil && m.Amount != "" {
		if m.Currency != d.Currency {
			return out, rpcerr.InvalidReason(field+".minimum.currency", "REJECT_REASON_WRONG_CURRENCY", "fees are in %s", d.Currency)
		}
		v, exact, err := parseFixed(m.Amount, int(d.CurrencyExp))
		if err != nil || !exact || v < 0 {
			return out, rpcerr.Invalid(field+".minimum.amount", "%q is not an amount of %s", m.Amount, d.Currency)
		}
		out.MinMinor = v
	}
	return out, nil
}

func (c *coreServer) SetFeeSchedule(ctx context.Context, req *tradingv1.SetFeeScheduleRequest) (*tradingv1.SetFeeScheduleResponse, error) {
	if err := requireKey(req.IdempotencyKey); err != nil {
		return nil, err
	}
	d, _, ok := c.s.registry().instrument(req.Symbol)
	if !ok {
		return nil, unknownInstrument(req.Symbol)
	}
	buyer, err := feeRule("buyer", req.Buyer, d)
	if err != nil {
		return nil, err
	}
	seller, err := feeRule("seller", req.Seller, d)
	if err != nil {
		return nil, err
	}
	res, err := c.run(ctx, core.Command{Kind: core.CmdSetFeeSchedule, Instrument: d.Number, Key: req.IdempotencyKey,
		Fees: core.FeeSchedule{Buyer: buyer, Seller: seller}})
	if err != nil {
		return nil, err
	}
	return &tradingv1.SetFeeScheduleResponse{Sequence: int64(res.Seq)}, nil
}

func (c *coreServer) TakeSnapshot(ctx context.Context, _ *tradingv1.TakeSnapshotRequest) (*tradingv1.TakeSnapshotResponse, error) {
	seq, hash, err := c.s.TakeSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	return &tradingv1.TakeSnapshotResponse{Sequence: int64(seq), StateHash: fmt.Sprintf("%016x", hash)}, nil
}

// SubscribeEvents sends every durable event from a sequence number on, in
// order, then follows the log live.
func (c *coreServer) SubscribeEvents(req *tradingv1.SubscribeEventsRequest, stream tradingv1.CoreService_SubscribeEventsServer) error {
	return c.s.readEvents(stream.Context(), req.FromSequence, func(seq uint64, tsNanos int64, reg *registry, ev *core.Events) error {
		for i := range ev.List {
			if out := renderEvent(reg, ev, &ev.List[i]); out != nil {
				out.Sequence, out.Time = int64(seq), ts(tsNanos)
				if err := stream.Send(out); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func renderEvent(reg *registry, ev *core.Events, e *core.Event) *tradingv1.SubscribeEventsResponse {
	switch e.Kind {
	case core.EvOrder:
		return &tradingv1.SubscribeEventsResponse{Event: &tradingv1.SubscribeEventsResponse_Order{
			Order: &tradingv1.OrderEvent{Order: reg.order(ev.Order(e))}}}
	case core.EvTrade:
		t := ev.Trade(e)
		d := reg.def(t.Def)
		te := &tradingv1.TradeEvent{TradeId: t.ID, Symbol: d.Symbol, Price: priceMoney(d, t.Price), Quantity: lotsWeight(d, t.Qty),
			BuyerParticipantId: reg.participant(t.Buyer), SellerParticipantId: reg.participant(t.Seller),
			BuyOrderId: t.BuyOrder, SellOrderId: t.SellOrder, AggressorSide: typev1.Side(t.Aggressor),
			BuyerFee: moneyMinor(d.Currency, d.CurrencyExp, t.BuyerFee), SellerFee: moneyMinor(d.Currency, d.CurrencyExp, t.SellerFee),
			Lots: t.Qty, BuyerFx: reg.fxConversion(t.BuyerFX), SellerFx: reg.fxConversion(t.SellerFX), ListingId: t.Listing}
		for _, a := range ev.TradeAllocs(t) {
			te.Allocations = append(te.Allocations, &tradingv1.ReceiptAllocation{ReceiptNumber: a.Receipt, Weight: weight(a.WeightMicro)})
		}
		return &tradingv1.SubscribeEventsResponse{Event: &tradingv1.SubscribeEventsResponse_Trade{Trade: te}}
	case core.EvFunds:
		x := ev.Detail(e)
		code, exp := "", int32(0)
		if int(x.Currency) < len(reg.core.Currencies) {
			code, exp = reg.core.Currencies[x.Currency], reg.core.CurrencyExps[x.Currency]
		}
		return &tradingv1.SubscribeEventsResponse{Event: &tradingv1.SubscribeEventsResponse_Funds{Funds: &tradingv1.FundsEvent{
			IdempotencyKey: x.Key, ParticipantId: reg.participant(x.Participant), Amount: moneyMinor(code, exp, x.Amount)}}}
	case core.EvPosition:
		x := ev.Detail(e)
		pe := &tradingv1.PositionEvent{IdempotencyKey: x.Key, ParticipantId: reg.participant(x.Participant),
			ReceiptNumber: x.Receipt, Weight: weight(x.WeightMicro)}
		for _, n := range x.Symbols {
			pe.Symbols = append(pe.Symbols, reg.symbolOf(n))
		}
		return &tradingv1.SubscribeEventsResponse{Event: &tradingv1.SubscribeEventsResponse_Position{Position: pe}}
	case core.EvPhase:
		x := ev.Detail(e)
		return &tradingv1.SubscribeEventsResponse{Event: &tradingv1.SubscribeEventsResponse_Phase{Phase: &tradingv1.PhaseEvent{
			Symbol: reg.def(x.Def).Symbol, Phase: tradingv1.InstrumentPhase(x.Phase)}}}
	}
	return nil
}
