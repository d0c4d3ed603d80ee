//! Ephemeral stamping: pictures stamped and handed straight back, nothing kept but each one's
//! public proof record (proof id, hashes, PDQ, issued time, signed manifest). No artifact row,
//! no blob, no label, no client address.

use std::sync::Arc;

use base64::Engine;
use pixseal_media::{Options, OutputFormat};
use pixseal_proof::ProofId;
use pixseal_provenance::ProofAssertion;
use pixseal_provenance::stamp::{MarkOptions, Stamped, stamp};
use pixseal_seal::{KeyPlacement, ObjectRef, Sealer, WrappedKey};
use pixseal_store::{
    Artifact, ArtifactState, ProofManifest, ProofRecord, ProofStatus, Scope, Tenant,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use crate::artifacts::b64;
use crate::auth::Caller;
use crate::budget::Body;
use crate::pickup::PickupLink;
use crate::work::with_pipeline;
use crate::{Actor, Outcome, Result, ServiceError, Services};

/// Longest label, in bytes (as for uploads).
const MAX_LABEL_BYTES: usize = 200;

/// `[stamp]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StampConfig {
    /// Whether `POST /v1/stamp` serves callers without an API key (per-address rate limits;
    /// no label).
    pub anonymous: bool,
    /// Anonymous requests one address may make per hour without a solved challenge; past
    /// them (and always with 0) each anonymous request needs one.
    pub anonymous_free_per_hour: u32,
    /// Most pictures in one request.
    pub max_files: usize,
    /// More pictures than this in one request need a solved proof-of-work challenge.
    pub challenge_over: usize,
    /// PBKDF2 iterations per attempt at a challenge.
    pub challenge_work_cost: u32,
    /// Attempts a challenge takes at an idle service (the counter is drawn between half and
    /// all of it); up to four times as many when every decode slot is busy.
    pub challenge_work: u32,
    /// How long a challenge may be used after it is issued.
    pub challenge_minutes: u64,
    /// How long a file stamped with `deliver=link` waits for its one download.
    pub pickup_minutes: u64,
}

impl Default for StampConfig {
    fn default() -> Self {
        StampConfig {
            anonymous: false,
            anonymous_free_per_hour: 20,
            max_files: 20,
            challenge_over: 5,
            challenge_work_cost: 1000,
            challenge_work: 10_000,
            challenge_minutes: 5,
            pickup_minutes: 10,
        }
    }
}

impl StampConfig {
    /// The settings' own bounds.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(1..=100).contains(&self.max_files) {
            return Err("stamp.max_files must be between 1 and 100".into());
        }
        if self.challenge_over > self.max_files {
            return Err("stamp.challenge_over must be at most stamp.max_files".into());
        }
        if !(1..=1_000_000).contains(&self.challenge_work_cost) {
            return Err("stamp.challenge_work_cost must be between 1 and 1000000".into());
        }
        if !(2..=10_000_000).contains(&self.challenge_work) {
            return Err("stamp.challenge_work must be between 2 and 10000000".into());
        }
        if !(1..=60).contains(&self.challenge_minutes) {
            return Err("stamp.challenge_minutes must be between 1 and 60".into());
        }
        if !(1..=1440).contains(&self.pickup_minutes) {
            return Err("stamp.pickup_minutes must be between 1 and 1440".into());
        }
        Ok(())
    }
}

/// A stamped file sealed for pickup: the blob and its wrapped data key.
type SealedPickup = (Vec<u8>, WrappedKey);

/// The options of a stamp request as the client gives them (query string).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StampQuery {
    /// Text of the visible mark (at most 200 bytes; never stored; API keys only).
    #[param(max_length = 200)]
    pub label: Option<String>,
    /// `false` (or `0`) for no visible mark.
    #[param(value_type = Option<bool>)]
    pub visible: Option<String>,
    /// `jpeg`, `webp` or `png`; by default JPEG, or PNG for a picture with transparency.
    pub format: Option<String>,
    /// Encoder quality 1–100 (JPEG, WebP; default 85).
    #[param(value_type = Option<u8>, minimum = 1, maximum = 100)]
    pub quality: Option<String>,
    /// Downscale so the long edge is at most this many pixels.
    #[param(value_type = Option<u32>, minimum = 1)]
    pub max_edge: Option<String>,
    /// `file` (default): the stamped file(s) in the answer, nothing kept. `link`: kept sealed
    /// for one download within `[stamp].pickup_minutes` (API keys only); the answer lists the
    /// links.
    #[param(inline)]
    pub deliver: Option<Delivery>,
}

/// How stamped files reach the caller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// In the answer itself; nothing kept but the proof record.
    #[default]
    File,
    /// Kept sealed until its first complete download (or `[stamp].pickup_minutes`), then
    /// erased with a signed deletion receipt.
    Link,
}

