//! `/v1/artifacts` and `/v1/receipts`: thin adapters over the service's artifact workflows.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, FromRequest, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pixseal_proof::SignedReceipt;
use pixseal_service::artifacts::{ArtifactMetadata, ReceiptKey, UploadQuery, Uploaded};

use crate::auth::Caller;
use crate::body::Upload;
use crate::{ApiError, AppState};

/// `POST /v1/artifacts`: the options are checked before the body is read.
pub async fn create(
    State(s): State<AppState>,
    Caller(caller): Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    query: Result<Query<UploadQuery>, QueryRejection>,
    req: Request,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?;
    let plan = s.plan_upload(&caller, &q)?;
    let Upload(body) = Upload::from_request(req, &s).await?;
    let done = s.upload(plan, peer.ip(), body).await?;
    Ok((StatusCode::CREATED, Json(done)))
}

/// `GET /v1/artifacts/{id}`: the caller's own artifact; anyone else's is 404.
pub async fn metadata(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<ArtifactMetadata>, ApiError> {
    Ok(Json(s.metadata(&caller, &id).await?))
}

/// `GET /v1/artifacts/{id}/content`: decrypted on demand, never cached.
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

/// `DELETE /v1/artifacts/{id}`: the signed deletion receipt.
pub async fn delete(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<SignedReceipt>, ApiError> {
    Ok(Json(s.delete(&caller, &id).await?))
}

/// `GET /v1/receipts/{id}` (public).
pub async fn receipt(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let json = s.receipt(&id).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

/// `GET /v1/keys/receipts`.
pub async fn receipt_key(State(s): State<AppState>) -> Json<ReceiptKey> {
    Json(s.receipt_key())
}
