//! `Authorization: Bearer <api key>` → the authenticated caller.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;

use crate::{ApiError, AppState};

/// An authenticated caller (the service's [`pixseal_service::Caller`], as an extractor).
pub struct Caller(pub pixseal_service::Caller);

impl<S> FromRequestParts<S> for Caller
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let state = AppState::from_ref(state);
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <api key>"))?;
        let secret = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= 256)
            .ok_or_else(|| ApiError::unauthorized("Authorization must be Bearer <api key>"))?;
        Ok(Caller(
            state
                .services
                .authenticate(secret, parts.uri.path())
                .await?,
        ))
    }
}
