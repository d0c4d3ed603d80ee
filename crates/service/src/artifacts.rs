//! Artifacts: upload (stamp → seal → store, with its write order and undo), metadata and
//! content decrypted on demand. Erasure is in [`crate::erase`].

use std::net::IpAddr;
use std::ops::Range;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use pixseal_media::{Options, OutputFormat};
use pixseal_proof::ProofId;
use pixseal_provenance::ProofAssertion;
use pixseal_provenance::stamp::{MarkOptions, Stamped, stamp};
use pixseal_seal::{KeyPlacement, ObjectRef, RangeOpener, Sealer, WrappedKey};
use pixseal_store::{
    Artifact, ArtifactState, BlobKey, BlobStore, DbError, ProofManifest, ProofRecord, ProofStatus,
    Scope,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::OwnedSemaphorePermit;
use utoipa::{IntoParams, ToSchema};
use zeroize::Zeroizing;

use crate::auth::Caller;
use crate::budget::Body;
use crate::clock::DAY_MS;
use crate::work::with_pipeline;
use crate::{Outcome, Result, ServiceError, Services};

/// Longest label, in bytes.
const MAX_LABEL_BYTES: usize = 200;

pub(crate) fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// The options of an upload as the client gives them (query string).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// One of `[server].retention_days_allowed` (by default 7, 15, 30, 60, 90); the tenant's
    /// default otherwise.
    #[param(value_type = Option<u32>)]
    pub retention_days: Option<String>,
    /// Text of the visible mark (kept sealed; at most 200 bytes).
    #[param(max_length = 200)]
    pub label: Option<String>,
    /// `false` (or `0`) for no visible mark.
    #[param(value_type = Option<bool>)]
    pub visible: Option<String>,
}

/// An upload whose options were checked, before its body is read.
#[derive(Debug, Clone)]
pub struct UploadPlan {
    pub(crate) caller: Caller,
    pub(crate) retention_days: i64,
    pub(crate) label: Option<String>,
    pub(crate) visible: bool,
}

/// An artifact as its owner sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ArtifactView {
    #[schema(format = "uuid")]
    pub id: String,
    #[schema(pattern = r"^px_[0-9A-HJKMNP-TV-Z]{13}$")]
    pub proof_id: String,
    pub sha256: String,
    pub original_sha256: String,
    pub region: String,
    pub content_type: String,
    pub width: i64,
    pub height: i64,
    pub bytes: i64,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// Days between `created_at` and `expires_at`: the retention chosen at upload.
    pub retention_days: i64,
    pub verify_url: String,
}

/// The answer to an upload: the artifact and whether it carries a label.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Uploaded {
    #[serde(flatten)]
    pub artifact: ArtifactView,
    /// Whether a label was stored (sealed) with it.
    pub label: bool,
}

/// An artifact's metadata, with its label opened.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ArtifactMetadata {
    #[serde(flatten)]
    pub artifact: ArtifactView,
    /// The label, opened, when one was stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub label: Option<String>,
}

/// An artifact's stamped file, opened for reading in byte ranges: its data key unwrapped once,
/// and each read fetching and authenticating only the segments that hold its bytes (so a
/// player seeking in a stored video never pulls the whole file through memory).
#[derive(Clone)]
pub struct Content {
    pub content_type: String,
    opener: Arc<RangeOpener>,
    blobs: Arc<BlobStore>,
    region: String,
    key: BlobKey,
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Content")
            .field("content_type", &self.content_type)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// The most plaintext one [`Content::read`] returns: sixteen 64 KiB segments.
pub const READ_WINDOW: u64 = 1024 * 1024;

impl Content {
    /// The file's length in bytes.
    pub fn len(&self) -> u64 {
        self.opener.len()
    }

    /// Whether the file is empty (a stamped file never is).
    pub fn is_empty(&self) -> bool {
        self.opener.is_empty()
    }