/// A stamp request whose caller and options were checked, before its body is read.
#[derive(Debug, Clone)]
pub struct StampPlan {
    actor: Actor,
    /// Whose the pickup artifacts are (`deliver=link`, which needs a key).
    owner: Option<Tenant>,
    delivery: Delivery,
    marks: MarkOptions,
    opts: Options,
}

impl StampPlan {
    /// How the planned request's files are delivered.
    pub fn delivery(&self) -> Delivery {
        self.delivery
    }
}

/// One stamped picture, handed back.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StampedFile {
    #[schema(pattern = r"^px_[0-9A-HJKMNP-TV-Z]{13}$")]
    pub proof_id: String,
    pub verify_url: String,
    /// SHA-256 of the stamped file.
    pub sha256: String,
    pub content_type: String,
    /// The file name extension of `content_type` (`jpg`, `webp`, `png`).
    pub extension: String,
    pub width: u32,
    pub height: u32,
    #[schema(format = DateTime)]
    pub issued_at: String,
    /// With `deliver=link`: where the file waits for its one download.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pickup: Option<PickupLink>,
    /// The stamped file (`deliver=file`; empty with `deliver=link`).
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

/// `true`/`1`, `false`/`0`, or absent (`default`).
fn flag(v: Option<&str>, name: &str, default: bool) -> Result<bool> {
    match v {
        None => Ok(default),
        Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(_) => Err(ServiceError::invalid(
            "invalid_request",
            format!("{name} must be true or false"),
        )),
    }
}

/// A number in `range`, or absent.
fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
    v: Option<&str>,
    name: &str,
    min: T,
    max: T,
) -> Result<Option<T>> {
    v.map(|s| match s.parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(ServiceError::invalid(
            "invalid_request",
            format!("{name} must be a whole number from {min} to {max}"),
        )),
    })
    .transpose()
}

impl Services {
    /// Check a stamp request's caller and options (before its body is read). A caller needs
    /// the `stamp` scope; no caller at all is served only with `[stamp].anonymous`, and may not
    /// set a label (the installation's signature would vouch for anyone's text).
    pub fn plan_stamp(&self, caller: Option<&Caller>, q: &StampQuery) -> Result<StampPlan> {
        let delivery = q.deliver.unwrap_or_default();
        let (actor, owner) = match caller {
            Some(c) => (c.actor(), Some(c.require(Scope::Stamp)?.clone())),
            None if delivery == Delivery::Link => {
                return Err(ServiceError::Unauthorized(
                    "deliver=link needs Authorization: Bearer <api key> with the stamp scope",
                ));
            }
            None if self.stamp.anonymous => (Actor::Anonymous, None),
            None => {
                return Err(ServiceError::Unauthorized(
                    "missing Authorization: Bearer <api key> (this installation does not stamp anonymously)",
                ));
            }
        };
        let label = q.label.clone().filter(|l| !l.is_empty());
        if let Some(l) = &label {
            if caller.is_none() {
                return Err(ServiceError::invalid(
                    "label_not_allowed",
                    "a label needs an API key with the stamp scope",
                ));
            }
            if l.len() > MAX_LABEL_BYTES {
                return Err(ServiceError::invalid(
                    "invalid_request",
                    format!("label longer than {MAX_LABEL_BYTES} bytes"),
                ));
            }
        }
        let format = q
            .format
            .as_deref()
            .map(str::parse::<OutputFormat>)
            .transpose()
            .map_err(|e| ServiceError::invalid("invalid_request", e))?;
        Ok(StampPlan {
            actor,
            owner,
            delivery,
            marks: MarkOptions {
                visible: flag(q.visible.as_deref(), "visible", true)?,
                label,
            },
            opts: Options {
                format,
                quality: number(q.quality.as_deref(), "quality", 1u8, 100)?.unwrap_or(85),
                max_edge: number(q.max_edge.as_deref(), "max_edge", 1u32, u32::MAX)?,
            },
        })
    }

    /// Most pictures one stamp request may carry: `[stamp].max_files` with a redeemed
    /// challenge, `[stamp].challenge_over` without.
    pub fn stamp_max_files(&self, challenged: bool) -> usize {
        if challenged {
            self.stamp.max_files
        } else {
            self.stamp.challenge_over.min(self.stamp.max_files)
        }
    }

