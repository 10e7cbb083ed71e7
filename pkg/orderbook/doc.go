// Package orderbook is the in-memory limit order book at the core of bcx
// matching: one Book per instrument, price-time priority matching, call
// auctions, and allocation-free reads for market data.
//
// The package is pure computation. It does no I/O, starts no goroutines and
// takes no locks: a Book must be owned by a single goroutine (the matching
// service's sequencer). It never reads the clock and never iterates a Go map,
// so the same commands always produce the same events and the same book,
// which is what makes journal replay and snapshots exact.
//
// # Units
//
// Prices are int64 ticks, quantities int64 lots, order and participant ids
// int64. Every price must lie in the book's static price band
// [Config.MinPrice, Config.MaxPrice]; the price ladder is a dense array over
// that band, so memory is proportional to its width (about 8.3 bytes per
// tick). To move the band, Walk the book into a new Book with the new
// Config through Restore.
//
// # Commands and events
//
// Submit, Cancel, Reduce, Replace, CancelParticipant, ExpireDayOrders,
// StartAuction and Uncross change the book. Each reports what happened as a
// sequence of Events delivered synchronously to the Sink given to New. The
// *Event passed to the sink points into the Book and is only valid during
// the call; the sink must copy what it keeps. Every event carries Remaining,
// the open quantity of its order after the event: when it is 0 the order is
// finished and its id may be used again.
//
// A Submit produces, in order: either one EventReject, or EventAccepted
// followed by zero or more EventFill (and self-trade prevention events), and
// then EventRested if the remainder rests or EventCancel if the remainder is
// cancelled (IOC or market remainder, self-trade prevention). A fully filled
// order ends with its last fill.
//
// # Matching rules
//
// Orders match in price-time priority at the resting order's price. A limit
// order never trades at a price worse than its limit. A market order carries
// a protection limit in Order.Price (optionally tightened by
// Config.MarketProtectionTicks from the opposite best price at entry): it
// walks the book only up to that limit and its remainder is cancelled; it
// never rests. IOC remainders are cancelled, never rested. FOK and minimum
// fill quantity are checked before anything trades: if the quantity that
// would execute immediately is below Qty (FOK) or MinQty, the order is
// rejected and the book is untouched; otherwise it matches and any remainder
// follows its time in force (MinQty applies to the entry only). Post-only
// orders are rejected, not repriced, if they would take.
//
// Iceberg orders (DisplayQty > 0 and < Qty) show DisplayQty at a time. When
// the shown part is filled, a new part of min(DisplayQty, remaining) is shown
// and the order moves to the back of its price level. An incoming iceberg
// takes liquidity with its whole quantity.
//
// Self-trade prevention is the incoming order's choice (Order.STP) and
// applies when the resting order at the head of the queue has the same
// Participant: STPCancelIncoming cancels the rest of the incoming order;
// STPCancelResting cancels the whole resting order (hidden part included)
// and matching goes on; STPCancelBoth cancels both; STPDecrement reduces
// both by the smaller open quantity without a trade (a resting iceberg loses
// hidden quantity first). For the FOK and MinQty checks, a same-participant
// resting order in the path is skipped under STPCancelResting and ends the
// count under the other modes (exact for cancel-incoming and cancel-both,
// conservative for decrement). STPNone allows self trades. Self-trade
// prevention does not apply in an auction uncross.
//
// # Order maintenance
//
// Reduce lowers the open quantity and keeps time priority. Replace sets a new
// price and open quantity; the order keeps its priority only if the price is
// unchanged and the quantity does not grow, otherwise it goes to the back of
// the new level, and in continuous trading it may trade as if newly entered
// (a post-only order is rejected instead). CancelParticipant cancels all of a
// participant's orders; ExpireDayOrders cancels all Day orders at the end
// of a session.
//
// # Call auction
//
// StartAuction begins a collection phase: orders (limit, day or GTC) rest
// without matching and the book may be crossed. Indicative reports at any time
// the price and volume an uncross would have now. Uncross executes at the
// single price chosen by the rule documented on Book.Indicative and returns
// the book to continuous trading.
//
// # Snapshots
//
// Walk visits all resting orders in priority order (bids best to worst, each
// level in time priority, then asks); Restore appends orders in that order to
// an empty book to rebuild an identical one, and StateHash digests the book
// for replay checks.
//
// # Accounting
//
// For every order, the original quantity (Qty at entry plus any increase by
// Replace) always equals filled plus open plus cancelled (cancel, reduce,
// replace decrease and self-trade decrement). CheckInvariants verifies this
// and every structural invariant; tests call it after every operation.
package orderbook
