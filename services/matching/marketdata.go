package matching

import (
	"context"
	"errors"
	"slices"
	"strconv"

	"google.golang.org/grpc/codes"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/orderbook"
	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	marketdatav1 "github.com/bcx-exchange/bcx/proto/bcx/marketdata/v1"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/matching/core"
	"github.com/bcx-exchange/bcx/services/matching/mdfeed"
)

// Market data flows: the sequencer notes which instruments a batch touched
// and copies their top levels, last trade and indicative price right after
// applying it (mdBatch); once the batch is durable it hands the copy to the
// publisher goroutine, which turns it into per-instrument sequenced
// messages (level changes against what it published before, trades, a
// ticker when it changed) and publishes them with the new state through
// the Feed. The sequencer never waits for the publisher.

type mdTrade struct {
	t   core.Trade
	ts  int64
	seq uint64
}

type mdUpdate struct {
	number int64
	market core.Market
	trades []mdTrade
}

type mdBatch struct {
	ups []mdUpdate
	// The batch's trades for the history (see execHistory), collected
	// with the market data and handed over at the end of the batch.
	hist []histItem
}

func (b *mdBatch) of(number int64) *mdUpdate {
	for i := range b.ups {
		if b.ups[i].number == number {
			return &b.ups[i]
		}
	}
	if len(b.ups) == cap(b.ups) {
		b.ups = append(b.ups, mdUpdate{number: number})
		return &b.ups[len(b.ups)-1]
	}
	// A recycled batch: keep the update's lists, not what they held.
	b.ups = b.ups[:len(b.ups)+1]
	u := &b.ups[len(b.ups)-1]
	*u = mdUpdate{number: number, market: core.Market{Bids: u.market.Bids[:0], Asks: u.market.Asks[:0]}, trades: u.trades[:0]}
	return u
}

// newMDBatch returns an empty batch, reusing one the publisher is done
// with if there is one: a batch's lists would otherwise be new memory
// every time, for the sequencer to zero and fault in.
func (s *Service) newMDBatch() *mdBatch {
	if b, ok := s.mdFree.get(); ok {
		return b
	}
	return &mdBatch{}
}

// recycleMD gives back a batch nothing refers to any longer.
func (s *Service) recycleMD(b *mdBatch) {
	b.ups, b.hist = b.ups[:0], nil
	s.mdFree.put(b)
}

// collect notes the instruments an applied command touched.
func (q *sequencer) collect(ev *core.Events, ts int64, seq uint64, md *mdBatch) {
	for i := range ev.List {
		e := &ev.List[i]
		var def int32
		switch e.Kind {
		case core.EvOrder:
			def = ev.Order(e).Def
		case core.EvTrade:
			def = ev.Trade(e).Def
		case core.EvPhase, core.EvInstrument:
			def = ev.Detail(e).Def
		default:
			continue
		}
		if int(def) >= len(q.defNums) {
			q.publishRegistry(false)
		}
		u := md.of(q.defNums[def])
		if e.Kind == core.EvTrade {
			if cap(u.trades) == 0 {
				// Size for the last batch's trades, so the list seldom
				// grows.
				u.trades = make([]mdTrade, 0, max(16, q.lastTrades))
			}
			u.trades = append(u.trades, mdTrade{t: *ev.Trade(e), ts: ts, seq: seq})
		}
	}
}

// captureMarket copies the public state of the touched instruments (all of
// them after the publisher dropped a batch).
func (q *sequencer) captureMarket(md *mdBatch) {
	if q.forceMD.Swap(false) {
		for _, n := range q.c.Instruments() {
			md.of(n)
		}
	}
	q.lastTrades = 0
	for i := range md.ups {
		u := &md.ups[i]
		q.lastTrades = max(q.lastTrades, len(u.trades))
		q.c.MarketOf(u.number, q.depth, &u.market)
	}
}

// instMD is the publisher's view of one instrument.
type instMD struct {
	seq    int64
	bids   []orderbook.Level
	asks   []orderbook.Level
	ticker *marketdatav1.Ticker
	trades []*marketdatav1.Trade
	state  *mdfeed.State
}

const recentTrades = 100

func (s *Service) publishLoop(ctx context.Context) {
	insts := map[int64]*instMD{}
	for {
		select {
		case b := <-s.mdCh:
			s.publish(ctx, insts, b)
			s.recycleMD(b)
		case <-ctx.Done():
			return
		}
	}
}

