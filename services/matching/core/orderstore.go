package core

import (
	"slices"
	"sync/atomic"

	"github.com/bcx-exchange/bcx/pkg/prefault"
)

// orderStore holds the orders by slot, in small pages that a snapshot can
// freeze. The books' resting orders are most of a snapshot, and they are
// encoded in the books' priority order, which is not the slots': reading
// them is a cache miss an order, 40 ms of the 80 ms a 400k-order head took
// with the sequencer stopped. A frozen store lets that encoding run on
// another goroutine while the sequencer goes on: freeze hands the reader
// the pages as they are, and the sequencer's first touch of a frozen page
// afterwards copies it (copy on write), so the reader's pages are never
// written again. A page is small (64 orders, 18 KB): the copies spread
// over the batches that first touch each page, rather than one batch
// copying the store.
//
// Pages are cut from chunks prepared off the sequencer (prefault.Spare), so
// a new page takes no page faults there. A copy is made into a page
// retired by the last snapshot's copies, or one prepared off the
// sequencer (prepareCopies), so the store keeps up to twice its pages.
// While the collector marks, a copy still pays its write barriers: the
// pages hold pointers (lst, auc, wn, cloid).
type orderStore struct {
	pages []orderPage
	n     int
	// readers counts the frozen views still being read (freeze and
	// release); with none, a touch after a freeze copies nothing.
	readers atomic.Int32
	copies  int64 // pages copied on write (a statistic)
	// retired are the pages copied away from since the last freeze that
	// found no reader; spare those retired before it, which no reader
	// holds any more: a copy is made into one of them, memory already
	// faulted in. Fresh heap memory took page faults on the sequencer,
	// and a copy cost 17 µs on average rather than 3.
	retired, spare []*pageOrders
	// spares is a chunk of pages for copies being prepared off the
	// sequencer (prepareCopies), before any page has been retired.
	spares prefault.Spare[order]
	chunk  []order // what is left of the current chunk
	next   prefault.Spare[order]
}

// orderPage is a page of the store: its orders, and whether a frozen view
// may hold them (not since copied, or found with no reader left).
type orderPage struct {
	o      *pageOrders
	frozen bool
}

type pageOrders = [orderPageSize]order

const (
	orderPageBits  = 6
	orderPageSize  = 1 << orderPageBits
	orderChunkSize = 1 << 12 // orders in a chunk of pages (1.1 MB)
)

// at returns the order in slot i, to read or write: a frozen page is
// copied first. (The call to thaw keeps at from being inlined: it is
// about 4% of the core's time in BenchmarkCoreApply.)
func (s *orderStore) at(i int32) *order {
	pg := &s.pages[i>>orderPageBits]
	if pg.frozen {
		s.thaw(pg)
	}
	return &pg.o[i&(orderPageSize-1)]
}

// peek returns the order in slot i to read only, without thawing its page:
// for loops over every slot that write nothing.
func (s *orderStore) peek(i int32) *order {
	return &s.pages[i>>orderPageBits].o[i&(orderPageSize-1)]
}

func (s *orderStore) len() int { return s.n }

// thaw makes page p the sequencer's to write: a copy if a frozen view may
// still be reading it. An order's further sell reservations (wn) are
// written in place, so the copy takes its own.
//
//go:noinline
func (s *orderStore) thaw(pg *orderPage) {
	pg.frozen = false
	if s.readers.Load() == 0 {
		return
	}
	var cp *pageOrders
	if n := len(s.spare); n > 0 {
		cp, s.spare = s.spare[n-1], s.spare[:n-1]
	} else {
		cp = new(pageOrders)
	}
	s.retired = append(s.retired, pg.o)
	*cp = *pg.o
	for k := range cp {
		if cp[k].wn != nil {
			cp[k].wn = slices.Clone(cp[k].wn)
		}
	}
	pg.o = cp
	s.copies++
}

// add appends a zero order and returns its slot.
func (s *orderStore) add() int32 {
	if s.n == len(s.pages)<<orderPageBits {
		if len(s.chunk) == 0 {
			s.chunk = s.next.Take(orderChunkSize)
		}
		s.pages = append(s.pages, orderPage{o: (*pageOrders)(s.chunk)})
		s.chunk = s.chunk[orderPageSize:]
		if len(s.chunk) == orderChunkSize/2 {
			s.next.Prepare(orderChunkSize)
		}
	}
	s.n++
	return int32(s.n - 1)
}

// prepareCopies has pages for the next freeze's copies prepared off the
// sequencer, as many as the store has less those it already has for
// them. The first snapshot's copies were otherwise all fresh heap memory,
// page faults and the collector's assists taken on the sequencer.
func (s *orderStore) prepareCopies() {
	if n := len(s.pages) - len(s.spare) - len(s.retired); n > len(s.pages)/8 && !s.spares.Pending() {
		s.spares.Prepare(n * orderPageSize)
	}
}

// frozenOrders is a read-only view of the store as it was at a freeze.
type frozenOrders struct {
	pages []*pageOrders
	store atomic.Pointer[orderStore] // nil once released
}

// freeze returns a view of the orders as they are now, which stays so
// (and may be read on any goroutine) until it is released.
func (s *orderStore) freeze() *frozenOrders {
	if s.readers.Load() == 0 {
		s.spare = append(s.spare, s.retired...)
		clear(s.retired)
		s.retired = s.retired[:0]
	}
	if chunk, ok := s.spares.TryTake(); ok {
		for len(chunk) >= orderPageSize {
			s.spare = append(s.spare, (*pageOrders)(chunk))
			chunk = chunk[orderPageSize:]
		}
	}
	s.readers.Add(1)
	f := &frozenOrders{pages: make([]*pageOrders, len(s.pages))}
	for k := range s.pages {
		f.pages[k] = s.pages[k].o
		s.pages[k].frozen = true
	}
	f.store.Store(s)
	return f
}

func (f *frozenOrders) at(i int32) *order {
	return &f.pages[i>>orderPageBits][i&(orderPageSize-1)]
}

// release ends the view, once its reader is done with it: its pages are
// the store's to write again. Releases after the first do nothing.
func (f *frozenOrders) release() {
	if f == nil {
		return
	}
	if s := f.store.Swap(nil); s != nil {
		f.pages = nil
		s.readers.Add(-1)
	}
}
