-- The near-match index re-laid (crates/store/src/pdq_index.rs): each kept PDQ hash under the
-- sixteen keys of its 16-bit slices (slice number × 2^16 + slice value), and every key row
-- carries the whole hash (four 64-bit words, h0 most significant), so a lookup reads the index
-- alone: no second read of each candidate's proof row. Every column is in the primary key so
-- that index covers the lookup on both databases. Filled with the proof in the same
-- transaction; proofs kept before this migration are indexed at the next open, in proof-id
-- order, `pdq_index_state.indexed_to` recording how far.
DROP TABLE pdq_keys;

CREATE TABLE pdq_slices (
    k BIGINT NOT NULL,
    proof_id TEXT NOT NULL,
    h0 BIGINT NOT NULL,
    h1 BIGINT NOT NULL,
    h2 BIGINT NOT NULL,
    h3 BIGINT NOT NULL,
    PRIMARY KEY (k, proof_id, h0, h1, h2, h3)
);

ALTER TABLE pdq_index_state ADD COLUMN indexed_to TEXT NOT NULL DEFAULT '';

UPDATE pdq_index_state SET complete = 0, indexed_to = '' WHERE id = 1;
