//! Moving data keys (`pixseal keys rewrap`): every stored data key onto the latest version of
//! the master key that wraps it, or (`--tenant T`) what was sealed for T before it had its
//! current key onto that key. Blobs are never rewritten: a detached blob opens with whichever
//! master key its stored wrapped key names (docs/sealed-format.md).

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use pixseal_seal::{KeyProvider, SealError, WrappedKey};

use crate::artifacts::b64;
use crate::error::{Result, ServiceError};
use crate::services::{Actor, Outcome, Services};

/// What `keys rewrap` did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RewrapReport {
    /// Moved onto the latest version of their key.
    pub rewrapped: u64,
    /// Already on it.
    pub already_current: u64,
    /// One line per data key that could not be moved (what, error code, message); it stays
    /// as it was and still opens.
    pub failed: Vec<String>,
}

/// A wrapped key `keys rewrap` moves, and where it is stored.
enum Stored {
    Artifact { id: String, tenant_id: String },
    CodeKey,
    InstallationSecret(String),
}

impl Stored {
    fn describe(&self, region: &str) -> String {
        match self {
            Stored::Artifact { id, .. } => format!("artifact {id}"),
            Stored::CodeKey => format!("code key of {region}"),
            Stored::InstallationSecret(p) => format!("installation secret {p}"),
        }
    }
}

impl Services {
    /// `pixseal keys rewrap`: every wrapped data key in the database (artifacts', each region's
    /// code key, the installation secrets) moved to the latest version of the master key that
    /// wraps it, a tenant's own included. A key that is gone (a tenant's, crypto-shredded)
    /// fails only what it wraps.
    pub async fn rewrap_data_keys(&self, actor: &Actor) -> Result<RewrapReport> {
        let mut all: Vec<(Stored, String, String)> = self
            .db
            .wrapped_keys()
            .await?
            .into_iter()
            .map(|(id, tenant_id, region, stored)| {
                (Stored::Artifact { id, tenant_id }, region, stored)
            })
            .collect();
        all.extend(
            self.db
                .code_keys()
                .await?
                .into_iter()
                .map(|(region, stored)| (Stored::CodeKey, region, stored)),
        );
        all.extend(self.db.installation_secrets().await?.into_iter().map(
            |(purpose, region, stored)| (Stored::InstallationSecret(purpose), region, stored),
        ));
        let mut report = RewrapReport::default();
        for (what, region, stored) in all {
            match self.rewrap_one(&what, &region, &stored).await {
                Ok(true) => report.rewrapped += 1,
                Ok(false) => report.already_current += 1,
                Err(e) => {
                    report
                        .failed
                        .push(format!("{}: {}: {e}", what.describe(&region), e.code()))
                }
            }
        }
        let outcome = if report.failed.is_empty() {
            Outcome::Ok
        } else {
            Outcome::Failed
        };
        let detail = format!("moved {}, failed {}", report.rewrapped, report.failed.len());
        self.audit_detail(actor, "key.rewrap", "artifacts", outcome, &detail)
            .await;
        Ok(report)
    }

    /// One stored wrapped key to its key's latest version; `false` when already there (or
    /// replaced meanwhile by someone else).
    async fn rewrap_one(&self, what: &Stored, region: &str, stored: &str) -> Result<bool> {
        let old = b64()
            .decode(stored)
            .ok()
            .and_then(|raw| WrappedKey::from_bytes(&raw).ok())
            .ok_or_else(|| ServiceError::internal("a stored wrapped key is malformed"))?;
        let keys = match what {
            Stored::Artifact { tenant_id, .. } => {
                self.opening_keys(tenant_id, region, &old.key_name).await?
            }
            Stored::CodeKey | Stored::InstallationSecret(_) => self.keys.clone(),
        };
        let region2 = region.to_owned();
        let new = tokio::task::spawn_blocking(move || {
            if old.version >= keys.key_versions(&region2)?.latest {
                return Ok(None);
            }
            keys.rewrap(&old, &region2).map(Some)
        })
        .await?
        .map_err(ServiceError::from)?;
        let Some(new) = new else {
            return Ok(false);
        };
        let new = b64().encode(new.to_bytes());
        Ok(match what {
            Stored::Artifact { id, .. } => self.db.replace_wrapped_key(id, stored, &new).await?,
            Stored::CodeKey => self.db.replace_code_key(region, stored, &new).await?,
            Stored::InstallationSecret(p) => {
                self.db.replace_installation_secret(p, stored, &new).await?
            }
        })
    }
}

/// What `keys rewrap --tenant` did: each item is an artifact (data key, label, client
/// address) or a code-level event (evidence).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MoveReport {
    /// Moved onto the tenant's current key.
    pub moved: u64,
    /// Already under it (or changed meanwhile by someone else).
    pub already: u64,
    /// One line per item that could not be moved (what, error code, message); it stays under
    /// the key it was under and still opens with it.
    pub failed: Vec<String>,
}

/// A sealed value's new form under `to`: itself when already there, else opened with the key
/// that sealed it and sealed again.
fn reseal_field(
    from: &HashMap<String, Arc<dyn KeyProvider>>,
    to: &(String, Arc<dyn KeyProvider>),
    region: &str,
    context: &str,
    sealed: &str,
) -> std::result::Result<String, SealError> {
    let name = pixseal_seal::field_key_name(sealed)?;
    if name == to.0 {
        return Ok(sealed.to_owned());
    }
    let old = from.get(&name).ok_or(SealError::Tampered)?;
    let plain = pixseal_seal::open_field(old.as_ref(), region, context, sealed)?;
    pixseal_seal::seal_field(to.1.as_ref(), region, context, &plain)
}

