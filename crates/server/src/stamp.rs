//! `POST /v1/stamp`: ephemeral stamping. The stamped file comes straight back (one picture) or
//! as a ZIP with a `manifest.json` (several); nothing is kept but each one's proof record.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pixseal_service::challenge::ChallengeRoute;
use pixseal_service::stamp::{Delivery, StampPlan, StampQuery, StampedFile};
use pixseal_service::{ErrorKind, ServiceError};
use serde::Serialize;

use crate::auth::Caller;
use crate::body::{UploadForm, pictures};
use crate::client::ClientAddr;
use crate::error::*;
use crate::{ApiError, AppState, zipstream};

/// Headers of a single stamped file: its proof and where to check it.
pub const PROOF_ID: HeaderName = HeaderName::from_static("pixseal-proof-id");
pub const VERIFY_URL: HeaderName = HeaderName::from_static("pixseal-verify-url");
pub const SHA256: HeaderName = HeaderName::from_static("pixseal-sha256");
/// The request header carrying a solved challenge (ALTCHA's base64 JSON payload).
pub const CHALLENGE: HeaderName = HeaderName::from_static("pixseal-challenge");

/// Longest file name stem kept from an upload's name.
const MAX_STEM: usize = 64;

/// One picture's line in the ZIP's `manifest.json`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StampEntry {
    /// The part's file name as sent (absent for a part without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The stamped file's name in the ZIP, when it was stamped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub stamped: Option<StampedFile>,
    /// Why this picture was not stamped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::error::ErrorDetail>,
}

/// `manifest.json` in the ZIP of a several-picture request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StampManifest {
    /// One entry per picture, in the order they were sent.
    pub files: Vec<StampEntry>,
    /// Pictures stamped, of those sent.
    pub stamped: usize,
}

#[utoipa::path(
    post,
    path = "/v1/stamp",
    operation_id = "stamp",
    tag = "stamp",
    summary = "Stamp pictures and hand them straight back; only each one's public proof record is kept (scope stamp, or anonymous where allowed)",
    security(("apiKey" = []), ()),
    params(
        StampQuery,
        ("Pixseal-Challenge" = Option<String>, Header, description = "a solved challenge (ALTCHA v2 payload, base64 JSON) from GET /v1/challenge?route=stamp: needed past [stamp].challenge_over pictures"),
    ),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "one picture: the stamped file (headers Pixseal-Proof-Id, Pixseal-Verify-Url, Pixseal-Sha256); several: application/zip holding each stamped file and manifest.json (StampManifest), with a per-file error for each picture refused", content(
            ("image/jpeg"),
            ("image/webp"),
            ("image/png"),
            ("application/zip"),
        )),
        (status = 201, description = "deliver=link: each stamped file kept sealed for one download (its pickup url and expiry), with a per-file error for each picture refused", body = StampManifest),
        UploadErrors,
    ),
)]
pub async fn stamp(
    State(s): State<AppState>,
    caller: Option<Caller>,
    Extension(client): Extension<ClientAddr>,
    query: Result<Query<StampQuery>, QueryRejection>,
    req: Request,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?;
    let plan = s.plan_stamp(caller.as_ref().map(|c| &c.0), &q)?;
    // A challenge is redeemed (or refused) before the body is read.
    let solved = match req.headers().get(&CHALLENGE) {
        Some(v) => {
            let payload = v.to_str().map_err(|_| {
                ApiError::from(ServiceError::Forbidden {
                    code: "challenge_invalid",
                    message: "not a challenge this service issued".into(),
                })
            })?;
            s.redeem_challenge(ChallengeRoute::Stamp, payload).await?;
            true
        }
        None => false,
    };
    if caller.is_none() && !solved && !s.limiter.anonymous_stamp(&client).await {
        let free = s.stamp.anonymous_free_per_hour;
        return Err(ServiceError::Forbidden {
            code: "challenge_required",
            message: format!(
                "anonymous stamping past {free} requests an hour from one address needs a solved challenge: GET /v1/challenge?route=stamp, then send its solution in the Pixseal-Challenge header"
            ),
        }
        .into());
    }
    let max = s.stamp_max_files(solved);
    let too_many = || {
        if solved || max == s.stamp_max_files(true) {
            ApiError::bad_request(
                "too_many_files",
                format!("at most {max} pictures per request"),
            )
        } else {
            ApiError::from(ServiceError::Forbidden {
                code: "challenge_required",
                message: format!(
                    "more than {max} pictures in one request need a solved challenge: GET /v1/challenge?route=stamp, then send its solution in the Pixseal-Challenge header"
                ),
            })
        }
    };
    let mut parts = pictures(req, &s, max, too_many).await?;
    if plan.delivery() == Delivery::Link {
        return links(&s, &plan, parts).await;
    }
    if parts.len() == 1 {
        let (_, body) = parts.pop().expect("one part");
        let done = s.stamp_ephemeral(&plan, body).await?;
        return single(&s, done).await;
    }
    let mut parts = parts.into_iter().enumerate();
    let mut files = Vec::new();
    let mut first_error = None;
    // Until one picture is stamped the answer can still be an error status; from the first
    // one on, the ZIP is streamed, one stamped file in memory at a time.
    for (i, (name, body)) in parts.by_ref() {
        match stamp_one(&s, &plan, i, name, body).await? {
            Ok(entry) => {
                files.push(entry);
                return Ok(zipstream::stream(s, plan, files, parts).await);
            }
            Err((entry, api)) => {
                files.push(entry);
                first_error.get_or_insert(api);
            }
        }
    }
    Err(none_stamped(first_error, files.len()))
}

