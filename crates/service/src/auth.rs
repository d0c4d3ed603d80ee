//! Callers: who is asking (an API key, or a member signed in with a passkey), for which
//! tenant, with which scopes.

use pixseal_store::{ApiKey, DbError, Scope, Tenant};

use crate::{Actor, Outcome, Result, ServiceError, Services};

/// What a member signed in to the dashboard with a passkey may do: mint codes with their own
/// passkey. Enrolling a member gives them presence for codes, not the account's photos (an API
/// key with `artifacts:read` signs in to the gallery) nor its administration.
pub const MEMBER_SCOPES: [Scope; 1] = [Scope::Codes];

/// An authenticated caller: an API key ([`Actor::ApiKey`]) or a member's passkey session
/// ([`Actor::Member`]).
#[derive(Debug, Clone)]
pub struct Caller {
    tenant: Tenant,
    scopes: Vec<Scope>,
    actor: Actor,
}

impl Caller {
    /// The caller holding this (valid) API key.
    pub fn with_key(key: ApiKey) -> Caller {
        Caller {
            tenant: key.tenant,
            scopes: key.scopes,
            actor: Actor::ApiKey(key.id),
        }
    }

    /// A member of `tenant`, proven by one of their passkeys.
    pub fn member(member_id: String, tenant: Tenant) -> Caller {
        Caller {
            tenant,
            scopes: MEMBER_SCOPES.to_vec(),
            actor: Actor::Member(member_id),
        }
    }

    /// The caller's tenant, whatever its scopes (for what every caller may see of its own).
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// The API key's or the member's id (the actor without its kind).
    pub fn id(&self) -> &str {
        match &self.actor {
            Actor::ApiKey(id) | Actor::Member(id) => id,
            _ => "",
        }
    }

    /// Whether the caller holds `scope` (`admin` holds every scope).
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes
            .iter()
            .any(|s| *s == scope || *s == Scope::Admin)
    }

    /// The caller's tenant, when it holds `scope`.
    pub fn require(&self, scope: Scope) -> Result<&Tenant> {
        if self.has_scope(scope) {
            Ok(&self.tenant)
        } else {
            let who = match self.actor {
                Actor::Member(_) => "a member's session",
                _ => "this API key",
            };
            Err(ServiceError::forbidden(format!(
                "{who} lacks the {scope} scope"
            )))
        }
    }

    pub fn actor(&self) -> Actor {
        self.actor.clone()
    }

    /// The member, when the caller is one (a passkey session).
    pub fn member_id(&self) -> Option<&str> {
        match &self.actor {
            Actor::Member(id) => Some(id),
            _ => None,
        }
    }
}

impl Services {
    /// The caller holding this secret. An unknown or revoked key is audited (with the route it
    /// was tried on) and refused.
    pub async fn authenticate(&self, secret: &str, route: &str) -> Result<Caller> {
        match self.db.api_key_by_secret(secret).await {
            Ok(key) => Ok(Caller::with_key(key)),
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
