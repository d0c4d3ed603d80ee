//! `/app`: the tenant's dashboard. An API key (scope `artifacts:read`) is exchanged for a
//! server-side session held in an HttpOnly, SameSite=Strict cookie (`__Host-` and `Secure`
//! under TLS); every state change carries the session's CSRF token. The gallery is locked by
//! default: metadata and a padlock, no pixels, until "Decrypt" fetches one picture into memory
//! (`app.js`). Pages are rendered here; the script only fetches, shows and removes.

use axum::Form;
use axum::Json;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, PreEscaped, html};
use pixseal_service::artifacts::{ArtifactView, UploadQuery};
use pixseal_service::dashboard::{ArtifactPage, csrf_matches, csrf_token};
use pixseal_service::licenses::Seats;
use pixseal_service::{Caller, Scope, ServiceError};
use serde::Deserialize;

use super::{error_page, page};
use crate::client::ClientAddr;
use crate::{ApiError, AppState};

/// Artifacts on one page of the gallery.
const PAGE: u32 = 24;

/// The session cookie's name: the `__Host-` prefix (Secure, this host only, path /) under TLS.
fn cookie_name(s: &AppState) -> &'static str {
    if s.config.tls() {
        "__Host-pixseal_session"
    } else {
        "pixseal_session"
    }
}

/// The session token the request's cookie carries, if any.
fn session_token(s: &AppState, headers: &HeaderMap) -> Option<String> {
    let name = cookie_name(s);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

pub(super) fn set_cookie(s: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if s.config.tls() { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Strict{secure}",
        cookie_name(s)
    ))
    .expect("a cookie of token characters")
}

/// The signed-in caller and its session token.
pub(super) struct Signed {
    pub caller: Caller,
    pub token: String,
}

pub(super) async fn signed_in(s: &AppState, headers: &HeaderMap) -> Result<Signed, ApiError> {
    let token = session_token(s, headers).ok_or_else(|| ApiError::unauthorized("not signed in"))?;
    let caller = s.session_caller(&token).await?;
    Ok(Signed { caller, token })
}

/// A state change must come from this site's pages: its session's CSRF token (header
/// `X-CSRF-Token` or the form's `csrf` field), and, when the browser says where it comes from,
/// from this origin.
pub(super) fn same_site(
    headers: &HeaderMap,
    token: &str,
    given: Option<&str>,
) -> Result<(), ApiError> {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let given = given.or_else(|| headers.get("x-csrf-token").and_then(|v| v.to_str().ok()));
    if site.is_some_and(|v| v != "same-origin") || !given.is_some_and(|g| csrf_matches(token, g)) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "this request did not come from the dashboard's own page; reload it and try again",
        ));
    }
    Ok(())
}

pub(super) fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

#[derive(Deserialize, Default)]
pub struct GalleryQuery {
    cursor: Option<String>,
}

/// `/app`: the gallery when signed in, else the sign-in form.
pub async fn home(
    State(s): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<GalleryQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return error_page(&ApiError::bad_request(
            "invalid_request",
            "this page's address is malformed",
        ));
    };
    let signed = match signed_in(&s, &headers).await {
        Ok(v) => v,
        Err(_) => return sign_in_page(StatusCode::OK, None),
    };
    if let Some(member) = signed.caller.member_id() {
        return member_home(&s, &signed, member).await;
    }
    let tenant = signed.caller.tenant().id.clone();
    let shown = async {
        let p = s
            .artifacts_page(&signed.caller, q.cursor.as_deref(), PAGE)
            .await?;
        let seats = s.seats_of(&tenant).await?;
        Ok::<_, ServiceError>((p, seats))
    };
    match shown.await {
        Ok((p, seats)) => page(
            StatusCode::OK,
            "Your photos",
            gallery(&s, &signed, &p, &seats),
        ),
        Err(e) => error_page(&ApiError::from(e)),
    }
}

#[derive(Deserialize)]
pub struct DeactivateForm {
    csrf: String,
    device: String,
}

/// `POST /app/licenses/{id}/deactivate`: turn off one device of the account's licence (a
/// session whose key has the admin scope); back to the dashboard's seats.
pub async fn deactivate(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<DeactivateForm>, FormRejection>,
) -> Response {
    let done = async {
        let signed = signed_in(&s, &headers).await?;
        let Ok(Form(f)) = form else {
            return Err(ApiError::bad_request("invalid_request", "no device named"));
        };
        same_site(&headers, &signed.token, Some(&f.csrf))?;
        let tenant = signed.caller.require(Scope::Admin)?;
        s.deactivate_device(&signed.caller.actor(), &id, &f.device, Some(&tenant.id))
            .await?;
        Ok(())
    };
    match done.await {
        Ok(()) => see_other("/app#licenses"),
        Err(e) => error_page(&e),
    }
}

