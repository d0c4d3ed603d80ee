//! `Services`: every part a workflow needs, opened from the typed configuration by one
//! constructor that the server, the CLI, the tests and the benches all go through.

use std::fmt;
use std::sync::Arc;

use pixseal_media::{Limits, VideoLimits};
use pixseal_proof::ReceiptSigner;
use pixseal_provenance::{ClaimSigner, ProvenanceError, Verifier};
use pixseal_seal::{KeyProvider, SealError};
use pixseal_store::{BlobError, BlobStore, Db, DbError, PrefixOwner};
use serde::Serialize;

use crate::budget::Slots;
use crate::codes::CodeKeyCache;
use crate::config::{Config, ServerConfig};
use crate::{Clock, Result, ServiceError};

/// Why [`Services::open`] failed: which part, and its error.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("creating the data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Database(#[from] DbError),
    #[error("blob store: {0}")]
    Blobs(#[from] BlobError),
    #[error(
        "the blobs of region {region} ({place}) belong to another installation ({owner}); this one is {us}: give each installation its own bucket or prefix"
    )]
    ForeignPrefix {
        region: String,
        place: String,
        owner: String,
        us: String,
    },
    #[error("key provider: {0}")]
    Keys(SealError),
    #[error("receipt signer: {0}")]
    Receipts(SealError),
    #[error("C2PA signing identity: {0}")]
    Identity(#[from] ProvenanceError),
    #[error("opening the parts: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("passkeys: {0}")]
    Passkeys(String),
}

/// Everything the workflows need; cheap to clone (shared parts behind `Arc`).
#[derive(Clone)]
pub struct Services {
    /// `[server]` settings.
    pub config: Arc<ServerConfig>,
    pub limits: Limits,
    /// Limits of MP4/MOV videos.
    pub video: VideoLimits,
    /// Where a video in the works is spooled, encrypted (`<data_dir>/spool`).
    pub(crate) spool_dir: Arc<std::path::Path>,
    /// The regions this installation serves, in configuration order.
    pub regions: Arc<[String]>,
    pub db: Db,
    pub blobs: Arc<BlobStore>,
    /// This installation's id (one per database): it owns the blob prefixes it writes to.
    pub installation: Arc<str>,
    pub keys: Arc<dyn KeyProvider>,
    /// Signs deletion receipts (local key file or Transit; `sign` may block).
    pub receipts: Arc<dyn ReceiptSigner>,
    /// `[codes]` settings.
    pub codes: Arc<pixseal_codes::CodesConfig>,
    /// The WebAuthn relying party: RP ID, origins, authenticator models.
    pub passkeys: Arc<pixseal_codes::passkey::PasskeyPolicy>,
    /// `[stamp]` settings.
    pub stamp: Arc<crate::stamp::StampConfig>,
    /// `[license]` settings (the server's: how long device tokens last).
    pub license: Arc<crate::licenses::LicenseConfig>,
    /// The secrets that sign proof-of-work challenges, unwrapped on first use.
    pub(crate) challenge_secrets: Arc<tokio::sync::OnceCell<crate::challenge::ChallengeSecrets>>,
    /// The time every workflow is judged at (tests move it).
    pub clock: Clock,
    /// C2PA signing identity, trust anchors and the near-match threshold.
    pub provenance: Arc<Provenance>,
    /// Bounds the CPU-heavy work running at once (each on the blocking pool).
    pub(crate) decode_slots: Arc<Slots>,
    /// One video is processed at a time: each runs ffmpeg children and moves its whole size
    /// through three spools on disk (docs/video.md).
    pub(crate) video_slots: Arc<Slots>,
    /// Video uploads being spooled and processed at once (each holds disk, not memory).
    pub(crate) video_spools: Arc<Slots>,
    /// Bounds the picture bytes held by requests at once.
    pub(crate) body_budget: Arc<Slots>,
    /// Unwrapped per-region code secrets.
    pub(crate) code_keys: Arc<CodeKeyCache>,
    /// `[keys]` settings: how a tenant's own Transit key is reached.
    pub(crate) keys_config: Arc<pixseal_seal::KeysConfig>,
    /// Providers for tenants' own master keys, by where each key is.
    pub(crate) tenant_providers: Arc<crate::tenant_keys::TenantProviders>,
    /// The last probes of the key service and the held keys `/readyz` made, and when.
    pub(crate) key_probes: Arc<tokio::sync::Mutex<Option<(std::time::Instant, KeyProbes)>>>,
}

