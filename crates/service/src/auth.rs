//! API keys → callers: who is asking, for which tenant, with which scopes.

use pixseal_store::{ApiKey, DbError, Scope, Tenant};

use crate::{Actor, Outcome, Result, ServiceError, Services};

/// A caller authenticated by a valid API key.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: ApiKey,
}

impl Caller {
    /// The caller's tenant, when its key holds `scope` (`admin` holds every scope).
    pub fn require(&self, scope: Scope) -> Result<&Tenant> {
        if self.key.has_scope(scope) {
            Ok(&self.key.tenant)
        } else {
            Err(ServiceError::forbidden(format!(
                "this API key lacks the {scope} scope"
            )))
        }
    }

    pub fn actor(&self) -> Actor {
        Actor::ApiKey(self.key.id.clone())
    }
}

impl Services {
    /// The caller holding this secret. An unknown or revoked key is audited (with the route it
    /// was tried on) and refused.
    pub async fn authenticate(&self, secret: &str, route: &str) -> Result<Caller> {
        match self.db.api_key_by_secret(secret).await {
            Ok(key) => Ok(Caller { key }),
            Err(DbError::NotFound) => {
                self.audit_detail(
                    &Actor::Anonymous,
                    "auth",
                    route,
                    Outcome::Denied,
                    "unknown_or_revoked_key",
                )
                .await;
                Err(ServiceError::Unauthorized("unknown or revoked API key"))
            }
            Err(e) => Err(e.into()),
        }
    }
}
