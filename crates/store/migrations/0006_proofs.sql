-- Public proof records (SPEC §5 GET /v1/proofs/{id}, §8): the one row that outlives an
-- artifact. Nothing of the image and nothing personal: the proof id, the SHA-256 of the
-- stamped artifact and of the original upload, the PDQ perceptual hash (kept after the purge,
-- see docs/provenance.md), when it was issued and, once purged, when and under which receipt.
CREATE TABLE proofs (
    proof_id TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    original_sha256 TEXT NOT NULL,
    pdq TEXT,
    issued_at TEXT NOT NULL,
    status TEXT NOT NULL,
    purged_at TEXT,
    receipt_id TEXT
);

CREATE INDEX proofs_sha256 ON proofs (sha256);
