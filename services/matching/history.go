package matching

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/bcx-exchange/bcx/pkg/journal"
	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	"github.com/bcx-exchange/bcx/services/matching/core"
)

// execHistory holds the members' executions of the current trading day,
// for ListExecutions. The core keeps no executions (they would be in every
// snapshot); this index lives beside it, on its own goroutine (run). The
// sequencer hands it each batch's trades at the end of the batch, before
// they are durable; a query lists only those durable when it began, after
// waiting until everything handed over by then is applied. So a trade is
// listed as soon as it is answered or streamed from the journal, and never
// before it is durable. At start it rebuilds the current day from the
// journal (from core.DayStart) in the background; a query waits for that
// too. An instrument's executions are dropped at the end of its trading
// day, as the core drops its client order ids and finished orders.
//
// Fills are kept per participant and instrument, so that the end of an
// instrument's day costs one deletion per participant and a page costs
// its length, whatever the day's volume.
type execHistory struct {
	maxPerKey int // fills kept per participant and instrument; the oldest go first

	in     chan []histItem      // from the sequencer, in batch order
	free   freeList[[]histItem] // applied batches' lists, for the sequencer to reuse
	handed atomic.Uint64        // batches sent on in
	stop   chan struct{}        // closed to stop run

	mu      sync.RWMutex
	fills   map[histKey]*fillList // in fill order (fillOrder)
	insts   map[string][]int64    // a participant's instruments with fills
	applied uint64                // batches taken from in
	moved   chan struct{}         // closed (and replaced) when applied grows
	loaded  bool                  // the journal before the sequencer's first batch is indexed
	failed  error                 // loading failed: queries are refused, batches dropped
	backlog [][]histItem          // batches taken while loading
	ready   chan struct{}         // closed once loaded or failed
}

type histKey struct {
	part string
	inst int64
}

// histItem is a trade, or (endDay) the end of the day of t.Def's
// instrument. The sequencer only copies trades out of its events; naming
// participants and instruments is left to the history's goroutine.
type histItem struct {
	t      core.Trade
	seq    uint64
	ts     int64
	endDay bool
}

// defaultHistoryPerKey bounds one member's listed executions in one
// instrument in a day (about 110 bytes each).
const defaultHistoryPerKey = 1 << 20

func newExecHistory(maxPerKey int) *execHistory {
	if maxPerKey <= 0 {
		maxPerKey = defaultHistoryPerKey
	}
	return &execHistory{maxPerKey: maxPerKey, in: make(chan []histItem, 1024), free: newFreeList[[]histItem](4), stop: make(chan struct{}), fills: map[histKey]*fillList{},
		insts: map[string][]int64{}, moved: make(chan struct{}), ready: make(chan struct{})}
}

// fillOrder orders a participant's fills: by trade, the buy side first (a
// self-trade gives one participant both). It is also the page token.
func fillOrder(f *core.Fill) int64 { return f.TradeID<<1 | int64(f.Side&1) }

// appendHistItems appends what one record's events add to the history.
func appendHistItems(items []histItem, seq uint64, ts int64, ev *core.Events) []histItem {
	for i := range ev.List {
		e := &ev.List[i]
		switch e.Kind {
		case core.EvTrade:
			items = append(items, histItem{t: *ev.Trade(e), seq: seq, ts: ts})
		case core.EvPhase:
			if d := ev.Detail(e); d.EndOfDay {
				items = append(items, histItem{t: core.Trade{Def: d.Def}, endDay: true})
			}
		}
	}
	return items
}

// hand gives the history a batch's items; the sequencer gives up the
// slice. It blocks only if the history is 1,024 batches behind.
func (h *execHistory) hand(items []histItem) {
	if len(items) == 0 {
		if cap(items) > 0 {
			h.recycle(items)
		}
		return
	}
	select {
	case h.in <- items:
		h.handed.Add(1)
	case <-h.stop:
		// Closed: the service is shutting down, nobody will ask.
	}
}

