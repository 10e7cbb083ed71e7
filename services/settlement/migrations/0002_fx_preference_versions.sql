-- A member's preference changes are numbered, so the matching core can
-- ignore a delayed, older one; opting out keeps the row (funding_currency
-- '') to keep its version.
ALTER TABLE stl_fx_preferences ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
