//! `/verify`: a form to check one file, and the verdict (SPEC §6) in plain words, with what the
//! API's `POST /v1/verify` gives: signer, time, time-stamp, validation codes, the proof record.
//! The file is examined in memory and forgotten, as on the API route.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use pixseal_provenance::Verdict;
use pixseal_service::verify::{ProofMatch, Verified};
use serde::Deserialize;

use super::{error_page, page};
use crate::body::Upload;
use crate::{ApiError, AppState};

pub async fn form() -> Response {
    page(
        StatusCode::OK,
        "Check a file",
        html! {
            section.card {
                h1 { "Check a photo" }
                p { "Find out whether a photo was stamped by pixseal, by whom and when, and whether it "
                    "changed since. The file is checked in memory and not stored." }
                form #verify-form method="post" action="/verify" enctype="multipart/form-data" {
                    label for="file" { "Photos" }
                    input #file type="file" name="file" required;
                    button type="submit" { "Check" }
                }
                p #several .small hidden { "You can choose several files at once; each is checked on its own." }
            }
            div #results aria-live="polite" {}
            (verdict_guide())
            script type="module" src="/assets/verify.js" {}
        },
    )
}

#[derive(Deserialize)]
pub struct Expect {
    /// The proof the file is checked against (from a proof page).
    proof: Option<String>,
}

pub async fn check(
    State(s): State<AppState>,
    Query(expect): Query<Expect>,
    upload: Result<Upload, ApiError>,
) -> Response {
    let body = match upload {
        Ok(Upload(body)) => body,
        Err(e) => return error_page(&e),
    };
    match s.verify(body).await {
        Ok(v) => page(
            StatusCode::OK,
            headline(&v),
            html! {
                (render(&v, expect.proof.as_deref()))
                section.card {
                    h2 { "Check another file" }
                    (upload_form("/verify"))
                }
            },
        ),
        Err(e) => error_page(&ApiError::from(e)),
    }
}

fn upload_form(action: &str) -> Markup {
    html! {
        form method="post" action=(action) enctype="multipart/form-data" {
            label for="file" { "Photo" }
            input #file type="file" name="file" required;
            button type="submit" { "Check" }
        }
    }
}

/// A `tampered` verdict that comes from the signer's certificate (expired without a time-stamp,
/// revoked) rather than from a change to the file.
fn signature_dead(v: &Verified) -> bool {
    v.verification.report.verdict == Verdict::Tampered
        && v.verification.report.validation_codes.iter().any(|c| {
            c.kind == "failure"
                && pixseal_provenance::verify::CREDENTIAL_INVALID.contains(&c.code.as_str())
        })
}

fn headline(v: &Verified) -> &'static str {
    match v.verification.report.verdict {
        Verdict::Verified => "Verified",
        Verdict::Untrusted => "Valid, signer not trusted",
        Verdict::Tampered if signature_dead(v) => "Signature no longer valid",
        Verdict::Tampered => "Changed after signing",
        Verdict::WatermarkOnly => "Watermark found",
        Verdict::NearMatch => "Looks like a stamped photo",
        Verdict::NotStamped => "Not stamped",
    }
}

/// What the verdict means, in a sentence a person can act on.
fn meaning(v: &Verified) -> String {
    let r = &v.verification.report;
    let proof = v.verification.proof_id.as_deref().unwrap_or("unknown");
    match r.verdict {
        Verdict::Verified => {
            "Its signed manifest is valid, it is signed by a certificate this service trusts, and \
             the file has not changed since it was signed."
                .into()
        }
        Verdict::Untrusted => {
            "Its signed manifest is valid and the file has not changed since, but it was signed by \
             someone you haven't chosen to trust."
                .into()
        }
        Verdict::Tampered if signature_dead(v) => {
            "It carries a signed manifest, but the certificate it was signed with has expired or \
             was revoked, and no trusted time-stamp shows it was signed before: the signature can \
             no longer vouch for the file. Do not rely on it."
                .into()
        }
        Verdict::Tampered => {
            "It carries a signed manifest, but the file or the manifest was changed after signing: \
             do not rely on it."
                .into()
        }
        Verdict::WatermarkOnly => match v.proof_match {
            Some(ProofMatch::Matches) => format!(
                "It has no signed manifest (often removed by social networks), but its invisible \
                 watermark names proof {proof}, and it looks like the picture that proof was issued for."
            ),
            Some(ProofMatch::Mismatch) => format!(
                "It carries the invisible watermark of proof {proof}, but it does not look like the \
                 picture that proof was issued for: the watermark may have been copied onto it."
            ),
            Some(ProofMatch::Unchecked) => format!(
                "Its invisible watermark names proof {proof}, but the picture is too small to check \
                 that it is the picture that proof was issued for."
            ),
            None => format!(
                "Its invisible watermark names proof {proof}, which this service does not know."
            ),
        },
        Verdict::NearMatch => format!(
            "It has no manifest and no watermark, but it looks like the picture stamped as proof \
             {proof} (a resized or re-encoded copy)."
        ),
        Verdict::NotStamped => {
            "It has no signed manifest and no watermark, and it does not look like any picture this \
             service stamped."
                .into()
        }
    }
}

