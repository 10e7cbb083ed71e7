package matching

import (
	"context"
	"errors"
	"io"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/journal"
	"github.com/bcx-exchange/bcx/pkg/paging"
	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	"github.com/bcx-exchange/bcx/services/matching/core"
)

// tradingServer is the member-facing TradingService. Listing and one-sided
// auction RPCs are not implemented yet.
type tradingServer struct {
	tradingv1.UnimplementedTradingServiceServer
	s *Service
}

var _ tradingv1.TradingServiceServer = (*tradingServer)(nil)

// maxClientOrderID bounds the client order ids the core keeps.
const maxClientOrderID = 64

func member(ctx context.Context) (auth.Principal, error) {
	p, err := auth.MustFromContext(ctx)
	if err != nil {
		return p, err
	}
	if p.Number == 0 {
		return p, rpcerr.Precondition("NO_PARTICIPANT_NUMBER", "the caller has no participant number in the core")
	}
	return p, nil
}

func checkClientOrderID(field, id string, required bool) error {
	if id == "" && required {
		return rpcerr.Invalid(field, "is required")
	}
	if len(id) > maxClientOrderID {
		return rpcerr.Invalid(field, "at most %d bytes", maxClientOrderID)
	}
	return nil
}

// placeCommand converts a PlaceOrderRequest into a core command.
func placeCommand(p auth.Principal, reg *registry, req *tradingv1.PlaceOrderRequest, cmd *core.Command) error {
	if err := checkClientOrderID("client_order_id", req.ClientOrderId, true); err != nil {
		return err
	}
	d, _, ok := reg.instrument(req.Symbol)
	if !ok {
		return unknownInstrument(req.Symbol)
	}
	side, err := sideFrom(req.Side)
	if err != nil {
		return err
	}
	var typ core.OrderType
	switch req.OrderType {
	case tradingv1.OrderType_ORDER_TYPE_UNSPECIFIED, tradingv1.OrderType_ORDER_TYPE_LIMIT:
	case tradingv1.OrderType_ORDER_TYPE_MARKET:
		typ = 1
	default:
		return rpcerr.Invalid("order_type", "unknown order type %d", req.OrderType)
	}
	tif, err := tifFrom(req.TimeInForce, typ == 1)
	if err != nil {
		return err
	}
	stp, err := stpFrom(req.SelfTradePrevention)
	if err != nil {
		return err
	}
	qty, err := parseLots("quantity", req.Quantity, d)
	if err != nil {
		return err
	}
	display, err := parseOptionalLots("display_quantity", req.DisplayQuantity, d)
	if err != nil {
		return err
	}
	minQty, err := parseOptionalLots("min_quantity", req.MinQuantity, d)
	if err != nil {
		return err
	}
	var price int64
	if typ == 1 {
		if req.Price != nil && req.Price.Amount != "" {
			return rpcerr.Invalid("price", "a market order has no limit price: set protection_price")
		}
		price, err = parsePrice("protection_price", req.ProtectionPrice, d)
	} else {
		price, err = parsePrice("price", req.Price, d)
	}
	if err != nil {
		return err
	}
	*cmd = core.Command{Kind: core.CmdPlace, Participant: p.Number, ParticipantID: p.ParticipantID, Instrument: d.Number,
		DefVersion: d.Version, ClientOrderID: req.ClientOrderId, Side: side, Type: typ, TIF: tif, STP: stp,
		PostOnly: req.PostOnly, Price: price, Qty: qty, DisplayQty: display, MinQty: minQty}
	return nil
}

func instrumentFilter(reg *registry, symbol string) (int64, error) {
	if symbol == "" {
		return 0, nil
	}
	d, _, ok := reg.instrument(symbol)
	if !ok {
		return 0, unknownInstrument(symbol)
	}
	return d.Number, nil
}

func cancelCommand(p auth.Principal, reg *registry, req *tradingv1.CancelOrderRequest, cmd *core.Command) error {
	inst, err := instrumentFilter(reg, req.Symbol)
	if err != nil {
		return err
	}
	if req.OrderId == 0 && req.ClientOrderId == "" {
		return rpcerr.Invalid("order_id", "order_id or client_order_id is required")
	}
	*cmd = core.Command{Kind: core.CmdCancel, Participant: p.Number, ParticipantID: p.ParticipantID, Instrument: inst,
		OrderID: req.OrderId, OrigClientOrderID: req.ClientOrderId}
	return nil
}

