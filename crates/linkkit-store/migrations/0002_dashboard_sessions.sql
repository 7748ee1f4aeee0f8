-- Dashboard sign-ins. The browser holds a random token in an HttpOnly cookie; only its SHA-256
-- is kept here. A session acts as the API key it was opened with: every lookup joins api_keys
-- on revoked_at IS NULL, so revoking the key ends its sessions at once, and deleting the key
-- deletes them.
CREATE TABLE dashboard_sessions (
    token_hash  TEXT PRIMARY KEY,
    api_key_id  TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX dashboard_sessions_by_expiry ON dashboard_sessions (expires_at);
CREATE INDEX dashboard_sessions_by_key ON dashboard_sessions (api_key_id);
