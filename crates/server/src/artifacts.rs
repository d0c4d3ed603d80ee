//! `/v1/artifacts` and `/v1/receipts`: thin adapters over the service's artifact workflows.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use pixseal_service::SignedReceipt;
use pixseal_service::artifacts::{ArtifactMetadata, UploadQuery, Uploaded};
use pixseal_service::dashboard::ArtifactPage;
use pixseal_service::erase::ReceiptKey;

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
    description = "A raw body that is an MP4 or MOV video (sniffed from its first bytes) is read as it arrives, within `[video].max_file_bytes`, spooled encrypted, stored sanitized and signed (no visible mark; docs/video.md).",
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
    store(&s, &caller, client, query, req).await
}

/// An upload by `caller`, whichever way it authenticated (a key here, a session on the
/// dashboard): its options checked before the body is read.
pub(crate) async fn store(
    s: &AppState,
    caller: &pixseal_service::Caller,
    client: std::net::IpAddr,
    query: Result<Query<UploadQuery>, QueryRejection>,
    req: Request,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?;
    let plan = s.plan_upload(caller, &q)?;
    let (req, video) = crate::body::sniff_raw_video(req).await?;
    if video {
        let declared = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let limit = s.video.max_file_bytes;
        if let Some(size) = declared.filter(|&n| n > limit) {
            // Refused unread past its first bytes.
            let e = pixseal_media::IngestError::FileTooLarge { size, limit };
            return Err(pixseal_service::ServiceError::from(e).into());
        }
        let body = req.into_body().into_data_stream();
        let done = s.upload_video(plan, client, body).await?;
        return Ok((StatusCode::CREATED, Json(done)));
    }
    let Upload(body) = Upload::from_request(req, s).await?;
    let done = s.upload(plan, client, body).await?;
    Ok((StatusCode::CREATED, Json(done)))
}

/// `GET /v1/artifacts` query.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `next` of the previous page.
    cursor: Option<String>,
    /// Artifacts per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/v1/artifacts",
    operation_id = "list_artifacts",
    tag = "artifacts",
    summary = "The caller's active artifacts, newest first, a page at a time (scope artifacts:read)",
    security(("apiKey" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "one page", body = ArtifactPage),
        ListErrors,
    ),
)]
pub async fn list(
    State(s): State<AppState>,
    Caller(caller): Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<ArtifactPage>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?;
    let page = s
        .artifacts_page(&caller, q.cursor.as_deref(), q.limit.unwrap_or(50))
        .await?;
    Ok(Json(page))
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
    summary = "The stamped artifact, decrypted on demand: whole, or the byte range asked for (Cache-Control: private, no-store)",
    description = "A `Range: bytes=…` header with one range gets `206` and that range, opened from the stored segments that hold it and no others (a player seeking in a video); several ranges get the whole file (`200`); a range outside the file gets `416` with `Content-Range: bytes */LENGTH`. `Accept-Ranges: bytes` on every answer.",
    security(("apiKey" = [])),
    params(
        ("id" = String, Path),
        ("Range" = Option<String>, Header, description = "One byte range, e.g. `bytes=0-1023`, `bytes=4096-` or `bytes=-500`"),
    ),
    responses(
        (status = 200, description = "the stamped file", content(
            ("image/webp"),
            ("image/jpeg"),
            ("image/png"),
        )),
        (status = 206, description = "the byte range asked for", content(
            ("image/webp"),
            ("image/jpeg"),
            ("image/png"),
        )),
        (status = 416, description = "the range lies outside the file", body = ErrorBody),
        ReadErrors,
    ),
)]
pub async fn content(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    Ok(crate::serve::serve(s.content(&caller, &id).await?, &headers).await)
}

#[utoipa::path(
    delete,
    path = "/v1/artifacts/{id}",
    operation_id = "delete_artifact",
    tag = "artifacts",
    summary = "Delete the artifact (blob and wrapped data key); returns the signed deletion receipt in the tenant's view",
    description = "The receipt (version 2) with `opening`: the salt, artifact id and original SHA-256 whose commitment is the signed `subject` (docs/receipts.md). Of concurrent DELETEs of one artifact exactly one gets the receipt; the others get 404, as a later DELETE would.",
    security(("apiKey" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "deleted: the receipt, tenant's view", body = SignedReceipt),
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
    summary = "A signed deletion receipt: public view, or the tenant's view with a key",
    description = "Without a key (or with another tenant's): the signed receipt alone, which names the artifact only through `subject`, a salted commitment; it verifies offline with the key at /v1/keys/receipts. With a key of the receipt's tenant holding artifacts:read or artifacts:delete: the same receipt plus `opening` (salt, artifact id, original SHA-256), which anyone holding it can check against `subject` (docs/receipts.md). Version 1 receipts, issued before, name the artifact in their signed fields and are served to their tenant only. A bad or unknown key is 401, not the public view.",
    security((), ("apiKey" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "receipt (`opening` in the tenant's view only)", body = SignedReceipt),
        ReceiptErrors,
    ),
)]
pub async fn receipt(
    State(s): State<AppState>,
    caller: Option<Caller>,
    Path(id): Path<String>,
) -> Result<Json<SignedReceipt>, ApiError> {
    let caller = caller.map(|Caller(c)| c);
    Ok(Json(s.receipt(caller.as_ref(), &id).await?))
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