    /// Bytes `range` of the file (non-empty, within [`Content::len`], at most
    /// [`READ_WINDOW`] long), wiped from memory when the last reference drops.
    pub async fn read(&self, range: Range<u64>) -> Result<Bytes> {
        if range.end.saturating_sub(range.start) > READ_WINDOW {
            return Err(ServiceError::internal(
                "content read larger than its window",
            ));
        }
        let sealed = self.opener.sealed_range(&range)?;
        let (bytes, _) = self
            .blobs
            .get_range(&self.region, &self.key, sealed)
            .await?;
        Ok(Bytes::from_owner(Wiped(self.opener.open(&range, &bytes)?)))
    }
}

/// Opened bytes handed on as `Bytes`: wiped when the last reference drops.
struct Wiped(Zeroizing<Vec<u8>>);

impl AsRef<[u8]> for Wiped {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// What the blocking part of an upload made: the stamp and everything sealed.
struct Sealed {
    stamped: Stamped,
    blob: Vec<u8>,
    wrapped: WrappedKey,
    label: Option<String>,
    client_ip: String,
}

impl Services {
    /// The public `verify_url` of a proof.
    pub fn verify_url(&self, proof_id: &str) -> String {
        format!(
            "{}/v/{proof_id}",
            self.config.public_url.trim_end_matches('/')
        )
    }

    pub(crate) fn view(&self, a: &Artifact) -> ArtifactView {
        ArtifactView {
            id: a.id.clone(),
            proof_id: a.proof_id.clone(),
            sha256: a.sha256.clone(),
            original_sha256: a.original_sha256.clone(),
            region: a.region.clone(),
            content_type: a.content_type.clone(),
            width: a.width,
            height: a.height,
            bytes: a.bytes,
            created_at: a.created_at.clone(),
            expires_at: a.expires_at.clone(),
            retention_days: (a.expires_ms - a.created_ms) / crate::DAY_MS,
            verify_url: self.verify_url(&a.proof_id),
        }
    }

    /// Check an upload's caller and options (before its body is read).
    pub fn plan_upload(&self, caller: &Caller, q: &UploadQuery) -> Result<UploadPlan> {
        let tenant = caller.require(Scope::ArtifactsWrite)?;
        let allowed = &self.config.retention_days_allowed;
        let retention_days = match &q.retention_days {
            None => tenant.retention_days,
            Some(v) => match v.parse::<i64>() {
                Ok(d) if allowed.contains(&d) => d,
                _ => {
                    return Err(ServiceError::invalid(
                        "retention_not_allowed",
                        format!("retention_days must be one of {allowed:?}"),
                    ));
                }
            },
        };
        let visible = match q.visible.as_deref() {
            None | Some("true") | Some("1") => true,
            Some("false") | Some("0") => false,
            Some(_) => {
                return Err(ServiceError::invalid(
                    "corrupt",
                    "visible must be true or false",
                ));
            }
        };
        let label = q.label.clone().filter(|l| !l.is_empty());
        if label.as_ref().is_some_and(|l| l.len() > MAX_LABEL_BYTES) {
            return Err(ServiceError::invalid(
                "corrupt",
                format!("label longer than {MAX_LABEL_BYTES} bytes"),
            ));
        }
        self.serves(&tenant.region)?;
        Ok(UploadPlan {
            caller: caller.clone(),
            retention_days,
            label,
            visible,
        })
    }

