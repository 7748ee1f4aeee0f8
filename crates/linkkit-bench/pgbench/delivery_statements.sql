-- One pgbench transaction = what fan-out and sender write for 32 deliveries: the events, their
-- deliveries and their clicks on one link (as `deliveries::create_for_events` writes them), then an attempt for each
-- and the delivery's update (as `deliveries::record_attempts` does). Run by
-- scripts/pgbench-deliveries.sh against a scratch database with the current migrations.
\set b random(1, 1000000000000)
WITH ids AS (SELECT :b || '_' || i AS k FROM generate_series(1, 32) i),
stored_events AS (INSERT INTO events (id, workspace_id, event_type, payload) SELECT 'evt_'||k, 'ws_1', 'link.clicked', '{"type":"link.clicked","id":"evt_0123456789","timestamp":"2026-12-01T00:00:00Z","data":{"link_id":"lnk_1","short_url":"https://lk.it/abc","destination_url":"https://example.com/some/path","device":"Desktop","click_location":"Unknown","browser":"Chrome","os":"Linux","referrer":null}}'::jsonb FROM ids ON CONFLICT (id) DO NOTHING RETURNING id),
first_visits AS (SELECT 'ws_1' AS workspace_id, 'lnk_1' AS link_id, count(*) AS clicks, 0 AS scans FROM ids WHERE 'evt_'||k IN (SELECT id FROM stored_events) AND NOT EXISTS (SELECT 1 FROM counted_visits c WHERE c.event_id = 'evt_'||k) HAVING count(*) > 0),
locked_links AS (SELECT l.id FROM links l JOIN first_visits f ON l.id = f.link_id AND l.workspace_id = f.workspace_id ORDER BY l.id FOR UPDATE OF l),
counted AS (UPDATE links SET clicks = links.clicks + f.clicks, scans = links.scans + f.scans FROM first_visits f JOIN locked_links k ON k.id = f.link_id WHERE links.id = f.link_id AND links.workspace_id = f.workspace_id)
INSERT INTO deliveries (id, workspace_id, event_id, event_type, endpoint_id, status) SELECT 'dlv_'||k, 'ws_1', 'evt_'||k, 'link.clicked', 'ep_1', 'pending' FROM ids
ON CONFLICT (event_id, endpoint_id) DO UPDATE SET status = CASE WHEN deliveries.status = 'pending' AND EXCLUDED.status = 'dead' THEN 'dead' ELSE deliveries.status END RETURNING id, event_id, endpoint_id, event_id IN (SELECT id FROM stored_events), status, generation;
WITH input AS (SELECT 'dlv_'|| :b || '_' || i AS delivery_id, 'ep_1' AS endpoint_id, 1 AS attempt, now() AS at, 200 AS status_code, 3 AS duration_ms, NULL::text AS error, ''::text AS response_body, 'succeeded' AS new_status, NULL::timestamptz AS next_attempt_at, true AS succeeded FROM generate_series(1,32) i),
attempts AS (INSERT INTO delivery_attempts (delivery_id, attempt, at, status_code, duration_ms, error, response_body) SELECT delivery_id, attempt, at, status_code, duration_ms, error, response_body FROM input)
UPDATE deliveries d SET status = i.new_status, attempt_count = d.attempt_count + 1, next_attempt_at = i.next_attempt_at, delivered_at = CASE WHEN i.succeeded THEN i.at ELSE d.delivered_at END FROM input i WHERE d.id = i.delivery_id;
