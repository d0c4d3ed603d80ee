//! A tenant's own master key (docs/keys.md): which provider seals its new artifacts, which
//! opens what is stored, and `tenant set-key`. Disabling or deleting that key in Transit is
//! crypto-shredding: the tenant's artifacts cannot be opened by anyone, other tenants are
//! untouched, and the purge still deletes them and signs receipts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pixseal_seal::{KeyProvider, SealError};

use crate::error::{Result, ServiceError};
use crate::services::{Actor, Outcome, Services};

/// Providers for tenants' own keys, by (region, key name): one HTTP client each, reused.
pub type TenantProviders = Mutex<HashMap<(String, String), Arc<dyn KeyProvider>>>;

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

impl Services {
    /// The provider that seals a new artifact of `tenant_id` (blob and sealed fields): the
    /// tenant's current key when it has one, else its region's.
    pub async fn sealing_keys(
        &self,
        tenant_id: &str,
        region: &str,
    ) -> Result<Arc<dyn KeyProvider>> {
        match self.db.current_tenant_key(tenant_id).await? {
            Some(name) => self.tenant_provider(region, &name),
            None => Ok(self.keys.clone()),
        }
    }

    /// The provider that opens what was sealed for `tenant_id` under the master key
    /// `key_name` (read from the blob's header or the field's envelope): the region's key, or
    /// one the tenant has (had). Any other name is a stored object that was tampered with.
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
        if known.iter().any(|k| k.key_name == key_name) {
            self.tenant_provider(region, key_name)
        } else {
            Err(SealError::Tampered.into())
        }
    }

    fn tenant_provider(&self, region: &str, key_name: &str) -> Result<Arc<dyn KeyProvider>> {
        let mut cache = self
            .tenant_providers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let slot = (region.to_owned(), key_name.to_owned());
        if let Some(p) = cache.get(&slot) {
            return Ok(p.clone());
        }
        let p: Arc<dyn KeyProvider> = Arc::new(
            self.keys_config
                .open_tenant_provider(region, key_name)
                .map_err(|e| ServiceError::internal(format!("tenant key {key_name:?}: {e}")))?,
        );
        cache.insert(slot, p.clone());
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

    /// `pixseal tenant set-key T --transit-key NAME`: the tenant's new artifacts are sealed
    /// under `key_name` from now on. The key must exist in the installation's Transit, be
    /// usable by pixseal's token (a data key is made and opened with it first), and not be a
    /// region's or a signing key.
    pub async fn set_tenant_key(
        &self,
        actor: &Actor,
        tenant_name: &str,
        key_name: &str,
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
        let keys = self.tenant_provider(&tenant.region, key_name)?;
        let region = tenant.region.clone();
        self.with_keys(&tenant.id, keys, move |k| {
            let (dek, wrapped) = k.generate_data_key(&region)?;
            if k.unwrap_data_key(&wrapped, &region)? != dek {
                return Err(SealError::Internal(
                    "the key did not give back its data key".into(),
                ));
            }
            Ok(())
        })
        .await?;
        self.db
            .set_tenant_key(&tenant.id, key_name, self.clock.now_ms())
            .await?;
        self.audit_detail(actor, "tenant.set_key", &tenant.id, Outcome::Ok, key_name)
            .await;
        Ok(())
    }
}
