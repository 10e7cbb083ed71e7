package matching

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"google.golang.org/grpc/codes"

	"github.com/bcx-exchange/bcx/pkg/journal"
	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	"github.com/bcx-exchange/bcx/services/matching/core"
)

// execHistory holds every member's executions of the trading day, for
// ListExecutions. The core keeps no executions (they would be in every
// snapshot); this index lives beside it, off the sequencer's state. The sequencer hands it each batch's executions once
// the batch is durable; at start it rebuilds what came before from the
// retained journal, in the background. An instrument's executions are
// dropped at the end of its trading day, as the core drops its client
// order ids and finished orders.
type execHistory struct {
	mu      sync.RWMutex
	byPart  map[string][]histFill // participant id -> fills in trade id order
	upto    uint64                // the last durable record indexed
	loaded  bool                  // the journal before the sequencer's first batch is indexed
	backlog []histBatch           // batches released while loading
	moved   chan struct{}         // closed (and replaced) when upto advances or loading fails
	err     error                 // loading failed
}

// histFill is an execution and its instrument's number.
type histFill struct {
	core.Fill
	instrument int64
}

// histItem is an execution, or (endDay != 0) the end of an instrument's day.
type histItem struct {
	part   string
	fill   histFill
	endDay int64
}

type histBatch struct {
	items []histItem
	upto  uint64
}

func newExecHistory() *execHistory {
	return &execHistory{byPart: map[string][]histFill{}, moved: make(chan struct{})}
}

// hasHistItems tells whether appendHistItems would append anything.
func hasHistItems(ev *core.Events) bool {
	for i := range ev.List {
		if k := ev.List[i].Kind; k == core.EvTrade || (k == core.EvPhase && ev.List[i].EndOfDay) {
			return true
		}
	}
	return false
}

// appendHistItems appends what one record's events add to the history.
func appendHistItems(items []histItem, seq uint64, ts int64, reg *registry, ev *core.Events) []histItem {
	for i := range ev.List {
		e := &ev.List[i]
		switch {
		case e.Kind == core.EvTrade:
			t := &e.Trade
			inst := reg.def(t.Def).Number
			items = append(items,
				histItem{part: reg.participant(t.Buyer), fill: histFill{buyerFill(t, seq, ts), inst}},
				histItem{part: reg.participant(t.Seller), fill: histFill{sellerFill(t, seq, ts), inst}})
		case e.Kind == core.EvPhase && e.EndOfDay:
			items = append(items, histItem{endDay: reg.def(e.Def).Number})
		}
	}
	return items
}

// load indexes the retained journal up to and including last (what the
// sequencer recovered), then whatever was released meanwhile.
func (h *execHistory) load(ctx context.Context, s *Service, last uint64) {
	err := h.loadJournal(ctx, s, last)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.err = fmt.Errorf("loading the execution history from the journal: %w", err)
		if ctx.Err() == nil {
			s.log.Error("execution history unavailable", "error", err)
		}
	} else {
		h.upto = max(h.upto, last)
		for _, b := range h.backlog {
			h.apply(b)
		}
		h.backlog, h.loaded = nil, true
	}
	close(h.moved)
	h.moved = make(chan struct{})
}

func (h *execHistory) loadJournal(ctx context.Context, s *Service, last uint64) error {
	first := max(s.j.FirstSeq(), 1)
	if last < first {
		return nil
	}
	r, err := s.j.NewReader(first)
	if err != nil {
		return err
	}
	defer r.Close()
	var cmd core.Command
	var ev core.Events
	var items []histItem
	for {
		rec, err := r.Next()
		if errors.Is(err, journal.ErrNoRecord) {
			return fmt.Errorf("the journal ends before the recovered %d", last)
		}
		if err != nil {
			return err
		}
		if rec.Seq > last {
			return nil
		}
		if err := core.DecodeRecord(rec.Payload, rec.Seq, rec.Time, &cmd, &ev); err != nil {
			return err
		}
		items = appendHistItems(items[:0], rec.Seq, rec.Time, s.registry(), &ev)
		h.mu.Lock()
		h.apply(histBatch{items: items, upto: rec.Seq})
		h.mu.Unlock()
		if rec.Seq == last {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// release takes a durable batch's items from the sequencer (which gives
// up the slice).
func (h *execHistory) release(items []histItem, upto uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.loaded {
		h.backlog = append(h.backlog, histBatch{items: items, upto: upto})
		return
	}
	h.apply(histBatch{items: items, upto: upto})
	close(h.moved)
	h.moved = make(chan struct{})
}

func (h *execHistory) apply(b histBatch) {
	for i := range b.items {
		it := &b.items[i]
		if it.endDay != 0 {
			h.endDay(it.endDay)
			continue
		}
		h.byPart[it.part] = append(h.byPart[it.part], it.fill)
	}
	h.upto = max(h.upto, b.upto)
}

// endDay drops the executions in an instrument whose trading day ended.
func (h *execHistory) endDay(instrument int64) {
	for p, fs := range h.byPart {
		kept := fs[:0]
		for _, f := range fs {
			if f.instrument != instrument {
				kept = append(kept, f)
			}
		}
		clear(fs[len(kept):])
		if len(kept) == 0 {
			delete(h.byPart, p)
			continue
		}
		h.byPart[p] = kept
	}
}

// page returns up to limit of the participant's executions after the trade
// id, oldest first, in one instrument (0: all), once the index has reached
// seq: the caller passes the durable sequence number it must see.
func (h *execHistory) page(ctx context.Context, seq uint64, participantID string, instrument, after int64, limit int) ([]core.Fill, error) {
	for {
		h.mu.RLock()
		if h.loaded && h.upto >= seq {
			break
		}
		err, moved := h.err, h.moved
		h.mu.RUnlock()
		if err != nil {
			return nil, &rpcerr.Error{Code: codes.Unavailable, Reason: "HISTORY_UNAVAILABLE", Msg: err.Error()}
		}
		select {
		case <-moved:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	defer h.mu.RUnlock()
	fs := h.byPart[participantID]
	i := sort.Search(len(fs), func(i int) bool { return fs[i].TradeID > after })
	var out []core.Fill
	for ; i < len(fs) && len(out) < limit; i++ {
		if instrument == 0 || fs[i].instrument == instrument {
			out = append(out, fs[i].Fill)
		}
	}
	return out, nil
}
