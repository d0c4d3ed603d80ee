//! The one place errors become HTTP: status + `{"error":{"code","message"}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pixseal_service::{ErrorKind, ServiceError};
use serde::Serialize;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{ToResponse, ToSchema};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for `Retry-After` (rate limits, a busy service).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    pub fn unauthorized(msg: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", msg)
    }

    pub fn bad_request(code: &'static str, msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, msg)
    }

    /// Its code and message, as an error body carries them (and a per-item error list).
    pub fn detail(&self) -> ErrorDetail {
        ErrorDetail {
            code: self.code,
            message: self.message.clone(),
        }
    }

    /// The same error, its message led by `prefix`.
    pub fn with_message_prefix(mut self, prefix: &str) -> Self {
        self.message = format!("{prefix}{}", self.message);
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// The body of every error answer.
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    #[schema(inline)]
    error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable: a picture's own code (SPEC §3: `unsupported_format`,
    /// `file_too_large`, `corrupt`, …) or the request's (`invalid_request`, `unauthorized`,
    /// `forbidden`, `not_found`, `rate_limited`, `key_unavailable`, `internal`, …).
    #[schema(example = "not_found")]
    code: &'static str,
    /// For people; not meant to be parsed.
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(ErrorBody {
            error: self.detail(),
        });
        let mut r = (self.status, body).into_response();
        if let Some(secs) = self.retry_after {
            r.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.max(1).into());
        }
        r
    }
}

/// Error answers in the OpenAPI document (`response = ApiError`): one shared response whose
/// body is [`ErrorBody`].
impl<'r> ToResponse<'r> for ApiError {
    fn response() -> (&'r str, RefOr<utoipa::openapi::Response>) {
        let body = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(ErrorBody::name())))
            .build();
        let response = ResponseBuilder::new()
            .description("error: `{\"error\":{\"code\",\"message\"}}`")
            .content("application/json", body)
            .build();
        ("Error", RefOr::T(response))
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let status = match e.kind() {
            ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Gone => StatusCode::GONE,
            ErrorKind::Rejected => match e.code() {
                "unsupported_format" => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "file_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            },
            ErrorKind::Limited => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        // `Internal` hides its detail (already logged where it happened).
        let mut api = ApiError::new(status, e.code(), e.to_string());
        match e {
            ServiceError::Busy(_) => api.retry_after = Some(1),
            ServiceError::Quota {
                retry_after_secs, ..
            } => api.retry_after = Some(retry_after_secs),
            _ => {}
        }
        api
    }
}

/// The error answers a route documents, each the shared `Error` response: one type per set,
/// named in the route's `responses(...)` after its success answer.
macro_rules! error_responses {
    ($($(#[$doc:meta])* $name:ident: [$($status:literal),+];)+) => {$(
        $(#[$doc])*
        pub struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<String, RefOr<utoipa::openapi::Response>> {
                [$($status),+]
                    .iter()
                    .map(|s: &u16| (s.to_string(), RefOr::Ref(utoipa::openapi::Ref::from_response_name("Error"))))
                    .collect()
            }
        }
    )+};
}

error_responses! {
    UploadErrors: [400, 401, 403, 413, 415, 422, 429, 503];
    ReadErrors: [401, 404, 429];
    ListErrors: [400, 401, 403, 429];
    DeleteErrors: [401, 403, 404, 429, 503];
    ReceiptErrors: [401, 404, 429];
    NotFoundErrors: [404, 429];
    IssueCodeErrors: [400, 401, 403, 409, 413, 429];
    PublicJsonErrors: [400, 413, 429];
    /// A passkey registration: malformed, refused (token, ceremony, checks), already there, limited.
    PasskeyErrors: [400, 403, 409, 413, 429];
    OwnerErrors: [401, 403, 429];
    /// One of the account's own things: no key, no scope, not found (or not its own), limited.
    OwnedErrors: [401, 403, 404, 429];
    LiveCodeErrors: [400, 401, 403, 404, 410, 413, 429];
    AccountErrors: [401, 403, 429];
    DeviceKeyErrors: [400, 401, 403, 413, 429];
    VerifyFileErrors: [400, 413, 415, 422, 429, 503];
    PublicErrors: [429];
    /// A pickup link: unknown, being downloaded, gone, limited, or no room to send it now.
    PickupErrors: [404, 409, 410, 429, 503];
    /// A device's licence request: malformed, refused, no seat, limited, or no signing key.
    LicenseErrors: [400, 403, 409, 413, 429, 503];
}