impl Services {
    /// `pixseal keys rewrap --tenant T`: moves what was sealed for T before it had its current
    /// key (under the region's key or an older key of its own) onto that key. An artifact's
    /// data key is unwrapped and wrapped again (the blob is untouched), its sealed fields are
    /// opened and sealed again, and all of it is written in one conditional update, so an
    /// artifact is either wholly moved or wholly as before. Safe to run again; a failure on
    /// one item leaves it as it was and goes on.
    pub async fn move_to_tenant_key(&self, actor: &Actor, tenant_name: &str) -> Result<MoveReport> {
        let tenant = self.tenant_by_name(tenant_name).await?;
        let Some(current) = self.db.current_tenant_key(&tenant.id).await? else {
            return Err(ServiceError::invalid(
                "no_tenant_key",
                format!(
                    "tenant {tenant_name:?} has no key of its own (pixseal tenant set-key first)"
                ),
            ));
        };
        let target_name = current.key_name.clone();
        let target = (
            target_name.clone(),
            self.tenant_provider(&tenant.region, &current).await?,
        );
        let mut report = MoveReport::default();
        for a in self.db.tenant_artifacts(&tenant.id).await? {
            match self.move_artifact(&a, &target).await {
                Ok(true) => report.moved += 1,
                Ok(false) => report.already += 1,
                Err(e) => report
                    .failed
                    .push(format!("artifact {}: {}: {e}", a.id, e.code())),
            }
        }
        for ev in self.db.code_level_events(&tenant.id).await? {
            match self.move_evidence(&tenant.region, &ev, &target).await {
                Ok(true) => report.moved += 1,
                Ok(false) => report.already += 1,
                Err(e) => {
                    report
                        .failed
                        .push(format!("code level event {}: {}: {e}", ev.id, e.code()))
                }
            }
        }
        let outcome = if report.failed.is_empty() {
            Outcome::Ok
        } else {
            Outcome::Failed
        };
        let detail = format!(
            "onto {target_name}: moved {}, already {}, failed {}",
            report.moved,
            report.already,
            report.failed.len()
        );
        self.audit_detail(actor, "tenant.move_keys", &tenant.id, outcome, &detail)
            .await;
        Ok(report)
    }

    /// The providers that open each of `names` for `tenant_id` (the target's excluded).
    async fn openers(
        &self,
        tenant_id: &str,
        region: &str,
        names: impl IntoIterator<Item = String>,
        target: &str,
    ) -> Result<HashMap<String, Arc<dyn KeyProvider>>> {
        let mut out = HashMap::new();
        for name in names {
            if name != target && !out.contains_key(&name) {
                let p = self.opening_keys(tenant_id, region, &name).await?;
                out.insert(name, p);
            }
        }
        Ok(out)
    }

    async fn move_artifact(
        &self,
        a: &pixseal_store::Artifact,
        target: &(String, Arc<dyn KeyProvider>),
    ) -> Result<bool> {
        let wrapped = crate::artifacts::wrapped_key(a)?;
        let fields = [a.label_sealed.as_deref(), a.client_ip_sealed.as_deref()];
        let mut names = vec![wrapped.key_name.clone()];
        for f in fields.into_iter().flatten() {
            names.push(pixseal_seal::field_key_name(f)?);
        }
        if names.iter().all(|n| *n == target.0) {
            return Ok(false);
        }
        let from = self
            .openers(&a.tenant_id, &a.region, names, &target.0)
            .await?;
        let (a2, target2) = (a.clone(), target.clone());
        let moved = tokio::task::spawn_blocking(move || {
            let (a, region) = (&a2, a2.region.as_str());
            let new_wrapped = if wrapped.key_name == target2.0 {
                wrapped
            } else {
                let old = from.get(&wrapped.key_name).ok_or(SealError::Tampered)?;
                let dek = old.unwrap_data_key(&wrapped, region)?;
                target2.1.wrap_data_key(&dek, region)?
            };
            let field = |name: &str, v: &Option<String>| {
                v.as_deref()
                    .map(|s| {
                        reseal_field(
                            &from,
                            &target2,
                            region,
                            &format!("artifacts.{name}.{}", a.id),
                            s,
                        )
                    })
                    .transpose()
            };
            Ok::<_, SealError>((
                new_wrapped,
                field("label", &a.label_sealed)?,
                field("client_ip", &a.client_ip_sealed)?,
            ))
        })
        .await?
        .map_err(ServiceError::from)?;
        let (new_wrapped, label, client_ip) = moved;
        let new_wrapped = b64().encode(new_wrapped.to_bytes());
        Ok(self
            .db
            .replace_artifact_keys(
                &a.id,
                &a.wrapped_key,
                &new_wrapped,
                label.as_deref(),
                client_ip.as_deref(),
            )
            .await?)
    }

    async fn move_evidence(
        &self,
        region: &str,
        ev: &pixseal_store::LevelEvent,
        target: &(String, Arc<dyn KeyProvider>),
    ) -> Result<bool> {
        let name = pixseal_seal::field_key_name(&ev.evidence_sealed)?;
        if name == target.0 {
            return Ok(false);
        }
        let from = self
            .openers(&ev.tenant_id, region, [name], &target.0)
            .await?;
        let (sealed, target2, region2) = (
            ev.evidence_sealed.clone(),
            target.clone(),
            region.to_owned(),
        );
        let ctx = format!("code_level_events.evidence.{}", ev.id);
        let new = tokio::task::spawn_blocking(move || {
            reseal_field(&from, &target2, &region2, &ctx, &sealed)
        })
        .await?
        .map_err(ServiceError::from)?;
        Ok(self
            .db
            .replace_level_event_evidence(&ev.id, &ev.evidence_sealed, &new)
            .await?)
    }
}
