-- The settlement service's records beside the ledger. Amounts are int64
-- minor units, times unix nanoseconds, dates "YYYY-MM-DD" (exchange time zone
-- for business dates, bank dates as the bank wrote them).

-- Where the consumer of the core's event log is: the last sequence number it
-- applied and how many events of that sequence (one command can cause several
-- trades), written in the same transaction as the postings.
CREATE TABLE stl_consumer (
    name TEXT PRIMARY KEY,
    sequence BIGINT NOT NULL,
    applied_in_sequence BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Commands for the matching core, written in the same transaction as the
-- ledger effects that require them and sent until the core acknowledges.
CREATE TABLE stl_outbox (
    id BIGINT PRIMARY KEY,
    kind TEXT NOT NULL,
    idem_key TEXT NOT NULL UNIQUE,
    payload BYTEA NOT NULL,
    status INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    done_at BIGINT NOT NULL
);
CREATE INDEX stl_outbox_due ON stl_outbox (status, next_attempt_at);

CREATE TABLE stl_deposits (
    bank TEXT NOT NULL,
    bank_reference TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    end_to_end_id TEXT NOT NULL,
    value_date TEXT NOT NULL,
    transaction_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (bank, bank_reference)
);

CREATE TABLE stl_withdrawals (
    withdrawal_id TEXT PRIMARY KEY,
    participant_id TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash BYTEA NOT NULL,
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    bank TEXT NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT NOT NULL,
    instruction_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (participant_id, idem_key)
);
CREATE INDEX stl_withdrawals_status ON stl_withdrawals (status, updated_at);

-- Instructions to clearing banks; cursor orders each bank's stream.
CREATE TABLE stl_instructions (
    instruction_id TEXT PRIMARY KEY,
    bank TEXT NOT NULL,
    seq_cursor BIGINT NOT NULL,
    kind INTEGER NOT NULL,
    debit_account TEXT NOT NULL,
    credit_account TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    counter_currency TEXT NOT NULL,
    counter_amount_minor BIGINT NOT NULL,
    end_to_end_id TEXT NOT NULL,
    status INTEGER NOT NULL,
    bank_reference TEXT NOT NULL,
    reject_reason TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (bank, seq_cursor)
);
CREATE TABLE stl_bank_cursors (
    bank TEXT PRIMARY KEY,
    last_cursor BIGINT NOT NULL
);

-- The movements the ledger expects on the exchange's accounts at banks,
-- signed as the bank shows them (+ credit to the exchange's account).
CREATE TABLE stl_bank_movements (
    movement_id BIGINT PRIMARY KEY,
    bank TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    end_to_end_id TEXT NOT NULL,
    bank_reference TEXT NOT NULL,
    value_date TEXT NOT NULL,
    source TEXT NOT NULL,
    transaction_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX stl_bank_movements_bank ON stl_bank_movements (bank, currency, value_date);

CREATE TABLE stl_recon_reports (
    report_id TEXT PRIMARY KEY,
    bank TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    idx INTEGER NOT NULL,
    body BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (bank, content_hash, idx)
);
CREATE INDEX stl_recon_reports_bank ON stl_recon_reports (bank, report_id);
-- A movement is matched by at most one report.
CREATE TABLE stl_recon_matches (
    movement_id BIGINT PRIMARY KEY,
    report_id TEXT NOT NULL
);

CREATE TABLE stl_trades (
    trade_id BIGINT PRIMARY KEY,
    sequence BIGINT NOT NULL,
    symbol TEXT NOT NULL,
    currency TEXT NOT NULL,
    buyer TEXT NOT NULL,
    seller TEXT NOT NULL,
    price TEXT NOT NULL,
    quantity TEXT NOT NULL,
    lots BIGINT NOT NULL,
    principal_minor BIGINT NOT NULL,
    buyer_fee_minor BIGINT NOT NULL,
    seller_fee_minor BIGINT NOT NULL,
    cycle INTEGER NOT NULL,
    business_date TEXT NOT NULL,
    traded_at BIGINT NOT NULL,
    transaction_id BIGINT NOT NULL,
    -- The member legs (currency and signed amount each member's funds moved
    -- by, after any FX conversion) and the per-bank cash needs, for the
    -- T+1 netting batch.
    legs BYTEA NOT NULL,
    cash_settled INTEGER NOT NULL,
    cash_settled_at BIGINT NOT NULL,
    receipts_transferred INTEGER NOT NULL,
    receipts_at BIGINT NOT NULL,
    weight_adjustment_minor BIGINT NOT NULL
);
CREATE INDEX stl_trades_buyer ON stl_trades (buyer, trade_id);
CREATE INDEX stl_trades_seller ON stl_trades (seller, trade_id);
-- Only trades waiting for the T+1 batch are indexed for it.
CREATE INDEX stl_trades_unsettled ON stl_trades (business_date) WHERE cash_settled = 0 AND cycle = 2;

-- The receipts leg of a trade as the receipts service reported it; kept even
-- when it arrives before the trade event.
CREATE TABLE stl_receipts_legs (
    trade_id BIGINT PRIMARY KEY,
    delivered_weight TEXT NOT NULL,
    reference TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    applied INTEGER NOT NULL
);

CREATE TABLE stl_fee_schedules (
    symbol TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    body BYTEA NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE stl_fx_rates (
    rate_id BIGINT PRIMARY KEY,
    base_currency TEXT NOT NULL,
    quote_currency TEXT NOT NULL,
    rate TEXT NOT NULL,
    valid_from BIGINT NOT NULL,
    valid_until BIGINT NOT NULL,
    source TEXT NOT NULL,
    published_at BIGINT NOT NULL
);
CREATE INDEX stl_fx_rates_pair ON stl_fx_rates (base_currency, quote_currency, valid_from);

CREATE TABLE stl_fx_preferences (
    participant_id TEXT NOT NULL,
    trade_currency TEXT NOT NULL,
    funding_currency TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (participant_id, trade_currency)
);

-- Trade events that could not be booked (malformed), kept for operators;
-- the consumer moves past them and logs an error.
CREATE TABLE stl_parked_events (
    sequence BIGINT NOT NULL,
    idx BIGINT NOT NULL,
    body BYTEA NOT NULL,
    reason TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (sequence, idx)
);

CREATE TABLE stl_cycle_runs (
    run_id BIGINT PRIMARY KEY,
    business_date TEXT NOT NULL,
    trades_settled BIGINT NOT NULL,
    instructions_created BIGINT NOT NULL,
    ran_at BIGINT NOT NULL
);
