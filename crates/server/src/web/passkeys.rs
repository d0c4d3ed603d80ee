//! Passkeys in the pages: `/enroll` (a member registers a passkey with the enrollment token an
//! administrator gave), the dashboard's sign-in with a passkey, and `/app/codes` (a new code,
//! minted with the member's passkey). The WebAuthn calls are `passkey.js`'s; the checks are the
//! service's, the same as the API's.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use pixseal_service::codes::IssuedCode;
use pixseal_service::passkeys::{PresenceChallenge, SignInChallenge, SignInProof};
use pixseal_service::{Scope, ServiceError};

use super::app::{same_site, see_other, set_cookie, signed_in};
use super::{error_page, page};
use crate::body::{SmallBody, parse_json};
use crate::client::ClientAddr;
use crate::{ApiError, AppState};

/// A sign-in must come from this site's own page (another site must not sign a visitor in to
/// an account of its choosing): not cross-site by the browser's word, and JSON, which a form on
/// another site cannot send without a CORS preflight this service never grants (for browsers
/// that send no `Sec-Fetch-Site`).
fn from_this_site(headers: &HeaderMap) -> Result<(), ApiError> {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if site.is_some_and(|v| v != "same-origin") || !json {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "sign in from this site's own page",
        ));
    }
    Ok(())
}

/// 429 while `client` has failed too many sign-ins.
async fn may_try(s: &AppState, client: &ClientAddr) -> Result<(), ApiError> {
    s.limiter.may_authenticate(client).await.map_err(|wait| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many failed sign-ins from your address; try again in {} s",
                wait.as_secs().max(1)
            ),
        )
    })
}

/// `GET /enroll`.
pub async fn enroll_form() -> Response {
    page(
        StatusCode::OK,
        "Register a passkey",
        html! {
            section.card {
                h1 { "Register a passkey" }
                p.lead { "Your account's administrator gave you an enrollment token. With it, this "
                    "device (or a phone or security key) creates a passkey for you: you confirm with "
                    "your face, fingerprint or device PIN, and from then on that confirmation is how "
                    "you sign in and how each code you create is signed." }
                p.small { "Nothing biometric leaves your device: pixseal keeps the passkey's public "
                    "key, its id and a counter. The token works once, for a day." }
                form #enroll-form.stack {
                    label for="enrollment-token" { "Enrollment token" }
                    input #enrollment-token type="password" name="enrollment_token" required
                        autocomplete="off" spellcheck="false";
                    button type="submit" { "Create my passkey" }
                    p #enroll-status role="status" aria-live="polite" {}
                }
                noscript { p.small { "Passkeys are made by your browser: this page needs JavaScript." } }
            }
            script type="module" src="/assets/passkey.js" {}
        },
    )
}

/// `POST /app/sign-in/passkey/options`: a sign-in challenge any of this site's passkeys may
/// answer.
pub async fn sign_in_options(
    State(s): State<AppState>,
    Extension(client): Extension<ClientAddr>,
    headers: HeaderMap,
) -> Result<Json<SignInChallenge>, ApiError> {
    from_this_site(&headers)?;
    may_try(&s, &client).await?;
    Ok(Json(s.begin_sign_in().await?))
}

/// `POST /app/sign-in/passkey`: the assertion; a member's session in a cookie when it holds.
pub async fn sign_in(
    State(s): State<AppState>,
    Extension(client): Extension<ClientAddr>,
    headers: HeaderMap,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    from_this_site(&headers)?;
    may_try(&s, &client).await?;
    let proof: SignInProof = parse_json(&body)?;
    match s.finish_sign_in(&proof).await {
        Ok((_, session)) => {
            let cookie = set_cookie(&s, &session.token, session.max_age_secs);
            let mut r = Json(serde_json::json!({ "to": "/app" })).into_response();
            r.headers_mut().insert(header::SET_COOKIE, cookie);
            Ok(r)
        }
        Err(e) => {
            if matches!(e, ServiceError::Forbidden { .. }) {
                s.limiter.failed_authentication(&client).await;
            }
            Err(e.into())
        }
    }
}

