-- The ledger of record. Amounts are int64 minor units, signed in the
-- exchange's books (credit positive); times are unix nanoseconds. Postings
-- are append-only: the code never updates or deletes them.
CREATE TABLE ledger_accounts (
    account TEXT PRIMARY KEY,
    kind INTEGER NOT NULL,
    owner TEXT NOT NULL,
    currency TEXT NOT NULL,
    balance_minor BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX ledger_accounts_owner ON ledger_accounts (owner, currency);

CREATE TABLE ledger_transactions (
    transaction_id BIGINT PRIMARY KEY,
    kind TEXT NOT NULL,
    reference TEXT NOT NULL,
    corrects_transaction_id BIGINT NOT NULL,
    booked_at BIGINT NOT NULL
);
-- One transaction per business event: the ledger's own guard against
-- booking anything twice.
CREATE UNIQUE INDEX ledger_transactions_reference ON ledger_transactions (kind, reference);

CREATE TABLE ledger_postings (
    posting_id BIGINT PRIMARY KEY,
    transaction_id BIGINT NOT NULL,
    account TEXT NOT NULL,
    owner TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    kind TEXT NOT NULL,
    booked_at BIGINT NOT NULL
);
-- A member's postings in booking order: ListPostings and statements.
CREATE INDEX ledger_postings_owner ON ledger_postings (owner, booked_at, posting_id);
