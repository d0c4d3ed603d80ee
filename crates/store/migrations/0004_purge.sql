-- When a purge worker claimed an artifact (state 'purging'); a claim older than the grace
-- period belongs to a worker that died and is taken over.
ALTER TABLE artifacts ADD COLUMN claimed_ms BIGINT;