func replaceCommand(p auth.Principal, reg *registry, req *tradingv1.ReplaceOrderRequest, cmd *core.Command) error {
	if err := checkClientOrderID("client_order_id", req.ClientOrderId, false); err != nil {
		return err
	}
	d, _, ok := reg.instrument(req.Symbol)
	if !ok {
		if req.Symbol == "" {
			return rpcerr.Invalid("symbol", "is required to convert the new price and quantity")
		}
		return unknownInstrument(req.Symbol)
	}
	if req.OrderId == 0 && req.OrigClientOrderId == "" {
		return rpcerr.Invalid("order_id", "order_id or orig_client_order_id is required")
	}
	var price, qty int64
	var err error
	if req.Price != nil && req.Price.Amount != "" {
		if price, err = parsePrice("price", req.Price, d); err != nil {
			return err
		}
	}
	if req.Quantity != "" {
		if qty, err = parseLots("quantity", req.Quantity, d); err != nil {
			return err
		}
	}
	if price == 0 && qty == 0 {
		return rpcerr.Invalid("price", "a replace needs a new price or quantity")
	}
	*cmd = core.Command{Kind: core.CmdReplace, Participant: p.Number, ParticipantID: p.ParticipantID, Instrument: d.Number,
		DefVersion: d.Version, OrderID: req.OrderId, OrigClientOrderID: req.OrigClientOrderId, ClientOrderID: req.ClientOrderId,
		Price: price, Qty: qty}
	return nil
}

func massCancelCommand(p auth.Principal, reg *registry, req *tradingv1.MassCancelRequest, cmd *core.Command) error {
	inst, err := instrumentFilter(reg, req.Symbol)
	if err != nil {
		return err
	}
	*cmd = core.Command{Kind: core.CmdMassCancel, Participant: p.Number, ParticipantID: p.ParticipantID, Instrument: inst}
	return nil
}

func orderOf(reg *registry, res *core.Result) *tradingv1.Order {
	if !res.HasOrder {
		return &tradingv1.Order{OrderId: res.Order.ID}
	}
	return reg.order(&res.Order)
}

// orderCommand runs one order-entry command for the calling member: build
// fills the core command from the request, the sequencer applies it and makes
// it durable, and respond renders the result. A refusal is the error.
func orderCommand[Req any, Resp any](ctx context.Context, t *tradingServer, req Req,
	build func(auth.Principal, *registry, Req, *core.Command) error, respond func(*registry, *core.Result) Resp) (Resp, error) {
	var zero Resp
	p, err := member(ctx)
	if err != nil {
		return zero, err
	}
	r := getRequest()
	defer putRequest(r)
	if err := build(p, t.s.registry(), req, &r.cmd); err != nil {
		return zero, err
	}
	if err := t.s.do(ctx, r); err != nil {
		return zero, err
	}
	if err := resultErr(&r.res); err != nil {
		return zero, err
	}
	return respond(t.s.registry(), &r.res), nil
}

func (t *tradingServer) PlaceOrder(ctx context.Context, req *tradingv1.PlaceOrderRequest) (*tradingv1.PlaceOrderResponse, error) {
	return orderCommand(ctx, t, req, placeCommand, func(reg *registry, res *core.Result) *tradingv1.PlaceOrderResponse {
		return &tradingv1.PlaceOrderResponse{Order: orderOf(reg, res), Executions: reg.executions(res.Fills)}
	})
}

func (t *tradingServer) CancelOrder(ctx context.Context, req *tradingv1.CancelOrderRequest) (*tradingv1.CancelOrderResponse, error) {
	return orderCommand(ctx, t, req, cancelCommand, func(reg *registry, res *core.Result) *tradingv1.CancelOrderResponse {
		return &tradingv1.CancelOrderResponse{Order: orderOf(reg, res)}
	})
}

func (t *tradingServer) ReplaceOrder(ctx context.Context, req *tradingv1.ReplaceOrderRequest) (*tradingv1.ReplaceOrderResponse, error) {
	return orderCommand(ctx, t, req, replaceCommand, func(reg *registry, res *core.Result) *tradingv1.ReplaceOrderResponse {
		return &tradingv1.ReplaceOrderResponse{Order: orderOf(reg, res), Executions: reg.executions(res.Fills)}
	})
}

func (t *tradingServer) MassCancel(ctx context.Context, req *tradingv1.MassCancelRequest) (*tradingv1.MassCancelResponse, error) {
	return orderCommand(ctx, t, req, massCancelCommand, func(_ *registry, res *core.Result) *tradingv1.MassCancelResponse {
		return &tradingv1.MassCancelResponse{Cancelled: res.Count}
	})
}