// spare returns an empty list for a batch's items, reusing one the
// history is done with if there is one (see newMDBatch).
func (h *execHistory) spare() []histItem {
	items, _ := h.free.get()
	return items
}

func (h *execHistory) recycle(items []histItem) { h.free.put(items[:0]) }

// run applies the batches handed over until stop is closed. reg is the
// service's registry, published before a batch is handed over.
func (h *execHistory) run(reg func() *registry) {
	for {
		var items []histItem
		select {
		case items = <-h.in:
		case <-h.stop:
			return
		}
		reg := reg()
		h.mu.Lock()
		switch {
		case h.failed != nil:
		case !h.loaded:
			h.backlog = append(h.backlog, items)
		default:
			h.apply(reg, items)
			h.recycle(items)
		}
		h.applied++
		close(h.moved)
		h.moved = make(chan struct{})
		h.mu.Unlock()
	}
}

// load indexes the journal from..last (the current trading day up to what
// the sequencer recovered), then whatever was handed over meanwhile.
func (h *execHistory) load(ctx context.Context, s *Service, from, last uint64) {
	t0 := time.Now()
	err := h.loadJournal(ctx, s, from, last)
	switch {
	case err == nil:
		s.log.Info("execution history loaded", "from_seq", from, "to_seq", last, "took", time.Since(t0))
	case ctx.Err() == nil:
		s.log.Error("execution history unavailable", "error", err)
	}
	h.finish(s.registry, err)
}

// finish ends loading: on success the batches handed over meanwhile are
// applied; on failure they are dropped, and so will be later ones.
//
// reg is read under the lock: every batch in the backlog was handed over,
// so published, before it.
func (h *execHistory) finish(registry func() *registry, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	reg := registry()
	if err != nil {
		h.failed = fmt.Errorf("loading the day's executions from the journal: %w", err)
		h.backlog = nil
	} else {
		for _, b := range h.backlog {
			h.apply(reg, b)
		}
		h.backlog, h.loaded = nil, true
	}
	close(h.ready)
}

func (h *execHistory) loadJournal(ctx context.Context, s *Service, from, last uint64) error {
	if first := s.j.FirstSeq(); from < first {
		// Deleted segments took the start of the day with them.
		s.log.Warn("the day's first executions are no longer in the journal", "day_start", from, "first_retained", first)
		from = first
	}
	if last < from {
		return nil
	}
	// The records up to last are durable: readEvents does not wait for
	// them.
	var items []histItem
	err := s.readEvents(ctx, int64(from), func(seq uint64, ts int64, reg *registry, ev *core.Events) error {
		if items = appendHistItems(items[:0], seq, ts, ev); len(items) > 0 {
			h.mu.Lock()
			h.apply(reg, items)
			h.mu.Unlock()
		}
		if seq >= last {
			return errLoaded
		}
		return ctx.Err() // a Close during the load stops it
	})
	switch {
	case errors.Is(err, errLoaded):
		return nil
	case err != nil:
		return err
	case ctx.Err() != nil:
		return ctx.Err()
	default: // the journal closed
		return journal.ErrClosed
	}
}

// errLoaded ends loadJournal's read of the journal.
var errLoaded = errors.New("loaded")

func (h *execHistory) apply(reg *registry, items []histItem) {
	for i := range items {
		it := &items[i]
		inst := reg.def(it.t.Def).Number
		if it.endDay {
			h.endDay(inst)
			continue
		}
		h.add(histKey{reg.participant(it.t.Buyer), inst}, buyerFill(&it.t, it.seq, it.ts))
		h.add(histKey{reg.participant(it.t.Seller), inst}, sellerFill(&it.t, it.seq, it.ts))
	}
}

func (h *execHistory) add(k histKey, f core.Fill) {
	l := h.fills[k]
	if l == nil {
		l = &fillList{chunk: min(fillChunk, h.maxPerKey)}
		h.fills[k] = l
		h.insts[k.part] = append(h.insts[k.part], k.inst)
	}
	l.add(f)
	if l.n > h.maxPerKey+l.chunk {
		l.dropOldest()
	}
}