func (s *Service) publish(ctx context.Context, insts map[int64]*instMD, b *mdBatch) {
	reg := s.registry()
	for i := range b.ups {
		u := &b.ups[i]
		di, ok := reg.byNumber[u.number]
		if !ok {
			continue
		}
		d := &reg.core.Defs[di]
		st := insts[u.number]
		if st == nil {
			st = &instMD{}
			// Continue from what an earlier process published, so that
			// subscribers across a restart see no gap and correct deltas.
			if prev, err := s.cfg.Feed.State(ctx, d.Symbol); err == nil {
				st.seq, st.ticker, st.trades = prev.Seq, prev.Ticker, prev.Trades
				st.bids = levelsFrom(prev.Depth.GetBids(), d)
				st.asks = levelsFrom(prev.Depth.GetAsks(), d)
			}
			insts[u.number] = st
		}
		var msgs []*mdfeed.Msg
		next := func(m *mdfeed.Msg) {
			st.seq++
			m.Sequence = st.seq
			msgs = append(msgs, m)
		}
		for _, lu := range diffLevels(typev1.Side_SIDE_BUY, st.bids, u.market.Bids, d) {
			next(&mdfeed.Msg{Payload: &marketdatav1.StreamMarketDataResponse_Level{Level: lu}})
		}
		for _, lu := range diffLevels(typev1.Side_SIDE_SELL, st.asks, u.market.Asks, d) {
			next(&mdfeed.Msg{Payload: &marketdatav1.StreamMarketDataResponse_Level{Level: lu}})
		}
		st.bids = append(st.bids[:0], u.market.Bids...)
		st.asks = append(st.asks[:0], u.market.Asks...)
		for _, t := range u.trades {
			tr := &marketdatav1.Trade{TradeId: t.t.ID, Symbol: d.Symbol, Price: priceMoney(d, t.t.Price),
				Quantity: lotsWeight(d, t.t.Qty), AggressorSide: typev1.Side(t.t.Aggressor), ExecutedAt: ts(t.ts),
				Sequence: int64(t.seq)}
			next(&mdfeed.Msg{Payload: &marketdatav1.StreamMarketDataResponse_Trade{Trade: tr}})
			st.trades = append(st.trades, tr)
		}
		if n := len(st.trades); n > recentTrades {
			st.trades = slices.Clone(st.trades[n-recentTrades:])
		}
		tk := tickerOf(d, &u.market)
		if st.ticker == nil || !sameTicker(st.ticker, tk) {
			next(&mdfeed.Msg{Payload: &marketdatav1.StreamMarketDataResponse_Ticker{Ticker: tk}})
			tk.Sequence = st.seq
			st.ticker = tk
		}
		if len(msgs) == 0 && st.state != nil {
			continue
		}
		state := &mdfeed.State{Seq: st.seq, Ticker: st.ticker, Trades: slices.Clone(st.trades),
			Depth: &marketdatav1.Depth{Symbol: d.Symbol, Sequence: st.seq, Bids: levelsTo(st.bids, d), Asks: levelsTo(st.asks, d)}}
		st.state = state
		if err := s.cfg.Feed.Publish(ctx, d.Symbol, state, msgs); err != nil && ctx.Err() == nil {
			s.log.Warn("market data publish failed", "symbol", d.Symbol, "error", err)
		}
	}
}

func levelsTo(ls []orderbook.Level, d *core.InstrumentDef) []*marketdatav1.PriceLevel {
	out := make([]*marketdatav1.PriceLevel, len(ls))
	for i, l := range ls {
		out[i] = &marketdatav1.PriceLevel{Price: priceMoney(d, l.Price), Quantity: lotsWeight(d, l.Qty), OrderCount: l.Orders}
	}
	return out
}

func levelsFrom(ls []*marketdatav1.PriceLevel, d *core.InstrumentDef) []orderbook.Level {
	var out []orderbook.Level
	for _, l := range ls {
		p, _, err1 := parseFixed(l.GetPrice().GetAmount(), int(d.CurrencyExp))
		q, _, err2 := parseFixed(l.Quantity, 6)
		if err1 != nil || err2 != nil || d.TickMinor == 0 || d.LotMicro == 0 {
			continue
		}
		out = append(out, orderbook.Level{Price: p / d.TickMinor, Qty: q / d.LotMicro, Orders: l.OrderCount})
	}
	return out
}

