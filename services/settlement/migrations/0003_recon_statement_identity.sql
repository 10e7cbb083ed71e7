-- Every statement a bank's import reconciled, by its identity (account,
-- currency, statement id and sequence number as the bank wrote them), so
-- that the same statements sent again in another rendering (whitespace,
-- namespace prefixes, a new message id) return the first reports instead of
-- being reconciled twice. digest is the statement's canonical content,
-- file_identity the identity of the whole file it came in, content_hash the
-- stl_recon_reports.content_hash of that import. Files whose statements lack
-- an id are not recorded here (they are keyed by their bytes only).
CREATE TABLE stl_recon_statements (
    bank TEXT NOT NULL,
    account TEXT NOT NULL,
    currency TEXT NOT NULL,
    statement_id TEXT NOT NULL,
    sequence_number TEXT NOT NULL,
    digest TEXT NOT NULL,
    file_identity TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (bank, account, currency, statement_id, sequence_number)
);
