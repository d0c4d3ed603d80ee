//! A tenant's own master key (docs/keys.md): which provider seals its new artifacts, which
//! opens what is stored, `tenant set-key` (a key in the installation's Transit, or in the
//! tenant's own Vault/OpenBao) and `tenant import-key` (a key the tenant brings). Moving what
//! was stored before is in [`crate::rewrap`]. Disabling or deleting that key, or
//! revoking pixseal's token in the tenant's Vault, is crypto-shredding: the tenant's artifacts
//! cannot be opened by anyone, other tenants are untouched, and the purge still deletes them
//! and signs receipts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pixseal_seal::{KeyProvider, SealError, TransitConfig, TransitKeyProvider};
use pixseal_store::{TenantKey, TenantVault};
use zeroize::Zeroizing;

use crate::error::{Result, ServiceError};
use crate::services::{Actor, Outcome, Services};

/// Providers for tenants' own keys, by where the key is (region, key, Vault, sealed token):
/// one HTTP client each, reused.
pub type TenantProviders = Mutex<HashMap<String, Arc<dyn KeyProvider>>>;

/// The tenant's own Vault/OpenBao as `tenant set-key` is given it: the token in the clear,
/// once, to be sealed.
pub struct OwnVault {
    /// Base address (`https://…`; plain HTTP only to this machine).
    pub addr: String,
    /// Transit mount path.
    pub mount: String,
    /// A private CA certificate (PEM) for its TLS certificate.
    pub ca_pem: Option<String>,
    /// The token pixseal uses there (policy in docs/keys.md).
    pub token: Zeroizing<String>,
}

impl std::fmt::Debug for OwnVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnVault")
            .field("addr", &self.addr)
            .field("mount", &self.mount)
            .finish_non_exhaustive()
    }
}

/// A key error while sealing or opening for `tenant`: with the tenant's own key (`own`), "its
/// key could not be used"; with the region's, the usual mapping.
pub(crate) fn key_error(own: bool, tenant: &str, e: SealError) -> ServiceError {
    if !own {
        return e.into();
    }
    match e {
        SealError::KeyUnavailable(_)
        | SealError::KeyNotFound(_)
        | SealError::PermissionDenied(_)
        | SealError::KeyVersionRefused(_) => {
            tracing::warn!(tenant, error = %e, "a tenant's master key is unavailable");
            ServiceError::TenantKeyUnavailable(tenant.to_owned())
        }
        other => other.into(),
    }
}

/// What seals the tenant's Vault token: bound to the tenant and the key name.
fn token_context(tenant_id: &str, key_name: &str) -> String {
    format!("tenant_keys.vault_token.{tenant_id}.{key_name}")
}

impl Services {
    /// The provider that seals a new artifact of `tenant_id` (blob and sealed fields): the
    /// tenant's current key when it has one, else its region's.
    pub async fn sealing_keys(
        &self,
        tenant_id: &str,
        region: &str,
    ) -> Result<Arc<dyn KeyProvider>> {
        match self.db.current_tenant_key(tenant_id).await? {
            Some(key) => self.tenant_provider(region, &key).await,
            None => Ok(self.keys.clone()),
        }
    }

    /// The provider that opens what was sealed for `tenant_id` under the master key
    /// `key_name` (read from the stored wrapped key or the field's envelope): the region's
    /// key, or one the tenant has (had). Any other name is a stored object that was tampered
    /// with.
    pub async fn opening_keys(
        &self,
        tenant_id: &str,
        region: &str,
        key_name: &str,
    ) -> Result<Arc<dyn KeyProvider>> {
        if self.keys.key_name(region).ok().as_deref() == Some(key_name) {
            return Ok(self.keys.clone());
        }
        let known = self.db.tenant_keys(tenant_id).await?;
        match known.iter().find(|k| k.key_name == key_name) {
            Some(key) => self.tenant_provider(region, key).await,
            None => Err(SealError::Tampered.into()),
        }
    }

