//! `/v/{proof_id}`: the page every stamp's `verify_url` points at. It shows what the public
//! API shows of a proof (`GET /v1/proofs/{id}`) and nothing more: an unknown id is the same
//! not-found page whatever the reason.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use pixseal_service::verify::ProofView;
use pixseal_store::ProofStatus;

use super::{error_page, page, reason};
use crate::{ApiError, AppState};

pub async fn show(State(s): State<AppState>, Path(raw): Path<String>) -> Response {
    match s.proof(&raw).await {
        Ok(p) => page(StatusCode::OK, &format!("Proof {}", p.proof_id), render(&p)),
        Err(e) => error_page(&ApiError::from(e)),
    }
}

fn render(p: &ProofView) -> Markup {
    html! {
        section.card {
            p.eyebrow { "Proof" }
            h1 { code { (p.proof_id) } }
            (status(p))
            dl {
                dt { "Issued" } dd { time datetime=(p.issued_at) { (p.issued_at) } }
                dt { "Issuer" } dd { (p.issuer) }
                @if let Some(at) = &p.purged_at {
                    dt { "Deleted" } dd { time datetime=(at) { (at) } }
                }
            }
        }
        section.card {
            h2 { "What this proof says" }
            p {
                "A picture was stamped by " (p.issuer) " at " (p.issued_at) ". The stamped copy carries "
                "this proof id twice: in a signed C2PA manifest, and in an invisible watermark that "
                "survives re-encoding and the loss of the manifest."
            }
            h2 { "What it does not say" }
            p {
                "Who sent the picture, where or when it was taken, or who is in it. pixseal keeps no "
                "original, no metadata and no personal data; only the stamped copy is kept, sealed, "
                "until its retention ends, and then deleted with a signed receipt."
            }
            @if p.manifest_url.is_some() {
                p { a href={ "/v1/proofs/" (p.proof_id) "/manifest" } download { "Download the signed credential" } " (C2PA manifest, "
                    code { "application/c2pa" } "), kept after the file is deleted." }
            }
        }
        @if let Some(r) = &p.receipt {
            section.card {
                h2 { "Deletion receipt" }
                dl {
                    @match &r.receipt {
                        pixseal_proof::Receipt::V2(v) => {
                            dt { "Receipt" } dd { a href={ "/r/" (v.receipt_id) } { code { (v.receipt_id) } } }
                            dt { "Deleted at" } dd { (v.deleted_at) }
                            dt { "Why" } dd { (reason(&v.reason)) }
                        }
                        pixseal_proof::Receipt::V1(v) => {
                            dt { "Receipt" } dd { code { (v.receipt_id) } }
                        }
                    }
                    dt { "Signed with" } dd { (r.alg) ", key " code { (r.key_id) } }
                }
                p { "Check it offline with " code { "pixseal receipt verify" } " and the service's key from "
                    a href="/v1/keys/receipts" { "/v1/keys/receipts" } "." }
            }
        }
        section.card {
            h2 { "Check a file against this proof" }
            form method="post" action={ "/verify?proof=" (p.proof_id) } enctype="multipart/form-data" {
                label for="file" { "A photo you were given" }
                input #file type="file" name="file" required;
                button type="submit" { "Check" }
            }
            p.small { "The file is checked and forgotten: it is not stored." }
        }
    }
}

fn status(p: &ProofView) -> Markup {
    match p.status {
        ProofStatus::Active => html! {
            p.badge.good { "Active" }
            p { "The stamped copy is kept, encrypted, until its retention ends." }
        },
        ProofStatus::Purged => html! {
            p.badge.neutral { "Deleted" }
            p { "The stamped copy was deleted. The proof record and its signed credential remain." }
        },
        ProofStatus::NotStored => html! {
            p.badge.neutral { "Not stored" }
            p { "The stamped copy was handed back when it was made; no copy was kept. The proof record and its signed credential remain." }
        },
    }
}
