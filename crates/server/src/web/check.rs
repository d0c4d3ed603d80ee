//! `/check`: a verification code checked by the person who received it, as the public API
//! does (`POST /v1/codes/verify`, `POST /v1/codes/live/verify`) and within the same per-address
//! budget, with the answer in words: valid, a mismatch warning, used, expired, revoked.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use pixseal_service::Actor;
use pixseal_service::codes::{
    CodeKind, CodeVerdict, LiveVerifyRequest, SignatureKind, Verdict, VerifyRequest,
};
use serde::Deserialize;

use super::{error_page, page};
use crate::{ApiError, AppState};

/// Values a link may carry into the forms (a code sent with a message, a call's session).
#[derive(Deserialize, Default)]
pub struct Prefill {
    code: Option<String>,
    session: Option<String>,
}

pub async fn form(Query(p): Query<Prefill>) -> Response {
    page(StatusCode::OK, "Check a code", forms(&p))
}

/// Which form was sent.
#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum Sent {
    Message,
    Live,
}

/// Both forms' fields; each form sends its own.
#[derive(Deserialize)]
pub struct CheckForm {
    kind: Sent,
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    recipient: String,
    #[serde(default)]
    session_id: String,
}

pub async fn submit(
    State(s): State<AppState>,
    form: Result<Form<CheckForm>, FormRejection>,
) -> Response {
    let f = match form {
        Ok(Form(f)) => f,
        Err(e) => {
            let code = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                "request_too_large"
            } else {
                "invalid_request"
            };
            return error_page(&ApiError::new(
                e.status(),
                code,
                "the form could not be read",
            ));
        }
    };
    let answer = match f.kind {
        Sent::Message => {
            // A browser sends a text area's line breaks as CRLF; the message as written has LF.
            let message = f.message.replace("\r\n", "\n");
            let req = VerifyRequest {
                code: f.code.clone(),
                message: Some(message),
                message_sha256: None,
                recipient: f.recipient.clone(),
            };
            s.verify_code(&Actor::Anonymous, req).await
        }
        Sent::Live => {
            let req = LiveVerifyRequest {
                session_id: f.session_id.clone(),
                code: f.code.clone(),
            };
            s.verify_live_code(&Actor::Anonymous, req).await
        }
    };
    match answer {
        Ok(v) => {
            let prefill = Prefill::default();
            page(
                StatusCode::OK,
                headline(&v),
                html! { (render(&v)) (forms(&prefill)) },
            )
        }
        Err(e) => error_page(&ApiError::from(e)),
    }
}

fn headline(v: &CodeVerdict) -> &'static str {
    match v.verdict {
        Verdict::Valid => "Valid code",
        Verdict::Mismatch => "Warning: this does not match",
        Verdict::Unknown => "Unknown code",
        Verdict::Expired => "Expired code",
        Verdict::Used => "Already checked",
        Verdict::Revoked => "Revoked code",
        Verdict::Locked => "Too many wrong codes",
        Verdict::InvalidSignature => "Warning: the device signature is not valid",
    }
}

fn meaning(v: &CodeVerdict) -> &'static str {
    match (v.verdict, v.kind) {
        (Verdict::Valid, CodeKind::Message) => {
            "The code was issued by this account for exactly this message and this recipient. \
             It has now been checked and will read as used from here on."
        }
        (Verdict::Valid, CodeKind::Live) => {
            "The person on the call is showing the current code of this account's session."
        }
        (Verdict::Mismatch, CodeKind::Message) => {
            "This code exists, but it was issued for a different message or a different recipient. \
             Do not trust this message: it may have been changed, or the code copied from another one."
        }
        (Verdict::Mismatch, CodeKind::Live) => {
            "That is not the current code of this session. Do not trust the caller until the code matches."
        }
        (Verdict::Unknown, _) => {
            "No code like this was issued here. Check that you typed it as given; if you did, do not trust the message."
        }
        (Verdict::Expired, _) => "The code was real but has expired. Ask the sender for a new one.",
        (Verdict::Used, _) => {
            "The code was real but has already been checked once. A code is good for one check: \
             if you did not check it before, someone else did, so be careful."
        }
        (Verdict::Revoked, _) => {
            "The account that issued this code revoked its codes. Do not trust the message."
        }
        (Verdict::Locked, _) => {
            "Too many wrong codes were tried for this session; it is locked for now."
        }
        (Verdict::InvalidSignature, _) => {
            "The account signs its codes on a device, and this code's signature does not check out. \
             Do not trust the message."
        }
    }
}