    /// Stamp, seal and store one upload. The body never leaves memory; the CPU-bound and
    /// blocking work runs on the blocking pool, at most `decode_concurrency` at once.
    pub async fn upload(
        &self,
        plan: UploadPlan,
        client_ip: IpAddr,
        body: Body,
    ) -> Result<Uploaded> {
        let original_sha256 = hex::encode(Sha256::digest(body.bytes()));
        let slot = self.decode_slot().await?;
        let id = uuid::Uuid::now_v7().to_string();
        let proof_bits = ProofId::random().map_err(|e| ServiceError::internal(e.to_string()))?;
        let (created_at, created_ms) = self.clock.now();
        let actor = plan.caller.actor();
        let sealed = match self
            .stamp_and_seal(&plan, &id, proof_bits, &created_at, client_ip, body, slot)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                self.audit_detail(&actor, "artifact.create", &id, Outcome::Refused, e.code())
                    .await;
                return Err(e);
            }
        };
        let tenant = plan.caller.tenant();
        let (expires_at, expires_ms) =
            pixseal_store::meta::at_ms(created_ms + plan.retention_days * DAY_MS);
        let out = &sealed.stamped;
        let artifact = Artifact {
            id: id.clone(),
            tenant_id: tenant.id.clone(),
            region: tenant.region.clone(),
            proof_id: proof_bits.to_string(),
            state: ArtifactState::Pending,
            sha256: hex::encode(Sha256::digest(&out.bytes)),
            original_sha256,
            content_type: out.format.media_type().into(),
            width: out.width as i64,
            height: out.height as i64,
            bytes: out.bytes.len() as i64,
            wrapped_key: b64().encode(sealed.wrapped.to_bytes()),
            label_sealed: sealed.label,
            client_ip_sealed: Some(sealed.client_ip),
            created_at,
            created_ms,
            expires_at,
            expires_ms,
        };
        let pdq = out.pdq.map(|p| p.to_string());
        let manifest = ProofManifest {
            proof_id: artifact.proof_id.clone(),
            manifest_id: out.manifest_id.clone(),
            manifest: b64().encode(&out.manifest),
        };
        self.store(&artifact, Bytes::from(sealed.blob), pdq, &manifest)
            .await?;
        self.audit(&actor, "artifact.create", &id, Outcome::Ok)
            .await;
        Ok(Uploaded {
            artifact: self.view(&artifact),
            label: artifact.label_sealed.is_some(),
        })
    }

    /// The blocking part of an upload: stamp stage (visible mark → invisible watermark → PDQ →
    /// encode → signed C2PA manifest), then seal the stamp, the label and the client IP. The
    /// decode slot and the body go into the blocking task and are released when it ends.
    #[allow(clippy::too_many_arguments, reason = "one upload's parts, passed once")]
    async fn stamp_and_seal(
        &self,
        plan: &UploadPlan,
        id: &str,
        proof_bits: ProofId,
        issued_at: &str,
        client_ip: IpAddr,
        body: Body,
        slot: OwnedSemaphorePermit,
    ) -> Result<Sealed> {
        let proof = ProofAssertion {
            proof_id: proof_bits.to_string(),
            issued_at: issued_at.to_string(),
            verify_url: self.verify_url(&proof_bits.to_string()),
        };
        let marks = MarkOptions {
            visible: plan.visible,
            label: plan.label.clone(),
        };
        let (s, id, region, tenant_id) = (
            self.clone(),
            id.to_string(),
            plan.caller.tenant().region.clone(),
            plan.caller.tenant().id.clone(),
        );
        // The tenant's own master key, when it has one: looked up before any work is done.
        let keys = self.sealing_keys(&tenant_id, &region).await?;
        let own_key = !Arc::ptr_eq(&keys, &self.keys);
        tokio::task::spawn_blocking(move || -> Result<Sealed> {
            let _slot = slot;
            let opts = Options {
                format: Some(OutputFormat::WebP),
                quality: 85,
                max_edge: None,
            };
            let signer = s.provenance.signer.clone();
            let stamped = with_pipeline(s.limits, |p| {
                stamp(
                    p,
                    body.bytes(),
                    &opts,
                    proof_bits.0,
                    &proof,
                    &marks,
                    signer.as_ref(),
                )
            })?;
            drop(body);
            let keys = keys.as_ref();
            let key_err = |e| crate::tenant_keys::key_error(own_key, &tenant_id, e);
            let obj = ObjectRef {
                object_id: &id,
                tenant: &tenant_id,
                region: &region,
            };
            let (blob, sealing) = Sealer::new(keys, KeyPlacement::Detached)
                .seal_bytes(&stamped.bytes, &obj)
                .map_err(key_err)?;
            let (label, client_ip) =
                seal_fields(keys, &region, &id, marks.label.as_deref(), client_ip)
                    .map_err(key_err)?;
            Ok(Sealed {
                stamped,
                blob,
                wrapped: sealing.wrapped_key,
                label,
                client_ip,
            })
        })
        .await?
    }

