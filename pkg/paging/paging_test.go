package paging

import "testing"

func TestSize(t *testing.T) {
	for _, tc := range []struct {
		in   int32
		want int
		err  bool
	}{{0, DefaultSize, false}, {1, 1, false}, {MaxSize, MaxSize, false}, {MaxSize + 1, MaxSize, false}, {-1, 0, true}} {
		got, err := Size(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("Size(%d) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}
