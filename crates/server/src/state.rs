//! The server's state (the services plus the HTTP edge: limiter and metrics), and the
//! liveness / readiness probes.

use std::ops::Deref;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pixseal_service::{Config, Health, OpenError, Readiness, Services};
use serde_json::{Value, json};

use crate::observe::Metrics;
use crate::ratelimit::Limiter;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub limiter: Arc<Limiter>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// Open the configured services and the edge around them (what `pixseal serve` runs).
    pub async fn open(config: &Config) -> Result<AppState, OpenError> {
        let services = Services::open(config).await?;
        Ok(AppState::new(services).await)
    }

    /// The edge around already opened services.
    pub async fn new(services: Services) -> AppState {
        let limiter = Arc::new(Limiter::new(&services.config).await);
        AppState {
            services,
            limiter,
            metrics: Arc::default(),
        }
    }
}

impl Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the database, every region's blob store, the key provider and the receipt signer
/// all answer.
pub async fn readyz(State(s): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let r = s.readiness().await;
    let status = match r.status {
        Health::Ok => StatusCode::OK,
        Health::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, Json(r))
}
