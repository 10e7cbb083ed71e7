// Package obbench measures pkg/orderbook on deterministic workloads: the
// command mix exchange-core publishes figures for ("standard") and a deep
// book of adds and cancels ("adds"). Main is the entry point behind
// `bcx bench orderbook`; the same workloads run as Go benchmarks.
package obbench

import (
	"fmt"
	"math/rand/v2"

	"github.com/bcx-exchange/bcx/pkg/orderbook"
)

// Op is the kind of a benchmark command.
type Op uint8

const (
	OpNew     Op = iota // new GTC limit order
	OpReplace           // move a resting order to a new price
	OpCancel            // cancel a resting order
	OpIOC               // IOC limit order that takes liquidity
)

// Cmd is one benchmark command, compact so a chunk stays in cache.
type Cmd struct {
	Op          Op
	Side        orderbook.Side
	ID          int64
	Price       int64
	Qty         int64
	Participant int64
}

// Exec applies c to b.
func Exec(b *orderbook.Book, c *Cmd) {
	switch c.Op {
	case OpNew:
		b.Submit(orderbook.Order{ID: c.ID, Participant: c.Participant, Side: c.Side, TIF: orderbook.GTC, Price: c.Price, Qty: c.Qty})
	case OpIOC:
		b.Submit(orderbook.Order{ID: c.ID, Participant: c.Participant, Side: c.Side, TIF: orderbook.IOC, Price: c.Price, Qty: c.Qty})
	case OpReplace:
		b.Replace(c.ID, c.Price, c.Qty)
	case OpCancel:
		b.Cancel(c.ID)
	}
}

// Mixes are the workload names.
var Mixes = []string{"standard", "adds"}

const (
	handleBits = 17
	handleMask = 1<<handleBits - 1
	iocHandle  = handleMask // never rests
	bandTicks  = 1 << 17
	center     = bandTicks / 2
)

// Workload generates a deterministic command stream from a seed. To know
// which orders are resting it runs every command it generates on its own
// shadow Book first, so a timed Book fed the same commands goes through
// exactly the same states, and generation is not part of what is timed.
type Workload struct {
	Name string

	rng    *rand.Rand
	shadow *orderbook.Book
	seq    int64
	mid    int64
	ops    int64

	target  int   // resting orders to keep
	spread  int64 // orders rest within mid ± spread ticks
	prefill int

	// Resting orders by handle (the low bits of the id), with a dense list
	// for uniform picks.
	live []int64 // ids of resting orders
	pos  []int32 // handle -> index in live, -1 if not resting
	side []orderbook.Side
	free []int32 // free handles
	sink shadowSink
}

type shadowSink struct{ w *Workload }

func (s shadowSink) OnEvent(e *orderbook.Event) {
	w := s.w
	switch e.Kind {
	case orderbook.EventRested:
		w.add(e.OrderID, e.Side)
	case orderbook.EventFill:
		if e.ContraRemaining == 0 {
			w.remove(e.ContraID)
		}
		if e.Remaining == 0 {
			w.remove(e.OrderID)
		}
	case orderbook.EventCancel:
		w.remove(e.OrderID)
	}
}

// NewWorkload returns the named workload ("standard" or "adds").
func NewWorkload(mix string, seed uint64) (*Workload, error) {
	w := &Workload{Name: mix, rng: rand.New(rand.NewPCG(seed, 0xb0c5)), mid: center}
	switch mix {
	case "standard":
		// About 1,000 orders over about 750 occupied price levels.
		w.target, w.spread = 1000, 820
	case "adds":
		// 50,000 orders, about ten per level.
		w.target, w.spread = 50_000, 2500
	default:
		return nil, fmt.Errorf("obbench: unknown mix %q (want standard or adds)", mix)
	}
	w.prefill = w.target
	w.sink = shadowSink{w}
	b, err := orderbook.New(w.Config(), w.sink)
	if err != nil {
		return nil, err
	}
	w.shadow = b
	n := 1 << handleBits
	w.pos = make([]int32, n)
	w.side = make([]orderbook.Side, n)
	w.live = make([]int64, 0, n)
	w.free = make([]int32, 0, n)
	for h := n - 2; h >= 1; h-- { // handle 0 unused, iocHandle reserved
		w.free = append(w.free, int32(h))
		w.pos[h] = -1
	}
	return w, nil
}

// Config is the book configuration the workload is made for.
func (w *Workload) Config() orderbook.Config {
	// Room for the target plus what the mix's swings add, not much more:
	// the book's pools and id index are sized by MaxOrders.
	return orderbook.Config{MinPrice: 1, MaxPrice: bandTicks, MaxOrders: w.target + w.target/4 + 1024}
}