const (
	opPlace = iota + 1
	opCancel
	opReplace
	opMassCancel
	opError
)

// streamWindow bounds the commands one order entry stream has in flight.
const streamWindow = 1024

// A batched order entry stream's answer message holds at most
// entryBatchAnswers answers and is sent once it passes entryBatchBytes
// (well under gRPC's default 4 MiB receive limit).
const (
	entryBatchAnswers = 1024
	entryBatchBytes   = 256 << 10
)

// OrderEntry is order entry for high-rate clients: requests are pipelined
// (up to streamWindow in flight per stream) and answered in the order they
// were sent, each once its batch is durable, with the request's correlation
// id. A refused command is answered with a CommandError; the stream stays
// open.
//
// The receiving loop (this goroutine) converts and enqueues each request and
// queues it in inflight, in order; a sender goroutine answers the head of
// inflight once it is done. The sequencer marks a request done and wakes the
// sender at most once per batch (a wake that finds the sender awake is
// dropped), and the sender then answers everything done without waiting
// again, so a stream costs a goroutine switch per batch, not per order.
func (t *tradingServer) OrderEntry(stream tradingv1.TradingService_OrderEntryServer) error {
	return t.orderEntry(stream, false)
}

// OrderEntryBatch is OrderEntry with many requests and answers to a
// message: gRPC's cost (framing, flow control, a wakeup of its reader and
// writer) is per message, and at high rates it is most of the cost of an
// order.
func (t *tradingServer) OrderEntryBatch(stream tradingv1.TradingService_OrderEntryBatchServer) error {
	return t.orderEntry(stream, true)
}

func (t *tradingServer) orderEntry(stream grpc.ServerStream, batched bool) error {
	ctx := stream.Context()
	p, err := member(ctx)
	if err != nil {
		return err
	}
	e := &entryReceiver{s: t.s, ctx: ctx, p: p, inflight: make(chan *request, streamWindow), waker: newEntryWaker()}
	sendErr := make(chan error, 1)
	go func() { sendErr <- t.s.entrySender(stream, batched, e.inflight, e.waker.ch) }()
	var recvErr error
	// Each message arrives as the unknown fields of an empty message, which
	// keep its wire form; requests are decoded by e.dec (see wire.go).
	var raw emptypb.Empty
	for recvErr == nil {
		if err := stream.RecvMsg(&raw); err != nil {
			if !errors.Is(err, io.EOF) {
				recvErr = err
			}
			break
		}
		if batched {
			recvErr = e.receiveBatch(raw.ProtoReflect().GetUnknown())
			continue
		}
		r, err := e.build(raw.ProtoReflect().GetUnknown())
		if err != nil {
			recvErr = err
			break
		}
		recvErr = e.submit(r)
	}
	// The sender answers everything in flight, then stops.
	close(e.inflight)
	if err := <-sendErr; err != nil {
		return err
	}
	return recvErr
}

// entryReceiver turns one order entry stream's requests into sequencer
// requests.
type entryReceiver struct {
	s        *Service
	ctx      context.Context
	p        auth.Principal
	dec      entryDecoder
	inflight chan *request
	waker    *entryWaker
	batch    []*request
}

// errUndecodable is what receiving a request gRPC could not decode would
// have answered.
func errUndecodable(err error) error {
	return status.Errorf(codes.Internal, "grpc: failed to unmarshal the received message: %v", err)
}

// build decodes one OrderEntryRequest and converts it into a request; a
// command refused here is a request carrying its error, answered in turn.
// Only a request that does not decode is an error (it ends the stream).
func (e *entryReceiver) build(b []byte) (*request, error) {
	req, err := e.dec.decode(b)
	if err != nil {
		return nil, errUndecodable(err)
	}
	r := getRequest()
	r.tag = req.CorrelationId
	r.waker = e.waker
	reg := e.s.registry()
	switch c := req.Command.(type) {
	case *tradingv1.OrderEntryRequest_Place:
		r.op, err = opPlace, placeCommand(e.p, reg, c.Place, &r.cmd)
	case *tradingv1.OrderEntryRequest_Cancel:
		r.op, err = opCancel, cancelCommand(e.p, reg, c.Cancel, &r.cmd)
	case *tradingv1.OrderEntryRequest_Replace:
		r.op, err = opReplace, replaceCommand(e.p, reg, c.Replace, &r.cmd)
	case *tradingv1.OrderEntryRequest_MassCancel:
		r.op, err = opMassCancel, massCancelCommand(e.p, reg, c.MassCancel, &r.cmd)
	default:
		err = rpcerr.Invalid("command", "one of place, cancel, replace, mass_cancel is required")
	}
	if err != nil {
		r.op, r.err = opError, err
	}
	return r, nil
}

