-- Reference data of the listing service. Times are unix nanoseconds; specs are
-- the API's protobuf messages in binary form (they are reference data, read
-- whole, and keep their field numbers stable across versions).
CREATE TABLE commodities (
    code TEXT PRIMARY KEY,
    body BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE warehouses (
    code TEXT PRIMARY KEY,
    operator_participant_id TEXT NOT NULL,
    body BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE instruments (
    symbol TEXT PRIMARY KEY,
    number BIGINT NOT NULL UNIQUE,
    commodity TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Every definition an instrument has had or will have; the one in effect at a
-- moment is the highest version whose effective_from is not after it.
CREATE TABLE instrument_versions (
    symbol TEXT NOT NULL REFERENCES instruments (symbol),
    version BIGINT NOT NULL,
    status INTEGER NOT NULL,
    effective_from BIGINT NOT NULL,
    spec BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (symbol, version)
);

CREATE TABLE participants (
    id TEXT PRIMARY KEY,
    number BIGINT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role INTEGER NOT NULL,
    status INTEGER NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE credentials (
    id TEXT PRIMARY KEY,
    participant_id TEXT NOT NULL REFERENCES participants (id),
    label TEXT NOT NULL,
    secret_hash BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX credentials_participant ON credentials (participant_id);

CREATE TABLE settlement_accounts (
    participant_id TEXT NOT NULL REFERENCES participants (id),
    currency TEXT NOT NULL,
    bank_participant_id TEXT NOT NULL REFERENCES participants (id),
    account_number TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (participant_id, currency)
);