#[derive(Deserialize)]
pub struct SignInForm {
    key: String,
}

pub async fn sign_in(
    State(s): State<AppState>,
    Extension(client): Extension<ClientAddr>,
    headers: HeaderMap,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Response {
    // Another site must not sign a visitor in to an account of its choosing (whose gallery
    // would then receive the visitor's uploads): a browser says where a form comes from.
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if site.is_some_and(|v| v != "same-origin" && v != "none") {
        return sign_in_page(
            StatusCode::FORBIDDEN,
            Some("Sign in from this site's own page."),
        );
    }
    let Ok(Form(f)) = form else {
        return sign_in_page(StatusCode::BAD_REQUEST, Some("Enter an API key."));
    };
    if let Err(wait) = s.limiter.may_authenticate(&client).await {
        let words = format!(
            "Too many failed sign-ins from your address. Try again in {} s.",
            wait.as_secs().max(1)
        );
        return sign_in_page(StatusCode::TOO_MANY_REQUESTS, Some(&words));
    }
    match s.sign_in(f.key.trim()).await {
        Ok((_, session)) => {
            let cookie = set_cookie(&s, &session.token, session.max_age_secs);
            let mut r = see_other("/app");
            r.headers_mut().insert(header::SET_COOKIE, cookie);
            r
        }
        Err(ServiceError::Unauthorized(_)) => {
            s.limiter.failed_authentication(&client).await;
            sign_in_page(
                StatusCode::UNAUTHORIZED,
                Some("That key is unknown or was revoked."),
            )
        }
        Err(ServiceError::Forbidden { .. }) => sign_in_page(
            StatusCode::FORBIDDEN,
            Some("That key cannot read this account's photos (it lacks the artifacts:read scope)."),
        ),
        Err(e) => error_page(&ApiError::from(e)),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn sign_out(
    State(s): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let signed = match signed_in(&s, &headers).await {
        Ok(v) => v,
        Err(_) => return see_other("/app"),
    };
    let given = form.ok().map(|Form(f)| f.csrf);
    if let Err(e) = same_site(&headers, &signed.token, given.as_deref()) {
        return error_page(&e);
    }
    if let Err(e) = s.sign_out(&signed.caller, &signed.token).await {
        return error_page(&ApiError::from(e));
    }
    let mut r = see_other("/app");
    r.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&s, "", 0));
    r
}

/// `GET /app/artifacts/{id}/content`: one stored file, for the page's memory only (in byte
/// ranges when a player asks).
pub async fn content(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let signed = signed_in(&s, &headers).await?;
    let c = s.content(&signed.caller, &id).await?;
    Ok(crate::serve::serve(c, &headers).await)
}

/// `POST /app/artifacts`: an upload from the page (options as for `POST /v1/artifacts`).
pub async fn upload(
    State(s): State<AppState>,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    query: Result<Query<UploadQuery>, QueryRejection>,
    req: Request,
) -> Result<Response, ApiError> {
    let signed = signed_in(&s, req.headers()).await?;
    same_site(req.headers(), &signed.token, None)?;
    Ok(
        crate::artifacts::store(&s, &signed.caller, client, query, req)
            .await?
            .into_response(),
    )
}

/// `POST /app/artifacts/{id}/delete`: the signed receipt, in the tenant's view.
pub async fn delete(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let signed = signed_in(&s, &headers).await?;
    same_site(&headers, &signed.token, None)?;
    Ok(Json(s.delete(&signed.caller, &id).await?).into_response())
}

fn sign_in_page(status: StatusCode, problem: Option<&str>) -> Response {
    page(
        status,
        "Sign in",
        html! {
            section.card {
                h1 { "Your photos" }
                p { "Sign in with an API key of your account that may read its photos (scope "
                    code { "artifacts:read" } "). The key is exchanged for a session that ends when "
                    "you sign out, after a few hours, or when the key is revoked; your browser keeps "
                    "only the session, never the key." }
                @if let Some(p) = problem { p.badge.bad role="alert" { (p) } }
                div #passkey-sign-in-box.stack hidden {
                    p { "Members of an account sign in with their passkey (face, fingerprint or device PIN):" }
                    button #passkey-sign-in type="button" { "Sign in with a passkey" }
                    p #passkey-status role="status" aria-live="polite" {}
                    p.small { "No passkey yet? " a href="/enroll" { "Register one" } " with the enrollment token your administrator gave you." }
                    p.small { "Or with an API key:" }
                }
                form.stack method="post" action="/app/sign-in" {
                    label for="key" { "API key" }
                    input #key type="password" name="key" required autocomplete="off" spellcheck="false";
                    button type="submit" { "Sign in" }
                }
            }
            script type="module" src="/assets/passkey.js" {}
        },
    )
}

