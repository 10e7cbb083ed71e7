-- Every statement file a bank's import reconciled, by the identity of what
-- it says (see stmtidentity.go): its statements' accounts, currencies, ids
-- and sequence numbers and a digest of their balances and entries. The same
-- statements sent again in another rendering (whitespace, namespace
-- prefixes, a new message id) return the first reports instead of being
-- reconciled twice. content_hash is the stl_recon_reports.content_hash of
-- that import. Files whose statements lack an id are not recorded here (they
-- are keyed by their bytes only).
CREATE TABLE stl_recon_files (
    bank TEXT NOT NULL,
    file_identity TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (bank, file_identity)
);
