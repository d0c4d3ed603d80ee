//! `/v1/codes`: thin adapters over the service's verification-code workflows.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use pixseal_service::codes::{
    AccountView, CodeVerdict, DeviceKeyRequest, DeviceRegistered, IssueRequest, IssuedCode,
    LiveCode, LiveRequest, LiveVerifyRequest, OutstandingCodes, RevokedCode, RevokedCodes,
    VerifyRequest,
};
use pixseal_service::{Actor, Caller as ServiceCaller};
use pixseal_service::{Scope, Tenant};

use crate::auth::Caller;
use crate::body::{SmallBody, parse_json};
use crate::error::*;
use crate::{ApiError, AppState};

/// The caller's tenant (scope `codes`) and its audit actor.
fn owner(caller: &ServiceCaller) -> Result<(&Tenant, Actor), ApiError> {
    Ok((caller.require(Scope::Codes)?, caller.actor()))
}

#[utoipa::path(
    post,
    path = "/v1/codes",
    operation_id = "issue_code",
    tag = "codes",
    summary = "Issue a message code bound to a message's SHA-256 and a recipient (scope codes)",
    security(("apiKey" = [])),
    request_body = IssueRequest,
    responses(
        (status = 201, description = "issued", body = IssuedCode),
        IssueCodeErrors,
    ),
)]
pub async fn issue(
    State(s): State<AppState>,
    Caller(c): Caller,
    SmallBody(body): SmallBody,
) -> Result<(StatusCode, Json<IssuedCode>), ApiError> {
    let (t, actor) = owner(&c)?;
    let issued = s.issue_code(t, &actor, parse_json(&body)?).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

#[utoipa::path(
    post,
    path = "/v1/codes/verify",
    operation_id = "verify_code",
    tag = "codes",
    summary = "Verify a message code (public; rate limited per IP by [server].rate_limit_verify_per_ip)",
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "verdict", body = CodeVerdict),
        PublicJsonErrors,
    ),
)]
pub async fn verify(
    State(s): State<AppState>,
    SmallBody(body): SmallBody,
) -> Result<Json<CodeVerdict>, ApiError> {
    Ok(Json(
        s.verify_code(&Actor::Anonymous, parse_json(&body)?).await?,
    ))
}

#[utoipa::path(
    delete,
    path = "/v1/codes",
    operation_id = "revoke_codes",
    tag = "codes",
    summary = "Revoke every outstanding code of the account at once: message codes and live call sessions (scope codes)",
    security(("apiKey" = [])),
    responses(
        (status = 200, description = "revoked", body = RevokedCodes),
        OwnerErrors,
    ),
)]
pub async fn revoke_all(
    State(s): State<AppState>,
    Caller(c): Caller,
) -> Result<Json<RevokedCodes>, ApiError> {
    let (t, actor) = owner(&c)?;
    Ok(Json(s.revoke_all_codes(t, &actor).await?))
}

#[utoipa::path(
    get,
    path = "/v1/codes",
    operation_id = "list_codes",
    tag = "codes",
    summary = "The account's outstanding message codes, newest first (ids, message hashes, times; never the codes) (scope codes)",
    security(("apiKey" = [])),
    responses(
        (status = 200, description = "outstanding codes", body = OutstandingCodes),
        OwnerErrors,
    ),
)]
pub async fn list(
    State(s): State<AppState>,
    Caller(c): Caller,
) -> Result<Json<OutstandingCodes>, ApiError> {
    let (t, _) = owner(&c)?;
    Ok(Json(s.list_codes(t).await?))
}

#[utoipa::path(
    delete,
    path = "/v1/codes/{id}",
    operation_id = "revoke_code",
    tag = "codes",
    summary = "Revoke one outstanding message code of the account (anyone else's, or one used, revoked or expired, is 404) (scope codes)",
    security(("apiKey" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "revoked", body = RevokedCode),
        OwnedErrors,
    ),
)]
pub async fn revoke_one(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Json<RevokedCode>, ApiError> {
    let (t, actor) = owner(&c)?;
    Ok(Json(s.revoke_code(t, &id, &actor).await?))
}

/// `presence` starts a session (an empty body, where presence is not required); `session_id`
/// gets a running session's current code.
#[utoipa::path(
    post,
    path = "/v1/codes/live",
    operation_id = "live_code",
    tag = "codes",
    summary = "Start a live call session, or get the current 4-digit code of one (scope codes); codes rotate every 120 s",
    security(("apiKey" = [])),
    request_body = Option<LiveRequest>,
    responses(
        (status = 200, description = "current code", body = LiveCode),
        LiveCodeErrors,
    ),
)]
pub async fn live(
    State(s): State<AppState>,
    Caller(c): Caller,
    SmallBody(body): SmallBody,
) -> Result<Json<LiveCode>, ApiError> {
    let (t, actor) = owner(&c)?;
    let req = if body.iter().all(u8::is_ascii_whitespace) {
        LiveRequest::default()
    } else {
        parse_json(&body)?
    };
    Ok(Json(s.live_code(t, &actor, req).await?))
}

#[utoipa::path(
    post,
    path = "/v1/codes/live/verify",
    operation_id = "verify_live_code",
    tag = "codes",
    summary = "Verify a live call code (public; current or previous window; a session locks after [codes].live_max_failures wrong codes)",
    request_body = LiveVerifyRequest,
    responses(
        (status = 200, description = "verdict", body = CodeVerdict),
        PublicJsonErrors,
    ),
)]
pub async fn live_verify(
    State(s): State<AppState>,
    SmallBody(body): SmallBody,
) -> Result<Json<CodeVerdict>, ApiError> {
    let req = parse_json(&body)?;
    Ok(Json(s.verify_live_code(&Actor::Anonymous, req).await?))
}

#[utoipa::path(
    get,
    path = "/v1/codes/account",
    operation_id = "code_account",
    tag = "codes",
    summary = "The account's verification level, display name and device key fingerprint (scope codes); levels are raised only by the system",
    security(("apiKey" = [])),
    responses(
        (status = 200, description = "account", body = AccountView),
        AccountErrors,
    ),
)]
pub async fn account(
    State(s): State<AppState>,
    Caller(c): Caller,
) -> Result<Json<AccountView>, ApiError> {
    let (t, _) = owner(&c)?;
    Ok(Json(s.code_account(t).await?))
}

#[utoipa::path(
    put,
    path = "/v1/codes/device-key",
    operation_id = "register_device_key",
    tag = "codes",
    summary = "Register the account's device Ed25519 public key (scope codes); a level-4 account drops to level 3 until the system vets the new key",
    security(("apiKey" = [])),
    request_body = DeviceKeyRequest,
    responses(
        (status = 200, description = "registered", body = DeviceRegistered),
        DeviceKeyErrors,
    ),
)]
pub async fn device_key(
    State(s): State<AppState>,
    Caller(c): Caller,
    SmallBody(body): SmallBody,
) -> Result<Json<DeviceRegistered>, ApiError> {
    let (t, actor) = owner(&c)?;
    let req: DeviceKeyRequest = parse_json(&body)?;
    Ok(Json(s.register_device(t, &actor, &req.public_key).await?))
}