/// What `/readyz` last found of the key service and the held keys.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyProbes {
    key_provider: Health,
    receipt_signer: Health,
    claim_signer: Health,
}

/// What stamping and verification need.
pub struct Provenance {
    /// Signs manifests (may block: called on the blocking pool).
    pub signer: Arc<dyn ClaimSigner>,
    pub verifier: Verifier,
    /// Shown as the issuer of proofs.
    pub issuer_name: String,
    /// PDQ distance at or below which an upload is a `near_match`.
    pub pdq_threshold: u32,
}

impl Services {
    /// Open every configured part: database (migrated), blob stores, key provider, receipt
    /// signer, C2PA signing identity (the development chain is made on first use) and trust
    /// anchors. Nothing is defaulted silently: a part that cannot open is an error.
    pub async fn open(config: &Config) -> Result<Services, OpenError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| OpenError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let spool_dir = config.data_dir.join("spool");
        std::fs::create_dir_all(&spool_dir).map_err(|source| OpenError::DataDir {
            path: spool_dir.clone(),
            source,
        })?;
        let passkeys = crate::passkeys::passkey_policy(&config.server.public_url, &config.codes)
            .map_err(OpenError::Passkeys)?;
        let db = Db::connect(config.database_url().expose()).await?;
        let blobs = BlobStore::open(&config.storage, &config.data_dir)?;
        // Another installation's prefix is refused before anything could be written to it or
        // swept from it.
        let installation = db.installation_id().await?;
        for region in blobs.regions() {
            if let PrefixOwner::Other(owner) = blobs.claim(region, &installation).await? {
                return Err(OpenError::ForeignPrefix {
                    region: region.to_string(),
                    place: blobs.describe(region),
                    owner,
                    us: installation,
                });
            }
        }
        // Transit clients load keys over blocking HTTP: off the runtime.
        let c = config.clone();
        let (keys, receipts, identity, anchors) = tokio::task::spawn_blocking(move || {
            let keys = c.key_provider().map_err(OpenError::Keys)?;
            let receipts = c.receipt_signer().map_err(OpenError::Receipts)?;
            let (identity, _) = c.signing_identity()?;
            let anchors = c.trust_anchors(&[])?;
            Ok::<_, OpenError>((keys, receipts, identity, anchors))
        })
        .await??;
        let decode = match config.server.decode_concurrency {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        Ok(Services {
            config: Arc::new(config.server.clone()),
            limits: config.limits,
            video: config.video,
            spool_dir: spool_dir.into(),
            regions: config.regions.clone().into(),
            db,
            blobs: Arc::new(blobs),
            installation: installation.into(),
            keys: Arc::from(keys),
            receipts,
            codes: Arc::new(config.codes.clone()),
            passkeys: Arc::new(passkeys),
            stamp: Arc::new(config.stamp.clone()),
            license: Arc::new(config.license.clone()),
            challenge_secrets: Arc::default(),
            clock: Clock::default(),
            provenance: Arc::new(Provenance {
                signer: identity.signer,
                verifier: Verifier::new(&anchors),
                issuer_name: config.provenance.issuer_name.clone(),
                pdq_threshold: config.provenance.pdq_threshold,
            }),
            decode_slots: Arc::new(Slots::new(decode)),
            video_slots: Arc::new(Slots::new(1)),
            video_spools: Arc::new(Slots::new(4)),
            body_budget: Arc::new(Slots::for_bytes(config.server.max_inflight_bytes)),
            code_keys: Arc::default(),
            keys_config: Arc::new(config.keys.clone()),
            tenant_providers: Arc::default(),
            key_probes: Arc::default(),
        })
    }

    /// The same parts with empty caches, as another instance on the same database and keys
    /// would start.
    pub fn with_empty_caches(&self) -> Services {
        Services {
            code_keys: Arc::default(),
            challenge_secrets: Arc::default(),
            tenant_providers: Arc::default(),
            key_probes: Arc::default(),
            ..self.clone()
        }
    }