fn tone(v: Verdict) -> &'static str {
    match v {
        Verdict::Valid => "good",
        Verdict::Expired | Verdict::Used | Verdict::Locked => "warn",
        Verdict::Mismatch | Verdict::Revoked | Verdict::InvalidSignature => "bad",
        Verdict::Unknown => "neutral",
    }
}

fn render(v: &CodeVerdict) -> Markup {
    html! {
        section.card #verdict {
            p class={ "badge " (tone(v.verdict)) } { (v.verdict.as_str()) }
            h1 { (headline(v)) }
            p.lead { (meaning(v)) }
            @if let Some(a) = &v.account {
                dl {
                    dt { "Issued by" } dd { (a.display_name) " " span class={ "badge level-" (a.level) } { "Level " (a.level) ": " (level_words(a.level_name)) } }
                    @if let Some(t) = &v.issued_at { dt { "Issued at" } dd { (t) } }
                    @if let Some(t) = &v.expires_at { dt { "Expires" } dd { (t) } }
                    @if let Some(d) = v.device_signed {
                        dt { "Signature" } dd { (signature_words(d, v.signature.as_ref().map(|s| s.kind))) }
                    }
                }
            }
            p.small { "What you typed was checked and not stored." }
        }
    }
}

fn signature_words(signed: bool, kind: Option<SignatureKind>) -> &'static str {
    match (signed, kind) {
        (true, Some(SignatureKind::Passkey)) => {
            "signed with a member's passkey, the person verified on their own device (biometric or PIN)"
        }
        (true, _) => "signed with the account's registered device key",
        (false, Some(SignatureKind::SessionPasskey)) => {
            "the call session was started by a member with their passkey (biometric or PIN); its codes are made by the service"
        }
        (false, _) => "none",
    }
}

fn level_words(name: &str) -> &str {
    match name {
        "registered" => "registered account",
        "personal_verified" => "verified person",
        "identity_verified" => "verified identity",
        "identity_employer" => "verified identity and employer",
        "device_bound" => "codes signed on a registered device",
        other => other,
    }
}

fn forms(p: &Prefill) -> Markup {
    html! {
        section.card {
            h1 { "Check a message code" }
            p { "Someone sent you a message with a pixseal code. Enter the code, the message exactly as you "
                "received it, and your e-mail address or phone number as the sender knows it." }
            form.stack method="post" action="/check" {
                input type="hidden" name="kind" value="message";
                label for="m-code" { "Code" }
                input #m-code type="text" name="code" required autocomplete="off" spellcheck="false" value=[p.code.as_deref()];
                label for="m-message" { "Message" }
                textarea #m-message name="message" rows="5" required {}
                label for="m-recipient" { "You (e-mail or phone)" }
                input #m-recipient type="text" name="recipient" required autocomplete="email";
                button type="submit" { "Check the code" }
            }
            p.small { "A code is good for one check: checking it marks it used." }
        }
        section.card {
            h2 { "Check a live call code" }
            p { "On a call, ask the caller for their session id and the 4-digit code their app shows now." }
            form.stack method="post" action="/check" {
                input type="hidden" name="kind" value="live";
                label for="l-session" { "Session id" }
                input #l-session type="text" name="session_id" required autocomplete="off" spellcheck="false" value=[p.session.as_deref()];
                label for="l-code" { "Code" }
                input #l-code type="text" name="code" required inputmode="numeric" pattern="[0-9]{4}" maxlength="4" autocomplete="off";
                button type="submit" { "Check the code" }
            }
        }
    }
}
