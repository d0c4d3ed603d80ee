-- Signed deletion receipts: what survives an artifact (SPEC §8), served by receipt id.
CREATE TABLE receipts (
    receipt_id TEXT PRIMARY KEY,
    artifact_id TEXT NOT NULL,
    proof_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    signed_json TEXT NOT NULL,
    deleted_at TEXT NOT NULL
);

CREATE INDEX receipts_proof ON receipts (proof_id);