    /// Row first (pending), then blob, then active with the public proof record: a crash in
    /// between leaves a pending row that the repair pass removes (with its blob, if any), never
    /// a visible half-stored artifact. A failure undoes what was written.
    pub(crate) async fn store(
        &self,
        a: &Artifact,
        blob: Bytes,
        pdq: Option<String>,
        manifest: &ProofManifest,
    ) -> Result<()> {
        let key = BlobKey::new(&a.id).map_err(|e| ServiceError::internal(e.to_string()))?;
        let put = async { Ok(self.blobs.put(&a.region, &key, blob).await?) };
        self.store_with(a, pdq, manifest, &[], put).await
    }

    /// [`Services::store`] with the blob written by `put` (which runs after the row is in),
    /// and `also` indexed for near matches under the proof (a video's keyframe hashes).
    pub(crate) async fn store_with(
        &self,
        a: &Artifact,
        pdq: Option<String>,
        manifest: &ProofManifest,
        also: &[[u8; 32]],
        put: impl std::future::Future<Output = Result<()>>,
    ) -> Result<()> {
        self.db.insert_artifact(a).await?;
        let key = BlobKey::new(&a.id).map_err(|e| ServiceError::internal(e.to_string()))?;
        if let Err(e) = put.await {
            // A partial blob may be there (a local write is renamed only when whole).
            let _ = self.blobs.delete(&a.region, &key).await;
            let _ = self.db.delete_artifact(&a.id).await;
            return Err(e);
        }
        let record = ProofRecord {
            proof_id: a.proof_id.clone(),
            sha256: a.sha256.clone(),
            original_sha256: a.original_sha256.clone(),
            pdq,
            issued_at: a.created_at.clone(),
            status: ProofStatus::Active,
            purged_at: None,
            receipt_id: None,
        };
        if let Err(e) = self
            .db
            .activate_artifact(&a.id, &record, manifest, also)
            .await
        {
            let _ = self.blobs.delete(&a.region, &key).await;
            let _ = self.db.delete_artifact(&a.id).await;
            return Err(match e {
                DbError::NotFound => {
                    ServiceError::internal("upload row vanished before activation")
                }
                other => other.into(),
            });
        }
        Ok(())
    }

    /// The caller's own active artifact; anyone else's is `NotFound` (no existence oracle).
    async fn own(&self, caller: &Caller, scope: Scope, id: &str) -> Result<Artifact> {
        let tenant = caller.require(scope)?;
        Ok(self.db.artifact(&tenant.id, id).await?)
    }

    /// An artifact's metadata, label opened.
    pub async fn metadata(&self, caller: &Caller, id: &str) -> Result<ArtifactMetadata> {
        let a = self.own(caller, Scope::ArtifactsRead, id).await?;
        self.audit(&caller.actor(), "artifact.read", &a.id, Outcome::Ok)
            .await;
        let label = match a.label_sealed.clone() {
            None => None,
            Some(sealed) => {
                let key_name = pixseal_seal::field_key_name(&sealed)?;
                let keys = self
                    .opening_keys(&a.tenant_id, &a.region, &key_name)
                    .await?;
                let (region, ctx) = (a.region.clone(), format!("artifacts.label.{}", a.id));
                let plain = self
                    .with_keys(&a.tenant_id, keys, move |k| {
                        pixseal_seal::open_field(k, &region, &ctx, &sealed)
                    })
                    .await?;
                Some(String::from_utf8_lossy(&plain).into_owned())
            }
        };
        Ok(ArtifactMetadata {
            artifact: self.view(&a),
            label,
        })
    }

