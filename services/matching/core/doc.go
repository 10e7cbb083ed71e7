// Package core is the deterministic state machine of the matching service:
// instrument definitions and phases, one order book per instrument,
// per-participant funds by currency and receipt weight pools, orders with
// their reservations, client order ids, idempotency keys and fee schedules.
//
// The service's sequencer owns one Core and applies commands to it one at a
// time with Apply, each stamped with its sequence number and time. Nothing
// in the package reads the clock, draws random numbers or depends on map
// iteration order, so applying the same commands to the same state always
// produces the same events and the same state: the journal can be replayed
// and checked (the events a replay produces must equal those recorded), and
// the canonical snapshot encoding (AppendSnapshot) is byte-identical
// whether the state was replayed from empty or restored from a snapshot.
//
// # Units
//
// Prices are int64 ticks of the instrument, quantities whole lots, money
// int64 minor units of the currency, weights int64 micro-units (1e-6 t).
// A tick on a lot is a whole number of minor units (TickLotMinor), so a
// trade's notional is price x TickLotMinor x lots exactly.
//
// # Pre-trade risk
//
// A buy reserves, from the buyer's available funds in the instrument's
// currency, its notional at its limit (a market order: its protection
// price) plus the most its fills can pay in fees (FeeRule.maxFee). The
// reservation is stored on the order and recomputed from the open quantity
// on every change (fill, reduce, replace, cancel), the difference released
// or taken, so it cannot drift. A fill charges the buyer the notional at
// the fill price plus the buyer fee, and credits the seller the notional
// less the seller fee (capped at the notional). A sell reserves its lots'
// weight from the seller's receipt pools that qualify for the instrument,
// oldest deposit first; a fill delivers weight from those pools in that
// order, and the trade lists the receipts and weights delivered. A refused
// command changes nothing.
//
// # Fees
//
// Each instrument has a fee schedule (a FeeRule for buyers and one for
// sellers). An order keeps the schedule in force when it was entered. A
// fill's fee is rate x notional rounded half up to the minor unit, or an
// amount per lot, and at least the rule's minimum.
//
// # Memory bounds
//
// Client order ids are kept for the trading day: at the end of an
// instrument's day (a close with EndOfDay) the ids of its finished orders
// and the finished orders themselves are forgotten; resting orders keep
// theirs. At most Limits.FinishedOrders finished orders stay queryable and
// Limits.TradeHistory trades per instrument are kept; members' executions
// are not kept at all (the service indexes them from the events).
// Idempotency keys of funding commands are
// kept for good: there are few, and forgetting one could credit twice.
package core
