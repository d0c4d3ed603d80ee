//! Public verification: `POST /v1/verify` (a verdict for an uploaded file, which is never
//! stored) and `GET /v1/proofs/{proof_id}` (the minimal public record of a proof).

use axum::Json;
use axum::extract::{Path, State};
use pixseal_service::verify::{ProofView, Verified};

use crate::body::Upload;
use crate::{ApiError, AppState};

/// `GET /v1/proofs/{proof_id}` (public).
pub async fn proof(
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<ProofView>, ApiError> {
    Ok(Json(s.proof(&raw).await?))
}

/// `POST /v1/verify` (public, rate limited per client IP).
pub async fn verify(
    State(s): State<AppState>,
    Upload(body): Upload,
) -> Result<Json<Verified>, ApiError> {
    Ok(Json(s.verify(body).await?))
}
