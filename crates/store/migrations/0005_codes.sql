-- Content-bound verification codes (docs/codes.md). Nothing here is usable without the region's
-- code secret: codes and recipients are stored as HMAC-SHA256 tags, messages as their SHA-256,
-- live call codes not at all (they are derived from the secret and the session id).

-- The code secret of each region, wrapped by that region's master key (key provider).
CREATE TABLE code_keys (
    region TEXT PRIMARY KEY,
    wrapped_key TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- Per account (= tenant): verification level 0-4, the name verifiers see, the level-4 device key.
CREATE TABLE code_accounts (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
    level BIGINT NOT NULL,
    display_name TEXT NOT NULL,
    device_key TEXT,
    updated_at TEXT NOT NULL
);

-- Every level change, with its evidence sealed by the key provider (it may name people).
CREATE TABLE code_level_events (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    from_level BIGINT NOT NULL,
    to_level BIGINT NOT NULL,
    evidence_sealed TEXT NOT NULL,
    device_key_fingerprint TEXT,
    at TEXT NOT NULL
);

CREATE TABLE message_codes (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    region TEXT NOT NULL,
    code_tag TEXT NOT NULL UNIQUE,
    message_sha256 TEXT NOT NULL,
    recipient_tag TEXT NOT NULL,
    signature TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    expires_ms BIGINT NOT NULL,
    used_ms BIGINT,
    revoked_ms BIGINT
);

CREATE INDEX message_codes_tenant ON message_codes (tenant_id);
CREATE INDEX message_codes_expiry ON message_codes (expires_ms);

-- Live call sessions: the failure cap's state and the last window verified (one success per window).
CREATE TABLE live_sessions (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    region TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    revoked_ms BIGINT,
    attempts BIGINT NOT NULL,
    lock_level BIGINT NOT NULL,
    locked_until_ms BIGINT NOT NULL,
    last_ok_counter BIGINT NOT NULL
);

CREATE INDEX live_sessions_tenant ON live_sessions (tenant_id);
