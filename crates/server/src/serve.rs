//! A stored file served over HTTP: whole, or the one byte range asked for (RFC 9110 §14, what a
//! video player sends to seek), streamed a window at a time so no answer holds the file.

use std::ops::Range;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{StreamExt, TryStreamExt, stream};
use pixseal_service::artifacts::{Content, READ_WINDOW};

use crate::ApiError;

/// What a request asks of a file. Several byte ranges get the whole file, as RFC 9110 lets a
/// server do, rather than a multipart answer.
enum Asked {
    Whole,
    Part(Range<u64>),
    /// A `Range` that cannot be met, and why.
    Unsatisfiable(&'static str),
}

/// Which part of a `len`-byte file the request asks for.
fn asked(headers: &HeaderMap, len: u64) -> Asked {
    let Some(value) = headers.get(header::RANGE) else {
        return Asked::Whole;
    };
    if headers.contains_key(header::IF_RANGE) {
        // No validator is ever sent, so none a client holds can match: the whole file.
        return Asked::Whole;
    }
    // A unit other than bytes is not understood, so it is ignored (RFC 9110 §14.2).
    let Some(value) = value.to_str().ok().filter(|v| v.starts_with("bytes=")) else {
        return Asked::Whole;
    };
    let Ok(parsed) = http_range_header::parse_range_header(value) else {
        return Asked::Unsatisfiable("the Range header is not a list of byte ranges");
    };
    match parsed.validate(len).as_deref() {
        Ok([one]) => Asked::Part(*one.start()..*one.end() + 1),
        Ok(_) => Asked::Whole,
        Err(_) => Asked::Unsatisfiable(
            "the byte ranges asked for cannot be served (outside the file, or overlapping)",
        ),
    }
}

/// 416 naming the file's length.
fn unsatisfiable(why: &str, len: u64) -> Response {
    let mut r = ApiError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "range_not_satisfiable",
        format!("{why}; the file is {len} bytes"),
    )
    .into_response();
    r.headers_mut().insert(
        header::CONTENT_RANGE,
        HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii"),
    );
    r.headers_mut()
        .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    r
}

/// Where the window that starts at `at` ends: at the next window boundary (so windows, and
/// the sealed segments they open, line up) or at `end`.
fn window_end(at: u64, end: u64) -> u64 {
    end.min((at / READ_WINDOW + 1) * READ_WINDOW)
}

/// The file as the answer: `200` whole or `206` with the part asked for, never cached, shown
/// inline. The first window is opened before the answer starts, so a file that fails to open
/// is an error answer; a later failure cuts the answer short (never a completed wrong one).
pub(crate) async fn serve(c: Content, headers: &HeaderMap) -> Response {
    let len = c.len();
    let (status, range) = match asked(headers, len) {
        Asked::Whole => (StatusCode::OK, 0..len),
        Asked::Part(r) => (StatusCode::PARTIAL_CONTENT, r),
        Asked::Unsatisfiable(why) => return unsatisfiable(why, len),
    };
    let first_end = window_end(range.start, range.end);
    let first = if range.is_empty() {
        bytes::Bytes::new()
    } else {
        match c.read(range.start..first_end).await {
            Ok(b) => b,
            Err(e) => return ApiError::from(e).into_response(),
        }
    };
    let content_type = HeaderValue::from_str(&c.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let end = range.end;
    let rest = stream::try_unfold((c, first_end), move |(c, at)| async move {
        if at >= end {
            return Ok(None);
        }
        let stop = window_end(at, end);
        match c.read(at..stop).await {
            Ok(b) => Ok(Some((b, (c, stop)))),
            Err(e) => {
                tracing::warn!(
                    code = e.code(),
                    "stored file failed partway through an answer"
                );
                Err(std::io::Error::other(e.code()))
            }
        }
    });
    let body = Body::from_stream(stream::once(async { Ok(first) }).chain(rest.into_stream()));
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    h.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(range.end - range.start),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline"),
    );
    if status == StatusCode::PARTIAL_CONTENT {
        let v = format!("bytes {}-{}/{len}", range.start, range.end - 1);
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&v).expect("ascii"),
        );
    }
    r
}
