package core

import (
	"strconv"

	"github.com/bcx-exchange/bcx/pkg/orderbook"
)

// Side, OrderType, TIF and STPMode are the order book's.
type (
	Side      = orderbook.Side
	OrderType = orderbook.OrderType
	TIF       = orderbook.TIF
	STPMode   = orderbook.STPMode
)

// Phase is an instrument's trading phase. The values equal
// bcx.trading.v1.InstrumentPhase.
type Phase uint8

const (
	PhaseClosed     Phase = 1
	PhasePreOpen    Phase = 2
	PhaseContinuous Phase = 3
	PhaseHalted     Phase = 4
)

var phaseNames = [...]string{"unspecified", "closed", "pre_open", "continuous", "halted"}

func (p Phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return "phase(" + strconv.Itoa(int(p)) + ")"
}

// PhaseSource says who asked for a phase change.
type PhaseSource uint8

const (
	// SourceSchedule is the service's scheduler. It never ends an operator's
	// halt, except by closing the day.
	SourceSchedule PhaseSource = 0
	// SourceOperator is an operator through CoreService.SetInstrumentPhase.
	SourceOperator PhaseSource = 1
)

// Reject is why the core refused a command. The values equal
// bcx.trading.v1.RejectReason; RejectInstrumentAmended and RejectIdempotencyKey
// have no proto value and are rendered by name.
type Reject uint8

const (
	RejectNone                 Reject = 0
	RejectUnknownInstrument    Reject = 1
	RejectPriceOffTick         Reject = 2
	RejectPriceOutsideBand     Reject = 3
	RejectQuantityNotPositive  Reject = 4
	RejectQuantityNotWholeLots Reject = 5
	RejectInsufficientFunds    Reject = 6
	RejectInsufficientPosition Reject = 7
	RejectWrongPhase           Reject = 8
	RejectDuplicateClientID    Reject = 9
	RejectWrongCurrency        Reject = 10
	RejectPostOnlyWouldTake    Reject = 11
	RejectFOKUnfilled          Reject = 12
	RejectMinQtyUnfilled       Reject = 13
	RejectSelfTrade            Reject = 14
	RejectModeNotAllowed       Reject = 15
	RejectUnknownOrder         Reject = 16
	RejectTooLarge             Reject = 17

	// RejectInvalid is a malformed field without a specific reason.
	RejectInvalid Reject = 100
	// RejectInstrumentAmended: the command was converted with an instrument
	// definition that has since changed; convert again and resend.
	RejectInstrumentAmended Reject = 101
	// RejectIdempotencyKey: the key was used before for a different request.
	RejectIdempotencyKey Reject = 102
	// RejectReceiptExists: the receipt is already deposited.
	RejectReceiptExists Reject = 103
	// RejectNoChange: a replace that changes nothing.
	RejectNoChange Reject = 104
	// RejectBookFull: the instrument's book holds its maximum of orders.
	RejectBookFull Reject = 105
	// RejectNoFXRate: the participant funds this currency from another and
	// no published rate is valid now.
	RejectNoFXRate Reject = 106
	// RejectBidTooLow: an auction bid below the reserve, or not beating
	// the best bid by the minimum increment.
	RejectBidTooLow Reject = 107
)

// Status is the outcome class of a command; the service maps it to a gRPC
// code.
type Status uint8

const (
	StatusOK Status = iota
	// StatusInvalid is InvalidArgument: the request itself is wrong.
	StatusInvalid
	// StatusRefused is FailedPrecondition: the state of the exchange refuses
	// it (funds, position, phase, mode).
	StatusRefused
	// StatusNotFound: no such order (or not the caller's).
	StatusNotFound
)

// OrderStatus values equal bcx.trading.v1.OrderStatus.
type OrderStatus uint8

const (
	StatusNew             OrderStatus = 1
	StatusPartiallyFilled OrderStatus = 2
	StatusFilled          OrderStatus = 3
	StatusCancelled       OrderStatus = 4
	StatusExpired         OrderStatus = 5
)

// CmdKind is the kind of a command, and of its journal record.
type CmdKind uint8

const (
	CmdDefineInstrument CmdKind = 1
	CmdSetPhase         CmdKind = 2
	CmdSetFeeSchedule   CmdKind = 3
	CmdCreditFunds      CmdKind = 4
	CmdDebitFunds       CmdKind = 5
	CmdCreditPosition   CmdKind = 6
	CmdDebitPosition    CmdKind = 7
	CmdPlace            CmdKind = 8
	CmdCancel           CmdKind = 9
	CmdReplace          CmdKind = 10
	CmdMassCancel       CmdKind = 11
	CmdSetFXRate        CmdKind = 12
	CmdSetFunding       CmdKind = 13
	CmdPostListing      CmdKind = 14
	CmdTakeListing      CmdKind = 15
	CmdWithdrawListing  CmdKind = 16
	// CmdExpireListings ends the listings whose expiry has come and closes
	// the one-sided auctions whose window has ended.
	CmdExpireListings CmdKind = 17
	CmdStartAuction   CmdKind = 18
	CmdAuctionBid     CmdKind = 19
	cmdKindMax        CmdKind = 19
)

