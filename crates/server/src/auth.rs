//! `Authorization: Bearer <api key>` → the authenticated caller.

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
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

/// `Option<Caller>` for routes that anyone may call and a key holder sees more of: no
/// `Authorization` header is `None`; a header with a bad or unknown key is still refused
/// (401), never quietly served the anonymous view.
impl<S> OptionalFromRequestParts<S> for Caller
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, ApiError> {
        if parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION)
        {
            <Caller as FromRequestParts<S>>::from_request_parts(parts, state)
                .await
                .map(Some)
        } else {
            Ok(None)
        }
    }
}