fn human_bytes(n: i64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MB", n as f64 / f64::from(1u32 << 20)),
        n if n >= 1 << 10 => format!("{:.0} KB", n as f64 / 1024.0),
        n => format!("{n} bytes"),
    }
}

/// The padlock shown in place of a picture.
const PADLOCK: &str = r#"<svg class="padlock" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M7 10V7a5 5 0 0 1 10 0v3h1a1 1 0 0 1 1 1v9a1 1 0 0 1-1 1H6a1 1 0 0 1-1-1v-9a1 1 0 0 1 1-1h1zm2 0h6V7a3 3 0 0 0-6 0v3z"/></svg>"#;

fn item(a: &ArtifactView) -> Markup {
    html! {
        li.item data-id=(a.id) data-proof=(a.proof_id) data-type=(a.content_type) {
            div.locked {
                (PreEscaped(PADLOCK))
                span { "Locked" }
            }
            dl {
                dt { "Created" } dd { time datetime=(a.created_at) { (a.created_at) } }
                dt { "Expires" } dd { time datetime=(a.expires_at) { (a.expires_at) } }
                dt { "Retention" } dd { (a.retention_days) " days" }
                dt { "Region" } dd { (a.region) }
                dt { "Proof" } dd { a href={ "/v/" (a.proof_id) } { code { (a.proof_id) } } }
                dt { "Size" } dd {
                    @if a.content_type.starts_with("video/") { "Video, " }
                    (a.width) "×" (a.height) ", " (human_bytes(a.bytes))
                }
            }
            div.actions {
                button.decrypt type="button" data-id=(a.id) { "Decrypt" }
                button.delete.secondary type="button" data-id=(a.id) { "Delete" }
            }
        }
    }
}

