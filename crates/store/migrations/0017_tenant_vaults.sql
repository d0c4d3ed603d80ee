-- A tenant's key may live in the tenant's own Vault/OpenBao (docs/keys.md): its address, Transit
-- mount, an optional CA certificate (PEM) and the token pixseal uses there, sealed under the
-- region's master key. NULL address: the key is in the installation's own Transit.
ALTER TABLE tenant_keys ADD COLUMN vault_addr TEXT;
ALTER TABLE tenant_keys ADD COLUMN vault_mount TEXT;
ALTER TABLE tenant_keys ADD COLUMN vault_ca_pem TEXT;
ALTER TABLE tenant_keys ADD COLUMN vault_token_sealed TEXT;
