//! Ephemeral stamping: pictures stamped and handed straight back, nothing kept but each one's
//! public proof record (proof id, hashes, PDQ, issued time, signed manifest). No artifact row,
//! no blob, no label, no client address.

use pixseal_media::{Options, OutputFormat};
use pixseal_proof::ProofId;
use pixseal_provenance::ProofAssertion;
use pixseal_provenance::stamp::{MarkOptions, stamp};
use pixseal_store::{ProofManifest, ProofRecord, ProofStatus, Scope};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::budget::Body;
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
}

impl Default for StampConfig {
    fn default() -> Self {
        StampConfig {
            anonymous: false,
            max_files: 20,
            challenge_over: 5,
            challenge_work_cost: 1000,
            challenge_work: 10_000,
            challenge_minutes: 5,
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
        Ok(())
    }
}

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
}

/// A stamp request whose caller and options were checked, before its body is read.
#[derive(Debug, Clone)]
pub struct StampPlan {
    actor: Actor,
    marks: MarkOptions,
    opts: Options,
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
        let actor = match caller {
            Some(c) => {
                c.require(Scope::Stamp)?;
                c.actor()
            }
            None if self.stamp.anonymous => Actor::Anonymous,
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

    /// Stamp one picture and publish its proof record; the stamped bytes come back and are not
    /// kept. The CPU-bound part runs on the blocking pool in a decode slot, the body is zeroed
    /// when it ends (whatever happened).
    pub async fn stamp_ephemeral(&self, plan: &StampPlan, body: Body) -> Result<StampedFile> {
        let original_sha256 = hex::encode(Sha256::digest(body.bytes()));
        let slot = self.decode_slot().await?;
        let proof_bits = ProofId::random().map_err(|e| ServiceError::internal(e.to_string()))?;
        let proof_id = proof_bits.to_string();
        let (issued_at, _) = self.clock.now();
        let assertion = ProofAssertion {
            proof_id: proof_id.clone(),
            issued_at: issued_at.clone(),
            verify_url: self.verify_url(&proof_id),
        };
        let (s, marks, opts) = (self.clone(), plan.marks.clone(), plan.opts);
        let stamped = tokio::task::spawn_blocking(move || {
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
            out
        })
        .await?;
        let stamped = match stamped {
            Ok(s) => s,
            Err(e) => {
                let e = ServiceError::from(e);
                self.audit_detail(&plan.actor, "proof.stamp", "", Outcome::Refused, e.code())
                    .await;
                return Err(e);
            }
        };
        let sha256 = hex::encode(Sha256::digest(&stamped.bytes));
        let record = ProofRecord {
            proof_id: proof_id.clone(),
            sha256: sha256.clone(),
            original_sha256,
            pdq: stamped.pdq.map(|p| p.to_string()),
            issued_at: issued_at.clone(),
            status: ProofStatus::NotStored,
            purged_at: None,
            receipt_id: None,
        };
        let manifest = ProofManifest {
            proof_id: proof_id.clone(),
            manifest_id: stamped.manifest_id.clone(),
            manifest: base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                &stamped.manifest,
            ),
        };
        self.db.publish_proof(&record, &manifest).await?;
        self.audit(&plan.actor, "proof.stamp", &proof_id, Outcome::Ok)
            .await;
        Ok(StampedFile {
            verify_url: self.verify_url(&proof_id),
            proof_id,
            sha256,
            content_type: stamped.format.media_type().into(),
            extension: stamped.format.extension().into(),
            width: stamped.width,
            height: stamped.height,
            issued_at,
            bytes: stamped.bytes,
        })
    }
}