/// The account's licences for the offline tool and the devices holding their seats: counts
/// only; a deactivate button where the session may use it.
fn seats(list: &[Seats], csrf: &str, admin: bool) -> Markup {
    html! {
        section.card #licenses {
            h2 { "Licences and seats" }
            p.small { "Devices running the offline tool under your licences. Each is known only by a hash of its machine id; it reports how many pictures it processed and their total size, nothing else." }
            @for l in list {
                h3 { code { (l.license.id) } " · " (l.license.active_devices) " of " (l.license.seats) " seats · "
                    (format!("{:?}", l.license.state).to_lowercase()) " · until " time datetime=(l.license.expires_at) { (l.license.expires_at) } }
                @if l.devices.is_empty() {
                    p.small { "No device activated yet." }
                } @else {
                    table.devices {
                        thead { tr { th { "Device" } th { "State" } th { "Last seen" } th { "Images" } th { "Size" } th { "Version" } @if admin { th {} } } }
                        tbody {
                            @for d in &l.devices {
                                tr {
                                    td { code title=(d.device) { (&d.device[..12]) "…" } }
                                    td { (d.state) }
                                    td { time datetime=(d.last_seen_at) { (d.last_seen_at) } }
                                    td { (d.images) }
                                    td { (human_bytes(d.bytes)) }
                                    td { (d.version) }
                                    @if admin {
                                        td {
                                            @if d.state == pixseal_store::DeviceState::Active {
                                                form method="post" action={ "/app/licenses/" (l.license.id) "/deactivate" } {
                                                    input type="hidden" name="csrf" value=(csrf);
                                                    input type="hidden" name="device" value=(d.device);
                                                    button.danger type="submit" { "Deactivate" }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Whose session this is, the way to a new code, and sign-out.
fn account(signed: &Signed, member: Option<&str>, csrf: &str) -> Markup {
    let tenant = signed.caller.tenant();
    html! {
        section.card.account {
            div {
                p.eyebrow { "Signed in" }
                h1 { (tenant.name) }
                @if signed.caller.has_scope(Scope::ArtifactsRead) {
                    p.small { "Region " (tenant.region) ". Photos are stored sealed and shown only when you decrypt one." }
                }
                @if let Some(name) = member { p.small #signed-in-as { "Signed in with the passkey of " strong { (name) } "." } }
                @if signed.caller.has_scope(Scope::Codes) { p { a #new-code href="/app/codes" { "New code" } } }
            }
            form method="post" action="/app/sign-out" {
                input type="hidden" name="csrf" value=(csrf);
                button.secondary type="submit" { "Sign out" }
            }
        }
    }
}

/// A member's page: their passkey signs codes; the account's photos are for its keys.
async fn member_home(s: &AppState, signed: &Signed, member_id: &str) -> Response {
    let name = match s.member_name(member_id).await {
        Ok(n) => n,
        Err(e) => return error_page(&ApiError::from(e)),
    };
    let csrf = csrf_token(&signed.token);
    page(
        StatusCode::OK,
        "Your account",
        html! {
            (account(signed, Some(&name), &csrf))
            section.card {
                h2 { "Codes" }
                p { "Create a code for a message you send, signed by your passkey: "
                    a href="/app/codes" { "New code" } "." }
                p.small { "The account's photos are shown to a session opened with one of its API keys." }
            }
        },
    )
}

fn gallery(s: &AppState, signed: &Signed, p: &ArtifactPage, licenses: &[Seats]) -> Markup {
    let tenant = signed.caller.tenant();
    let csrf = csrf_token(&signed.token);
    let allowed = &s.config.retention_days_allowed;
    html! {
        div #session hidden data-csrf=(csrf) {}
        (account(signed, None, &csrf))
        section.card #upload {
            h2 { "Stamp and store photos and videos" }
            form #upload-form.stack {
                label for="upload-file" { "Photos and videos" }
                div #drop.drop {
                    p { "Drop photos or MP4/MOV videos here, or choose them:" }
                    input #upload-file type="file" name="file" accept="image/*,video/mp4,video/quicktime" multiple required;
                }
                div.row {
                    div {
                        label for="retention" { "Keep for" }
                        select #retention name="retention_days" {
                            @for d in allowed {
                                option value=(d) selected[*d == tenant.retention_days] { (d) " days" }
                            }
                        }
                    }
                    div.grow {
                        label for="label" { "Visible label (optional)" }
                        input #label type="text" name="label" maxlength="200";
                    }
                }
                label.check { input #visible type="checkbox" name="visible" checked; " Visible mark on the picture (videos get none)" }
                button type="submit" { "Upload" }
                progress #upload-progress max="100" value="0" hidden {}
                p #upload-status role="status" aria-live="polite" {}
            }
            noscript { p.small { "Uploading from this page needs JavaScript; " code { "POST /v1/artifacts" } " does it without." } }
        }
        section.card {
            h2 { "Your photos " span.small { "(" (p.total) ")" } }
            @if p.artifacts.is_empty() {
                p #empty { "No photos stored." }
            }
            ul #gallery.gallery {
                @for a in &p.artifacts { (item(a)) }
            }
            @if let Some(next) = &p.next {
                p { a #more href={ "/app?cursor=" (next) } { "Older photos" } }
            }
        }
        @if !licenses.is_empty() {
            (seats(licenses, &csrf, signed.caller.has_scope(Scope::Admin)))
        }
        dialog #viewer aria-labelledby="viewer-title" {
            h2 #viewer-title { "Decrypted" }
            p.small { "Shown from memory only: nothing is cached, and closing this removes it." }
            div #viewer-frame {}
            button #viewer-close type="button" { "Close" }
        }
        dialog #confirm aria-labelledby="confirm-title" {
            h2 #confirm-title { "Delete this photo?" }
            p { "The stored copy and its key are destroyed; you get a signed deletion receipt. This cannot be undone." }
            div.actions {
                button #confirm-delete.danger type="button" { "Delete" }
                button #confirm-cancel.secondary type="button" { "Cancel" }
            }
        }
        dialog #receipt aria-labelledby="receipt-title" {
            h2 #receipt-title { "Deleted" }
            p #receipt-words {}
            p { a #receipt-link href="/r/" { "Open the receipt" } " · " a #receipt-download href="#" download="receipt.json" { "Download it (with your opening)" } }
            button #receipt-close type="button" { "Close" }
        }
        script type="module" src="/assets/app.js" {}
    }
}
