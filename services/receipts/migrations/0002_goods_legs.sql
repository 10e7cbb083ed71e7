-- The outbox of goods legs for settlement: one row per trade whose allocations
-- were all delivered, written in the same transaction as its deliveries (and
-- the consumer position), and sent by Run's forwarder to settlement's
-- SettlementInternalService.RecordReceiptsLeg until acknowledged. A trade with
-- a break has no row: operators settle it by hand.
CREATE TABLE goods_legs (
    trade_id BIGINT PRIMARY KEY,
    -- The core sequence of the trade event.
    sequence BIGINT NOT NULL,
    -- Net weight of all the pieces delivered for the trade, a decimal in the
    -- commodity's unit (tonnes), as sent.
    delivered_weight TEXT NOT NULL,
    -- The registry's id for the transfer, as sent: "receipts/trade/<trade_id>"
    -- (its deliveries rows).
    reference TEXT NOT NULL,
    -- 'pending' (to send) | 'sent' (settlement acknowledged it) | 'refused'
    -- (settlement refused it for good; a break is recorded).
    state TEXT NOT NULL,
    -- Sends so far, and when the next may be made (wall-clock unix
    -- nanoseconds: it paces calls to another process, whatever the business
    -- clock says).
    attempts BIGINT NOT NULL,
    next_attempt BIGINT NOT NULL,
    last_error TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- When it was acknowledged or refused (0 while pending).
    done_at BIGINT NOT NULL
);

-- Partial: it holds only the few legs not yet acknowledged.
CREATE INDEX goods_legs_pending ON goods_legs (next_attempt, trade_id) WHERE state = 'pending';
