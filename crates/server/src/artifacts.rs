//! `/v1/artifacts` and `/v1/receipts`: thin adapters over the service's artifact workflows.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, FromRequest, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pixseal_service::SignedReceipt;
use pixseal_service::artifacts::{ArtifactMetadata, ReceiptKey, UploadQuery, Uploaded};

use crate::auth::Caller;
use crate::body::{Upload, UploadForm};
use crate::client::ClientAddr;
use crate::error::*;
use crate::{ApiError, AppState};

/// The options are checked before the body is read.
#[utoipa::path(
    post,
    path = "/v1/artifacts",
    operation_id = "upload_artifact",
    tag = "artifacts",
    summary = "Upload a photo: sanitized, stamped, sealed and stored in the tenant's region",
    security(("apiKey" = [])),
    params(UploadQuery),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "stored", body = Uploaded),
        UploadErrors,
    ),
)]
pub async fn create(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    query: Result<Query<UploadQuery>, QueryRejection>,
    req: Request,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?;
    let plan = s.plan_upload(&caller, &q)?;
    let Upload(body) = Upload::from_request(req, &s).await?;
    let done = s.upload(plan, client, body).await?;
    Ok((StatusCode::CREATED, Json(done)))
}

#[utoipa::path(
    get,
    path = "/v1/artifacts/{id}",
    operation_id = "artifact_metadata",
    tag = "artifacts",
    summary = "Metadata of the caller's own artifact (anyone else's is 404)",
    security(("apiKey" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "metadata", body = ArtifactMetadata),
        ReadErrors,
    ),
)]
pub async fn metadata(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<ArtifactMetadata>, ApiError> {
    Ok(Json(s.metadata(&caller, &id).await?))
}

#[utoipa::path(
    get,
    path = "/v1/artifacts/{id}/content",
    operation_id = "artifact_content",
    tag = "artifacts",
    summary = "The stamped artifact, decrypted on demand (Cache-Control: private, no-store)",
    security(("apiKey" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "the stamped picture", content(
            ("image/webp"),
            ("image/jpeg"),
            ("image/png"),
        )),
        ReadErrors,
    ),
)]
pub async fn content(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let c = s.content(&caller, &id).await?;
    let content_type =
        HeaderValue::from_str(&c.content_type).unwrap_or(HeaderValue::from_static("image/webp"));
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        ),
        (
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("inline"),
        ),
    ];
    Ok((headers, c.bytes).into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/artifacts/{id}",
    operation_id = "delete_artifact",
    tag = "artifacts",
    summary = "Delete the artifact (blob and wrapped data key); returns the signed deletion receipt",
    security(("apiKey" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "deleted", body = SignedReceipt),
        DeleteErrors,
    ),
)]
pub async fn delete(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<SignedReceipt>, ApiError> {
    Ok(Json(s.delete(&caller, &id).await?))
}

#[utoipa::path(
    get,
    path = "/v1/receipts/{id}",
    operation_id = "receipt",
    tag = "artifacts",
    summary = "A signed deletion receipt (public)",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "receipt", body = SignedReceipt),
        NotFoundErrors,
    ),
)]
pub async fn receipt(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let json = s.receipt(&id).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/keys/receipts",
    operation_id = "receipt_key",
    tag = "artifacts",
    summary = "Public key verifying this installation's receipts",
    responses((status = 200, description = "Ed25519 public key (PEM) and key id", body = ReceiptKey)),
)]
pub async fn receipt_key(State(s): State<AppState>) -> Json<ReceiptKey> {
    Json(s.receipt_key())
}
