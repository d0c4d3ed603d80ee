//! pixseal-server: the HTTP adapter of SPEC §5 over `pixseal-service`. Handlers extract typed
//! requests, call one workflow and map its error once ([`ApiError`]); the edge adds request
//! ids and logs, metrics, rate limits, body limits, timeouts, security headers and TLS.

mod artifacts;
mod auth;
mod body;
pub mod client;
mod codes;
mod error;
mod licenses;
mod listen;
mod observe;
mod passkeys;
mod pickup;
pub mod ratelimit;
mod resolve;
mod serve;
mod stamp;
mod state;
mod verify;
mod web;
mod zipstream;

use std::future::Future;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension};
use axum::http::{HeaderName, HeaderValue};
use axum::response::IntoResponse;
use axum::{Router, http};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApiBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::ApiError;
pub use state::AppState;

/// Every route with its documentation. One `routes!` per path: `routes!` mounts all the
/// handlers it is given on each of their paths.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(document())
        .routes(routes!(state::healthz))
        .routes(routes!(state::readyz))
        .routes(routes!(artifacts::create, artifacts::list))
        .routes(routes!(artifacts::metadata, artifacts::delete))
        .routes(routes!(artifacts::content))
        .routes(routes!(artifacts::receipt))
        .routes(routes!(artifacts::receipt_key))
        .routes(routes!(codes::issue, codes::revoke_all, codes::list))
        .routes(routes!(codes::revoke_one))
        .routes(routes!(codes::verify))
        .routes(routes!(codes::live))
        .routes(routes!(codes::live_verify))
        .routes(routes!(codes::account))
        .routes(routes!(codes::device_key))
        .routes(routes!(passkeys::begin_presence))
        .routes(routes!(passkeys::begin_live_presence))
        .routes(routes!(passkeys::begin_registration))
        .routes(routes!(passkeys::finish_registration))
        .routes(routes!(passkeys::members))
        .routes(routes!(passkeys::revoke))
        .routes(routes!(stamp::stamp))
        .routes(routes!(stamp::challenge))
        .routes(routes!(pickup::pickup))
        .routes(routes!(licenses::activate))
        .routes(routes!(licenses::check))
        .routes(routes!(licenses::usage))
        .routes(routes!(verify::verify))
        .routes(routes!(verify::proof))
        .routes(routes!(resolve::proof_manifest))
        .routes(routes!(resolve::manifest))
        .routes(routes!(resolve::by_binding))
        .routes(routes!(resolve::by_content))
        .routes(routes!(resolve::supported_algorithms))
        .routes(routes!(observe::metrics))
        .routes(routes!(openapi_json))
}

/// What the document says besides its paths.
fn document() -> utoipa::openapi::OpenApi {
    let api_key = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .description(Some("API key (pxk_…), scoped, bound to one tenant"))
        .build();
    let components = ComponentsBuilder::new()
        .security_scheme("apiKey", SecurityScheme::Http(api_key))
        .schema_from::<error::ErrorBody>()
        .response_from::<ApiError>()
        .build();
    let description = "Verify and stamp photos without keeping them (SPEC §5). \
        Errors: {\"error\":{\"code\",\"message\"}}.";
    let info = InfoBuilder::new()
        .title("pixseal")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(description))
        .build();
    OpenApiBuilder::new()
        .info(info)
        .components(Some(components))
        .build()
}

/// The OpenAPI 3.1 document of the routes [`router`] serves, generated from the same list.
pub fn openapi() -> utoipa::openapi::OpenApi {
    parts().1
}

/// The routes and their finished document.
fn parts() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, mut doc) = api().split_for_parts();
    body::document_raw_pictures(&mut doc);
    (routes, doc)
}

/// The document as served, serialized once when the router is built.
#[derive(Clone)]
struct OpenApiJson(Bytes);

#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "operations",
    summary = "This document",
    responses((status = 200, description = "OpenAPI 3.1", body = Object)),
)]
async fn openapi_json(Extension(OpenApiJson(doc)): Extension<OpenApiJson>) -> impl IntoResponse {
    ([(http::header::CONTENT_TYPE, "application/json")], doc)
}

/// The service's routes and edge limits.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.max_body_bytes as usize;
    let timeout = Duration::from_secs(state.config.request_timeout_secs);
    let hsts = state
        .config
        .tls()
        .then(|| HeaderValue::from_static("max-age=63072000; includeSubDomains"));
    let (routes, doc) = parts();
    let doc = doc.to_json().expect("the OpenAPI document is plain data");
    routes
        .merge(web::routes())
        .layer(Extension(OpenApiJson(Bytes::from(doc))))
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
            client::resolve,
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

/// Log a signed audit checkpoint every `[server].audit_checkpoint_secs` (none when 0), for as
/// long as the runtime lives: logs shipped off the box keep the chain's head where the
/// database's administrators cannot rewrite it (`pixseal audit verify --checkpoint`).
pub fn spawn_audit_checkpoints(state: &AppState) {
    let every = state.config.audit_checkpoint_secs;
    if every == 0 {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(every));
        loop {
            tick.tick().await;
            match state.audit_checkpoint().await {
                Ok(cp) => match serde_json::to_string(&cp) {
                    Ok(line) => tracing::info!(checkpoint = %line, "audit checkpoint"),
                    Err(e) => tracing::error!(error = %e, "audit checkpoint not serialisable"),
                },
                Err(e) => tracing::error!(code = e.code(), "audit checkpoint failed"),
            }
        }
    });
}

/// Serve until `shutdown` completes; in-flight requests finish first (graceful shutdown).
/// With `[server].tls_cert` / `tls_key` set, TLS (rustls) terminates here. Connections are
/// capped and deadlined ([`listen`]).
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listen::serve(state, listener, shutdown).await
}
