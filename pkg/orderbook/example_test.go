package orderbook_test

import (
	"fmt"

	"github.com/bcx-exchange/bcx/pkg/orderbook"
)

// printer is a Sink that prints each event.
type printer struct{}

func (printer) OnEvent(e *orderbook.Event) {
	switch e.Kind {
	case orderbook.EventFill:
		fmt.Printf("fill %d x %d: %d@%d, left %d/%d\n", e.OrderID, e.ContraID, e.Qty, e.Price, e.Remaining, e.ContraRemaining)
	case orderbook.EventCancel, orderbook.EventReject:
		fmt.Printf("%v %d: %v\n", e.Kind, e.OrderID, e.Reason)
	default:
		fmt.Printf("%v %d: %d@%d\n", e.Kind, e.OrderID, e.Qty, e.Price)
	}
}

func Example() {
	book, err := orderbook.New(orderbook.Config{MinPrice: 1, MaxPrice: 10_000, MaxOrders: 1000}, printer{})
	if err != nil {
		panic(err)
	}
	book.Submit(orderbook.Order{ID: 1, Participant: 10, Side: orderbook.Sell, Price: 5000, Qty: 30, DisplayQty: 10})
	book.Submit(orderbook.Order{ID: 2, Participant: 20, Side: orderbook.Buy, Price: 5001, Qty: 15, TIF: orderbook.IOC})
	book.Submit(orderbook.Order{ID: 3, Participant: 20, Side: orderbook.Buy, Price: 5000, Qty: 5, PostOnly: true})

	var depth [5]orderbook.Level
	n := book.Depth(orderbook.Sell, depth[:])
	fmt.Printf("asks: %+v\n", depth[:n])
	// Output:
	// accepted 1: 30@5000
	// rested 1: 30@5000
	// accepted 2: 15@5001
	// fill 2 x 1: 10@5000, left 5/20
	// fill 2 x 1: 5@5000, left 0/15
	// reject 3: post_only_would_take
	// asks: [{Price:5000 Qty:5 TotalQty:15 Orders:1}]
}
