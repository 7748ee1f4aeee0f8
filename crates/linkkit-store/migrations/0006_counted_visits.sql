-- The visits the fan-out counted without storing their event (no endpoint subscribed to it),
-- by event id: a copy of one (a redelivery, a batch the redirect published again after a lost
-- confirm) finds its row and counts nothing. A visit with a subscriber is remembered by its
-- row in `events` instead. Rows are pruned after a week by the fan-out
-- (crates/linkkit-fanout/src/visit_ledger.rs); `counted_at` only grows, so a BRIN index finds
-- the old ones at almost no cost to each insert.
CREATE TABLE counted_visits (
    event_id text PRIMARY KEY,
    counted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX counted_visits_by_age ON counted_visits USING brin (counted_at);
