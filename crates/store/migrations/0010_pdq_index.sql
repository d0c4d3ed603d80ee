-- The near-match index (crates/store/src/pdq_index.rs): each kept PDQ hash under the eleven
-- keys of its 23- and 24-bit slices (slice number × 2^24 + slice value). Filled with the proof in the
-- same transaction; proofs kept before this migration are indexed once, at the next open, after
-- which `pdq_index_state.complete` says so.
CREATE TABLE pdq_keys (
    k BIGINT NOT NULL,
    proof_id TEXT NOT NULL,
    PRIMARY KEY (k, proof_id)
);

CREATE INDEX pdq_keys_proof_id ON pdq_keys (proof_id);

CREATE TABLE pdq_index_state (
    id INTEGER PRIMARY KEY,
    complete INTEGER NOT NULL
);

INSERT INTO pdq_index_state (id, complete) VALUES (1, 0);
