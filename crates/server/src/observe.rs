//! Request ids, one structured log line per request (never bodies, secrets or raw IPs), and the
//! Prometheus metrics behind `/metrics`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::AppState;

/// A request's method as a metric label and in the log: the standard methods by name and any
/// other token as `OTHER`, so a client cannot add series (or log text) by inventing methods.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(
    clippy::upper_case_acronyms,
    reason = "the label values are the HTTP method names"
)]
pub enum MethodLabel {
    GET,
    HEAD,
    POST,
    PUT,
    DELETE,
    PATCH,
    OPTIONS,
    OTHER,
}

impl MethodLabel {
    fn of(method: &axum::http::Method) -> Self {
        use axum::http::Method;
        match *method {
            Method::GET => Self::GET,
            Method::HEAD => Self::HEAD,
            Method::POST => Self::POST,
            Method::PUT => Self::PUT,
            Method::DELETE => Self::DELETE,
            Method::PATCH => Self::PATCH,
            Method::OPTIONS => Self::OPTIONS,
            _ => Self::OTHER,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: MethodLabel,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteOnly {
    pub route: String,
}

/// The service's metrics.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RouteLabels, Counter>,
    pub latency: Family<RouteOnly, Histogram>,
    pub purged: Counter,
    /// Read at each scrape: decode slots taken, and picture bytes reserved or held.
    decode_slots_busy: Gauge,
    inflight_body_bytes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("pixseal");
        let requests = Family::<RouteLabels, Counter>::default();
        let latency = Family::<RouteOnly, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        let purged = Counter::default();
        registry.register(
            "artifacts_purged",
            "Artifacts deleted by the retention purge",
            purged.clone(),
        );
        let decode_slots_busy = Gauge::default();
        registry.register(
            "decode_slots_busy",
            "Decode slots taken by running work",
            decode_slots_busy.clone(),
        );
        let inflight_body_bytes = Gauge::default();
        registry.register(
            "inflight_body_bytes",
            "Picture bytes reserved or held by requests (max_inflight_bytes bounds it)",
            inflight_body_bytes.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            purged,
            decode_slots_busy,
            inflight_body_bytes,
        }
    }
}

impl Metrics {
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Middleware: assign a request id (or keep a well-formed incoming one), log and count.
pub async fn track(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        })
        .map(String::from)
        .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = MethodLabel::of(req.method());
    if let Ok(v) = HeaderValue::from_str(&id) {
        req.headers_mut().insert("x-request-id", v);
    }
    let mut resp = next.run(req).await;
    let status = resp.status().as_u16();
    let secs = started.elapsed().as_secs_f64();
    state
        .metrics
        .requests
        .get_or_create(&RouteLabels {
            method,
            route: route.clone(),
            status,
        })
        .inc();
    state
        .metrics
        .latency
        .get_or_create(&RouteOnly {
            route: route.clone(),
        })
        .observe(secs);
    tracing::info!(request_id = %id, ?method, %route, status, ms = (secs * 1000.0).round(), "request");
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    summary = "Prometheus metrics",
    responses((
        status = 200,
        description = "OpenMetrics text",
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8",
        body = String,
    )),
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let m = &state.metrics;
    m.decode_slots_busy
        .set(state.services.decode_slots_busy() as i64);
    m.inflight_body_bytes
        .set(state.services.inflight_body_bytes() as i64);
    let body = m.encode();
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}
