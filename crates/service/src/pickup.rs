//! Pickup links (`POST /v1/stamp?deliver=link`): a stamped file kept sealed, as an artifact of
//! the caller's tenant, until its first complete download or `[stamp].pickup_minutes`, then
//! erased with a signed deletion receipt. The link's secret is 256 random bits; only its
//! SHA-256 is stored.

use base64::Engine;
use pixseal_store::{
    Artifact, ArtifactState, DbError, DeletionReason, Pickup, PickupClaim, PickupState,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::{Actor, Outcome, Result, ServiceError, Services};

/// How long an ended link is still told apart from one never issued (410 rather than 404).
const ENDED_LINK_MEMORY_MS: i64 = 24 * 3600 * 1000;

/// Where a stamped file waits, and until when.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PickupLink {
    /// Download it once from here (no key needed: the link is the secret).
    pub url: String,
    /// It is erased at this time if nobody downloaded it.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// A new link's secret token: 32 random bytes, base64url without padding (43 characters).
pub(crate) fn new_token() -> Result<String> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| ServiceError::internal(e.to_string()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn well_formed(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The file of a claimed link, being handed out.
pub struct PickupDownload {
    pub bytes: Vec<u8>,
    pub content_type: String,
    pub proof_id: String,
    /// Tell it when every byte went out; dropping it is the download's end either way.
    pub done: PickupGuard,
}

/// A download's hold on its link. Dropped after [`PickupGuard::completed`], the link is spent
/// and its file erased (receipt reason `picked_up`); dropped before, the claim is given back
/// and the link can be downloaded again until it expires.
pub struct PickupGuard {
    services: Services,
    pickup: Pickup,
    claimed_ms: i64,
    completed: bool,
}

impl PickupGuard {
    pub fn completed(&mut self) {
        self.completed = true;
    }
}

impl Drop for PickupGuard {
    fn drop(&mut self) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("a pickup ended outside the runtime; the claim lapses when stale");
            return;
        };
        let (s, p, claimed_ms, completed) = (
            self.services.clone(),
            self.pickup.clone(),
            self.claimed_ms,
            self.completed,
        );
        rt.spawn(async move {
            if completed {
                s.finish_pickup(&p).await;
            } else if let Err(e) = s.db.release_pickup(&p.token_sha256, claimed_ms).await {
                let e = ServiceError::from(e);
                tracing::warn!(
                    code = e.code(),
                    "a broken-off pickup's claim lapses when stale"
                );
            }
        });
    }
}

impl Services {
    pub(crate) fn pickup_url(&self, token: &str) -> String {
        format!(
            "{}/v1/pickups/{token}",
            self.config.public_url.trim_end_matches('/')
        )
    }

    /// Keep a stamped, sealed artifact for pickup: stored like an upload (pending, blob,
    /// active with its proof record), then the link.
    pub(crate) async fn keep_for_pickup(
        &self,
        a: &Artifact,
        blob: bytes::Bytes,
        pdq: Option<String>,
        manifest: &pixseal_store::ProofManifest,
    ) -> Result<PickupLink> {
        self.store(a, blob, pdq, manifest).await?;
        let token = new_token()?;
        let pickup = Pickup {
            token_sha256: token_hash(&token),
            artifact_id: a.id.clone(),
            tenant_id: a.tenant_id.clone(),
            proof_id: a.proof_id.clone(),
            state: PickupState::Waiting,
            expires_ms: a.expires_ms,
            claimed_ms: None,
        };
        // Without its link the artifact is unreachable; the purge pass erases it at expiry.
        self.db.insert_pickup(&pickup).await?;
        Ok(PickupLink {
            url: self.pickup_url(&token),
            expires_at: a.expires_at.clone(),
        })
    }

    /// Claim a link and open its file. Spent or expired: `pickup_gone` (410, naming the
    /// deletion receipt when it is signed); being downloaded: `pickup_in_progress` (409);
    /// anything else unknown: `not_found`.
    pub async fn open_pickup(&self, token: &str) -> Result<PickupDownload> {
        if !well_formed(token) {
            return Err(ServiceError::NotFound);
        }
        let now_ms = self.clock.now_ms();
        let stale_ms = self.config.purge_stale_claim_secs as i64 * 1000;
        let p = match self
            .db
            .claim_pickup(&token_hash(token), now_ms, stale_ms)
            .await?
        {
            PickupClaim::Claimed(p) => p,
            PickupClaim::Gone(p) => return Err(self.gone(&p).await),
            PickupClaim::InProgress => {
                return Err(ServiceError::conflict(
                    "pickup_in_progress",
                    "this file is being downloaded right now; a pickup link gives it out once",
                ));
            }
            PickupClaim::Unknown => return Err(ServiceError::NotFound),
        };
        let guard = PickupGuard {
            services: self.clone(),
            pickup: p.clone(),
            claimed_ms: now_ms,
            completed: false,
        };
        let a = match self.db.artifact(&p.tenant_id, &p.artifact_id).await {
            Ok(a) => a,
            // Erased meanwhile (the purge pass, at expiry).
            Err(DbError::NotFound) => return Err(self.gone(&p).await),
            Err(e) => return Err(e.into()),
        };
        let bytes = self.open_artifact(&a).await?;
        self.audit(&Actor::Anonymous, "pickup.download", &a.id, Outcome::Ok)
            .await;
        Ok(PickupDownload {
            bytes,
            content_type: a.content_type,
            proof_id: a.proof_id,
            done: guard,
        })
    }

    async fn gone(&self, p: &Pickup) -> ServiceError {
        let receipt = match self.db.proof(&p.proof_id).await {
            Ok(r) => r.receipt_id,
            Err(_) => None,
        };
        let spent = if p.state == PickupState::PickedUp {
            "was downloaded once"
        } else {
            "was not downloaded in time"
        };
        ServiceError::Gone {
            code: "pickup_gone",
            message: match receipt {
                Some(r) => format!(
                    "this link's file {spent} and is deleted; deletion receipt {r} (GET /v1/receipts/{r})"
                ),
                None => format!("this link's file {spent} and is deleted"),
            },
        }
    }

    /// A download completed: the link is spent, then the file erased with its receipt. A
    /// failure here leaves the artifact to the purge pass at expiry (its receipt then says
    /// `retention_expired`).
    async fn finish_pickup(&self, p: &Pickup) {
        if let Err(e) = self.db.finish_pickup(&p.token_sha256).await {
            let e = ServiceError::from(e);
            tracing::error!(
                code = e.code(),
                "a completed pickup could not be marked spent"
            );
            return;
        }
        let erased = match self.db.artifact(&p.tenant_id, &p.artifact_id).await {
            Ok(a) => {
                self.erase(&a, ArtifactState::Active, DeletionReason::PickedUp)
                    .await
            }
            Err(e) => Err(e.into()),
        };
        match erased {
            Ok(r) => {
                self.audit_detail(
                    &Actor::System,
                    "artifact.delete",
                    &p.artifact_id,
                    Outcome::Ok,
                    r.receipt.receipt_id(),
                )
                .await;
            }
            // Erased by the purge pass meanwhile.
            Err(ServiceError::NotFound) => {}
            Err(e) => {
                tracing::error!(artifact = %p.artifact_id, code = e.code(), "erasing a picked-up file failed; the purge pass erases it at expiry");
                self.audit_detail(
                    &Actor::System,
                    "artifact.delete",
                    &p.artifact_id,
                    Outcome::Failed,
                    e.code(),
                )
                .await;
            }
        }
    }

    /// Forget links that ended more than a day ago; returns how many.
    pub(crate) async fn forget_pickups(&self, now_ms: i64) -> Result<u64> {
        Ok(self
            .db
            .forget_pickups(now_ms - ENDED_LINK_MEMORY_MS)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_random_bits_in_base64url() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_ne!(a, b);
        assert!(well_formed(&a) && well_formed(&b), "{a} {b}");
        assert!(!well_formed(&a[..42]));
        assert!(!well_formed(&format!("{}=", &a[..42])));
        assert!(!well_formed("../../../../etc/passwd-aaaaaaaaaaaaaaaaaaa"));
    }
}