// InstrumentDef is what the core needs of an instrument, in its units.
type InstrumentDef struct {
	Number  int64 // the listing service's numeric id
	Symbol  string
	Version int64 // increases with every amendment
	// Currency is the quote currency's code and minor-unit exponent.
	Currency    string
	CurrencyExp int32
	// LotMicro is one lot's weight in micro-units of the commodity's unit
	// (micro-tonnes).
	LotMicro int64
	// TickMinor is one tick of price in minor units per unit (fen per tonne);
	// TickLotMinor is one tick on one lot in minor units: the notional of a
	// trade is priceTicks * TickLotMinor * lots, exactly.
	TickMinor    int64
	TickLotMinor int64
	// ReferenceTicks ± BandTicks is the price band.
	ReferenceTicks int64
	BandTicks      int64
	CallAuction    bool // call auction mode allowed (pre-open)
	Continuous     bool // continuous mode allowed
	Listing        bool // listing mode (挂牌/摘牌) allowed
	OneSided       bool // one-sided auctions (竞买) allowed
	Delisted       bool
}

// FeeBasis values equal bcx.type.v1.FeeBasis; 0 charges nothing but the
// minimum.
type FeeBasis uint8

const (
	FeeNone   FeeBasis = 0
	FeeRate   FeeBasis = 1
	FeePerLot FeeBasis = 2
)

// RateScale is the fixed-point scale of FeeRule.RateE12.
const RateScale = 1_000_000_000_000

// FeeRule is one side's fee. Fees are rounded half up to the minor unit,
// per fill (see fee).
type FeeRule struct {
	Basis       FeeBasis
	RateE12     int64 // FeeRate: the fraction of notional times 1e12, 0 <= rate < 1
	PerLotMinor int64 // FeePerLot: minor units per lot
	MinMinor    int64 // at least this per fill and side
}

// FeeSchedule is an instrument's fee rules for buyers and sellers.
type FeeSchedule struct {
	Buyer, Seller FeeRule
}

// Command is one sequenced command. Only the fields of its Kind are used
// (and journaled).
type Command struct {
	Kind CmdKind

	// Participant is the acting (or, for CoreService commands, the
	// affected) participant's number, ParticipantID its id.
	Participant   int64
	ParticipantID string

	// Instrument is the instrument's number. DefVersion, if non-zero, is the
	// definition version the caller converted prices and quantities with;
	// a different current version refuses the command.
	Instrument int64
	DefVersion int64

	// Orders.
	ClientOrderID string
	Side          Side
	Type          OrderType
	TIF           TIF
	STP           STPMode
	PostOnly      bool
	Price         int64 // ticks; a market order's protection price; 0 in a replace keeps the price
	Qty           int64 // lots; in a replace the new total, 0 keeps it
	DisplayQty    int64
	MinQty        int64
	// OpenQty makes a replace's Qty the new open quantity instead of the
	// new total.
	OpenQty bool
	// OrderID or OrigClientOrderID name the order of a cancel or replace.
	OrderID           int64
	OrigClientOrderID string
	// Funding and positions.
	Key         string // idempotency key
	Currency    string
	CurrencyExp int32
	Amount      int64 // minor units, > 0
	Receipt     string
	Symbols     []int64 // instrument numbers a receipt qualifies for
	WeightMicro int64   // > 0
	// FX: a rate (Key is its id, Amount its coefficient at FXRateDecimals)
	// converts Currency (base) and CounterCurrency (quote), valid in
	// [ValidFrom, ValidUntil); a funding preference funds Currency (the
	// trade currency) from CounterCurrency ("" ends it).
	CounterCurrency       string
	CounterExp            int32
	ValidFrom, ValidUntil int64
	// Listing is a listing's goods (CmdPostListing); its minimum take is
	// MinQty, its expiry ValidUntil (0: the end of the trading day). A take
	// names the listing by OrderID.
	Listing *ListingSpec
	// Auction is a one-sided auction's terms (CmdStartAuction: Qty lots
	// from Listing.Receipts, reserve price Price); a bid (CmdAuctionBid)
	// names the auction by OrderID.
	Auction *AuctionSpec
	// Version orders FX commands: a rate's number (of two rates valid from
	// the same time, the higher wins, as settlement's rate ids do), or a
	// funding preference's version (an older one than the core holds is
	// ignored, so a delayed command cannot undo a later change).
	Version int64

	// Reference data and control.
	Def         InstrumentDef
	Fees        FeeSchedule
	Phase       Phase
	PhaseSource PhaseSource
	// EndOfDay on a close expires day orders and ends the trading day.
	EndOfDay bool
}