fn tone(v: Verdict) -> &'static str {
    match v {
        Verdict::Verified => "good",
        Verdict::Untrusted | Verdict::WatermarkOnly | Verdict::NearMatch => "warn",
        Verdict::Tampered => "bad",
        Verdict::NotStamped => "neutral",
    }
}

fn render(v: &Verified, expected: Option<&str>) -> Markup {
    let r = &v.verification.report;
    let proof_id = v.verification.proof_id.as_deref();
    html! {
        section.card {
            p class={ "badge " (tone(r.verdict)) } { (r.verdict.as_str()) }
            h1 { (headline(v)) }
            p.lead { (meaning(v)) }
            @if let Some(want) = expected {
                @if proof_id == Some(want) {
                    p.badge.good { "This file belongs to proof " code { (want) } }
                } @else {
                    p.badge.bad { "This file does not belong to proof " code { (want) } }
                }
            }
            dl {
                @if let Some(s) = &r.signer {
                    dt { "Signed by" }
                    dd { (s.common_name.as_deref().or(s.issuer.as_deref()).unwrap_or("unknown signer"))
                         @if let (Some(o), Some(_)) = (&s.issuer, &s.common_name) { " (" (o) ")" } }
                }
                @if let Some(t) = &r.time { dt { "Signed at" } dd { (t) } }
                @if let Some(ts) = &r.timestamp {
                    dt { "Time-stamp" }
                    dd { @if ts.trusted { "from a trusted time-stamping authority" }
                         @else if ts.time.is_some() { "from an authority you don't trust" }
                         @else { "present, but it does not check out" } }
                }
                @if let Some(g) = &r.claim_generator { dt { "Made with" } dd { (g) } }
                @if let Some(p) = proof_id {
                    dt { "Proof" } dd { a href={ "/v/" (p) } { code { (p) } } }
                }
                @if let Some(d) = v.pdq_distance { dt { "Likeness" } dd { (d) " of 256 bits differ" } }
            }
            @if let Some(c) = &v.credential { p.small { (c.statement) } }
            p.small { "This file was not stored." }
        }
        @if let Some(rec) = &v.record {
            section.card {
                h2 { "The proof record" }
                dl {
                    dt { "Issued" } dd { (rec.issued_at) }
                    dt { "Issuer" } dd { (rec.issuer) }
                    dt { "Status" } dd { (rec.status.as_str()) }
                }
                p { a href={ "/v/" (rec.proof_id) } { "Open the proof page" } }
            }
        }
        @if !r.validation_codes.is_empty() {
            section.card {
                h2 { "Validation codes" }
                ul.codes {
                    @for c in &r.validation_codes {
                        li class=(c.kind) { code { (c.code) } " " span.small { (c.kind) } }
                    }
                }
            }
        }
    }
}

fn verdict_guide() -> Markup {
    html! {
        section.card {
            h2 { "What the answers mean" }
            dl {
                dt { "Verified" } dd { "Signed by a trusted certificate and unchanged since." }
                dt { "Valid, signer not trusted" } dd { "Unchanged since it was signed, but by someone you haven't chosen to trust." }
                dt { "Changed after signing" } dd { "The file or its manifest was altered." }
                dt { "Watermark found" } dd { "No manifest, but the invisible watermark names a proof." }
                dt { "Looks like a stamped photo" } dd { "No manifest or watermark, but it resembles a stamped picture." }
                dt { "Not stamped" } dd { "Nothing links it to a pixseal proof." }
            }
        }
    }
}
