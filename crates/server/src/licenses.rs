//! `/v1/licenses/*`: where devices of the offline tool activate, check in and report counts.
//! Public routes: a device holds no API key, only its licence key (activation) or its licence
//! id and device hash (check-ins), limited per address like the other public routes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pixseal_service::licenses::{ActivateRequest, CheckRequest, DeviceGrant, UsageReport};

use crate::body::{SmallBody, parse_json};
use crate::error::*;
use crate::{ApiError, AppState};

#[utoipa::path(
    post,
    path = "/v1/licenses/activate",
    operation_id = "activate_device",
    tag = "licenses",
    summary = "Activate a device under a licence key: takes a seat (or keeps the one it holds) and returns a signed device token. 403 license_invalid, license_revoked, license_expired, device_deactivated; 409 seats_exhausted",
    request_body = ActivateRequest,
    responses(
        (status = 201, description = "activated", body = DeviceGrant),
        LicenseErrors,
    ),
)]
pub async fn activate(
    State(s): State<AppState>,
    SmallBody(body): SmallBody,
) -> Result<(StatusCode, Json<DeviceGrant>), ApiError> {
    let grant = s.activate_device(parse_json(&body)?).await?;
    Ok((StatusCode::CREATED, Json(grant)))
}

#[utoipa::path(
    post,
    path = "/v1/licenses/check",
    operation_id = "check_device",
    tag = "licenses",
    summary = "A device asks for a fresh token, reporting nothing. 403 license_invalid, license_revoked, license_expired, device_deactivated, device_not_activated",
    request_body = CheckRequest,
    responses(
        (status = 200, description = "a fresh device token", body = DeviceGrant),
        LicenseErrors,
    ),
)]
pub async fn check(
    State(s): State<AppState>,
    SmallBody(body): SmallBody,
) -> Result<Json<DeviceGrant>, ApiError> {
    Ok(Json(s.check_device(parse_json(&body)?).await?))
}

#[utoipa::path(
    post,
    path = "/v1/licenses/usage",
    operation_id = "report_usage",
    tag = "licenses",
    summary = "A device reports one finished batch: images and bytes, nothing else; answered with a fresh token, or refused as /v1/licenses/check is",
    request_body = UsageReport,
    responses(
        (status = 200, description = "counted; a fresh device token", body = DeviceGrant),
        LicenseErrors,
    ),
)]
pub async fn usage(
    State(s): State<AppState>,
    SmallBody(body): SmallBody,
) -> Result<Json<DeviceGrant>, ApiError> {
    Ok(Json(s.report_usage(parse_json(&body)?).await?))
}
