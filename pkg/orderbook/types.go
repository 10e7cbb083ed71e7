package orderbook

import "strconv"

// Side is the side of an order.
type Side uint8

const (
	Buy  Side = 0
	Sell Side = 1
)

func (s Side) String() string {
	switch s {
	case Buy:
		return "buy"
	case Sell:
		return "sell"
	}
	return "side(" + strconv.Itoa(int(s)) + ")"
}

// OrderType is limit or market.
type OrderType uint8

const (
	// Limit trades at its Price or better and may rest.
	Limit OrderType = 0
	// Market trades at any price up to its protection limit (Order.Price)
	// and never rests. Its TIF must be IOC or FOK.
	Market OrderType = 1
)

// TIF is an order's time in force.
type TIF uint8

const (
	// GTC rests until cancelled.
	GTC TIF = 0
	// Day rests until cancelled or until ExpireDayOrders.
	Day TIF = 1
	// IOC trades what it can immediately; the remainder is cancelled.
	IOC TIF = 2
	// FOK trades its whole quantity immediately or is rejected.
	FOK TIF = 3
)

func (t TIF) rests() bool { return t == GTC || t == Day }

// STPMode is the self-trade prevention instruction of an incoming order.
type STPMode uint8

const (
	// STPNone allows trades between orders of the same participant.
	STPNone STPMode = 0
	// STPCancelIncoming cancels the remainder of the incoming order.
	STPCancelIncoming STPMode = 1
	// STPCancelResting cancels the resting order and continues matching.
	STPCancelResting STPMode = 2
	// STPCancelBoth cancels the resting order and the incoming remainder.
	STPCancelBoth STPMode = 3
	// STPDecrement reduces both orders by the smaller open quantity.
	STPDecrement STPMode = 4
)

// Phase is the trading phase of a book.
type Phase uint8

const (
	// PhaseContinuous matches incoming orders immediately.
	PhaseContinuous Phase = 0
	// PhaseAuction collects orders without matching until Uncross.
	PhaseAuction Phase = 1
)

// Order is a new order submitted to a Book.
type Order struct {
	ID          int64  // unique among resting orders; may be reused once finished
	Participant int64  // owner, for self-trade prevention and mass cancel
	User        uint64 // opaque caller data, echoed in events and OrderState
	Side        Side
	Type        OrderType
	TIF         TIF
	STP         STPMode
	PostOnly    bool  // reject instead of taking liquidity; limit Day/GTC only
	Price       int64 // limit price, or protection limit of a market order, in ticks
	Qty         int64 // lots, > 0
	DisplayQty  int64 // iceberg display quantity; 0 or >= Qty means fully shown
	MinQty      int64 // minimum quantity that must execute on entry; 0 for none
}

// EventKind says what an Event reports.
type EventKind uint8

const (
	_ EventKind = iota
	// EventAccepted: the order passed validation. Price is the effective
	// limit (the protection limit for a market order), Qty its quantity.
	EventAccepted
	// EventRested: the remainder rests at Price; Qty and Remaining are its
	// open quantity.
	EventRested
	// EventFill: a trade of Qty at Price between OrderID (the incoming
	// order, or the buy order in an auction uncross) and ContraID (the
	// resting order, or the sell order in an uncross).
	EventFill
	// EventCancel: Qty lots of OrderID were cancelled for Reason and the
	// order is finished (Remaining is 0).
	EventCancel
	// EventReduce: the open quantity of OrderID fell by Qty to Remaining,
	// by Reduce (ReasonNone) or self-trade decrement (ReasonSTPDecrement).
	EventReduce
	// EventReplace: OrderID now has price Price and open quantity Qty.
	EventReplace
	// EventReject: a command about OrderID was refused for Reason; the book
	// is unchanged. Price and Qty echo the command; Remaining is 0 and does
	// not describe any order.
	EventReject
	// EventUncross: an auction uncross at Price for a volume of Qty; its
	// fills follow. Price and Qty are 0 if nothing could execute.
	EventUncross
)

var eventKindNames = [...]string{"none", "accepted", "rested", "fill", "cancel", "reduce", "replace", "reject", "uncross"}

