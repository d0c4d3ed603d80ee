-- Members of an account and their passkeys (docs/codes.md, "Passkeys"). Nothing biometric is
-- stored: a passkey is its credential ID, public key and signature counter. A member is
-- enrolled with a one-time token an administrator hands over (only its SHA-256 is kept).
CREATE TABLE members (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    user_handle TEXT NOT NULL UNIQUE,
    enrollment_sha256 TEXT,
    enrollment_expires_ms BIGINT,
    created_at TEXT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE passkeys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    member_id TEXT NOT NULL REFERENCES members(id),
    public_key TEXT NOT NULL,
    sign_count BIGINT NOT NULL,
    aaguid TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
);

CREATE INDEX passkeys_tenant ON passkeys (tenant_id);

-- WebAuthn ceremonies under way, shared by every instance; each is taken (deleted) once.
-- register: `state` is webauthn_rp's server state (base64), `bound` the enrollment token's
-- SHA-256; mint: `state` is the challenge (hex), `code_expires_ms` the code's expiry.
CREATE TABLE passkey_ceremonies (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    member_id TEXT,
    state TEXT NOT NULL,
    bound TEXT,
    code_expires_ms BIGINT,
    expires_ms BIGINT NOT NULL
);

CREATE INDEX passkey_ceremonies_expires ON passkey_ceremonies (expires_ms);

-- A code minted with a passkey keeps the assertion (its level-4 signature) and who made it.
ALTER TABLE message_codes ADD COLUMN member_id TEXT;
ALTER TABLE message_codes ADD COLUMN passkey_id TEXT;
ALTER TABLE message_codes ADD COLUMN assertion TEXT;

-- Whether minting needs a person present: 'required', 'optional', or NULL for the
-- installation's [codes].require_presence.
ALTER TABLE code_accounts ADD COLUMN presence TEXT;
