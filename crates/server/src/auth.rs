//! `Authorization: Bearer <api key>` → the caller's key, tenant and scopes.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use pixseal_store::ApiKey;

use crate::{ApiError, AppState};

/// An authenticated caller.
pub struct Caller(pub ApiKey);

impl Caller {
    pub fn require(&self, scope: &str) -> Result<(), ApiError> {
        if self.0.has_scope(scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this API key lacks the {scope} scope"
            )))
        }
    }
}

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
        match state.db.api_key_by_secret(secret).await {
            Ok(k) => Ok(Caller(k)),
            Err(pixseal_store::DbError::NotFound) => {
                let route = parts.uri.path().to_string();
                state
                    .audit(
                        "anonymous",
                        "auth",
                        &route,
                        "denied",
                        "unknown_or_revoked_key",
                    )
                    .await;
                Err(ApiError::unauthorized("unknown or revoked API key"))
            }
            Err(e) => Err(e.into()),
        }
    }
}