// submit queues r for the sender, waiting for room in the window, and
// hands it to the sequencer (or answers its error). On error r is recycled.
func (e *entryReceiver) submit(r *request) error {
	select {
	case e.inflight <- r:
	default:
		// The window is full: wait for the sender to answer one.
		select {
		case e.inflight <- r:
		case <-e.ctx.Done():
			putRequest(r)
			return e.ctx.Err()
		}
	}
	if err := e.ctx.Err(); err != nil {
		// The stream is gone: nothing more of it is applied (enqueue
		// would still take r while the queue has room).
		r.op, r.err = opError, err
		r.answer()
		return err
	}
	if r.op != opError {
		// Once enqueued, r is the sequencer's until it is answered.
		err := e.s.enqueue(e.ctx, r)
		if err == nil {
			return nil
		}
		r.op, r.err = opError, err
	}
	// Answered here, in its turn: it is already in inflight.
	r.answer()
	return nil
}

// maxBatchRequests bounds the requests of one OrderEntryBatch message: a
// request takes a pooled ~760-byte request before any is submitted, and
// a request can be two bytes on the wire.
const maxBatchRequests = streamWindow

// receiveBatch handles an OrderEntryBatchRequest: every request is decoded
// and converted before any is submitted, so a message that does not decode
// (or holds more than maxBatchRequests) ends the stream having changed
// nothing, as gRPC's own decoding would. Fields other than requests (1)
// are skipped, as proto.Unmarshal keeps them unknown.
func (e *entryReceiver) receiveBatch(b []byte) error {
	n := 0
	if err := eachBatchRequest(b, func([]byte) error { n++; return nil }); err != nil {
		return errUndecodable(err)
	}
	if n > maxBatchRequests {
		return rpcerr.Invalid("requests", "%d requests in one message; at most %d", n, maxBatchRequests)
	}
	batch := e.batch[:0]
	defer func() {
		clear(batch)
		e.batch = batch[:0]
	}()
	if err := eachBatchRequest(b, func(v []byte) error {
		r, err := e.build(v)
		if err == nil {
			batch = append(batch, r)
		}
		return err
	}); err != nil {
		for _, r := range batch {
			putRequest(r)
		}
		return err
	}
	for i, r := range batch {
		if err := e.submit(r); err != nil {
			for _, r := range batch[i+1:] {
				putRequest(r)
			}
			return err
		}
	}
	return nil
}

// eachBatchRequest calls fn with the wire form of each request (field 1)
// of an OrderEntryBatchRequest, in order, skipping other fields; it stops
// at fn's first error or a framing error.
func eachBatchRequest(b []byte, fn func(req []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if num != 1 || typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := fn(v); err != nil {
			return err
		}
	}
	return nil
}

// entrySender answers an order entry stream's requests in order (see
// OrderEntry): one answer to a message, or, batched, every answer ready
// when it reaches one that is not. After a failed send it still waits for
// every request in flight, to recycle it, and then returns the send error.
func (s *Service) entrySender(stream grpc.ServerStream, batched bool, inflight <-chan *request, wake <-chan struct{}) error {
	var failed error
	// The answers go out as the unknown fields of an empty response, which
	// marshal verbatim: buf holds the wire form of the whole message (see
	// wire.go). The messages and buffer are reused: Send encodes before it
	// returns.
	var buf []byte
	var msg proto.Message = &tradingv1.OrderEntryResponse{}
	if batched {
		msg = &tradingv1.OrderEntryBatchResponse{}
	}
	answers := 0
	send := func() {
		if answers == 0 {
			return
		}
		if failed == nil {
			msg.ProtoReflect().SetUnknown(buf)
			failed = stream.SendMsg(msg)
		}
		buf, answers = buf[:0], 0
	}
	for {
		var r *request
		var ok bool
		select {
		case r, ok = <-inflight:
		default:
			send()
			r, ok = <-inflight
		}
		if !ok {
			break
		}
		if !r.answered.Load() {
			send()
			for !r.answered.Load() {
				<-wake
			}
		}
		if failed == nil {
			if batched {
				start := beginMessage(&buf, 1)
				buf = appendEntryResponse(buf, s.registry(), r)
				buf = endMessage(buf, start)
			} else {
				buf = appendEntryResponse(buf, s.registry(), r)
			}
			answers++
		}
		putRequest(r)
		if !batched || answers >= entryBatchAnswers || len(buf) >= entryBatchBytes {
			send()
		}
	}
	send()
	return failed
}

