//! Request bodies: a picture's bytes (a raw body, or the first file part of a multipart form)
//! and the small JSON bodies of the other routes, each read within its own limit.

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{StatusCode, header};
use futures::StreamExt;

use pixseal_service::Body;

use crate::{ApiError, AppState};

/// An uploaded picture, read whole into memory (never to disk), within `max_body_bytes` and
/// within the in-flight budget: room for it is reserved before the first byte is read (its
/// `Content-Length`, or `max_body_bytes` when it sends none), and a declared length over the
/// limit is refused without reading.
pub struct Upload(pub Body);

/// A multipart form carrying the picture.
// Only the OpenAPI document uses this: `Upload` reads the form part by part.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "only described, never built")]
pub struct UploadForm {
    /// The picture (the first part with a file name, or the part named `file`).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// The media types a picture route takes besides the form: the picture as the raw body.
const RAW_PICTURE_TYPES: [&str; 2] = ["application/octet-stream", "image/*"];

/// Document every route that takes an [`UploadForm`] as taking the raw picture too, since
/// [`Upload`] reads either; the annotations name only the form.
pub fn document_raw_pictures(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::ToSchema;
    use utoipa::openapi::{Content, ObjectBuilder, RefOr, Type, schema::SchemaFormat};
    let form = format!("#/components/schemas/{}", UploadForm::name());
    let binary = ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Binary,
        )))
        .build();
    for item in doc.paths.paths.values_mut() {
        let ops = [&mut item.post, &mut item.put];
        for body in ops
            .into_iter()
            .flatten()
            .filter_map(|op| op.request_body.as_mut())
        {
            let takes_form = body
                .content
                .values()
                .any(|c| matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location == form));
            if takes_form {
                for ty in RAW_PICTURE_TYPES {
                    let content = Content::new(Some(binary.clone()));
                    body.content.insert(ty.to_string(), content);
                }
            }
        }
    }
}

/// A request's pictures before they are read: whether it is a form, and the room reserved
/// for it. Room is reserved before the first byte is read (its `Content-Length`, or
/// `max_body_bytes` when it sends none); a declared length over the limit is refused unread.
struct Incoming {
    multipart: bool,
    reservation: pixseal_service::Reservation,
    limit: u64,
}

impl Incoming {
    fn of(req: &Request, state: &AppState) -> Result<Incoming, ApiError> {
        let multipart = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("multipart/form-data"));
        let limit = state.config.max_body_bytes;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(n) = declared
            && n > limit
        {
            return Err(too_large(limit, format!("Content-Length is {n}")));
        }
        let reservation = state.reserve_body(declared.unwrap_or(limit))?;
        Ok(Incoming {
            multipart,
            reservation,
            limit,
        })
    }

    /// A read that failed: over the limit, or not a readable body.
    fn refused(&self, status: StatusCode, text: String) -> ApiError {
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(self.limit, text)
        } else {
            ApiError::bad_request("corrupt", text)
        }
    }
}

fn too_large(limit: u64, e: String) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "file_too_large",
        format!("request body over the max_body_bytes limit of {limit} ({e})"),
    )
}

/// The next file part of a form (one with a file name, or named `file`), or `None` at its end.
async fn next_file(
    mp: &mut Multipart,
    incoming: &Incoming,
) -> Result<Option<(Option<String>, Bytes)>, ApiError> {
    loop {
        match mp.next_field().await {
            Ok(Some(field)) if field.file_name().is_some() || field.name() == Some("file") => {
                let name = field.file_name().map(str::to_string);
                return field
                    .bytes()
                    .await
                    .map(|b| Some((name, b)))
                    .map_err(|e| incoming.refused(e.status(), e.body_text()));
            }
            Ok(Some(_)) => continue,
            Ok(None) => return Ok(None),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(too_large(incoming.limit, e.body_text()));
            }
            Err(e) => {
                let text = format!("multipart body: {}", e.body_text());
                return Err(ApiError::bad_request("corrupt", text));
            }
        }
    }
}

async fn form(req: Request, state: &AppState) -> Result<Multipart, ApiError> {
    Multipart::from_request(req, state)
        .await
        .map_err(|e| ApiError::bad_request("corrupt", format!("multipart body: {}", e.body_text())))
}

