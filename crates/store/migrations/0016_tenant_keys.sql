-- The master keys that wrap a tenant's data keys when they are not its region's (docs/keys.md):
-- Transit keys of its own. Every key a tenant has had stays listed (retired_ms set once another
-- replaced it), so what was sealed under an older one still opens until it is moved.
CREATE TABLE tenant_keys (
    tenant_id TEXT NOT NULL,
    key_name TEXT NOT NULL,
    set_ms BIGINT NOT NULL,
    retired_ms BIGINT,
    PRIMARY KEY (tenant_id, key_name)
);