// diffLevels returns the updates that turn side levels old into new: the
// new shown quantity and order count at each price that changed, zero for
// prices that left.
func diffLevels(side typev1.Side, old, new []orderbook.Level, d *core.InstrumentDef) []*marketdatav1.LevelUpdate {
	var out []*marketdatav1.LevelUpdate
	find := func(ls []orderbook.Level, p int64) (orderbook.Level, bool) {
		for _, l := range ls {
			if l.Price == p {
				return l, true
			}
		}
		return orderbook.Level{}, false
	}
	for _, n := range new {
		if o, ok := find(old, n.Price); ok && o.Qty == n.Qty && o.Orders == n.Orders {
			continue
		}
		out = append(out, &marketdatav1.LevelUpdate{Side: side, Level: &marketdatav1.PriceLevel{
			Price: priceMoney(d, n.Price), Quantity: lotsWeight(d, n.Qty), OrderCount: n.Orders}})
	}
	for _, o := range old {
		if _, ok := find(new, o.Price); !ok {
			out = append(out, &marketdatav1.LevelUpdate{Side: side, Level: &marketdatav1.PriceLevel{
				Price: priceMoney(d, o.Price), Quantity: "0", OrderCount: 0}})
		}
	}
	return out
}

func tickerOf(d *core.InstrumentDef, m *core.Market) *marketdatav1.Ticker {
	t := &marketdatav1.Ticker{Symbol: d.Symbol, Phase: tradingv1.InstrumentPhase(m.Phase), Volume: lotsWeight(d, m.Volume)}
	if len(m.Bids) > 0 {
		t.BestBid, t.BestBidQuantity = priceMoney(d, m.Bids[0].Price), lotsWeight(d, m.Bids[0].Qty)
	}
	if len(m.Asks) > 0 {
		t.BestAsk, t.BestAskQuantity = priceMoney(d, m.Asks[0].Price), lotsWeight(d, m.Asks[0].Qty)
	}
	if m.LastPrice > 0 {
		t.LastPrice, t.LastQuantity = priceMoney(d, m.LastPrice), lotsWeight(d, m.LastQty)
	}
	if m.Auction && m.Indicative.Volume > 0 {
		t.IndicativePrice, t.IndicativeQuantity = priceMoney(d, m.Indicative.Price), lotsWeight(d, m.Indicative.Volume)
	}
	return t
}

func sameTicker(a, b *marketdatav1.Ticker) bool {
	m := func(x *typev1.Money) string { return x.GetCurrency() + x.GetAmount() }
	return a.Phase == b.Phase && m(a.BestBid) == m(b.BestBid) && a.BestBidQuantity == b.BestBidQuantity &&
		m(a.BestAsk) == m(b.BestAsk) && a.BestAskQuantity == b.BestAskQuantity && m(a.LastPrice) == m(b.LastPrice) &&
		a.LastQuantity == b.LastQuantity && a.Volume == b.Volume && m(a.IndicativePrice) == m(b.IndicativePrice) &&
		a.IndicativeQuantity == b.IndicativeQuantity
}

// MarketDataPolicy lets every authenticated caller read market data.
func MarketDataPolicy() auth.Policy {
	p := auth.Policy{}
	desc := marketdatav1.MarketDataService_ServiceDesc
	for _, m := range desc.Methods {
		p["/"+desc.ServiceName+"/"+m.MethodName] = auth.Everyone
	}
	for _, m := range desc.Streams {
		p["/"+desc.ServiceName+"/"+m.StreamName] = auth.Everyone
	}
	return p
}

// MarketDataServer serves market data from a Feed. The matching service
// registers one; a gateway process can serve the same API over a Redis
// feed with NewMarketDataServer(feed).
type MarketDataServer struct {
	marketdatav1.UnimplementedMarketDataServiceServer
	feed mdfeed.Feed
}

var _ marketdatav1.MarketDataServiceServer = (*MarketDataServer)(nil)

// NewMarketDataServer returns the MarketDataService over a feed.
func NewMarketDataServer(feed mdfeed.Feed) *MarketDataServer {
	return &MarketDataServer{feed: feed}
}

// subscriberBuffer is how many messages a market data subscriber may fall
// behind before it is cut off.
const subscriberBuffer = 4096