// ListingSpec is what a listing offers beyond an order's fields.
type ListingSpec struct {
	// Receipts a sell listing delivers from (empty: any of the seller's
	// receipts for the instrument).
	Receipts                                []string
	Grade, Brand, Warehouse, ProductionDate string
}

// AuctionSpec is a one-sided auction's window and bidding rule.
type AuctionSpec struct {
	MinIncrement int64 // ticks a bid must beat the best bid by (at least 1)
	Starts, Ends int64 // unix ns; bids are taken in [Starts, Ends)
	Extension    int64 // ns: a bid within this of the end moves the end to bid time + Extension
}

// Fill is one execution of an order, as the command's result reports it
// and the participant's history keeps it.
type Fill struct {
	TradeID   int64
	OrderID   int64
	ClientID  string
	Def       int32 // instrument definition index
	Side      Side
	Price     int64 // ticks
	Qty       int64 // lots
	Maker     bool
	FeeMinor  int64
	Seq       uint64
	TimeNanos int64
	FX        FXLeg // an FX-funded order's conversion of this fill
}

// OrderView is an order's state.
type OrderView struct {
	ID          int64
	Participant int32 // participant index
	Def         int32 // instrument definition index
	Side        Side
	Type        OrderType
	TIF         TIF
	STP         STPMode
	PostOnly    bool
	Status      OrderStatus
	Price       int64 // ticks (a market order's protection price)
	Qty         int64 // original lots, plus replace increases
	Filled      int64
	Open        int64
	Cancelled   int64
	DisplayQty  int64
	MinQty      int64
	// NotionalTicks is the sum of price x lots over fills: the average fill
	// price is NotionalTicks / Filled.
	NotionalTicks int64
	ClientID      string
	Created       int64 // unix ns
	Updated       int64 // unix ns
	Seq           uint64
}

// Result is what a command did. The caller owns it and may reuse it: Apply
// resets it.
type Result struct {
	Status Status
	Reject Reject
	Field  string // the request field at fault
	// Changed is set when the command changed state: it must be journaled.
	// A command that did not change anything (refused, duplicate, no-op)
	// leaves no trace and need not be.
	Changed bool
	// Duplicate is set for an idempotent repeat (same key or client order
	// id with the same content): nothing changed, Seq is the original's.
	Duplicate bool
	Seq       uint64
	HasOrder  bool
	Order     OrderView
	Fills     []Fill // the command's order's fills, in order
	Count     int64  // orders cancelled by a mass cancel
	Phase     Phase  // the phase after a SetPhase
}

func (r *Result) reset() {
	fills := r.Fills[:0]
	*r = Result{Fills: fills}
}

func (r *Result) refuse(st Status, rej Reject, field string) {
	r.Status, r.Reject, r.Field = st, rej, field
}

// EventKind is the kind of a core event.
type EventKind uint8

const (
	// EvOrder: an order's state after the command (one per order touched,
	// in the order they were first touched).
	EvOrder EventKind = 1
	// EvTrade: a trade between two orders.
	EvTrade EventKind = 2
	// EvFunds: a participant's funds were credited (Amount > 0) or debited.
	EvFunds EventKind = 3
	// EvPosition: a receipt pool was deposited (Weight > 0) or withdrawn.
	EvPosition EventKind = 4
	// EvPhase: an instrument changed phase.
	EvPhase EventKind = 5
	// EvInstrument: an instrument definition was added (Def).
	EvInstrument EventKind = 6
	// EvFeeSchedule: an instrument's fee schedule changed (Def, FeeIndex).
	EvFeeSchedule EventKind = 7
	// EvFXRate: a rate was published (FeeIndex is its index, for FXRate).
	EvFXRate EventKind = 8
	// EvFunding: a participant's funding currency for trades in Currency
	// changed to FeeIndex (a currency index; -1: none).
	EvFunding EventKind = 9
	evKindMax EventKind = 9
)

// Alloc is weight of one receipt delivered by a sale.
type Alloc struct {
	Receipt     string
	WeightMicro int64
}

// Trade is a trade's full record.
type Trade struct {
	ID          int64
	Def         int32
	Price       int64 // ticks
	Qty         int64 // lots
	BuyOrder    int64
	SellOrder   int64
	Buyer       int32 // participant index
	Seller      int32
	Aggressor   uint8 // 0 none (auction), 1 buy, 2 sell (bcx.type.v1.Side)
	BuyerFee    int64
	SellerFee   int64
	BuyClient   string
	SellClient  string
	AllocsStart int32 // into the event list's allocation buffer
	AllocsEnd   int32
	// An FX-funded side's conversion (Rate 0: none).
	BuyerFX, SellerFX FXLeg
	// Listing is the listing's id when the trade is a take of one;
	// Auction the auction's when it is an auction's result.
	Listing, Auction int64
}

