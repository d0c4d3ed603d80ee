//! The public pages served beside the API: server-rendered HTML (maud), one embedded style
//! sheet, small script modules of this origin only where a page needs one, under a strict
//! Content-Security-Policy. They call the same service workflows as the API routes and say in
//! words what the API says in codes.

mod app;
mod check;
mod passkeys;
mod proof;
mod receipt;
mod stamp;
mod verify;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::{ApiError, AppState};

/// Nothing but this origin's style sheet, script files, pictures and API; no inline script or
/// style, no frames, forms post here.
/// `blob:` pictures are the dashboard's decrypted ones, made by its own script in memory;
/// videos play from the dashboard's own content route (`media-src 'self'`), in ranges.
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' blob:; \
    media-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; \
    frame-ancestors 'none'";

/// The style sheet and the script modules, compiled into the binary.
const CSS: &str = include_str!("pixseal.css");
const RECEIPT_JS: &str = include_str!("receipt.js");
const APP_JS: &str = include_str!("app.js");
const VERIFY_JS: &str = include_str!("verify.js");
const STAMP_JS: &str = include_str!("stamp.js");
const POW_WORKER_JS: &str = include_str!("pow-worker.js");
const PASSKEY_JS: &str = include_str!("passkey.js");
const FAVICON: &str = include_str!("favicon.svg");

/// The pages' routes (the API's rate limits and edge layers wrap them like every route).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v/{proof_id}", get(proof::show))
        .route("/verify", get(verify::form).post(verify::check))
        .route(
            "/check",
            get(check::form)
                .post(check::submit)
                .layer(DefaultBodyLimit::max(crate::body::JSON_BODY_LIMIT)),
        )
        .route("/r/{receipt_id}", get(receipt::show))
        .route("/stamp", get(stamp::form))
        .route("/app", get(app::home))
        .route(
            "/app/sign-in",
            post(app::sign_in).layer(DefaultBodyLimit::max(crate::body::JSON_BODY_LIMIT)),
        )
        .route(
            "/app/sign-out",
            post(app::sign_out).layer(DefaultBodyLimit::max(crate::body::JSON_BODY_LIMIT)),
        )
        .route("/enroll", get(passkeys::enroll_form))
        .route(
            "/app/sign-in/passkey/options",
            post(passkeys::sign_in_options),
        )
        .route("/app/sign-in/passkey", post(passkeys::sign_in))
        .route(
            "/app/codes",
            get(passkeys::codes_form).post(passkeys::codes_issue),
        )
        .route("/app/codes/presence", post(passkeys::codes_presence))
        .route("/app/artifacts", post(app::upload))
        .route("/app/artifacts/{id}/content", get(app::content))
        .route("/app/artifacts/{id}/delete", post(app::delete))
        .route(
            "/app/licenses/{id}/deactivate",
            post(app::deactivate).layer(DefaultBodyLimit::max(crate::body::JSON_BODY_LIMIT)),
        )
        .route("/assets/pixseal.css", get(style))
        .route("/assets/receipt.js", get(|| script(RECEIPT_JS)))
        .route("/assets/verify.js", get(|| script(VERIFY_JS)))
        .route("/assets/app.js", get(|| script(APP_JS)))
        .route("/assets/stamp.js", get(|| script(STAMP_JS)))
        .route("/assets/pow-worker.js", get(|| script(POW_WORKER_JS)))
        .route("/assets/passkey.js", get(|| script(PASSKEY_JS)))
        .route("/assets/favicon.svg", get(icon))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static(CSP),
        ))
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

async fn icon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        FAVICON,
    )
        .into_response()
}

async fn script(source: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        source,
    )
        .into_response()
}

/// A whole page: the shared header, `body`, and the footer saying what is kept.
fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · pixseal" }
                link rel="stylesheet" href="/assets/pixseal.css";
                link rel="icon" type="image/svg+xml" href="/assets/favicon.svg";
            }
            body {
                header.site {
                    a.brand href="/verify" { "pixseal" }
                    nav { a href="/verify" { "Check a file" } " " a href="/check" { "Check a code" } " " a href="/stamp" { "Stamp" } " " a href="/app" { "Your photos" } }
                }
                main { (body) }
                footer.site {
                    p { "pixseal verifies and stamps photos without keeping them: files checked here are not stored, and an upload keeps only its stamped copy, sealed, until its retention ends." }
                }
            }
        }
    }
}

/// An HTML answer with `status`.
fn page(status: StatusCode, title: &str, body: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        layout(title, body).into_string(),
    )
        .into_response()
}

/// An error said in words, with its status and its stable code for whoever reports it.
fn error_page(e: &ApiError) -> Response {
    let (title, words) = match e.code {
        "not_found" => ("Not found", "There is nothing here by that name."),
        "unsupported_format" => (
            "Not a picture pixseal reads",
            "This file is not a JPEG, PNG, WebP, GIF, TIFF, HEIC or AVIF picture.",
        ),
        "file_too_large" => ("File too large", "This file is over the size limit."),
        "rate_limited" => (
            "Too many requests",
            "Too many checks from your address just now. Wait a minute and try again.",
        ),
        "busy" | "key_unavailable" | "tsa_unavailable" => (
            "Try again shortly",
            "The service cannot do this right now. Nothing was kept; try again in a moment.",
        ),
        "invalid_request" | "request_too_large" | "csrf" | "unauthorized" | "forbidden" => {
            ("Request refused", e.message.as_str())
        }
        _ if e.status.is_client_error() => ("This file was refused", e.message.as_str()),
        _ => (
            "Something went wrong",
            "The service failed to answer. Nothing was kept; try again later.",
        ),
    };
    page(
        e.status,
        title,
        html! {
            section.card.problem {
                h1 { (title) }
                p { (words) }
                p.code { "Code: " code { (e.code) } }
                p { a href="/verify" { "Check a file" } }
            }
        },
    )
}

/// Why a stamped file was deleted, in words.
fn reason(code: &str) -> &str {
    match code {
        "deleted_by_owner" => "deleted by its owner",
        "retention_expired" => "its retention ended",
        "picked_up" => "downloaded once from its pickup link",
        other => other,
    }
}