    pub(crate) async fn tenant_provider(
        &self,
        region: &str,
        key: &TenantKey,
    ) -> Result<Arc<dyn KeyProvider>> {
        let slot = match &key.vault {
            None => format!("{region}\0{}", key.key_name),
            Some(v) => format!(
                "{region}\0{}\0{}\0{}\0{}",
                key.key_name, v.addr, v.mount, v.token_sealed
            ),
        };
        if let Some(p) = self
            .tenant_providers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&slot)
        {
            return Ok(p.clone());
        }
        let p: Arc<dyn KeyProvider> = match &key.vault {
            None => Arc::new(
                self.keys_config
                    .open_tenant_provider(region, &key.key_name)
                    .map_err(|e| {
                        ServiceError::internal(format!("tenant key {:?}: {e}", key.key_name))
                    })?,
            ),
            Some(v) => {
                let (keys, region2, ctx, sealed) = (
                    self.keys.clone(),
                    region.to_owned(),
                    token_context(&key.tenant_id, &key.key_name),
                    v.token_sealed.clone(),
                );
                let token = tokio::task::spawn_blocking(move || {
                    pixseal_seal::open_field(keys.as_ref(), &region2, &ctx, &sealed)
                })
                .await??;
                let token = Zeroizing::new(
                    String::from_utf8(token.to_vec())
                        .map_err(|_| ServiceError::internal("a sealed Vault token is not text"))?,
                );
                Arc::new(vault_provider(region, &key.key_name, v, token)?)
            }
        };
        self.tenant_providers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(slot, p.clone());
        Ok(p)
    }

    /// Runs `f` with the tenant's provider on the blocking pool, its key errors named as the
    /// tenant's.
    pub(crate) async fn with_keys<T: Send + 'static>(
        &self,
        tenant_id: &str,
        keys: Arc<dyn KeyProvider>,
        f: impl FnOnce(&dyn KeyProvider) -> std::result::Result<T, SealError> + Send + 'static,
    ) -> Result<T> {
        let own = !Arc::ptr_eq(&keys, &self.keys);
        let res = tokio::task::spawn_blocking(move || f(keys.as_ref())).await?;
        res.map_err(|e| key_error(own, tenant_id, e))
    }

    /// `pixseal tenant set-key T --transit-key NAME [--vault-addr …]`: the tenant's new
    /// artifacts are sealed under `key_name` from now on, a key in the installation's Transit
    /// or (with `vault`) in the tenant's own Vault/OpenBao, whose token is then stored sealed
    /// under the region's key. The key must be usable (a data key is made and opened with it
    /// first) and not be named like a region's or a signing key.
    pub async fn set_tenant_key(
        &self,
        actor: &Actor,
        tenant_name: &str,
        key_name: &str,
        vault: Option<OwnVault>,
    ) -> Result<()> {
        let tenant = self.tenant_by_name(tenant_name).await?;
        let reserved = self
            .regions
            .iter()
            .map(|r| self.keys.key_name(r).unwrap_or_default())
            .chain([
                self.keys_config.transit_receipt_key(),
                self.keys_config.transit_claim_key(),
            ]);
        if reserved.into_iter().any(|k| k == key_name) {
            return Err(ServiceError::invalid(
                "invalid_key",
                format!("{key_name:?} is a region's or a signing key, not a tenant's"),
            ));
        }
        pixseal_seal::validate_key_name(key_name)
            .map_err(|e| ServiceError::invalid("invalid_key", e.to_string()))?;
        if vault.is_none() && self.keys_config.transit_addr.is_empty() {
            return Err(ServiceError::invalid(
                "invalid_key",
                "a tenant key in the installation's Transit needs [keys].transit_addr; \
                 or give the tenant's own Vault with --vault-addr",
            ));
        }
        let (keys, stored): (Arc<dyn KeyProvider>, Option<TenantVault>) = match vault {
            None => (
                self.tenant_provider(
                    &tenant.region,
                    &TenantKey {
                        tenant_id: tenant.id.clone(),
                        key_name: key_name.to_owned(),
                        vault: None,
                        set_ms: 0,
                        retired_ms: None,
                    },
                )
                .await?,
                None,
            ),
            Some(v) => {
                let probe = TenantVault {
                    addr: v.addr.clone(),
                    mount: v.mount.clone(),
                    ca_pem: v.ca_pem.clone(),
                    token_sealed: String::new(),
                };
                let p = vault_provider(&tenant.region, key_name, &probe, v.token.clone())
                    .map_err(|e| ServiceError::invalid("invalid_key", e.to_string()))?;
                let (keys, region, ctx, token) = (
                    self.keys.clone(),
                    tenant.region.clone(),
                    token_context(&tenant.id, key_name),
                    v.token,
                );
                let sealed = tokio::task::spawn_blocking(move || {
                    pixseal_seal::seal_field(keys.as_ref(), &region, &ctx, token.as_bytes())
                })
                .await??;
                (
                    Arc::new(p),
                    Some(TenantVault {
                        token_sealed: sealed,
                        ..probe
                    }),
                )
            }
        };
        let region = tenant.region.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let (dek, wrapped) = keys.generate_data_key(&region)?;
            if keys.unwrap_data_key(&wrapped, &region)? != dek {
                return Err(SealError::Internal(
                    "the key did not give back its data key".into(),
                ));
            }
            Ok(())
        })
        .await?;
        if let Err(e) = checked {
            return Err(match e {
                SealError::Internal(_) | SealError::Io(_) => e.into(),
                e => ServiceError::invalid(
                    "invalid_key",
                    format!("key {key_name:?} cannot be used by pixseal: {e}"),
                ),
            });
        }
        self.db
            .set_tenant_key(&tenant.id, key_name, stored.as_ref(), self.clock.now_ms())
            .await?;
        let place = stored
            .as_ref()
            .map_or_else(String::new, |v| format!(" at {} ({})", v.addr, v.mount));
        self.audit_detail(
            actor,
            "tenant.set_key",
            &tenant.id,
            Outcome::Ok,
            &format!("{key_name}{place}"),
        )
        .await;
        Ok(())
    }
}

