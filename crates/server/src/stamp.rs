//! `POST /v1/stamp`: ephemeral stamping. The stamped file comes straight back (one picture) or
//! as a ZIP with a `manifest.json` (several); nothing is kept but each one's proof record.

use std::io::Write;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pixseal_service::challenge::ChallengeRoute;
use pixseal_service::stamp::{StampQuery, StampedFile};
use pixseal_service::{ErrorKind, ServiceError};
use serde::Serialize;

use crate::auth::Caller;
use crate::body::{UploadForm, pictures};
use crate::error::*;
use crate::{ApiError, AppState};

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
        UploadErrors,
    ),
)]
pub async fn stamp(
    State(s): State<AppState>,
    caller: Option<Caller>,
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
    if parts.len() == 1 {
        let (_, body) = parts.pop().expect("one part");
        let done = s.stamp_ephemeral(&plan, body).await?;
        return Ok(single(done));
    }
    let mut files = Vec::with_capacity(parts.len());
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    // Pictures are compressed already: stored as they are.
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut first_error = None;
    for (i, (name, body)) in parts.into_iter().enumerate() {
        match s.stamp_ephemeral(&plan, body).await {
            Ok(done) => {
                let file = format!("{:02}-{}.{}", i + 1, stem(name.as_deref()), done.extension);
                zip.start_file(file.as_str(), opts).map_err(zip_failed)?;
                zip.write_all(&done.bytes)
                    .map_err(|e| zip_failed(e.into()))?;
                files.push(StampEntry {
                    name,
                    file: Some(file),
                    stamped: Some(done),
                    error: None,
                });
            }
            // The picture's own fault: listed, and the others still come back.
            Err(e) if matches!(e.kind(), ErrorKind::Invalid | ErrorKind::Rejected) => {
                let api = ApiError::from(e);
                files.push(StampEntry {
                    name,
                    file: None,
                    stamped: None,
                    error: Some(api.detail()),
                });
                first_error.get_or_insert(api);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let stamped = files.iter().filter(|f| f.stamped.is_some()).count();
    if stamped == 0 {
        let first: ApiError =
            first_error.unwrap_or_else(|| ServiceError::internal("no picture and no error").into());
        return Err(first.with_message_prefix(&format!(
            "none of the {} pictures could be stamped; the first: ",
            files.len()
        )));
    }
    let manifest = serde_json::to_vec_pretty(&StampManifest { files, stamped })
        .map_err(|e| ApiError::from(ServiceError::internal(e.to_string())))?;
    zip.start_file("manifest.json", opts).map_err(zip_failed)?;
    zip.write_all(&manifest).map_err(|e| zip_failed(e.into()))?;
    let bytes = zip.finish().map_err(zip_failed)?.into_inner();
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/zip"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"stamped.zip\""),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        bytes,
    )
        .into_response())
}

/// The stamped file itself, with its proof in headers.
fn single(done: StampedFile) -> Response {
    let disposition = format!(
        "attachment; filename=\"{}.{}\"",
        done.proof_id, done.extension
    );
    let header_of = |v: &str| HeaderValue::from_str(v).expect("ids, hex and URLs are ASCII");
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, header_of(&done.content_type)),
            (header::CONTENT_DISPOSITION, header_of(&disposition)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (PROOF_ID, header_of(&done.proof_id)),
            (VERIFY_URL, header_of(&done.verify_url)),
            (SHA256, header_of(&done.sha256)),
        ],
        done.bytes,
    )
        .into_response()
}

/// A file name stem safe in any ZIP reader: the sent name's last path component without its
/// extension, reduced to letters, digits, `-` and `_`; `picture` when nothing is left.
fn stem(name: Option<&str>) -> String {
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

fn zip_failed(e: zip::result::ZipError) -> ApiError {
    ServiceError::internal(format!("writing the ZIP: {e}")).into()
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