func (t *tradingServer) GetOrder(ctx context.Context, req *tradingv1.GetOrderRequest) (*tradingv1.GetOrderResponse, error) {
	p, err := member(ctx)
	if err != nil {
		return nil, err
	}
	if req.OrderId == 0 && req.ClientOrderId == "" {
		return nil, rpcerr.Invalid("order_id", "order_id or client_order_id is required")
	}
	reg := t.s.registry()
	inst, err := instrumentFilter(reg, req.Symbol)
	if err != nil {
		return nil, err
	}
	var v core.OrderView
	var ok bool
	if err := t.s.query(ctx, func(c *core.Core) { v, ok = c.Order(p.Number, req.OrderId, req.ClientOrderId) }); err != nil {
		return nil, err
	}
	reg = t.s.registry()
	if !ok || (inst != 0 && reg.def(v.Def).Number != inst) {
		return nil, notFoundOrder(req.OrderId, req.ClientOrderId)
	}
	return &tradingv1.GetOrderResponse{Order: reg.order(&v)}, nil
}

func pageArgs(size int32, token string) (int, int64, error) {
	n, err := paging.Size(size)
	if err != nil {
		return 0, 0, err
	}
	var after int64
	if token != "" {
		v, err := strconv.ParseInt(token, 10, 64)
		if err != nil || v < 0 {
			return 0, 0, rpcerr.Invalid("page_token", "malformed page token")
		}
		after = v
	}
	return n, after, nil
}

func (t *tradingServer) ListOrders(ctx context.Context, req *tradingv1.ListOrdersRequest) (*tradingv1.ListOrdersResponse, error) {
	p, err := member(ctx)
	if err != nil {
		return nil, err
	}
	size, after, err := pageArgs(req.PageSize, req.PageToken)
	if err != nil {
		return nil, err
	}
	inst, err := instrumentFilter(t.s.registry(), req.Symbol)
	if err != nil {
		return nil, err
	}
	var vs []core.OrderView
	if err := t.s.query(ctx, func(c *core.Core) { vs = c.Orders(p.Number, inst, req.OpenOnly, after, size+1) }); err != nil {
		return nil, err
	}
	reg := t.s.registry()
	resp := &tradingv1.ListOrdersResponse{}
	for i := range vs[:min(size, len(vs))] {
		resp.Orders = append(resp.Orders, reg.order(&vs[i]))
	}
	if len(vs) > size {
		resp.NextPageToken = strconv.FormatInt(vs[size-1].ID, 10)
	}
	return resp, nil
}

func (t *tradingServer) ListExecutions(ctx context.Context, req *tradingv1.ListExecutionsRequest) (*tradingv1.ListExecutionsResponse, error) {
	p, err := member(ctx)
	if err != nil {
		return nil, err
	}
	size, after, err := pageArgs(req.PageSize, req.PageToken)
	if err != nil {
		return nil, err
	}
	inst, err := instrumentFilter(t.s.registry(), req.Symbol)
	if err != nil {
		return nil, err
	}
	// Every execution of the day, from the history beside the core.
	fs, err := t.s.hist.page(ctx, t.s.j.DurableSeq(), p.ParticipantID, inst, after, size+1)
	if err != nil {
		return nil, err
	}
	reg := t.s.registry()
	resp := &tradingv1.ListExecutionsResponse{Executions: reg.executions(fs[:min(size, len(fs))])}
	if len(fs) > size {
		resp.NextPageToken = strconv.FormatInt(fillOrder(&fs[size-1]), 10)
	}
	return resp, nil
}

