// Package paging holds the one rule every bcx list call pages by: a page
// size of 0 means the default, sizes above the maximum are cut to it, and a
// negative size is InvalidArgument on page_size. (Page tokens stay each
// service's own: they encode different keys.)
package paging

import "github.com/bcx-exchange/bcx/pkg/rpcerr"

const (
	// DefaultSize is the page size when a request asks for none.
	DefaultSize = 50
	// MaxSize is the largest page a list call returns.
	MaxSize = 500
)

// Size turns a request's page_size into the number of items to return.
func Size(requested int32) (int, error) {
	if requested < 0 {
		return 0, rpcerr.Invalid("page_size", "must not be negative")
	}
	if requested == 0 {
		return DefaultSize, nil
	}
	return min(int(requested), MaxSize), nil
}
