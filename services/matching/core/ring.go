package core

import "github.com/bcx-exchange/bcx/pkg/prefault"

// ring is a bounded history: pushing onto a full ring drops the oldest.
type ring[T any] struct {
	buf   []T
	limit int
	head  int // index of the oldest element
	n     int
}

func newRing[T any](limit int) ring[T] { return ring[T]{limit: limit} }

func (r *ring[T]) push(v T) (T, bool) {
	var zero T
	if r.limit <= 0 {
		return v, true
	}
	if r.n < len(r.buf) || len(r.buf) < r.limit {
		if r.n == len(r.buf) {
			// Grow (only while below the limit): straighten first.
			r.straighten()
			r.buf = append(r.buf, v)
			r.n++
			return zero, false
		}
		r.buf[(r.head+r.n)%len(r.buf)] = v
		r.n++
		return zero, false
	}
	old := r.buf[r.head]
	r.buf[r.head] = v
	r.head = (r.head + 1) % len(r.buf)
	return old, true
}

// straighten moves the elements so the oldest is at index 0.
func (r *ring[T]) straighten() {
	if r.head == 0 {
		return
	}
	out := make([]T, r.n, max(r.n, cap(r.buf)))
	for i := range r.n {
		out[i] = r.buf[(r.head+i)%len(r.buf)]
	}
	r.buf, r.head = out, 0
}

func (r *ring[T]) len() int { return r.n }

// at returns the i-th oldest element.
func (r *ring[T]) at(i int) T { return r.buf[(r.head+i)%len(r.buf)] }

// filter keeps, in order, the elements for which keep returns true.
func (r *ring[T]) filter(keep func(T) bool) {
	r.straighten()
	out := r.buf[:0]
	for i := range r.n {
		if v := r.buf[i]; keep(v) {
			out = append(out, v)
		}
	}
	var zero T
	for i := len(out); i < r.n; i++ {
		r.buf[i] = zero
	}
	r.buf, r.n = out, len(out)
}

type fifo = ring[int32]

func newFIFO(limit int) fifo { return newRing[int32](limit) }

// paged is a growable array that never moves its elements: it grows by
// whole pages, so growing copies nothing and pointers into it stay valid.
type paged[T any] struct {
	pages [][]T
	n     int
	next  prefault.Spare[T] // the next page, asked for once a page is half used
}

const pageBits = 12

func (p *paged[T]) at(i int32) *T { return &p.pages[i>>pageBits][i&(1<<pageBits-1)] }

func (p *paged[T]) len() int { return p.n }

// add appends a zero element and returns its index.
func (p *paged[T]) add() int32 {
	switch p.n - (len(p.pages)-1)<<pageBits {
	case 1 << pageBits: // the last page is full (or there is none)
		p.pages = append(p.pages, p.next.Take(1<<pageBits))
	case 1 << (pageBits - 1):
		p.next.Prepare(1 << pageBits)
	}
	p.n++
	return int32(p.n - 1)
}