func (t *tradingServer) GetBalances(ctx context.Context, _ *tradingv1.GetBalancesRequest) (*tradingv1.GetBalancesResponse, error) {
	p, err := member(ctx)
	if err != nil {
		return nil, err
	}
	var fs []core.FundsBalance
	var ps []core.PositionBalance
	var seq uint64
	if err := t.s.query(ctx, func(c *core.Core) { fs, ps = c.Balances(p.Number); seq = c.LastSeq() }); err != nil {
		return nil, err
	}
	reg := t.s.registry()
	resp := &tradingv1.GetBalancesResponse{Sequence: int64(seq)}
	for _, f := range fs {
		resp.Funds = append(resp.Funds, &tradingv1.FundsBalance{Currency: f.Currency,
			Total: formatFixed(f.Total, f.Exp, false), Reserved: formatFixed(f.Reserved, f.Exp, false),
			Available: formatFixed(f.Total-f.Reserved, f.Exp, false)})
	}
	for _, pb := range ps {
		resp.Positions = append(resp.Positions, &tradingv1.PositionBalance{Symbol: reg.def(pb.Def).Symbol,
			Total: weight(pb.Total), Reserved: weight(pb.Reserved), Available: weight(pb.Total - pb.Reserved)})
	}
	return resp, nil
}

// StreamExecutions sends the caller's executions and order updates from a
// sequence number on, read from the journal (durable records only), then
// follows it live.
func (t *tradingServer) StreamExecutions(req *tradingv1.StreamExecutionsRequest, stream tradingv1.TradingService_StreamExecutionsServer) error {
	p, err := member(stream.Context())
	if err != nil {
		return err
	}
	return t.s.readEvents(stream.Context(), req.FromSequence, func(seq uint64, ts int64, reg *registry, ev *core.Events) error {
		for i := range ev.List {
			e := &ev.List[i]
			switch e.Kind {
			case core.EvOrder:
				o := ev.Order(e)
				if reg.participant(o.Participant) != p.ParticipantID {
					continue
				}
				if err := stream.Send(&tradingv1.StreamExecutionsResponse{Sequence: int64(seq),
					Update: &tradingv1.StreamExecutionsResponse_Order{Order: reg.order(o)}}); err != nil {
					return err
				}
			case core.EvTrade:
				for _, f := range tradeFills(reg, seq, ts, ev.Trade(e), p.ParticipantID) {
					if err := stream.Send(&tradingv1.StreamExecutionsResponse{Sequence: int64(seq),
						Update: &tradingv1.StreamExecutionsResponse_Execution{Execution: reg.execution(&f)}}); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
}

// tradeFills returns the participant's side(s) of a trade as fills.
func tradeFills(reg *registry, seq uint64, ts int64, t *core.Trade, participantID string) []core.Fill {
	var out []core.Fill
	if reg.participant(t.Buyer) == participantID {
		out = append(out, buyerFill(t, seq, ts))
	}
	if reg.participant(t.Seller) == participantID {
		out = append(out, sellerFill(t, seq, ts))
	}
	return out
}

// buyerFill and sellerFill are a trade's sides as fills, as the core
// reports them to the order's owner.
func buyerFill(t *core.Trade, seq uint64, ts int64) core.Fill {
	return core.Fill{TradeID: t.ID, OrderID: t.BuyOrder, ClientID: t.BuyClient, Def: t.Def, Side: 0,
		Price: t.Price, Qty: t.Qty, Maker: t.Aggressor == 2, FeeMinor: t.BuyerFee, Seq: seq, TimeNanos: ts, FX: t.BuyerFX}
}

func sellerFill(t *core.Trade, seq uint64, ts int64) core.Fill {
	return core.Fill{TradeID: t.ID, OrderID: t.SellOrder, ClientID: t.SellClient, Def: t.Def, Side: 1,
		Price: t.Price, Qty: t.Qty, Maker: t.Aggressor == 1, FeeMinor: t.SellerFee, Seq: seq, TimeNanos: ts, FX: t.SellerFX}
}

// readEvents feeds every durable journal record from a sequence number on
// to fn, decoded, and then follows the journal until ctx ends.
func (s *Service) readEvents(ctx context.Context, from int64, fn func(seq uint64, ts int64, reg *registry, ev *core.Events) error) error {
	if from < 0 {
		return rpcerr.Invalid("from_sequence", "must not be negative")
	}
	r, err := s.j.NewReader(uint64(max(from, 1)))
	if errors.Is(err, journal.ErrCompacted) {
		return rpcerr.Precondition("COMPACTED", "sequence %d is no longer retained", from)
	}
	if err != nil {
		return err
	}
	defer r.Close()
	var cmd core.Command
	var ev core.Events
	for {
		rec, err := r.NextWait(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, journal.ErrClosed) {
				return nil
			}
			return err
		}
		if err := core.DecodeRecord(rec.Payload, rec.Seq, rec.Time, &cmd, &ev); err != nil {
			return err
		}
		if err := fn(rec.Seq, rec.Time, s.registry(), &ev); err != nil {
			return err
		}
	}
}
