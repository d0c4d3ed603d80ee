-- Dashboard sessions: a signed-in browser holds a random token in an HttpOnly cookie; only the
-- token's SHA-256 is kept, with the API key it was exchanged for, so revoking the key ends the
-- session and a copy of this table signs no one in.
CREATE TABLE web_sessions (
    token_sha256 TEXT PRIMARY KEY,
    key_id TEXT NOT NULL REFERENCES api_keys(id),
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_ms);

-- The dashboard's gallery: a tenant's active artifacts, newest first, a page at a time (a
-- backward range scan whatever the table's statistics say), and their count (index only).
CREATE INDEX artifacts_tenant_state_created ON artifacts (tenant_id, state, created_ms, id);
