-- Pickup links of ephemeral stamping (`POST /v1/stamp?deliver=link`): the stamped file waits,
-- sealed, as an artifact of the caller's tenant until its first complete download or
-- `[stamp].pickup_minutes`, whichever comes first; then it is erased with a signed receipt.
-- Only the SHA-256 of the link's secret token is stored. A row outlives its artifact by a day,
-- so a second download is told the file is gone (410) rather than that it never existed.
CREATE TABLE pickups (
    token_sha256 TEXT PRIMARY KEY,
    artifact_id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL,
    proof_id TEXT NOT NULL,
    state TEXT NOT NULL,
    expires_ms BIGINT NOT NULL,
    claimed_ms BIGINT
);

CREATE INDEX pickups_expires ON pickups (expires_ms);
