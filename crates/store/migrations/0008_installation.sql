-- This installation's id: it marks the blob prefixes it owns, so a repair pass never sweeps a
-- prefix another installation writes to.
CREATE TABLE installation (
    id INTEGER PRIMARY KEY,
    installation_id TEXT NOT NULL
);
