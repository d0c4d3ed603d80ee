-- Proof-of-work challenges (crates/service/src/challenge.rs). `installation_secrets`: random
-- keys the whole installation shares (every instance), each wrapped by the key provider under
-- one region's key, made on first use; the first is the HMAC key that signs challenges.
-- `challenges_spent`: the signature of every challenge whose solution was accepted, until the
-- challenge expires, so a solution is good once across every instance.
CREATE TABLE installation_secrets (
    purpose TEXT PRIMARY KEY,
    region TEXT NOT NULL,
    wrapped TEXT NOT NULL
);

CREATE TABLE challenges_spent (
    signature TEXT PRIMARY KEY,
    expires_ms BIGINT NOT NULL
);

CREATE INDEX challenges_spent_expires ON challenges_spent (expires_ms);