    /// Stamp one picture. `deliver=file`: publish its proof record and hand the stamped bytes
    /// back, keeping nothing else. `deliver=link`: seal it and keep it as a pickup artifact of
    /// the caller's tenant. The CPU-bound part runs on the blocking pool in a decode slot; the
    /// body is zeroed when it ends (whatever happened).
    pub async fn stamp_ephemeral(&self, plan: &StampPlan, body: Body) -> Result<StampedFile> {
        let original_sha256 = hex::encode(Sha256::digest(body.bytes()));
        let slot = self.decode_slot().await?;
        let proof_bits = ProofId::random().map_err(|e| ServiceError::internal(e.to_string()))?;
        let proof_id = proof_bits.to_string();
        let (issued_at, issued_ms) = self.clock.now();
        let assertion = ProofAssertion {
            proof_id: proof_id.clone(),
            issued_at: issued_at.clone(),
            verify_url: self.verify_url(&proof_id),
        };
        let artifact_id = uuid::Uuid::now_v7().to_string();
        let owner = match plan.delivery {
            Delivery::File => None,
            Delivery::Link => Some(plan.owner.clone().ok_or_else(|| {
                ServiceError::internal("a link delivery planned without an owner")
            })?),
        };
        // Stored for a link: under the owner's own master key when it has one.
        let keys = match &owner {
            Some(t) => Some(self.sealing_keys(&t.id, &t.region).await?),
            None => None,
        };
        let (s, marks, opts, sealing_for) = (
            self.clone(),
            plan.marks.clone(),
            plan.opts,
            owner
                .clone()
                .zip(keys)
                .map(|(t, k)| (artifact_id.clone(), t, k)),
        );
        let done =
            tokio::task::spawn_blocking(move || -> Result<(Stamped, Option<SealedPickup>)> {
                let _slot = slot;
                let signer = s.provenance.signer.clone();
                let out = with_pipeline(s.limits, |p| {
                    stamp(
                        p,
                        body.bytes(),
                        &opts,
                        proof_bits.0,
                        &assertion,
                        &marks,
                        signer.as_ref(),
                    )
                });
                drop(body);
                let stamped = out?;
                let sealed = match sealing_for {
                    None => None,
                    Some((id, tenant, keys)) => {
                        let obj = ObjectRef {
                            object_id: &id,
                            tenant: &tenant.id,
                            region: &tenant.region,
                        };
                        let own = !Arc::ptr_eq(&keys, &s.keys);
                        let (blob, sealing) = Sealer::new(keys.as_ref(), KeyPlacement::Detached)
                            .seal_bytes(&stamped.bytes, &obj)
                            .map_err(|e| crate::tenant_keys::key_error(own, &tenant.id, e))?;
                        Some((blob, sealing.wrapped_key))
                    }
                };
                Ok((stamped, sealed))
            })
            .await?;
        let (stamped, sealed) = match done {
            Ok(d) => d,
            Err(e) => {
                self.audit_detail(&plan.actor, "proof.stamp", "", Outcome::Refused, e.code())
                    .await;
                return Err(e);
            }
        };
        let sha256 = hex::encode(Sha256::digest(&stamped.bytes));
        let manifest = ProofManifest {
            proof_id: proof_id.clone(),
            manifest_id: stamped.manifest_id.clone(),
            manifest: b64().encode(&stamped.manifest),
        };
        let pdq = stamped.pdq.map(|p| p.to_string());
        let pickup = match (owner, sealed) {
            (Some(tenant), Some((blob, wrapped))) => {
                let minutes = self.stamp.pickup_minutes as i64;
                let (expires_at, expires_ms) =
                    pixseal_store::meta::at_ms(issued_ms + minutes * 60_000);
                let artifact = Artifact {
                    id: artifact_id,
                    tenant_id: tenant.id.clone(),
                    region: tenant.region.clone(),
                    proof_id: proof_id.clone(),
                    state: ArtifactState::Pending,
                    sha256: sha256.clone(),
                    original_sha256,
                    content_type: stamped.format.media_type().into(),
                    width: stamped.width as i64,
                    height: stamped.height as i64,
                    bytes: stamped.bytes.len() as i64,
                    wrapped_key: b64().encode(wrapped.to_bytes()),
                    label_sealed: None,
                    client_ip_sealed: None,
                    created_at: issued_at.clone(),
                    created_ms: issued_ms,
                    expires_at,
                    expires_ms,
                };
                let link = self
                    .keep_for_pickup(&artifact, bytes::Bytes::from(blob), pdq, &manifest)
                    .await?;
                self.audit(&plan.actor, "artifact.create", &artifact.id, Outcome::Ok)
                    .await;
                Some(link)
            }
            _ => {
                let record = ProofRecord {
                    proof_id: proof_id.clone(),
                    sha256: sha256.clone(),
                    original_sha256,
                    pdq,
                    issued_at: issued_at.clone(),
                    status: ProofStatus::NotStored,
                    purged_at: None,
                    receipt_id: None,
                };
                self.db.publish_proof(&record, &manifest).await?;
                None
            }
        };
        self.audit(&plan.actor, "proof.stamp", &proof_id, Outcome::Ok)
            .await;
        let bytes = if pickup.is_some() {
            Vec::new()
        } else {
            stamped.bytes
        };
        Ok(StampedFile {
            verify_url: self.verify_url(&proof_id),
            proof_id,
            sha256,
            content_type: stamped.format.media_type().into(),
            extension: stamped.format.extension().into(),
            width: stamped.width,
            height: stamped.height,
            issued_at,
            pickup,
            bytes,
        })
    }
}
