// Package prefault prepares large zeroed slices on another goroutine with
// their memory already faulted in, so that a latency-critical goroutine
// that grows a structure does not take the page faults itself.
package prefault

import "unsafe"

// Spare prepares the next large zeroed slice of a growing structure on
// another goroutine, its memory already faulted in. Growing the client
// order id table or starting a page of orders otherwise takes every page
// fault of fresh memory on the sequencer, on the command that happens to
// grow it: measured on this project's VMs at 2-10 µs a fault, a 64 MB
// table is some 16,000 of them, and a day's growth showed up as stalls of
// tens of milliseconds. A spare is indistinguishable from make([]T, n), so
// a deterministic core stays deterministic whether it is ready or not.
// The zero Spare has nothing prepared.
type Spare[T any] struct {
	ch chan []T // the slice being prepared, or ready; nil: none asked for
	n  int      // its length
}

// Prepare starts preparing a slice of length n, unless one is already
// asked for.
func (s *Spare[T]) Prepare(n int) {
	if s.ch != nil {
		return
	}
	s.ch, s.n = make(chan []T, 1), n
	go func(ch chan<- []T) {
		x := make([]T, n)
		TouchPages(x)
		ch <- x
	}(s.ch)
}

// Ready reports whether the slice asked for is ready to take.
func (s *Spare[T]) Ready() bool { return len(s.ch) > 0 }

// Pending reports whether a slice is asked for and not yet taken.
func (s *Spare[T]) Pending() bool { return s.ch != nil }

// Take returns a zeroed slice of length n: the prepared one if it is
// ready and that long, else a new one. Either way nothing is prepared
// after it.
func (s *Spare[T]) Take(n int) []T {
	ch, m := s.ch, s.n
	s.ch = nil
	if ch != nil && m == n {
		select {
		case x := <-ch:
			return x
		default: // not ready: do not wait for the other goroutine
		}
	}
	return make([]T, n)
}

// TryTake returns the prepared slice if it is ready, whatever its length,
// and nothing is prepared after it; else false, and what is asked for
// stays asked for.
func (s *Spare[T]) TryTake() ([]T, bool) {
	select {
	case x := <-s.ch: // a nil channel is never ready
		s.ch = nil
		return x, true
	default:
		return nil, false
	}
}

// TouchPages writes every memory page of x (with the zero it holds), so
// that the kernel maps them now rather than on first use.
func TouchPages[T any](x []T) {
	var zero T
	size := int(unsafe.Sizeof(zero))
	if size == 0 {
		return
	}
	step := max(1, pageSize/size)
	for i := 0; i < len(x); i += step {
		x[i] = zero
	}
	if len(x) > 0 {
		x[len(x)-1] = zero
	}
}

// pageSize is the smallest memory page of the platforms bcx runs on: a
// write every pageSize bytes touches every page.
const pageSize = 4096
