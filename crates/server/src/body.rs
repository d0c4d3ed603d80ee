//! A picture's bytes from a request: a raw body, or the first file part of a multipart form.

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{StatusCode, header};

use crate::{ApiError, AppState};

/// An uploaded picture, read whole into memory (never to disk), within `max_body_bytes`.
pub struct Upload(pub Bytes);

/// A multipart form carrying the picture.
// Only the OpenAPI document uses this: `Upload` reads the form part by part.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "only described, never built")]
pub struct UploadForm {
    /// The picture (the first part with a file name, or the part named `file`).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

impl FromRequest<AppState> for Upload {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let is_multipart = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("multipart/form-data"));
        let limit = state.config.max_body_bytes;
        let too_large = |e: String| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "file_too_large",
                format!("request body over the max_body_bytes limit of {limit} ({e})"),
            )
        };
        let refused = |status: StatusCode, text: String| {
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                too_large(text)
            } else {
                ApiError::bad_request("corrupt", text)
            }
        };
        if !is_multipart {
            return Bytes::from_request(req, state)
                .await
                .map(Upload)
                .map_err(|e| refused(e.status(), e.body_text()));
        }
        let mut mp = Multipart::from_request(req, state).await.map_err(|e| {
            ApiError::bad_request("corrupt", format!("multipart body: {}", e.body_text()))
        })?;
        loop {
            match mp.next_field().await {
                Ok(Some(field)) if field.file_name().is_some() || field.name() == Some("file") => {
                    return field
                        .bytes()
                        .await
                        .map(Upload)
                        .map_err(|e| refused(e.status(), e.body_text()));
                }
                Ok(Some(_)) => continue,
                Ok(None) => {
                    return Err(ApiError::bad_request(
                        "unsupported_format",
                        "multipart form has no file part",
                    ));
                }
                Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    return Err(too_large(e.body_text()));
                }
                Err(e) => {
                    let text = format!("multipart body: {}", e.body_text());
                    return Err(ApiError::bad_request("corrupt", text));
                }
            }
        }
    }
}
