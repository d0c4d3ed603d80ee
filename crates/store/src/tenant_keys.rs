//! Which master key wraps a tenant's data keys, when the tenant has one of its own: the
//! current key, and the keys it had before (still needed to open what they sealed); each in
//! the installation's Transit or in the tenant's own Vault.

use sqlx::Row;

use crate::meta::{Db, DbError};

/// One of a tenant's master keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantKey {
    pub tenant_id: String,
    /// The Transit key name.
    pub key_name: String,
    /// The tenant's own Vault holding it; `None`: the installation's Transit.
    pub vault: Option<TenantVault>,
    pub set_ms: i64,
    /// When another key replaced it; `None` for the current key.
    pub retired_ms: Option<i64>,
}

/// The tenant's own Vault/OpenBao where one of its keys lives.
#[derive(Clone, PartialEq, Eq)]
pub struct TenantVault {
    /// Base address, e.g. `https://vault.tenant.example:8200`.
    pub addr: String,
    /// Transit mount path.
    pub mount: String,
    /// A private CA certificate (PEM) for the Vault's TLS certificate.
    pub ca_pem: Option<String>,
    /// The token pixseal uses there, sealed under the region's master key (a sealed field).
    pub token_sealed: String,
}

impl std::fmt::Debug for TenantVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantVault")
            .field("addr", &self.addr)
            .field("mount", &self.mount)
            .field("ca_pem", &self.ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

macro_rules! columns {
    () => {
        "tenant_id, key_name, set_ms, retired_ms, vault_addr, vault_mount, vault_ca_pem, vault_token_sealed"
    };
}

fn tenant_key_from(r: &sqlx::any::AnyRow) -> Result<TenantKey, sqlx::Error> {
    let addr: Option<String> = r.try_get("vault_addr")?;
    let vault = match addr {
        None => None,
        Some(addr) => Some(TenantVault {
            addr,
            mount: r
                .try_get::<Option<String>, _>("vault_mount")?
                .unwrap_or_default(),
            ca_pem: r.try_get("vault_ca_pem")?,
            token_sealed: r
                .try_get::<Option<String>, _>("vault_token_sealed")?
                .unwrap_or_default(),
        }),
    };
    Ok(TenantKey {
        tenant_id: r.try_get("tenant_id")?,
        key_name: r.try_get("key_name")?,
        vault,
        set_ms: r.try_get("set_ms")?,
        retired_ms: r.try_get("retired_ms")?,
    })
}

impl Db {
    /// Makes `key_name` (in `vault`, or the installation's Transit) the tenant's current key,
    /// retiring the one before, if another. Setting a key the tenant already has again keeps
    /// its place and may renew its Vault token; the same name in another place is a
    /// [`DbError::Conflict`] (what it sealed would no longer open).
    pub async fn set_tenant_key(
        &self,
        tenant_id: &str,
        key_name: &str,
        vault: Option<&TenantVault>,
        now_ms: i64,
    ) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        let existing = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM tenant_keys WHERE tenant_id = $1 AND key_name = $2"
        ))
        .bind(tenant_id)
        .bind(key_name)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| tenant_key_from(&r))
        .transpose()?;
        let place = |v: Option<&TenantVault>| v.map(|v| (v.addr.clone(), v.mount.clone()));
        if let Some(k) = &existing
            && place(k.vault.as_ref()) != place(vault)
        {
            return Err(DbError::Conflict(format!(
                "the tenant already has a key named {key_name:?} in another place"
            )));
        }
        sqlx::query(
            "UPDATE tenant_keys SET retired_ms = $1 WHERE tenant_id = $2 AND retired_ms IS NULL AND key_name <> $3",
        )
        .bind(now_ms)
        .bind(tenant_id)
        .bind(key_name)
        .execute(&mut *tx)
        .await?;
        let (addr, mount, ca, token) = match vault {
            Some(v) => (
                Some(v.addr.as_str()),
                Some(v.mount.as_str()),
                v.ca_pem.as_deref(),
                Some(v.token_sealed.as_str()),
            ),
            None => (None, None, None, None),
        };
        sqlx::query(
            "INSERT INTO tenant_keys (tenant_id, key_name, set_ms, retired_ms, vault_addr, vault_mount, vault_ca_pem, vault_token_sealed) \
             VALUES ($1, $2, $3, NULL, $4, $5, $6, $7) \
             ON CONFLICT (tenant_id, key_name) DO UPDATE SET retired_ms = NULL, \
             set_ms = CASE WHEN tenant_keys.retired_ms IS NULL THEN tenant_keys.set_ms ELSE excluded.set_ms END, \
             vault_ca_pem = excluded.vault_ca_pem, vault_token_sealed = excluded.vault_token_sealed",
        )
        .bind(tenant_id)
        .bind(key_name)
        .bind(now_ms)
        .bind(addr)
        .bind(mount)
        .bind(ca)
        .bind(token)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every key the tenant has had, the current one (if any) first, then newest first.
    pub async fn tenant_keys(&self, tenant_id: &str) -> Result<Vec<TenantKey>, DbError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM tenant_keys WHERE tenant_id = $1 \
             ORDER BY CASE WHEN retired_ms IS NULL THEN 0 ELSE 1 END, set_ms DESC, key_name"
        ))
        .bind(tenant_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(tenant_key_from).collect::<Result<_, _>>()?)
    }

    /// The tenant's current key, if it has one of its own.
    pub async fn current_tenant_key(&self, tenant_id: &str) -> Result<Option<TenantKey>, DbError> {
        Ok(self
            .tenant_keys(tenant_id)
            .await?
            .into_iter()
            .find(|k| k.retired_ms.is_none()))
    }
}
