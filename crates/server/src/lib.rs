//! pixseal-server: the HTTP adapter of SPEC §5 over `pixseal-service`. Handlers extract typed
//! requests, call one workflow and map its error once ([`ApiError`]); the edge adds request
//! ids and logs, metrics, rate limits, body limits, timeouts, security headers and TLS.

mod artifacts;
mod auth;
mod body;
mod codes;
mod error;
mod observe;
pub mod ratelimit;
mod state;
mod verify;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue};
use axum::routing::get;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

pub use error::ApiError;
pub use state::AppState;

/// The service's routes and edge limits.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.max_body_bytes as usize;
    let timeout = Duration::from_secs(state.config.request_timeout_secs);
    let hsts = state
        .config
        .tls()
        .then(|| HeaderValue::from_static("max-age=63072000; includeSubDomains"));
    Router::new()
        .route("/healthz", get(state::healthz))
        .route("/readyz", get(state::readyz))
        .route("/v1/artifacts", axum::routing::post(artifacts::create))
        .route(
            "/v1/artifacts/{id}",
            get(artifacts::metadata).delete(artifacts::delete),
        )
        .route("/v1/artifacts/{id}/content", get(artifacts::content))
        .route("/v1/receipts/{id}", get(artifacts::receipt))
        .route("/v1/keys/receipts", get(artifacts::receipt_key))
        .route(
            "/v1/codes",
            axum::routing::post(codes::issue).delete(codes::revoke_all),
        )
        .route("/v1/codes/verify", axum::routing::post(codes::verify))
        .route("/v1/codes/live", axum::routing::post(codes::live))
        .route(
            "/v1/codes/live/verify",
            axum::routing::post(codes::live_verify),
        )
        .route("/v1/codes/account", get(codes::account))
        .route(
            "/v1/codes/device-key",
            axum::routing::put(codes::device_key),
        )
        .route("/v1/verify", axum::routing::post(verify::verify))
        .route("/v1/proofs/{proof_id}", get(verify::proof))
        .route("/metrics", get(observe::metrics))
        .route("/openapi.json", get(openapi))
        .fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "not_found",
                "no such route",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ratelimit::limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::track,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("cache-control"),
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("strict-transport-security"),
            move |_: &axum::response::Response| hsts.clone(),
        ))
        .with_state(state)
}

/// The OpenAPI 3 document of these routes (kept in step with the router by a test).
pub const OPENAPI: &str = include_str!("../api/openapi.json");

async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

/// The routes the router serves, as (method, path), for the OpenAPI drift test.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("post", "/v1/artifacts"),
    ("get", "/v1/artifacts/{id}"),
    ("delete", "/v1/artifacts/{id}"),
    ("get", "/v1/artifacts/{id}/content"),
    ("get", "/v1/receipts/{id}"),
    ("get", "/v1/keys/receipts"),
    ("post", "/v1/codes"),
    ("delete", "/v1/codes"),
    ("post", "/v1/codes/verify"),
    ("post", "/v1/codes/live"),
    ("post", "/v1/codes/live/verify"),
    ("get", "/v1/codes/account"),
    ("put", "/v1/codes/device-key"),
    ("post", "/v1/verify"),
    ("get", "/v1/proofs/{proof_id}"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

/// Run a purge pass every `[server].purge_interval_secs` (none when 0), for as long as the
/// runtime lives; each pass is counted in `/metrics` and logged when it did something.
pub fn spawn_purge_worker(state: &AppState) {
    let every = state.config.purge_interval_secs;
    if every == 0 {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(every));
        loop {
            tick.tick().await;
            match state.purge().await {
                Ok(r) => {
                    state.metrics.purged.inc_by(r.purged);
                    if r.purged + r.failed + r.ips_forgotten > 0 {
                        tracing::info!(
                            purged = r.purged,
                            failed = r.failed,
                            ips_forgotten = r.ips_forgotten,
                            "purge pass"
                        );
                    }
                }
                Err(e) => tracing::error!(code = e.code(), "purge pass failed"),
            }
        }
    });
}

/// Serve until `shutdown` completes; in-flight requests finish first (graceful shutdown).
/// With `[server].tls_cert` / `tls_key` set, TLS (rustls) terminates here.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tls = state
        .config
        .tls()
        .then(|| (state.config.tls_cert.clone(), state.config.tls_key.clone()));
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let Some((cert, key)) = tls else {
        return axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
    };
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&cert, &key).await?;
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        h.graceful_shutdown(Some(Duration::from_secs(30)));
    });
    axum_server::from_tcp_rustls(listener.into_std()?, config)?
        .handle(handle)
        .serve(app)
        .await
}
