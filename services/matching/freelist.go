package matching

// freeList hands buffers a consumer is done with back to their producer,
// so that each batch or snapshot does not take new memory, for the
// producer to zero and fault in. Neither side ever waits: get finds
// nothing when the list is empty, and put drops what does not fit.
type freeList[T any] chan T

func newFreeList[T any](n int) freeList[T] { return make(chan T, n) }

// get returns a buffer given back, if there is one.
func (f freeList[T]) get() (T, bool) {
	select {
	case x := <-f:
		return x, true
	default:
		var zero T
		return zero, false
	}
}

// put gives x back, unless the list is full.
func (f freeList[T]) put(x T) {
	select {
	case f <- x:
	default:
	}
}