// Shape returns how many orders and price levels rest in the workload's
// shadow book (the timed book is identical).
func (w *Workload) Shape() (orders, levels int) {
	buf := make([]orderbook.Level, 4*w.spread+64)
	return w.shadow.Len(), w.shadow.Depth(orderbook.Buy, buf) + w.shadow.Depth(orderbook.Sell, buf)
}

func (w *Workload) add(id int64, s orderbook.Side) {
	h := id & handleMask
	w.pos[h] = int32(len(w.live))
	w.side[h] = s
	w.live = append(w.live, id)
}

func (w *Workload) remove(id int64) {
	h := id & handleMask
	if h == iocHandle || w.pos[h] < 0 {
		return
	}
	i := w.pos[h]
	last := w.live[len(w.live)-1]
	w.live[i] = last
	w.pos[last&handleMask] = i
	w.live = w.live[:len(w.live)-1]
	w.pos[h] = -1
	w.free = append(w.free, int32(h))
}

// restPrice is a price on side s within the spread around the mid.
func (w *Workload) restPrice(s orderbook.Side) int64 {
	off := 1 + w.rng.Int64N(w.spread)
	if s == orderbook.Buy {
		return w.mid - off
	}
	return w.mid + off
}

func (w *Workload) newID(handle int32) int64 {
	w.seq++
	return w.seq<<handleBits | int64(handle)
}

func (w *Workload) newOrder() Cmd {
	s := orderbook.Side(w.rng.IntN(2))
	h := w.free[len(w.free)-1]
	w.free = w.free[:len(w.free)-1]
	return Cmd{Op: OpNew, Side: s, ID: w.newID(h), Price: w.restPrice(s), Qty: 1 + w.rng.Int64N(100),
		Participant: 1 + w.rng.Int64N(1000)}
}

// apply runs c on the shadow book and keeps the handle bookkeeping.
func (w *Workload) apply(c *Cmd) {
	Exec(w.shadow, c)
	if h := int32(c.ID & handleMask); c.Op == OpNew && w.pos[h] < 0 {
		w.free = append(w.free, h) // traded in full, never rested
	}
}

// Prefill returns the commands that build the starting book.
func (w *Workload) Prefill() []Cmd {
	out := make([]Cmd, 0, w.prefill)
	for len(w.live) < w.prefill {
		c := w.newOrder()
		w.apply(&c)
		out = append(out, c)
	}
	return out
}

// Next fills dst with the next commands and returns it.
func (w *Workload) Next(dst []Cmd) []Cmd {
	for i := range dst {
		dst[i] = w.next()
		w.apply(&dst[i])
	}
	return dst
}

func (w *Workload) pick() int64 { return w.live[w.rng.IntN(len(w.live))] }

func (w *Workload) next() Cmd {
	w.ops++
	if w.Name == "adds" {
		// Half adds, half cancels, held within ±10% of the target.
		n := len(w.live)
		if n < w.target-w.target/10 || (w.rng.IntN(2) == 0 && n < w.target+w.target/10) {
			return w.newOrder()
		}
		return Cmd{Op: OpCancel, ID: w.pick()}
	}
	// The mid drifts one tick every 16 commands, pulled back towards the
	// centre of the band.
	if w.ops&15 == 0 {
		step := int64(w.rng.IntN(2))*2 - 1
		if w.mid > center+20_000 {
			step = -1
		} else if w.mid < center-20_000 {
			step = 1
		}
		w.mid += step
	}
	r := w.rng.IntN(100)
	if len(w.live) == 0 {
		r = 85
	}
	switch {
	case r < 82:
		id := w.pick()
		s := w.side[id&handleMask]
		st, _ := w.shadow.Order(id)
		price := w.restPrice(s)
		if price == st.Price { // a move must move
			if s == orderbook.Buy {
				price--
			} else {
				price++
			}
		}
		return Cmd{Op: OpReplace, Side: s, ID: id, Price: price, Qty: st.Qty}
	case r < 91:
		return w.newOrder()
	case r < 97:
		return Cmd{Op: OpCancel, ID: w.pick()}
	default:
		// IOC through the spread; its size keeps the book near its target.
		s := orderbook.Side(w.rng.IntN(2))
		qty := 1 + w.rng.Int64N(200)
		if len(w.live) < w.target {
			qty = 1 + w.rng.Int64N(30)
		}
		price := w.mid + 50
		if s == orderbook.Sell {
			price = w.mid - 50
		}
		return Cmd{Op: OpIOC, Side: s, ID: w.newID(iocHandle), Price: price, Qty: qty,
			Participant: 1 + w.rng.Int64N(1000)}
	}
}
