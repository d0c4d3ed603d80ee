-- Licences for the offline tool (`pixseal license issue`) and the devices activated under
-- them. A device is known only by a salted hash of its machine id, and what it reports is
-- counts only: images and bytes processed, and its pixseal version (docs/licenses.md).
CREATE TABLE licenses (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    seats BIGINT NOT NULL,
    issued_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    revoked_ms BIGINT
);

CREATE INDEX licenses_tenant ON licenses (tenant_id);

CREATE TABLE license_devices (
    license_id TEXT NOT NULL,
    device TEXT NOT NULL,
    state TEXT NOT NULL,
    activated_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    deactivated_ms BIGINT,
    images BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    version TEXT NOT NULL,
    PRIMARY KEY (license_id, device)
);