    /// The stamped file, opened for reading in ranges (every segment authenticated).
    pub async fn content(&self, caller: &Caller, id: &str) -> Result<Content> {
        let a = self.own(caller, Scope::ArtifactsRead, id).await?;
        self.audit(&caller.actor(), "artifact.content", &a.id, Outcome::Ok)
            .await;
        let key = BlobKey::new(&a.id).map_err(|_| ServiceError::NotFound)?;
        let head = 0..pixseal_seal::header::MAX_HEADER_LEN as u64;
        let (head, sealed_len) = self.blobs.get_range(&a.region, &key, head).await?;
        let wrapped = wrapped_key(&a)?;
        let keys = self
            .opening_keys(&a.tenant_id, &a.region, &wrapped.key_name)
            .await?;
        let (object_id, tenant, region) = (a.id.clone(), a.tenant_id.clone(), a.region.clone());
        let opener = self
            .with_keys(&a.tenant_id, keys, move |k| {
                let obj = ObjectRef {
                    object_id: &object_id,
                    tenant: &tenant,
                    region: &region,
                };
                Sealer::new(k, KeyPlacement::Detached).range_opener(
                    &head,
                    sealed_len,
                    &obj,
                    Some(&wrapped),
                )
            })
            .await?;
        // The layout comes from the stored length: a blob cut at a segment boundary (or to
        // its header) would open as a shorter file, so it must be as long as it was stored.
        if opener.len() != a.bytes as u64 {
            tracing::error!("a stored object is not the length it was stored with");
            return Err(ServiceError::Tampered);
        }
        Ok(Content {
            content_type: a.content_type,
            opener: Arc::new(opener),
            blobs: self.blobs.clone(),
            region: a.region,
            key,
        })
    }

    /// Fetch an artifact's blob and open it.
    pub(crate) async fn open_artifact(&self, a: &Artifact) -> Result<Vec<u8>> {
        let key = BlobKey::new(&a.id).map_err(|_| ServiceError::NotFound)?;
        let sealed = self.blobs.get(&a.region, &key).await?;
        let wrapped = wrapped_key(a)?;
        // The stored wrapped key names the master key that opens the blob: the region's, or
        // one of the tenant's own (docs/sealed-format.md, "Moving to another master key").
        let keys = self
            .opening_keys(&a.tenant_id, &a.region, &wrapped.key_name)
            .await?;
        let (object_id, tenant, region) = (a.id.clone(), a.tenant_id.clone(), a.region.clone());
        self.with_keys(&a.tenant_id, keys, move |k| {
            let obj = ObjectRef {
                object_id: &object_id,
                tenant: &tenant,
                region: &region,
            };
            Sealer::new(k, KeyPlacement::Detached).open_bytes(&sealed, &obj, Some(&wrapped))
        })
        .await
    }
}

/// An upload's label (if any) and client address, each sealed under the region's or the
/// tenant's key and bound to its artifact and field.
pub(crate) fn seal_fields(
    keys: &dyn pixseal_seal::KeyProvider,
    region: &str,
    id: &str,
    label: Option<&str>,
    client_ip: IpAddr,
) -> std::result::Result<(Option<String>, String), pixseal_seal::SealError> {
    let field = |name: &str, value: &str| {
        pixseal_seal::seal_field(
            keys,
            region,
            &format!("artifacts.{name}.{id}"),
            value.as_bytes(),
        )
    };
    let label = label.map(|l| field("label", l)).transpose()?;
    Ok((label, field("client_ip", &client_ip.to_string())?))
}

pub(crate) fn wrapped_key(a: &Artifact) -> Result<WrappedKey> {
    let raw = b64()
        .decode(&a.wrapped_key)
        .map_err(|_| ServiceError::internal("stored wrapped key is not base64"))?;
    WrappedKey::from_bytes(&raw).map_err(|e| ServiceError::internal(e.to_string()))
}
