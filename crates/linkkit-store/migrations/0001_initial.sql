-- Linkkit's system of record. Ids are prefixed, time-ordered text (see linkkit-core::ids), so
-- "ORDER BY id DESC" is "newest first" and the last id of a page is the cursor of the next.

CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Only the SHA-256 of a key is kept; the clear prefix tells keys apart in a list.
CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key_hash      TEXT NOT NULL UNIQUE,
    prefix        TEXT NOT NULL,
    name          TEXT NOT NULL DEFAULT '',
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at    TIMESTAMPTZ
);

-- Slugs are unique for ever: a deleted link keeps its slug (and answers 410), so a printed QR
-- code can never start pointing somewhere else.
CREATE TABLE links (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    slug             TEXT NOT NULL,
    destination_url  TEXT NOT NULL,
    segment          TEXT,
    campaign         TEXT,
    tags             TEXT[] NOT NULL DEFAULT '{}',
    expires_at       TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    deleted_at       TIMESTAMPTZ,
    clicks           BIGINT NOT NULL DEFAULT 0,
    scans            BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT links_slug_unique UNIQUE (slug)
);
CREATE INDEX links_by_workspace ON links (workspace_id, id DESC) WHERE deleted_at IS NULL;

CREATE TABLE endpoints (
    id                          TEXT PRIMARY KEY,
    workspace_id                TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    url                         TEXT NOT NULL,
    events                      TEXT[] NOT NULL,
    description                 TEXT NOT NULL DEFAULT '',
    enabled                     BOOLEAN NOT NULL DEFAULT true,
    disabled_reason             TEXT,
    secret                      TEXT NOT NULL,
    previous_secret             TEXT,
    previous_secret_expires_at  TIMESTAMPTZ,
    created_at                  TIMESTAMPTZ NOT NULL,
    updated_at                  TIMESTAMPTZ NOT NULL,
    last_success_at             TIMESTAMPTZ
);
CREATE INDEX endpoints_by_workspace ON endpoints (workspace_id, id DESC);

-- Every event that was fanned out, kept so deliveries can be shown, resent and replayed.
CREATE TABLE events (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    event_type    TEXT NOT NULL,
    payload       JSONB NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One event on its way to one endpoint; (event, endpoint) is unique, so a fan-out that runs
-- twice finds the deliveries it already made.
CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    event_id         TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    event_type       TEXT NOT NULL,
    endpoint_id      TEXT NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'succeeded', 'failed', 'dead')),
    attempt_count    INTEGER NOT NULL DEFAULT 0,
    -- 0 as fanned out, +1 per resend or replay (part of the sender's idempotency key).
    generation       INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at     TIMESTAMPTZ,
    CONSTRAINT deliveries_event_endpoint_unique UNIQUE (event_id, endpoint_id)
);
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_id, id DESC);

CREATE TABLE delivery_attempts (
    id             BIGSERIAL PRIMARY KEY,
    delivery_id    TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt        INTEGER NOT NULL,
    at             TIMESTAMPTZ NOT NULL,
    status_code    INTEGER,
    duration_ms    INTEGER NOT NULL,
    error          TEXT,
    response_body  TEXT
);
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, id);

-- The transactional outbox: written in the same transaction as the change it describes,
-- published to the events exchange by the relay, then deleted.
CREATE TABLE outbox (
    seq           BIGSERIAL PRIMARY KEY,
    workspace_id  TEXT NOT NULL,
    event_type    TEXT NOT NULL,
    payload       JSONB NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
