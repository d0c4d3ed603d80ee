-- Tenants, API keys and artifacts. Times are RFC 3339 UTC text plus epoch milliseconds for
-- comparisons. Secrets and personal data never appear in clear: API keys as SHA-256, labels
-- and client IPs sealed by the key provider.
CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    region TEXT NOT NULL,
    retention_days BIGINT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    secret_sha256 TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE artifacts (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    region TEXT NOT NULL,
    proof_id TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    original_sha256 TEXT NOT NULL,
    content_type TEXT NOT NULL,
    width BIGINT NOT NULL,
    height BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    wrapped_key TEXT NOT NULL,
    label_sealed TEXT,
    client_ip_sealed TEXT,
    created_at TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_at TEXT NOT NULL,
    expires_ms BIGINT NOT NULL
);

CREATE INDEX artifacts_tenant ON artifacts (tenant_id);
CREATE INDEX artifacts_expiry ON artifacts (expires_ms);
CREATE INDEX artifacts_state ON artifacts (state, created_ms);
