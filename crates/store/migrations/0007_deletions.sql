-- A deletion is decided once: when an artifact goes 'deleting', what its receipt will say is
-- fixed on the row (receipt id, reason, deletion time, subject salt), so whoever finishes it
-- (the request that began it, or the purge pass taking over a stale one) signs the same
-- receipt. One artifact never has two receipts. A receipt keeps what opens its subject
-- (salt, original SHA-256) for its tenant's view; rows of version 1 receipts have neither.
ALTER TABLE artifacts ADD COLUMN receipt_id TEXT;
ALTER TABLE artifacts ADD COLUMN deletion_reason TEXT;
ALTER TABLE artifacts ADD COLUMN deleted_at TEXT;
ALTER TABLE artifacts ADD COLUMN subject_salt TEXT;

ALTER TABLE receipts ADD COLUMN subject_salt TEXT;
ALTER TABLE receipts ADD COLUMN original_sha256 TEXT;

CREATE UNIQUE INDEX receipts_artifact ON receipts (artifact_id);
