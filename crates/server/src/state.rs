//! Shared state of the service, and the liveness / readiness probes.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pixseal_media::Limits;
use pixseal_seal::KeyProvider;
use pixseal_store::{BlobStore, Db};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::ServerConfig;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<ServerConfig>,
    pub limits: Limits,
    pub db: Db,
    pub blobs: Arc<BlobStore>,
    pub keys: Arc<dyn KeyProvider>,
    /// Bounds the decode work running at once (each decode is on the blocking pool).
    pub decode_slots: Arc<Semaphore>,
    pub metrics: crate::observe::SharedMetrics,
    /// Signs deletion receipts (local key file or Transit; `sign` may block: call it on the
    /// blocking pool).
    pub receipts: Arc<dyn pixseal_proof::ReceiptSigner>,
    pub limiter: crate::ratelimit::SharedLimiter,
    /// `[codes]` settings.
    pub codes: Arc<pixseal_codes::CodesConfig>,
    /// Unwrapped per-region code secrets.
    pub code_keys: crate::codes::SharedCodeKeys,
    /// The time codes are judged at (tests move it; purge takes its time as a parameter).
    pub clock: Clock,
    /// C2PA signing identity, trust anchors and the near-match threshold.
    pub provenance: Arc<Provenance>,
}

/// The service's clock: the system time plus an offset that only tests change, shared by every
/// clone of the state, so an in-process server can be moved through time over HTTP.
#[derive(Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        let sys = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        sys + self.offset_ms.load(Ordering::Relaxed)
    }

    /// Move this clock (and every clone of it) forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

/// What stamping and verification need.
pub struct Provenance {
    /// Signs manifests (may block: called on the blocking pool).
    pub signer: Arc<dyn pixseal_provenance::ClaimSigner>,
    pub verifier: pixseal_provenance::Verifier,
    /// Shown as the issuer of proofs.
    pub issuer_name: String,
    /// PDQ distance at or below which an upload is a `near_match`.
    pdq_threshold: u32,
}

impl Provenance {
    pub fn new(
        signer: Arc<dyn pixseal_provenance::ClaimSigner>,
        anchors_pem: &str,
        issuer_name: &str,
        pdq_threshold: u32,
    ) -> Self {
        Provenance {
            signer,
            verifier: pixseal_provenance::Verifier::new(anchors_pem),
            issuer_name: issuer_name.to_string(),
            pdq_threshold,
        }
    }

    /// A development identity made in memory for this process only (tests, benchmarks, and
    /// any state built without [`AppState::with_provenance`]); it trusts its own root.
    pub fn ephemeral() -> Result<Self, pixseal_provenance::ProvenanceError> {
        let chain = pixseal_provenance::DevChain::generate("pixseal ephemeral")?;
        let signer = pixseal_provenance::LocalSigner::from_pem(
            chain.chain_pem.as_bytes(),
            chain.key_pem.as_bytes(),
            pixseal_provenance::SignAlg::Es256,
        )?;
        Ok(Self::new(
            Arc::new(signer),
            &chain.root_pem,
            "pixseal (ephemeral identity)",
            pixseal_provenance::pdq::MATCH_THRESHOLD,
        ))
    }

    pub fn pdq_threshold(&self) -> u32 {
        self.pdq_threshold
    }
}

impl AppState {
    pub fn new(
        config: ServerConfig,
        limits: Limits,
        db: Db,
        blobs: BlobStore,
        keys: Arc<dyn KeyProvider>,
        receipts: Arc<dyn pixseal_proof::ReceiptSigner>,
        limiter: crate::ratelimit::SharedLimiter,
    ) -> Self {
        let n = if config.decode_concurrency == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            config.decode_concurrency
        };
        AppState {
            config: Arc::new(config),
            limits,
            db,
            blobs: Arc::new(blobs),
            keys,
            decode_slots: Arc::new(Semaphore::new(n)),
            metrics: Arc::default(),
            receipts,
            limiter,
            codes: Arc::default(),
            code_keys: Arc::default(),
            clock: Clock::default(),
            provenance: Arc::new(
                Provenance::ephemeral().expect("an in-memory development certificate"),
            ),
        }
    }

    /// With these `[codes]` settings (the defaults otherwise).
    pub fn with_codes(mut self, codes: pixseal_codes::CodesConfig) -> Self {
        self.codes = Arc::new(codes);
        self
    }

    /// Sign with this identity and trust these anchors (what `pixseal serve` configures).
    pub fn with_provenance(mut self, p: Provenance) -> Self {
        self.provenance = Arc::new(p);
        self
    }
}

impl AppState {
    /// Append to the audit log. A failed append is logged loudly but does not fail the
    /// request (the action already happened); `/readyz` reports the database if it is down.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        object: &str,
        outcome: &str,
        detail: &str,
    ) {
        if let Err(e) = self.db.audit(actor, action, object, outcome, detail).await {
            tracing::error!(action, error = %e, "audit append failed");
        }
    }
}

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the database, every region's blob store, the key provider and the receipt signer
/// all answer.
pub async fn readyz(State(s): State<AppState>) -> (StatusCode, Json<Value>) {
    let db = s.db.check().await.map_err(|e| e.to_string());
    let blobs = s.blobs.check().await.map_err(|e| e.to_string());
    let keys = {
        let k = s.keys.clone();
        let region = s.blobs.regions().next().unwrap_or("us").to_string();
        tokio::task::spawn_blocking(move || {
            k.key_versions(&region)
                .map(|_| ())
                .map_err(|e| e.code().to_string())
        })
        .await
        .unwrap_or_else(|_| Err("internal".into()))
    };
    let receipts = {
        let r = s.receipts.clone();
        tokio::task::spawn_blocking(move || r.check().map_err(|e| e.to_string()))
            .await
            .unwrap_or_else(|_| Err("internal".into()))
    };
    let status = |r: &Result<(), String>| if r.is_ok() { "ok" } else { "unavailable" };
    let ok = db.is_ok() && blobs.is_ok() && keys.is_ok() && receipts.is_ok();
    let body = json!({"status": if ok { "ok" } else { "unavailable" },
                      "database": status(&db), "blob_store": status(&blobs), "key_provider": status(&keys),
                      "receipt_signer": status(&receipts)});
    (
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(body),
    )
}