// fillList is a list of fills in chunks, so that it grows without copying
// what it holds and its oldest fills go a chunk at a time. Every chunk but
// the last is full.
type fillList struct {
	chunks [][]core.Fill
	chunk  int // fills per chunk
	n      int
}

const fillChunk = 4096

func (l *fillList) add(f core.Fill) {
	if l.n == len(l.chunks)*l.chunk {
		// A new chunk starts small: most lists stay short.
		l.chunks = append(l.chunks, make([]core.Fill, 0, min(8, l.chunk)))
	}
	last := &l.chunks[len(l.chunks)-1]
	if len(*last) == cap(*last) {
		grown := make([]core.Fill, len(*last), min(2*cap(*last), l.chunk))
		copy(grown, *last)
		*last = grown
	}
	*last = append(*last, f)
	l.n++
}

func (l *fillList) at(i int) *core.Fill { return &l.chunks[i/l.chunk][i%l.chunk] }

func (l *fillList) dropOldest() {
	l.chunks[0] = nil
	l.chunks = l.chunks[1:]
	l.n -= l.chunk
}

// endDay drops the executions in an instrument whose trading day ended.
func (h *execHistory) endDay(instrument int64) {
	for part, insts := range h.insts {
		i := slices.Index(insts, instrument)
		if i < 0 {
			continue
		}
		delete(h.fills, histKey{part, instrument})
		if insts = slices.Delete(insts, i, i+1); len(insts) == 0 {
			delete(h.insts, part)
		} else {
			h.insts[part] = insts
		}
	}
}

// page returns up to limit of the participant's executions after the page
// token (a fillOrder), oldest first, in one instrument (0: all), of those
// with sequence numbers up to durable. It waits until the day before the
// sequencer's first batch is loaded and every batch handed over before the
// call is applied.
func (h *execHistory) page(ctx context.Context, durable uint64, participantID string, instrument, after int64, limit int) ([]core.Fill, error) {
	select {
	case <-h.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	target := h.handed.Load()
	for {
		h.mu.RLock()
		if h.applied >= target {
			break
		}
		moved := h.moved
		h.mu.RUnlock()
		select {
		case <-moved:
		case <-h.stop:
			return nil, &rpcerr.Error{Code: codes.Unavailable, Reason: "UNAVAILABLE", Msg: "the matching service is shutting down"}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	defer h.mu.RUnlock()
	if h.failed != nil {
		return nil, &rpcerr.Error{Code: codes.Unavailable, Reason: "HISTORY_UNAVAILABLE", Msg: h.failed.Error()}
	}
	insts := h.insts[participantID]
	if instrument != 0 {
		insts = []int64{instrument}
	}
	// Merge the participant's instruments (a handful) in fill order.
	type cursor struct {
		l      *fillList
		i, end int
	}
	cs := make([]cursor, 0, len(insts))
	for _, inst := range insts {
		l := h.fills[histKey{participantID, inst}]
		if l == nil {
			continue
		}
		i := sort.Search(l.n, func(i int) bool { return fillOrder(l.at(i)) > after })
		// Fills are in sequence order too: the ones not yet durable end it.
		end := sort.Search(l.n, func(i int) bool { return l.at(i).Seq > durable })
		if i < end {
			cs = append(cs, cursor{l, i, end})
		}
	}
	var out []core.Fill
	for len(out) < limit {
		best := -1
		for k := range cs {
			if cs[k].i < cs[k].end && (best < 0 || fillOrder(cs[k].l.at(cs[k].i)) < fillOrder(cs[best].l.at(cs[best].i))) {
				best = k
			}
		}
		if best < 0 {
			break
		}
		out = append(out, *cs[best].l.at(cs[best].i))
		cs[best].i++
	}
	return out, nil
}