func (m *MarketDataServer) state(ctx context.Context, symbol string) (*mdfeed.State, error) {
	if symbol == "" {
		return nil, rpcerr.Invalid("symbol", "is required")
	}
	st, err := m.feed.State(ctx, symbol)
	if errors.Is(err, mdfeed.ErrUnknown) {
		return nil, rpcerr.NotFound("instrument", symbol)
	}
	return st, err
}

func (m *MarketDataServer) GetTicker(ctx context.Context, req *marketdatav1.GetTickerRequest) (*marketdatav1.GetTickerResponse, error) {
	st, err := m.state(ctx, req.Symbol)
	if err != nil {
		return nil, err
	}
	return &marketdatav1.GetTickerResponse{Ticker: st.Ticker}, nil
}

func (m *MarketDataServer) GetDepth(ctx context.Context, req *marketdatav1.GetDepthRequest) (*marketdatav1.GetDepthResponse, error) {
	n := int(req.Levels)
	switch {
	case n < 0 || n > 100:
		return nil, rpcerr.Invalid("levels", "want 0 (default 10) to 100")
	case n == 0:
		n = 10
	}
	st, err := m.state(ctx, req.Symbol)
	if err != nil {
		return nil, err
	}
	return &marketdatav1.GetDepthResponse{Depth: truncDepth(st.Depth, n)}, nil
}

func truncDepth(d *marketdatav1.Depth, n int) *marketdatav1.Depth {
	return &marketdatav1.Depth{Symbol: d.Symbol, Sequence: d.Sequence, Bids: d.Bids[:min(n, len(d.Bids))], Asks: d.Asks[:min(n, len(d.Asks))]}
}

// ListTrades pages through the recent trades, newest first; the page token
// is the last trade id returned.
func (m *MarketDataServer) ListTrades(ctx context.Context, req *marketdatav1.ListTradesRequest) (*marketdatav1.ListTradesResponse, error) {
	size, before, err := pageArgs(req.PageSize, req.PageToken)
	if err != nil {
		return nil, err
	}
	st, err := m.state(ctx, req.Symbol)
	if err != nil {
		return nil, err
	}
	resp := &marketdatav1.ListTradesResponse{}
	for i := len(st.Trades) - 1; i >= 0 && len(resp.Trades) < size; i-- {
		if t := st.Trades[i]; before == 0 || t.TradeId < before {
			resp.Trades = append(resp.Trades, t)
		}
	}
	if len(resp.Trades) == size {
		resp.NextPageToken = strconv.FormatInt(resp.Trades[size-1].TradeId, 10)
	}
	return resp, nil
}

// StreamMarketData sends the book snapshot (depth_levels a side, default
// and at most 100) with its sequence number, then every later message: the
// level updates cover the top 100 levels a side.
func (m *MarketDataServer) StreamMarketData(req *marketdatav1.StreamMarketDataRequest, stream marketdatav1.MarketDataService_StreamMarketDataServer) error {
	ctx := stream.Context()
	n := int(req.DepthLevels)
	if n <= 0 || n > 100 {
		n = 100
	}
	if req.Symbol == "" {
		return rpcerr.Invalid("symbol", "is required")
	}
	sub, err := m.feed.Subscribe(ctx, req.Symbol, subscriberBuffer)
	if errors.Is(err, mdfeed.ErrUnknown) {
		return rpcerr.NotFound("instrument", req.Symbol)
	}
	if err != nil {
		return err
	}
	defer sub.Close()
	snap := sub.Snapshot()
	if err := stream.Send(&marketdatav1.StreamMarketDataResponse{Sequence: snap.Seq,
		Payload: &marketdatav1.StreamMarketDataResponse_Snapshot{Snapshot: truncDepth(snap.Depth, n)}}); err != nil {
		return err
	}
	for {
		select {
		case msg, ok := <-sub.C():
			if !ok {
				err := sub.Err()
				switch {
				case errors.Is(err, mdfeed.ErrSlow):
					return &rpcerr.Error{Code: codes.ResourceExhausted, Reason: "SLOW_CONSUMER",
						Msg: "the subscriber fell too far behind; resubscribe"}
				case errors.Is(err, mdfeed.ErrGap):
					return &rpcerr.Error{Code: codes.Aborted, Reason: "MARKET_DATA_GAP", Msg: "market data gap; resubscribe"}
				case errors.Is(err, mdfeed.ErrClosed):
					return &rpcerr.Error{Code: codes.Unavailable, Reason: "SHUTTING_DOWN", Msg: "market data feed closed"}
				}
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			if err := stream.Send(msg); err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
		}
	}
}
