//! `/v1/codes`: thin adapters over the service's verification-code workflows.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use pixseal_service::codes::{
    AccountView, CodeVerdict, DeviceKeyRequest, DeviceRegistered, IssuedCode, LiveCode,
    LiveRequest, RevokedCodes,
};
use pixseal_service::{Actor, Caller as ServiceCaller};
use pixseal_store::{Scope, Tenant};
use serde::de::DeserializeOwned;

use crate::auth::Caller;
use crate::{ApiError, AppState};

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_request", format!("JSON body: {e}")))
}

/// The caller's tenant (scope `codes`) and its audit actor.
fn owner(caller: &ServiceCaller) -> Result<(&Tenant, Actor), ApiError> {
    Ok((caller.require(Scope::Codes)?, caller.actor()))
}

/// `POST /v1/codes`.
pub async fn issue(
    State(s): State<AppState>,
    Caller(c): Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<IssuedCode>), ApiError> {
    let (t, actor) = owner(&c)?;
    let issued = s.issue_code(t, &actor, parse(&body)?).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// `POST /v1/codes/verify` (public).
pub async fn verify(State(s): State<AppState>, body: Bytes) -> Result<Json<CodeVerdict>, ApiError> {
    Ok(Json(s.verify_code(&Actor::Anonymous, parse(&body)?).await?))
}

/// `DELETE /v1/codes`.
pub async fn revoke_all(
    State(s): State<AppState>,
    Caller(c): Caller,
) -> Result<Json<RevokedCodes>, ApiError> {
    let (t, actor) = owner(&c)?;
    Ok(Json(s.revoke_all_codes(t, &actor).await?))
}

/// `POST /v1/codes/live`: an empty body starts a session.
pub async fn live(
    State(s): State<AppState>,
    Caller(c): Caller,
    body: Bytes,
) -> Result<Json<LiveCode>, ApiError> {
    let (t, actor) = owner(&c)?;
    let req = if body.iter().all(u8::is_ascii_whitespace) {
        LiveRequest::default()
    } else {
        parse(&body)?
    };
    Ok(Json(s.live_code(t, &actor, req).await?))
}

/// `POST /v1/codes/live/verify` (public).
pub async fn live_verify(
    State(s): State<AppState>,
    body: Bytes,
) -> Result<Json<CodeVerdict>, ApiError> {
    let req = parse(&body)?;
    Ok(Json(s.verify_live_code(&Actor::Anonymous, req).await?))
}

/// `GET /v1/codes/account`.
pub async fn account(
    State(s): State<AppState>,
    Caller(c): Caller,
) -> Result<Json<AccountView>, ApiError> {
    let (t, _) = owner(&c)?;
    Ok(Json(s.code_account(t).await?))
}

/// `PUT /v1/codes/device-key`.
pub async fn device_key(
    State(s): State<AppState>,
    Caller(c): Caller,
    body: Bytes,
) -> Result<Json<DeviceRegistered>, ApiError> {
    let (t, actor) = owner(&c)?;
    let req: DeviceKeyRequest = parse(&body)?;
    Ok(Json(s.register_device(t, &actor, &req.public_key).await?))
}
