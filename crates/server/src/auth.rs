//! `Authorization: Bearer <api key>` → the authenticated caller. The rate-limit middleware
//! checks the key once per request ([`Authentication`]); handlers take [`Caller`].

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::{ApiError, AppState};

/// What a request's `Authorization` header holds.
pub enum Bearer {
    Missing,
    /// Not `Bearer <token>` with a token of at most 256 bytes.
    Malformed(&'static str),
    Token(String),
}

impl Bearer {
    pub fn of(headers: &HeaderMap) -> Bearer {
        let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
            return Bearer::Missing;
        };
        value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= 256)
            .map_or(
                Bearer::Malformed("Authorization must be Bearer <api key>"),
                |t| Bearer::Token(t.to_string()),
            )
    }
}

/// The outcome of checking a request's bearer token, left in its extensions by the middleware.
#[derive(Clone)]
pub enum Authentication {
    Valid(Box<pixseal_service::Caller>),
    Refused(&'static str),
}

/// An authenticated caller (the service's [`pixseal_service::Caller`], as an extractor).
pub struct Caller(pub pixseal_service::Caller);

impl<S> FromRequestParts<S> for Caller
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match parts.extensions.remove::<Authentication>() {
            Some(Authentication::Valid(caller)) => return Ok(Caller(*caller)),
            Some(Authentication::Refused(why)) => return Err(ApiError::unauthorized(why)),
            None => {}
        }
        match Bearer::of(&parts.headers) {
            Bearer::Missing => Err(ApiError::unauthorized(
                "missing Authorization: Bearer <api key>",
            )),
            Bearer::Malformed(why) => Err(ApiError::unauthorized(why)),
            Bearer::Token(secret) => {
                let state = AppState::from_ref(state);
                let route = parts
                    .extensions
                    .get::<axum::extract::MatchedPath>()
                    .map_or("unmatched", |p| p.as_str())
                    .to_string();
                Ok(Caller(state.services.authenticate(&secret, &route).await?))
            }
        }
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
