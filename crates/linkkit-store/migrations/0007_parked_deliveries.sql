-- Parking in Postgres. A delivery whose endpoint's circuit is open, or that is stuck, waits
-- here rather than in a RabbitMQ retry queue: `parked_until` says when its job is published
-- again, and `parked_attempt` which attempt that job asks for. In a retry queue a parked job
-- was a persistent message that waited, expired and was dead-lettered back, RabbitMQ's most
-- expensive path, paid again on every open period of a dead endpoint. Here it is one column
-- written (by the statement that stores the delivery, when the fan-out already knows the
-- endpoint is parked) and one sweep that publishes it when it is due.
--
-- The index is partial, so it holds only parked deliveries (few, against all of them), and
-- the per-attempt update of a delivery, which does not touch `parked_until`, stays a HOT update
-- (see 0004). Both columns are nullable without a default: adding them rewrites nothing.
ALTER TABLE deliveries ADD COLUMN parked_until TIMESTAMPTZ, ADD COLUMN parked_attempt INTEGER;
CREATE INDEX deliveries_parked ON deliveries (parked_until) WHERE parked_until IS NOT NULL;