/// `GET /app/codes`: the "new code" page.
pub async fn codes_form(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let Ok(signed) = signed_in(&s, &headers).await else {
        return see_other("/app");
    };
    if let Err(e) = signed.caller.require(Scope::Codes) {
        return error_page(&ApiError::from(e));
    }
    let csrf = pixseal_service::dashboard::csrf_token(&signed.token);
    let max_days = s.codes.message_ttl_days;
    let days: Vec<i64> = [1, 7, 30]
        .into_iter()
        .filter(|d| *d < max_days)
        .chain([max_days])
        .collect();
    page(
        StatusCode::OK,
        "New code",
        html! {
            div #session hidden data-csrf=(csrf) {}
            section.card {
                p { a href="/app" { "← Your photos" } }
                h1 { "New code" }
                p.lead { "A code lets the person you write to check, on this site, that the message "
                    "came from your account, unchanged, and was meant for them. It is bound to the "
                    "message's fingerprint (SHA-256) and to the recipient; the message itself is not "
                    "kept." }
                p.small { "Your passkey signs the code: your device asks you to confirm with your "
                    "face, fingerprint or PIN. It shows this site's name, not the message, so read "
                    "the message here before you confirm." }
                form #code-form.stack {
                    label for="code-message" { "Message, exactly as you will send it" }
                    textarea #code-message name="message" rows="6" required maxlength="100000" {}
                    label for="code-recipient" { "Recipient (their e-mail address, phone number or name)" }
                    input #code-recipient type="text" name="recipient" required maxlength="320"
                        autocomplete="off";
                    label for="code-ttl" { "Valid for" }
                    select #code-ttl name="ttl_days" {
                        @for d in &days {
                            option value=(d) selected[*d == max_days] { (d) @if *d == 1 { " day" } @else { " days" } }
                        }
                    }
                    button type="submit" { "Create the code with my passkey" }
                    p #code-status role="status" aria-live="polite" {}
                }
                noscript { p.small { "Passkeys are used by your browser: this page needs JavaScript." } }
            }
            section.card #code-result hidden {
                h2 { "Your code" }
                p.code-big { code #code-value {} }
                p { "Valid until " time #code-expires {} ", once, for this message and recipient. "
                    "Send it with the message; the recipient checks both at " a href="/check" { "/check" } "." }
                p.small #code-signed {}
            }
            script type="module" src="/assets/passkey.js" {}
        },
    )
}

/// `POST /app/codes/presence`: as `POST /v1/codes/presence`, for the signed-in session (a
/// member's session may answer only with the member's own passkeys).
pub async fn codes_presence(
    State(s): State<AppState>,
    headers: HeaderMap,
    SmallBody(body): SmallBody,
) -> Result<Json<PresenceChallenge>, ApiError> {
    let signed = signed_in(&s, &headers).await?;
    same_site(&headers, &signed.token, None)?;
    let tenant = signed.caller.require(Scope::Codes)?;
    Ok(Json(
        s.begin_presence(tenant, signed.caller.member_id(), parse_json(&body)?)
            .await?,
    ))
}

/// `POST /app/codes`: as `POST /v1/codes`, for the signed-in session.
pub async fn codes_issue(
    State(s): State<AppState>,
    headers: HeaderMap,
    SmallBody(body): SmallBody,
) -> Result<(StatusCode, Json<IssuedCode>), ApiError> {
    let signed = signed_in(&s, &headers).await?;
    same_site(&headers, &signed.token, None)?;
    let tenant = signed.caller.require(Scope::Codes)?;
    let issued = s
        .issue_code(tenant, &signed.caller.actor(), parse_json(&body)?)
        .await?;
    Ok((StatusCode::CREATED, Json(issued)))
}
