//! Tenants and API keys: what an administrator creates, lists and revokes.

use pixseal_store::{ApiKey, DbError, Scope, Tenant};
use serde::Serialize;

use crate::{Actor, Outcome, Result, ServiceError, Services};

/// A created API key: its secret is shown once and stored only as a hash.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedKey {
    pub id: String,
    pub key: String,
    pub tenant: String,
    pub scopes: Vec<Scope>,
}

/// An API key as listed (never its secret).
#[derive(Debug, Clone, Serialize)]
pub struct KeyView {
    pub id: String,
    pub scopes: Vec<Scope>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl From<ApiKey> for KeyView {
    fn from(k: ApiKey) -> Self {
        KeyView {
            id: k.id,
            scopes: k.scopes,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

fn admin_error(e: DbError) -> ServiceError {
    match e {
        DbError::Conflict(m) => ServiceError::conflict("conflict", m),
        DbError::Invalid(m) => ServiceError::request(m),
        other => other.into(),
    }
}

impl Services {
    /// A tenant by name.
    pub async fn tenant_by_name(&self, name: &str) -> Result<Tenant> {
        match self.db.tenant_by_name(name).await {
            Ok(t) => Ok(t),
            Err(DbError::NotFound) => Err(ServiceError::UnknownTenant(name.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// Create a tenant pinned to `region`, with a default retention from
    /// `[server].retention_days_allowed` (`[server].default_retention_days` when none is given).
    pub async fn create_tenant(
        &self,
        actor: &Actor,
        name: &str,
        region: &str,
        retention_days: Option<i64>,
    ) -> Result<Tenant> {
        if !self.regions.iter().any(|r| r == region) {
            return Err(ServiceError::request(format!(
                "region {region:?} is not one of {:?}",
                self.regions
            )));
        }
        let days = retention_days.unwrap_or(self.config.default_retention_days);
        if !self.config.retention_days_allowed.contains(&days) {
            return Err(ServiceError::invalid(
                "retention_not_allowed",
                format!(
                    "retention_days must be one of {:?}",
                    self.config.retention_days_allowed
                ),
            ));
        }
        let t = self
            .db
            .create_tenant(name, region, days)
            .await
            .map_err(admin_error)?;
        self.audit_detail(actor, "tenant.create", &t.id, Outcome::Ok, &t.region)
            .await;
        Ok(t)
    }

    /// Create an API key for a tenant.
    pub async fn create_api_key(
        &self,
        actor: &Actor,
        tenant: &str,
        scopes: &[Scope],
    ) -> Result<CreatedKey> {
        let t = self.tenant_by_name(tenant).await?;
        let (k, secret) = self
            .db
            .create_api_key(&t, scopes)
            .await
            .map_err(admin_error)?;
        let detail: Vec<&str> = k.scopes.iter().map(|s| s.as_str()).collect();
        self.audit_detail(
            actor,
            "apikey.create",
            &k.id,
            Outcome::Ok,
            &detail.join(" "),
        )
        .await;
        Ok(CreatedKey {
            id: k.id,
            key: secret,
            tenant: t.name,
            scopes: k.scopes,
        })
    }

    /// A tenant's API keys, revoked ones included.
    pub async fn list_api_keys(&self, tenant: &str) -> Result<Vec<KeyView>> {
        let t = self.tenant_by_name(tenant).await?;
        Ok(self
            .db
            .list_api_keys(&t)
            .await?
            .into_iter()
            .map(KeyView::from)
            .collect())
    }

    /// Revoke one of a tenant's API keys.
    pub async fn revoke_api_key(&self, actor: &Actor, tenant: &str, id: &str) -> Result<()> {
        let t = self.tenant_by_name(tenant).await?;
        self.db.revoke_api_key(&t, id).await?;
        self.audit(actor, "apikey.revoke", id, Outcome::Ok).await;
        Ok(())
    }
}
