//! Durable credentials and the C2PA Soft Binding Resolution API, all public: the manifest a
//! proof was issued with, manifests by id, by soft-binding value and by picture.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use pixseal_service::resolve::{Matches, SupportedAlgorithms};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::body::{Upload, UploadForm};
use crate::error::*;
use crate::{ApiError, AppState};

/// The media type of a detached C2PA manifest store.
const C2PA: &str = "application/c2pa";

fn manifest_response(bytes: Vec<u8>) -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(C2PA)),
        // Signed and immutable: any cache may keep it.
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=86400, immutable"),
        ),
    ];
    (headers, bytes).into_response()
}

#[utoipa::path(
    get,
    path = "/v1/proofs/{proof_id}/manifest",
    operation_id = "proof_manifest",
    tag = "resolve",
    summary = "The signed C2PA manifest store a proof was issued with, kept past the purge (public)",
    params(("proof_id" = String, Path)),
    responses(
        (status = 200, description = "manifest store (JUMBF)", content_type = "application/c2pa", body = Vec<u8>),
        NotFoundErrors,
    ),
)]
pub async fn proof_manifest(
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    Ok(manifest_response(s.proof_manifest(&raw).await?))
}

#[utoipa::path(
    get,
    path = "/v1/manifests/{manifest_id}",
    operation_id = "manifest",
    tag = "resolve",
    summary = "A manifest store by its id (`urn:c2pa:…`), as the Soft Binding Resolution API names it (public)",
    params(("manifest_id" = String, Path)),
    responses(
        (status = 200, description = "manifest store (JUMBF)", content_type = "application/c2pa", body = Vec<u8>),
        NotFoundErrors,
    ),
)]
pub async fn manifest(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(manifest_response(s.manifest(&id).await?))
}

/// `GET /v1/matches/byBinding` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ByBinding {
    /// `org.pixseal.watermark.1` or `org.pixseal.pdq.1`.
    pub alg: String,
    /// The binding's value as the manifest carries it (base64).
    #[param(max_length = 100)]
    pub value: String,
    /// At most this many matches (1–100, default 10).
    #[param(minimum = 1, maximum = 100)]
    pub max_results: Option<u32>,
}

/// `POST /v1/matches/byContent` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ByContent {
    /// At most this many matches (1–100, default 10).
    #[param(minimum = 1, maximum = 100)]
    pub max_results: Option<u32>,
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))
}

#[utoipa::path(
    get,
    path = "/v1/matches/byBinding",
    operation_id = "matches_by_binding",
    tag = "resolve",
    summary = "Manifests a soft-binding value resolves to: the watermark payload exactly, a PDQ hash within the threshold (public)",
    params(ByBinding),
    responses(
        (status = 200, description = "matches, best first (possibly none)", body = Matches),
        PublicJsonErrors,
    ),
)]
pub async fn by_binding(
    State(s): State<AppState>,
    q: Result<Query<ByBinding>, QueryRejection>,
) -> Result<Json<Matches>, ApiError> {
    let q = query(q)?;
    if q.value.len() > 100 {
        return Err(ApiError::bad_request(
            "invalid_request",
            "value is longer than any supported binding",
        ));
    }
    Ok(Json(
        s.matches_by_binding(&q.alg, &q.value, q.max_results)
            .await?,
    ))
}

#[utoipa::path(
    post,
    path = "/v1/matches/byContent",
    operation_id = "matches_by_content",
    tag = "resolve",
    summary = "Manifests a picture resolves to through its watermark and PDQ hash; the picture is not stored (public)",
    params(ByContent),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "matches, best first (possibly none)", body = Matches),
        VerifyFileErrors,
    ),
)]
pub async fn by_content(
    State(s): State<AppState>,
    q: Result<Query<ByContent>, QueryRejection>,
    Upload(body): Upload,
) -> Result<Json<Matches>, ApiError> {
    let q = query(q)?;
    Ok(Json(s.matches_by_content(body, q.max_results).await?))
}

#[utoipa::path(
    get,
    path = "/v1/services/supportedAlgorithms",
    operation_id = "supported_algorithms",
    tag = "resolve",
    summary = "The soft-binding algorithms this service resolves (public)",
    responses(
        (status = 200, description = "watermarks and fingerprints", body = SupportedAlgorithms),
        PublicErrors,
    ),
)]
pub async fn supported_algorithms() -> Json<SupportedAlgorithms> {
    Json(pixseal_service::Services::supported_algorithms())
}