/// A picture stamped (its ZIP entry), or the picture's own fault (its entry with the error,
/// and the error). Anything else fails the request.
pub(crate) async fn stamp_one(
    s: &AppState,
    plan: &StampPlan,
    i: usize,
    name: Option<String>,
    body: pixseal_service::Body,
) -> Result<Result<StampEntry, (StampEntry, ApiError)>, ApiError> {
    match s.stamp_ephemeral(plan, body).await {
        Ok(done) => Ok(Ok(StampEntry {
            file: Some(format!(
                "{:02}-{}.{}",
                i + 1,
                stem(name.as_deref()),
                done.extension
            )),
            name,
            stamped: Some(done),
            error: None,
        })),
        Err(e) if matches!(e.kind(), ErrorKind::Invalid | ErrorKind::Rejected) => {
            let api = ApiError::from(e);
            Ok(Err((
                StampEntry {
                    name,
                    file: None,
                    stamped: None,
                    error: Some(api.detail()),
                },
                api,
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// Every picture refused: the first one's error, saying so.
fn none_stamped(first: Option<ApiError>, n: usize) -> ApiError {
    let first: ApiError =
        first.unwrap_or_else(|| ServiceError::internal("no picture and no error").into());
    first.with_message_prefix(&format!(
        "none of the {n} pictures could be stamped; the first: "
    ))
}

/// `deliver=link`: every picture stamped and kept sealed for one download; the answer lists
/// the links (201), with a per-file error for each picture refused.
async fn links(
    s: &AppState,
    plan: &StampPlan,
    parts: Vec<(Option<String>, pixseal_service::Body)>,
) -> Result<Response, ApiError> {
    let n = parts.len();
    let mut files = Vec::with_capacity(n);
    let mut first_error = None;
    for (i, (name, body)) in parts.into_iter().enumerate() {
        match stamp_one(s, plan, i, name, body).await? {
            Ok(mut entry) => {
                entry.file = None;
                files.push(entry);
            }
            Err((entry, api)) => {
                files.push(entry);
                first_error.get_or_insert(api);
            }
        }
    }
    let stamped = files.iter().filter(|f| f.stamped.is_some()).count();
    if stamped == 0 {
        return Err(if n == 1 {
            first_error.expect("a refused picture has its error")
        } else {
            none_stamped(first_error, n)
        });
    }
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        axum::Json(StampManifest { files, stamped }),
    )
        .into_response())
}

/// The stamped file itself, with its proof in headers.
async fn single(s: &AppState, done: StampedFile) -> Result<Response, ApiError> {
    let disposition = format!(
        "attachment; filename=\"{}.{}\"",
        done.proof_id, done.extension
    );
    let header_of = |v: &str| HeaderValue::from_str(v).expect("ids, hex and URLs are ASCII");
    let bytes = s.hold_answer(done.bytes).await?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, header_of(&done.content_type)),
            (header::CONTENT_DISPOSITION, header_of(&disposition)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (PROOF_ID, header_of(&done.proof_id)),
            (VERIFY_URL, header_of(&done.verify_url)),
            (SHA256, header_of(&done.sha256)),
        ],
        bytes,
    )
        .into_response())
}

/// A file name stem safe in any ZIP reader: the sent name's last path component without its
/// extension, reduced to letters, digits, `-` and `_`; `picture` when nothing is left.
pub(crate) fn stem(name: Option<&str>) -> String {
    let base = name
        .and_then(|n| n.rsplit(['/', '\\']).next())
        .unwrap_or_default();
    let base = base.rsplit_once('.').map_or(base, |(s, _)| s);
    let safe: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_STEM)
        .collect();
    if safe.trim_matches('_').is_empty() {
        "picture".into()
    } else {
        safe
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_the_zip_are_safe_whatever_was_sent() {
        for (sent, want) in [
            (Some("IMG_0001.HEIC"), "IMG_0001"),
            (Some("../../etc/passwd"), "passwd"),
            (Some("C:\\Users\\me\\holiday photo.jpg"), "holiday_photo"),
            (Some("ünïcödé.png"), "_n_c_d_"),
            (Some("...."), "picture"),
            (Some(""), "picture"),
            (None, "picture"),
        ] {
            assert_eq!(stem(sent), want, "{sent:?}");
        }
        assert_eq!(stem(Some(&"a".repeat(300))).len(), MAX_STEM);
    }
}

/// `GET /v1/challenge` query.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChallengeQuery {
    /// The request the challenge will admit.
    #[param(inline)]
    route: ChallengeRoute,
}

#[utoipa::path(
    get,
    path = "/v1/challenge",
    operation_id = "challenge",
    tag = "stamp",
    summary = "A signed, expiring proof-of-work challenge (ALTCHA v2, PBKDF2/SHA-256) for one request to the route named (public)",
    params(ChallengeQuery),
    responses(
        (status = 200, description = "ALTCHA challenge: {parameters, signature}", body = Object),
        PublicJsonErrors,
    ),
)]
pub async fn challenge(
    State(s): State<AppState>,
    query: Result<Query<ChallengeQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?;
    let c = s.issue_challenge(q.route).await?;
    Ok((
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        axum::Json(c),
    )
        .into_response())
}
