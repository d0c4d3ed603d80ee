//! Which master key wraps a tenant's data keys, when the tenant has one of its own: the
//! current key, and the keys it had before (still needed to open what they sealed).

use sqlx::Row;

use crate::meta::{Db, DbError};

/// One of a tenant's master keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantKey {
    pub tenant_id: String,
    /// The Transit key name.
    pub key_name: String,
    pub set_ms: i64,
    /// When another key replaced it; `None` for the current key.
    pub retired_ms: Option<i64>,
}

fn tenant_key_from(r: &sqlx::any::AnyRow) -> Result<TenantKey, sqlx::Error> {
    Ok(TenantKey {
        tenant_id: r.try_get("tenant_id")?,
        key_name: r.try_get("key_name")?,
        set_ms: r.try_get("set_ms")?,
        retired_ms: r.try_get("retired_ms")?,
    })
}

impl Db {
    /// Makes `key_name` the tenant's current key (retiring the one before, if another); setting
    /// the current key again changes nothing.
    pub async fn set_tenant_key(
        &self,
        tenant_id: &str,
        key_name: &str,
        now_ms: i64,
    ) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "UPDATE tenant_keys SET retired_ms = $1 WHERE tenant_id = $2 AND retired_ms IS NULL AND key_name <> $3",
        )
        .bind(now_ms)
        .bind(tenant_id)
        .bind(key_name)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO tenant_keys (tenant_id, key_name, set_ms, retired_ms) VALUES ($1, $2, $3, NULL) \
             ON CONFLICT (tenant_id, key_name) DO UPDATE SET retired_ms = NULL, \
             set_ms = CASE WHEN tenant_keys.retired_ms IS NULL THEN tenant_keys.set_ms ELSE excluded.set_ms END",
        )
        .bind(tenant_id)
        .bind(key_name)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every key the tenant has had, the current one (if any) first, then newest first.
    pub async fn tenant_keys(&self, tenant_id: &str) -> Result<Vec<TenantKey>, DbError> {
        let rows = sqlx::query(
            "SELECT tenant_id, key_name, set_ms, retired_ms FROM tenant_keys WHERE tenant_id = $1 \
             ORDER BY CASE WHEN retired_ms IS NULL THEN 0 ELSE 1 END, set_ms DESC, key_name",
        )
        .bind(tenant_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(tenant_key_from).collect::<Result<_, _>>()?)
    }

    /// The tenant's current key, if it has one of its own.
    pub async fn current_tenant_key(&self, tenant_id: &str) -> Result<Option<String>, DbError> {
        Ok(self
            .tenant_keys(tenant_id)
            .await?
            .into_iter()
            .find(|k| k.retired_ms.is_none())
            .map(|k| k.key_name))
    }
}