fn no_file() -> ApiError {
    ApiError::bad_request("unsupported_format", "multipart form has no file part")
}

/// Whether a raw body starts like a video (MP4 or MOV), read from its first bytes, which are
/// put back: the request comes back whole either way. A form is never taken as a video.
pub async fn sniff_raw_video(req: Request) -> Result<(Request, bool), ApiError> {
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if multipart {
        return Ok((req, false));
    }
    let (parts, body) = req.into_parts();
    let mut rest = body.into_data_stream();
    let mut head = Vec::new();
    while head.len() < 64 {
        match rest.next().await {
            Some(Ok(b)) => head.extend_from_slice(&b),
            Some(Err(e)) => {
                return Err(ApiError::bad_request(
                    "corrupt",
                    format!("request body: {e}"),
                ));
            }
            None => break,
        }
    }
    let video = pixseal_media::sniff_video(&head).is_some();
    let first = futures::stream::once(async move { Ok::<_, axum::Error>(Bytes::from(head)) });
    let body = axum::body::Body::from_stream(first.chain(rest));
    Ok((Request::from_parts(parts, body), video))
}

impl FromRequest<AppState> for Upload {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let incoming = Incoming::of(&req, state)?;
        if !incoming.multipart {
            return match Bytes::from_request(req, state).await {
                Ok(b) => Ok(Upload(incoming.reservation.hold(b))),
                Err(e) => Err(incoming.refused(e.status(), e.body_text())),
            };
        }
        let mut mp = form(req, state).await?;
        match next_file(&mut mp, &incoming).await? {
            Some((_, b)) => Ok(Upload(incoming.reservation.hold(b))),
            None => Err(no_file()),
        }
    }
}

/// Several pictures in one request: a raw body is one (without a name); a form gives every
/// file part, with its file name, up to `max` of them (one more is refused with `too_many`,
/// the rest unread). Read whole into memory (never to disk) within the same limits as
/// [`Upload`].
pub async fn pictures(
    req: Request,
    state: &AppState,
    max: usize,
    too_many: impl Fn() -> ApiError,
) -> Result<Vec<(Option<String>, Body)>, ApiError> {
    let incoming = Incoming::of(&req, state)?;
    if !incoming.multipart {
        // A raw body is one picture: refused unread when not even one is allowed.
        if max == 0 {
            return Err(too_many());
        }
        return match Bytes::from_request(req, state).await {
            Ok(b) => Ok(vec![(None, incoming.reservation.hold(b))]),
            Err(e) => Err(incoming.refused(e.status(), e.body_text())),
        };
    }
    let mut mp = form(req, state).await?;
    let (mut names, mut parts) = (Vec::new(), Vec::new());
    while let Some((name, b)) = next_file(&mut mp, &incoming).await? {
        if parts.len() == max {
            return Err(too_many());
        }
        names.push(name);
        parts.push(b);
    }
    if parts.is_empty() {
        return Err(no_file());
    }
    Ok(names
        .into_iter()
        .zip(incoming.reservation.hold_each(parts))
        .collect())
}

/// The largest JSON body (code requests and the like): a message longer than this is sent as
/// its `message_sha256`.
pub const JSON_BODY_LIMIT: usize = 16 * 1024;

/// A JSON route's body, read whole within [`JSON_BODY_LIMIT`]; the handler parses it
/// ([`parse_json`]), so that an empty body may mean something.
pub struct SmallBody(pub Bytes);

/// `bytes` as JSON of `T`; 400 `invalid_request` naming what is wrong.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("invalid_request", format!("JSON body: {e}")))
}

impl<S: Send + Sync> FromRequest<S> for SmallBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
                format!(
                    "a JSON body is at most {JSON_BODY_LIMIT} bytes (send a long message as message_sha256)"
                ),
            )
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > JSON_BODY_LIMIT as u64) {
            return Err(too_large());
        }
        axum::body::to_bytes(req.into_body(), JSON_BODY_LIMIT)
            .await
            .map(SmallBody)
            .map_err(|e| {
                if e.into_inner().is::<http_body_util::LengthLimitError>() {
                    too_large()
                } else {
                    ApiError::bad_request("invalid_request", "the body could not be read")
                }
            })
    }
}
