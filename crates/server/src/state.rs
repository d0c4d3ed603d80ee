//! The server's state (the services plus the HTTP edge: limiter and metrics), and the
//! liveness / readiness probes.

use std::ops::Deref;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pixseal_service::{Config, Health, OpenError, Readiness, Services};
use serde::Serialize;
use utoipa::ToSchema;

use crate::client::TrustedProxies;
use crate::observe::Metrics;
use crate::ratelimit::Limiter;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub limiter: Arc<Limiter>,
    pub metrics: Arc<Metrics>,
    /// Whose forwarding headers name the client.
    pub proxies: Arc<TrustedProxies>,
}

impl AppState {
    /// Open the configured services and the edge around them (what `pixseal serve` runs).
    pub async fn open(config: &Config) -> Result<AppState, OpenError> {
        let services = Services::open(config).await?;
        Ok(AppState::new(services).await)
    }

    /// The edge around already opened services.
    pub async fn new(services: Services) -> AppState {
        let limiter = Arc::new(
            Limiter::new(&services.config)
                .await
                .with_anonymous_stamps(services.stamp.anonymous_free_per_hour),
        );
        Limiter::spawn_pruner(&limiter);
        let proxies = Arc::new(TrustedProxies::new(&services.config.trusted_proxies));
        AppState {
            services,
            limiter,
            metrics: Arc::default(),
            proxies,
        }
    }
}

impl Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

/// `GET /healthz`: always `ok` while the process serves.
#[derive(Serialize, ToSchema)]
pub struct Liveness {
    status: Health,
}

#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "operations",
    summary = "Liveness",
    responses((status = 200, description = "alive", body = Liveness)),
)]
pub async fn healthz() -> Json<Liveness> {
    Json(Liveness { status: Health::Ok })
}

/// Ready when the database, every region's blob store, the key provider and the receipt signer
/// all answer.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "operations",
    summary = "Readiness: database, blob stores, key provider, receipt signer",
    responses(
        (status = 200, description = "ready", body = Readiness),
        (status = 503, description = "a dependency is unavailable", body = Readiness),
    ),
)]
pub async fn readyz(State(s): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let r = s.readiness().await;
    let status = match r.status {
        Health::Ok => StatusCode::OK,
        Health::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, Json(r))
}
