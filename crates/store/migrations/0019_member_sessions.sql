-- Dashboard sessions of members signed in with a passkey (docs/codes.md, "Passkeys"): the
-- token's SHA-256 bound to the passkey that opened it, so revoking the passkey ends them.
CREATE TABLE member_sessions (
    token_sha256 TEXT PRIMARY KEY,
    passkey_id TEXT NOT NULL REFERENCES passkeys(id),
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX member_sessions_expiry ON member_sessions (expires_ms);

-- Passkey sign-ins under way: a random challenge, for no account yet (the passkey says whose),
-- taken (deleted) once.
CREATE TABLE passkey_sign_ins (
    id TEXT PRIMARY KEY,
    challenge TEXT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX passkey_sign_ins_expires ON passkey_sign_ins (expires_ms);
