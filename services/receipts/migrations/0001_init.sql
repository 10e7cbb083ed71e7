-- The warehouse receipt registry. Weights are BIGINT counts of the commodity's
-- smallest weight unit (10^-scale t, e.g. kilograms for scale 3); times are
-- unix nanoseconds; dates are "YYYY-MM-DD" text, which orders like the date.
CREATE TABLE receipts (
    receipt_number TEXT PRIMARY KEY,
    warehouse TEXT NOT NULL,
    commodity TEXT NOT NULL,
    grade TEXT NOT NULL,
    brand TEXT NOT NULL,
    origin TEXT NOT NULL,
    production_date TEXT NOT NULL,
    customs_status INTEGER NOT NULL,
    weight_scale INTEGER NOT NULL,
    delivery_tolerance TEXT NOT NULL,
    net_weight BIGINT NOT NULL,
    pieces TEXT NOT NULL,
    inspection_certificate TEXT NOT NULL,
    storage_paid_through TEXT NOT NULL,
    expiry_date TEXT NOT NULL,
    holder TEXT NOT NULL,
    encumbrance INTEGER NOT NULL,
    pledge_bank TEXT NOT NULL,
    pledge_loan TEXT NOT NULL,
    pledge_currency TEXT NOT NULL,
    pledge_amount TEXT NOT NULL,
    status INTEGER NOT NULL,
    issued_at BIGINT NOT NULL,
    -- Optimistic guard: every write is UPDATE ... WHERE version = the version read.
    version BIGINT NOT NULL,
    -- Receipts carved out of this one so far (names the next child "<number>.<n>").
    children BIGINT NOT NULL,
    -- Commands started for this receipt at the core: the n in their
    -- idempotency keys "deposit/<number>/<n>", "withdraw/<number>/<n>".
    commands BIGINT NOT NULL,
    -- Weight the matching core still holds in this receipt's pool.
    pool BIGINT NOT NULL,
    -- A command sent (or to be sent) to the core and not yet seen in its event
    -- log: '' | 'credit' | 'debit'.
    pending TEXT NOT NULL,
    pending_key TEXT NOT NULL,
    pending_symbols TEXT NOT NULL,
    pending_request TEXT NOT NULL,
    -- The resumer (re)sends the command from this time on.
    pending_after BIGINT NOT NULL
);

-- Few indexes: a receipt row is rewritten at every step of its life, and each
-- index costs every rewrite. Listing by holder and by warehouse (what members
-- and warehouses see) is indexed; by commodity alone (operators) scans. The
-- pending indexes are partial: they hold only the few receipts waiting on
-- the core.
CREATE INDEX receipts_holder ON receipts (holder, receipt_number);
CREATE INDEX receipts_warehouse ON receipts (warehouse, receipt_number);
CREATE INDEX receipts_pending ON receipts (receipt_number) WHERE pending <> '';

-- One row per piece (bale, drum, tank lot) of the goods live receipts stand
-- for (LIVE, EXPIRED, CANCELLATION_REQUESTED), from issue to load-out; split,
-- merge and delivery pass pieces between receipts and leave it alone. The
-- primary key is what makes issuing the same piece twice impossible, even for
-- two concurrent issues.
CREATE TABLE live_pieces (
    piece_number TEXT PRIMARY KEY
);

-- The registry-wide hash chain; idx is the position, from 1.
CREATE TABLE events (
    idx BIGINT PRIMARY KEY,
    receipt_number TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    previous_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    at BIGINT NOT NULL
);

CREATE INDEX events_receipt ON events (receipt_number, idx);

-- The chain's head: appending takes this row's lock, so events get gapless
-- consecutive indexes and each commits to its predecessor.
CREATE TABLE chain_head (
    id INTEGER PRIMARY KEY,
    idx BIGINT NOT NULL,
    hash TEXT NOT NULL,
    at BIGINT NOT NULL
);

INSERT INTO chain_head (id, idx, hash, at) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0);

-- The last core sequence whose events were applied, written in the same
-- transaction as their effects.
CREATE TABLE consumer_position (
    name TEXT PRIMARY KEY,
    sequence BIGINT NOT NULL
);

INSERT INTO consumer_position (name, sequence) VALUES ('core', 0);

-- Trades whose deliveries were applied: a redelivered trade is skipped.
CREATE TABLE applied_trades (
    trade_id BIGINT PRIMARY KEY,
    sequence BIGINT NOT NULL
);

-- One row per receipt allocation delivered: what settlement needs to cash-adjust
-- the over/under-weight (溢短) at the trade price.
CREATE TABLE deliveries (
    trade_id BIGINT NOT NULL,
    from_receipt TEXT NOT NULL,
    to_receipt TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    symbol TEXT NOT NULL,
    seller TEXT NOT NULL,
    buyer TEXT NOT NULL,
    weight_scale INTEGER NOT NULL,
    allocated BIGINT NOT NULL,
    delivered BIGINT NOT NULL,
    difference BIGINT NOT NULL,
    within_tolerance BOOLEAN NOT NULL,
    price_currency TEXT NOT NULL,
    price TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (trade_id, from_receipt)
);

-- Core events the registry could not apply as given (an allocation of a receipt
-- the seller does not hold, say): kept for operators, never silently dropped.
CREATE TABLE breaks (
    sequence BIGINT NOT NULL,
    trade_id BIGINT NOT NULL,
    receipt_number TEXT NOT NULL,
    reason TEXT NOT NULL,
    at BIGINT NOT NULL
);