// FXLeg is the conversion of one side of a trade into its funding
// currency: the buyer paid, or the seller received, Amount minor units of
// currency Currency (an index) instead of the trade currency, at the rate
// with index Rate-1.
type FXLeg struct {
	Rate     int32
	Currency int32
	Amount   int64
}

// Event is one thing that happened: its kind and the index of its payload
// in the Events list for that kind (Orders, Trades or Details). It is kept
// small because the core appends one per order touched and the journal
// writer reads them on another core: a union of all payloads cost a large
// zeroing per event and cache lines dragged across cores.
type Event struct {
	Kind EventKind
	i    int32 // absolute index into Orders (EvOrder), Trades (EvTrade) or Details (the others)
}

// EventDetail is the payload of the rarer kinds. Fields not meaningful for
// the kind are zero.
type EventDetail struct {
	Participant int32   // EvFunds, EvPosition, EvFunding
	Currency    int32   // EvFunds, EvFunding: currency index
	Amount      int64   // EvFunds: signed minor units
	Key         string  // EvFunds, EvPosition: idempotency key
	Receipt     string  // EvPosition
	Symbols     []int64 // EvPosition: instrument numbers
	WeightMicro int64   // EvPosition: signed
	Def         int32   // EvPhase, EvInstrument, EvFeeSchedule
	Phase       Phase   // EvPhase
	EndOfDay    bool    // EvPhase
	FeeIndex    int32   // EvFeeSchedule, EvFXRate, EvFunding
}

// Events is the output of one or more commands: the events in order and
// the per-kind payload lists they index. Indices are absolute, so a
// sub-slice of List (one command's events) stays valid with the other
// lists shared whole.
type Events struct {
	List    []Event
	Orders  []OrderView
	Trades  []Trade
	Details []EventDetail
	Allocs  []Alloc
}

// Order returns an EvOrder event's order state.
func (e *Events) Order(ev *Event) *OrderView { return &e.Orders[ev.i] }

// Trade returns an EvTrade event's trade.
func (e *Events) Trade(ev *Event) *Trade { return &e.Trades[ev.i] }

// Detail returns the payload of an event of another kind.
func (e *Events) Detail(ev *Event) *EventDetail { return &e.Details[ev.i] }

// TradeAllocs returns a trade's allocations.
func (e *Events) TradeAllocs(t *Trade) []Alloc { return e.Allocs[t.AllocsStart:t.AllocsEnd] }

// addOrder appends an EvOrder event and returns its zero payload, to be
// filled in place: the core emits one per order touched.
func (e *Events) addOrder() *OrderView {
	e.List = append(e.List, Event{Kind: EvOrder, i: int32(len(e.Orders))})
	e.Orders = append(e.Orders, OrderView{})
	return &e.Orders[len(e.Orders)-1]
}

// addTrade appends an EvTrade event with a copy of t.
func (e *Events) addTrade(t *Trade) {
	e.List = append(e.List, Event{Kind: EvTrade, i: int32(len(e.Trades))})
	e.Trades = append(e.Trades, *t)
}

// addDetail appends an event of one of the rarer kinds and returns its
// zero payload.
func (e *Events) addDetail(k EventKind) *EventDetail {
	e.List = append(e.List, Event{Kind: k, i: int32(len(e.Details))})
	e.Details = append(e.Details, EventDetail{})
	return &e.Details[len(e.Details)-1]
}

// Reset empties every list, keeping their capacity.
func (e *Events) Reset() {
	e.List = e.List[:0]
	e.Orders = e.Orders[:0]
	e.Trades = e.Trades[:0]
	e.Details = e.Details[:0]
	e.Allocs = e.Allocs[:0]
}

// Limits bound the core's memory. They are part of its deterministic
// behaviour: replaying a journal with different limits may keep different
// history (never different balances or books).
type Limits struct {
	// MaxOrdersPerBook bounds the resting orders of one instrument.
	MaxOrdersPerBook int
	// FinishedOrders is how many finished orders stay queryable (FIFO);
	// they are also dropped at the end of their instrument's trading day.
	FinishedOrders int
	// TradeHistory is how many recent trades are kept per instrument.
	TradeHistory int
}

// DefaultLimits are the production limits.
func DefaultLimits() Limits {
	return Limits{MaxOrdersPerBook: 1 << 18, FinishedOrders: 100_000, TradeHistory: 100}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxOrdersPerBook <= 0 {
		l.MaxOrdersPerBook = d.MaxOrdersPerBook
	}
	if l.FinishedOrders <= 0 {
		l.FinishedOrders = d.FinishedOrders
	}
	if l.TradeHistory <= 0 {
		l.TradeHistory = d.TradeHistory
	}
	return l
}