    /// Whether this installation serves `region`.
    pub fn serves(&self, region: &str) -> Result<()> {
        if self.blobs.regions().any(|r| r == region) {
            Ok(())
        } else {
            Err(ServiceError::region_mismatch())
        }
    }

    /// Append to the audit log. A failed append is logged loudly but does not fail the
    /// action (it already happened); `/readyz` reports the database if it is down.
    pub async fn audit(&self, actor: &Actor, action: &str, object: &str, outcome: Outcome) {
        self.audit_detail(actor, action, object, outcome, "").await
    }

    /// [`Services::audit`] with a detail (ids and codes only, never personal data).
    pub async fn audit_detail(
        &self,
        actor: &Actor,
        action: &str,
        object: &str,
        outcome: Outcome,
        detail: &str,
    ) {
        let actor = actor.to_string();
        if let Err(e) = self
            .db
            .audit(&actor, action, object, outcome.as_str(), detail)
            .await
        {
            tracing::error!(action, error = %e, "audit append failed");
        }
    }

    /// The key service and the held keys, probed at most once per
    /// `[server].readiness_interval_ms`: `/readyz` is public and unlimited, and must not let
    /// anyone make the key service or the HSM sign at will. Concurrent callers wait for one
    /// probe and share its result.
    async fn key_probes(&self) -> KeyProbes {
        let mut last = self.key_probes.lock().await;
        let interval = std::time::Duration::from_millis(self.config.readiness_interval_ms);
        if let Some((at, probes)) = *last
            && at.elapsed() < interval
        {
            return probes;
        }
        let k = self.keys.clone();
        // A region this installation serves: the storage table may name others.
        let region = self
            .regions
            .first()
            .map_or("us", String::as_str)
            .to_string();
        let key_provider = Health::of(
            tokio::task::spawn_blocking(move || k.key_versions(&region).is_ok())
                .await
                .unwrap_or(false),
        );
        let r = self.receipts.clone();
        let receipt_signer = Health::of(
            tokio::task::spawn_blocking(move || r.check().is_ok())
                .await
                .unwrap_or(false),
        );
        let c = self.provenance.signer.clone();
        let claim_signer = Health::of(
            tokio::task::spawn_blocking(move || c.check().is_ok())
                .await
                .unwrap_or(false),
        );
        let probes = KeyProbes {
            key_provider,
            receipt_signer,
            claim_signer,
        };
        *last = Some((std::time::Instant::now(), probes));
        probes
    }

    /// Whether the database, every region's blob store, the key provider, the receipt signer
    /// and the claim signer all answer (the signers sign a probe: a key deleted in Transit or
    /// taken off a token shows here, within `[server].readiness_interval_ms`).
    pub async fn readiness(&self) -> Readiness {
        let database = Health::of(self.db.check().await.is_ok());
        let blob_store = Health::of(self.blobs.check().await.is_ok());
        let KeyProbes {
            key_provider,
            receipt_signer,
            claim_signer,
        } = self.key_probes().await;
        let all = [
            database,
            blob_store,
            key_provider,
            receipt_signer,
            claim_signer,
        ];
        Readiness {
            status: Health::of(all.iter().all(|h| *h == Health::Ok)),
            database,
            blob_store,
            key_provider,
            receipt_signer,
            claim_signer,
        }
    }
}

/// One part's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Ok,
    Unavailable,
}

impl Health {
    fn of(ok: bool) -> Health {
        if ok { Health::Ok } else { Health::Unavailable }
    }
}

/// `GET /readyz`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub status: Health,
    pub database: Health,
    pub blob_store: Health,
    pub key_provider: Health,
    pub receipt_signer: Health,
    pub claim_signer: Health,
}

/// Who did something, as the audit log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A caller authenticated by this API key id.
    ApiKey(String),
    /// An administrator at the command line.
    Cli,
    /// The service itself (purge, repair).
    System,
    /// An unauthenticated caller (public routes, failed authentication).
    Anonymous,
    /// A member of an account, proven by an enrollment token or a passkey (by member id).
    Member(String),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::ApiKey(id) => write!(f, "key:{id}"),
            Actor::Cli => f.write_str("cli"),
            Actor::System => f.write_str("system"),
            Actor::Anonymous => f.write_str("anonymous"),
            Actor::Member(id) => write!(f, "member:{id}"),
        }
    }
}

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Refused,
    Denied,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }
}