impl Services {
    /// `pixseal tenant import-key T --transit-key NAME`: the key material T brought, already
    /// wrapped for Transit's import on T's side (`pixseal tenant wrap-key`), becomes the
    /// Transit key `NAME` (never exportable) with the operator's token, then T's key as with
    /// [`Services::set_tenant_key`]. pixseal never holds the key material in the clear.
    pub async fn import_tenant_key(
        &self,
        actor: &Actor,
        tenant_name: &str,
        key_name: &str,
        wrapped: &str,
        operator_token: Zeroizing<String>,
    ) -> Result<()> {
        let tenant = self.tenant_by_name(tenant_name).await?;
        let importer = self
            .keys_config
            .open_importer(&operator_token)
            .map_err(|e| ServiceError::invalid("invalid_key", e.to_string()))?;
        let (name, wrapped) = (key_name.to_owned(), Zeroizing::new(wrapped.to_owned()));
        tokio::task::spawn_blocking(move || importer.import(&name, &wrapped))
            .await?
            .map_err(|e| match e {
                SealError::KeyUnavailable(_) | SealError::Internal(_) | SealError::Io(_) => {
                    e.into()
                }
                e => ServiceError::invalid(
                    "invalid_key",
                    format!("Transit refused to import {key_name:?}: {e}"),
                ),
            })?;
        self.audit_detail(
            actor,
            "tenant.import_key",
            &tenant.id,
            Outcome::Ok,
            key_name,
        )
        .await;
        self.set_tenant_key(actor, tenant_name, key_name, None)
            .await
    }
}

/// A provider for one key in a tenant's own Vault; no network I/O until it is used.
fn vault_provider(
    region: &str,
    key_name: &str,
    v: &TenantVault,
    token: Zeroizing<String>,
) -> Result<TransitKeyProvider> {
    let cfg = TransitConfig {
        addr: v.addr.clone(),
        token,
        mount: v.mount.clone(),
        keys: [(region.to_owned(), key_name.to_owned())].into(),
        retry: Default::default(),
        ca_cert_pem: v.ca_pem.as_ref().map(|p| p.as_bytes().to_vec()),
    };
    TransitKeyProvider::new(cfg)
        .map_err(|e| ServiceError::invalid("invalid_key", format!("tenant Vault: {e}")))
}
