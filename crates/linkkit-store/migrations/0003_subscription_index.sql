-- Fan-out asks "which endpoints of this workspace subscribe to this type?" for every event. A
-- GIN index on the subscription list answers it without scanning the workspace's endpoints
-- (the cost-growth benchmark lost a third of its throughput at 10,000 endpoints before it).
CREATE INDEX endpoints_by_subscription ON endpoints USING GIN (events);
