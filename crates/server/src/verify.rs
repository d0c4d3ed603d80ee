//! Public verification: `POST /v1/verify` (a verdict for an uploaded file, which is never
//! stored) and `GET /v1/proofs/{proof_id}` (the minimal public record of a proof).

use axum::Json;
use axum::extract::{Path, State};
use pixseal_service::verify::{ProofView, Verified};

use crate::body::{Upload, UploadForm};
use crate::error::*;
use crate::{ApiError, AppState};

#[utoipa::path(
    get,
    path = "/v1/proofs/{proof_id}",
    operation_id = "proof",
    tag = "verify",
    summary = "The minimal public record of a proof: issued_at, issuer, status, receipt once purged (public)",
    params(("proof_id" = String, Path)),
    responses(
        (status = 200, description = "proof record", body = ProofView),
        NotFoundErrors,
    ),
)]
pub async fn proof(
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<ProofView>, ApiError> {
    Ok(Json(s.proof(&raw).await?))
}

#[utoipa::path(
    post,
    path = "/v1/verify",
    operation_id = "verify_file",
    tag = "verify",
    summary = "Verdict for a file (SPEC §6); public, rate limited per client IP; the file is not stored",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "verdict", body = Verified),
        VerifyFileErrors,
    ),
)]
pub async fn verify(
    State(s): State<AppState>,
    Upload(body): Upload,
) -> Result<Json<Verified>, ApiError> {
    Ok(Json(s.verify(body).await?))
}
