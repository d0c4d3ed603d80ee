//! Passkeys and members: registration with an enrollment token (public: the token is the
//! credential), the account's member list and passkey revocation (scope `codes`), and the
//! presence challenge a code is minted with.

use axum::Json;
use axum::extract::{Path, State};
use pixseal_service::Scope;
use pixseal_service::passkeys::{
    LivePresenceChallenge, Members, PasskeyView, PresenceChallenge, PresenceRequest,
    RegistrationOptions, RegistrationRequest, RevokedPasskey,
};

use crate::auth::Caller;
use crate::body::{SmallBody, parse_json};
use crate::error::*;
use crate::{ApiError, AppState};

#[utoipa::path(
    post,
    path = "/v1/passkeys/registrations",
    operation_id = "begin_passkey_registration",
    tag = "passkeys",
    summary = "Start registering a member's passkey with the one-time enrollment token an administrator gave (pixseal codes enroll); answers the options for navigator.credentials.create()",
    request_body = RegistrationRequest,
    responses(
        (status = 200, description = "creation options", body = RegistrationOptions),
        PasskeyErrors,
    ),
)]
pub async fn begin_registration(
    State(s): State<AppState>,
    SmallBody(body): SmallBody,
) -> Result<Json<RegistrationOptions>, ApiError> {
    Ok(Json(
        s.begin_passkey_registration(parse_json(&body)?).await?,
    ))
}

#[utoipa::path(
    post,
    path = "/v1/passkeys",
    operation_id = "finish_passkey_registration",
    tag = "passkeys",
    summary = "Finish a passkey registration with the browser's RegistrationResponseJSON (UV required; the enrollment token is spent)",
    request_body(content = Object, description = "RegistrationResponseJSON (W3C WebAuthn level 3)"),
    responses(
        (status = 201, description = "registered", body = PasskeyView),
        PasskeyErrors,
    ),
)]
pub async fn finish_registration(
    State(s): State<AppState>,
    SmallBody(body): SmallBody,
) -> Result<(axum::http::StatusCode, Json<PasskeyView>), ApiError> {
    let view = s.finish_passkey_registration(&body).await?;
    Ok((axum::http::StatusCode::CREATED, Json(view)))
}

#[utoipa::path(
    get,
    path = "/v1/members",
    operation_id = "list_members",
    tag = "passkeys",
    summary = "The account's members and their passkeys, and whether minting needs a person present (scope codes)",
    security(("apiKey" = [])),
    responses(
        (status = 200, description = "members", body = Members),
        OwnerErrors,
    ),
)]
pub async fn members(
    State(s): State<AppState>,
    Caller(c): Caller,
) -> Result<Json<Members>, ApiError> {
    Ok(Json(s.members(c.require(Scope::Codes)?).await?))
}

#[utoipa::path(
    delete,
    path = "/v1/passkeys/{id}",
    operation_id = "revoke_passkey",
    tag = "passkeys",
    summary = "Revoke one of the account's passkeys: it mints nothing more (scope codes)",
    security(("apiKey" = [])),
    params(("id" = String, Path, description = "credential ID (base64url)")),
    responses(
        (status = 200, description = "revoked", body = RevokedPasskey),
        OwnedErrors,
    ),
)]
pub async fn revoke(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Json<RevokedPasskey>, ApiError> {
    let t = c.require(Scope::Codes)?;
    Ok(Json(s.revoke_passkey(t, &id, &c.actor()).await?))
}

#[utoipa::path(
    post,
    path = "/v1/codes/presence",
    operation_id = "begin_presence",
    tag = "codes",
    summary = "Start minting a code with a member present: the code, its expiry and the passkey challenge (the SHA-256 of the code data) to sign; then POST /v1/codes with the assertion as presence (scope codes)",
    security(("apiKey" = [])),
    request_body = PresenceRequest,
    responses(
        (status = 200, description = "challenge", body = PresenceChallenge),
        IssueCodeErrors,
    ),
)]
pub async fn begin_presence(
    State(s): State<AppState>,
    Caller(c): Caller,
    SmallBody(body): SmallBody,
) -> Result<Json<PresenceChallenge>, ApiError> {
    let t = c.require(Scope::Codes)?;
    Ok(Json(
        s.begin_presence(t, c.member_id(), parse_json(&body)?)
            .await?,
    ))
}

#[utoipa::path(
    post,
    path = "/v1/codes/live/presence",
    operation_id = "begin_live_presence",
    tag = "codes",
    summary = "Start a live call session with a member present: the session id, its end and the passkey challenge to sign; then POST /v1/codes/live with the assertion as presence (scope codes)",
    security(("apiKey" = [])),
    responses(
        (status = 200, description = "challenge", body = LivePresenceChallenge),
        IssueCodeErrors,
    ),
)]
pub async fn begin_live_presence(
    State(s): State<AppState>,
    Caller(c): Caller,
) -> Result<Json<LivePresenceChallenge>, ApiError> {
    let t = c.require(Scope::Codes)?;
    Ok(Json(s.begin_live_presence(t, c.member_id()).await?))
}
