//! The one place errors become HTTP: status + `{"error":{"code","message"}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pixseal_media::IngestError;
use pixseal_seal::SealError;
use pixseal_store::{BlobError, DbError};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }
    pub fn unauthorized(msg: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", msg)
    }
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", msg)
    }
    pub fn bad_request(code: &'static str, msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, msg)
    }
    /// The same status and message under another stable code.
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }
    pub fn internal(what: &str) -> Self {
        // Details go to the log, never to the client.
        tracing::error!(what, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": {"code": self.code, "message": self.message}}));
        (self.status, body).into_response()
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        let status = match &e {
            IngestError::UnsupportedFormat(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestError::FileTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::Internal(_) => return ApiError::internal(&e.to_string()),
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl From<SealError> for ApiError {
    fn from(e: SealError) -> Self {
        match e.code() {
            "key_unavailable" => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "key_unavailable",
                "key service unavailable, retry later",
            ),
            "tampered" => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "tampered",
                "stored artifact failed authentication",
            ),
            _ => ApiError::internal(&e.to_string()),
        }
    }
}

impl From<pixseal_proof::ReceiptError> for ApiError {
    fn from(e: pixseal_proof::ReceiptError) -> Self {
        match e {
            pixseal_proof::ReceiptError::Unavailable(_) => {
                tracing::warn!(error = %e, "receipt signer unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "key_unavailable",
                    "key service unavailable, retry later",
                )
            }
            other => ApiError::internal(&other.to_string()),
        }
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound => ApiError::not_found(),
            other => ApiError::internal(&other.to_string()),
        }
    }
}

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::NotFound => ApiError::not_found(),
            other => ApiError::internal(&other.to_string()),
        }
    }
}