func (k EventKind) String() string {
	if int(k) < len(eventKindNames) {
		return eventKindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Event is one thing that happened in a Book. Fields not meaningful for a
// Kind are zero.
type Event struct {
	Kind        EventKind
	Reason      Reason // EventCancel, EventReject, EventReduce
	Side        Side   // side of OrderID
	OrderID     int64
	Participant int64
	User        uint64
	Price       int64
	Qty         int64
	Remaining   int64 // open quantity of OrderID after the event

	// Contra side of an EventFill.
	ContraID          int64
	ContraParticipant int64
	ContraUser        uint64
	ContraRemaining   int64
}

// Sink receives the events of a Book. OnEvent is called synchronously; e
// points into the Book and is valid only during the call.
type Sink interface {
	OnEvent(e *Event)
}

// Reason is why an order was rejected, cancelled or reduced. Each rule has
// its own code.
type Reason uint8

const (
	ReasonNone Reason = iota

	// Rejections of Submit (validation, in the order they are checked).
	ReasonInvalidSide       // Side is not Buy or Sell
	ReasonInvalidType       // Type is not Limit or Market
	ReasonInvalidTIF        // TIF is not GTC, Day, IOC or FOK
	ReasonInvalidSTP        // STP is not a defined mode
	ReasonInvalidQty        // quantity <= 0 or > MaxQty (also Reduce and Replace)
	ReasonPriceOutOfBand    // price outside [MinPrice, MaxPrice] (also Replace)
	ReasonMarketTIF         // market order with TIF other than IOC or FOK
	ReasonInvalidDisplayQty // DisplayQty < 0
	ReasonIcebergNotResting // iceberg that is market, IOC or FOK
	ReasonInvalidMinQty     // MinQty < 0 or > Qty
	ReasonPostOnlyTIF       // post-only that is market, IOC or FOK
	ReasonPostOnlyMinQty    // post-only with MinQty
	ReasonDuplicateID       // an order with this ID is resting
	ReasonAuctionOrderType  // market, IOC or FOK during auction collection
	ReasonAuctionMinQty     // MinQty during auction collection
	ReasonBookFull          // Config.MaxOrders orders are resting

	// Rejections that depend on the book.
	ReasonPostOnlyWouldTake // post-only order (or its replace) would trade
	ReasonFOKNotFillable    // FOK quantity not immediately executable
	ReasonMinQtyNotMet      // less than MinQty immediately executable

	// Rejections of Cancel, Reduce, Replace.
	ReasonUnknownOrder    // no resting order has this ID
	ReasonReduceNotLower  // Reduce to a quantity not below the open quantity
	ReasonReplaceNoChange // Replace with the same price and quantity

	// Cancellations (EventCancel) and reductions (EventReduce).
	ReasonCancelled         // Cancel by the owner
	ReasonIOCRemainder      // unfilled part of an IOC (or FOK) order
	ReasonMarketRemainder   // unfilled part of a market order at its protection limit
	ReasonSTPCancelIncoming // self-trade prevention cancelled the incoming order
	ReasonSTPCancelResting  // self-trade prevention cancelled the resting order
	ReasonSTPCancelBoth     // self-trade prevention cancelled both orders
	ReasonSTPDecrement      // self-trade prevention decremented both orders
	ReasonMassCancel        // CancelParticipant
	ReasonDayExpired        // ExpireDayOrders

	reasonCount
)

var reasonNames = [...]string{
	"none",
	"invalid_side", "invalid_type", "invalid_tif", "invalid_stp", "invalid_qty",
	"price_out_of_band", "market_tif", "invalid_display_qty", "iceberg_not_resting",
	"invalid_min_qty", "post_only_tif", "post_only_min_qty", "duplicate_id",
	"auction_order_type", "auction_min_qty", "book_full",
	"post_only_would_take", "fok_not_fillable", "min_qty_not_met",
	"unknown_order", "reduce_not_lower", "replace_no_change",
	"cancelled", "ioc_remainder", "market_remainder",
	"stp_cancel_incoming", "stp_cancel_resting", "stp_cancel_both", "stp_decrement",
	"mass_cancel", "day_expired",
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// IsReject reports whether r is a rejection reason.
func (r Reason) IsReject() bool { return r > ReasonNone && r < ReasonCancelled }

// OrderState is the full state of a resting order, as read by Order, Walk
// and LevelOrders and written back by Restore.
type OrderState struct {
	ID          int64
	Participant int64
	User        uint64
	Side        Side
	TIF         TIF
	STP         STPMode
	PostOnly    bool
	Price       int64
	Qty         int64 // open quantity, shown and hidden
	Visible     int64 // shown quantity, 0 < Visible <= Qty
	DisplayQty  int64 // iceberg display size, 0 if not an iceberg
	// Accounting: OrigQty == FilledQty + Qty + CancelledQty.
	OrigQty      int64
	FilledQty    int64
	CancelledQty int64
}

// Level is one price level as read by Depth.
type Level struct {
	Price    int64
	Qty      int64 // shown quantity
	TotalQty int64 // shown and hidden quantity
	Orders   int32
}

// Indication is the result an uncross would have now.
type Indication struct {
	Price     int64 // 0 if nothing would execute
	Volume    int64
	BuyQty    int64 // bid quantity at Price or better
	SellQty   int64 // ask quantity at Price or better
	Imbalance int64 // BuyQty - SellQty
}
