// Package settlement is the settlement service: the exchange's ledger of
// record (package ledger), deposits and withdrawals, delivery versus payment
// of trades, fees, FX conversions, instructions to clearing banks and the
// reconciliation of their statements.
//
// # Wiring
//
//	svc, err := settlement.New(ctx, settlement.Config{DB: db, Listing: listingClient, Core: coreClient,
//		Currencies: money.NewRegistry(), Logger: logger})
//	srv := server.New(logger, verifier, listing.Policy().Merge(settlement.Policy()))
//	svc.Register(srv.GRPC) // SettlementService, BankService, SettlementAdminService, SettlementInternalService
//	go svc.Run(ctx) // the core event consumer, the outbox worker, withdrawal recovery
//
// The listing client must act for a ROLE_SERVICE credential (it lists every
// member's settlement accounts); Core is tradingv1.CoreServiceClient or
// anything with the same four methods.
//
// # Money in, money out
//
// A clearing bank's deposit notice credits the member's available account
// against the exchange's settlement account at that bank, once per bank
// reference, and writes a CreditFunds command for the core into an outbox in
// the same transaction; the outbox worker sends it, with the idempotency key
// "deposit/<bank>/<reference>", until the core acknowledges. A withdrawal
// moves the amount from the member's available to its reserved account
// (refused if available does not cover it), asks the core to debit the
// trading funds (refused if they are not available: the reservation is
// released), and instructs the member's bank; the bank confirms (the reserved
// money leaves through the exchange's account at that bank) or rejects (the
// reservation returns to available and the core is credited back through the
// outbox, key "withdrawal-reversal/<id>").
//
// # Trades
//
// The consumer reads the core's event log from the stored position and books
// each trade in the same transaction that moves the position, so a trade is
// booked exactly once through restarts and redelivery (a unique reference per
// trade in the ledger guards it a second time). The buyer pays price x
// quantity plus the fee the core reported, the seller receives it less its
// fee, in the instrument's currency, on the instrument's settlement cycle:
// T0_GROSS books into available funds at once (with an interbank instruction
// when buyer and seller clear at different banks); T1_NET books into pending
// settlement, and RunSettlementCycle nets each member's pending amounts per
// currency for a business date and instructs the interbank movements.
//
// The receipts leg — the receipts service's title transfer — is recorded
// with RecordReceiptsLeg (trade id, delivered weight, transfer reference),
// which the receipts service calls through
// SettlementInternalService.RecordReceiptsLeg (ROLE_SERVICE only) from its
// outbox, once per delivered trade, resending until acknowledged; a trade is
// SETTLED when its cash and receipts legs are both done. A delivered weight
// that differs from the traded weight (溢短, within the commodity's
// tolerance) is settled in cash at the trade price. A leg may arrive before
// the trade is booked (both services read the core's log): it is kept and
// applied by the booking. The booking transaction and RecordReceiptsLeg both
// lock the consumer's position row first, so a leg that arrives while its
// trade is being booked is applied, never left waiting.
//
// Member accounts per currency: available (settled cash), reserved (cash
// committed to a withdrawal the bank has not confirmed), pending settlement
// (signed net of T+1 trades awaiting their batch). The ledger refuses a
// withdrawal beyond available funds but not a trade: the core is the risk
// gate for trading, and a trade the core matched is booked.
//
// # Rounding
//
// Fees: rate x principal rounded half up to the minor unit, or amount per lot
// x lots, then at least the minimum (package fees; the core uses the same
// rule, and settlement books the fee the core reported). FX: the member pays
// the converted amount rounded up and receives it rounded down, in the
// exchange's favour by less than one minor unit (package fx).
// Over/under-weight: weight difference x price, rounded half away from zero.
//
// # Reconciliation
//
// Statement entries are matched to the bank movements the ledger expects
// (deposits, confirmed withdrawals, transfers and conversions) by end-to-end
// id or bank reference first, then by exact amount and a value date within
// two days (package recon). A statement that is malformed, too large, of an
// unknown namespace, carries a DTD (DOCTYPE or ENTITY declaration) or does
// not add up is refused with a reason and nothing is stored; the same file imported again returns
// the first report, and so do the same statements (same ids, sequence numbers
// and content) re-exported differently. ImportStatement takes the file in one gRPC message (so
// under the server's 16 MiB message limit); UploadStatement streams it in
// chunks of up to 1 MiB, refused as soon as it passes MaxStatementBytes, and
// then imports it the same way.
package settlement
