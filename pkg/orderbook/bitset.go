package orderbook

import "math/bits"

// bitset is a three-level bitmap over [0, n): l0 has one bit per element, l1
// one bit per non-zero l0 word and l2 one bit per non-zero l1 word. It finds
// the next or previous set element in a few word operations, which is how
// the book finds the next best price level after one empties.
type bitset struct {
	n          int
	l0, l1, l2 []uint64
}

func newBitset(n int) bitset {
	w0 := (n + 63) >> 6
	w1 := (w0 + 63) >> 6
	w2 := (w1 + 63) >> 6
	return bitset{n: n, l0: make([]uint64, w0), l1: make([]uint64, w1), l2: make([]uint64, w2)}
}

func (b *bitset) has(i int) bool { return b.l0[i>>6]&(1<<(uint(i)&63)) != 0 }

func (b *bitset) set(i int) {
	w := i >> 6
	b.l0[w] |= 1 << (uint(i) & 63)
	b.l1[w>>6] |= 1 << (uint(w) & 63)
	b.l2[w>>12] |= 1 << (uint(w>>6) & 63)
}

func (b *bitset) clear(i int) {
	w := i >> 6
	b.l0[w] &^= 1 << (uint(i) & 63)
	if b.l0[w] != 0 {
		return
	}
	w1 := w >> 6
	b.l1[w1] &^= 1 << (uint(w) & 63)
	if b.l1[w1] != 0 {
		return
	}
	b.l2[w1>>6] &^= 1 << (uint(w1) & 63)
}

// next returns the smallest set element >= i, or -1.
func (b *bitset) next(i int) int {
	if i < 0 {
		i = 0
	}
	if i >= b.n {
		return -1
	}
	w := i >> 6
	if m := b.l0[w] >> (uint(i) & 63); m != 0 {
		return i + bits.TrailingZeros64(m)
	}
	w++ // first l0 word to search
	w1 := w >> 6
	if w1 >= len(b.l1) {
		return -1
	}
	if m := b.l1[w1] >> (uint(w) & 63); m != 0 {
		w += bits.TrailingZeros64(m)
		return w<<6 + bits.TrailingZeros64(b.l0[w])
	}
	w1++ // first l1 word to search
	for w2 := w1 >> 6; w2 < len(b.l2); w2++ {
		m := b.l2[w2]
		if w2 == w1>>6 {
			m >>= uint(w1) & 63
		} else {
			w1 = w2 << 6
		}
		if m != 0 {
			w1 += bits.TrailingZeros64(m)
			w = w1<<6 + bits.TrailingZeros64(b.l1[w1])
			return w<<6 + bits.TrailingZeros64(b.l0[w])
		}
	}
	return -1
}

// prev returns the largest set element <= i, or -1.
func (b *bitset) prev(i int) int {
	if i >= b.n {
		i = b.n - 1
	}
	if i < 0 {
		return -1
	}
	w := i >> 6
	if m := b.l0[w] << (63 - uint(i)&63); m != 0 {
		return i - bits.LeadingZeros64(m)
	}
	w-- // last l0 word to search
	if w < 0 {
		return -1
	}
	w1 := w >> 6
	if m := b.l1[w1] << (63 - uint(w)&63); m != 0 {
		w -= bits.LeadingZeros64(m)
		return w<<6 + 63 - bits.LeadingZeros64(b.l0[w])
	}
	w1-- // last l1 word to search
	for w1 >= 0 {
		w2 := w1 >> 6
		m := b.l2[w2] << (63 - uint(w1)&63)
		if m != 0 {
			w1 -= bits.LeadingZeros64(m)
			w = w1<<6 + 63 - bits.LeadingZeros64(b.l1[w1])
			return w<<6 + 63 - bits.LeadingZeros64(b.l0[w])
		}
		w1 = w2<<6 - 1
	}
	return -1
}
