//! `/r/{receipt_id}`: a deletion receipt's public view (what `GET /v1/receipts/{id}` gives
//! without a key), with its signature checked in the reader's browser by `receipt.js`
//! (WebCrypto Ed25519 against the published key) and the command that checks it offline.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use pixseal_proof::{Receipt, SignedReceipt};
use pixseal_service::erase::ReceiptKey;

use super::{error_page, page, reason};
use crate::{ApiError, AppState};

pub async fn show(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match s.receipt(None, &id).await {
        Ok(r) => page(
            StatusCode::OK,
            &format!("Deletion receipt {}", r.receipt.receipt_id()),
            render(&r, &s.receipt_key()),
        ),
        Err(e) => error_page(&ApiError::from(e)),
    }
}

fn render(r: &SignedReceipt, key: &ReceiptKey) -> Markup {
    let id = r.receipt.receipt_id();
    let json = serde_json::to_string_pretty(r).expect("a receipt serialises");
    html! {
        section.card {
            p.eyebrow { "Deletion receipt" }
            h1 { code { (id) } }
            p #signature-check .badge.neutral role="status" aria-live="polite" {
                "Signature not checked here: this page checks it with JavaScript. Use the command below."
            }
            dl {
                dt { "Deleted at" } dd { time datetime=(r.receipt.deleted_at()) { (r.receipt.deleted_at()) } }
                dt { "Why" } dd { (reason(r.receipt.reason())) }
                dt { "Proof" } dd { a href={ "/v/" (r.receipt.proof_id()) } { code { (r.receipt.proof_id()) } } }
                @match &r.receipt {
                    Receipt::V2(v) => {
                        dt { "Stored since" } dd { (v.created_at) }
                        dt { "Region" } dd { (v.region) }
                        dt { "Stamped file" } dd { "SHA-256 " code { (v.sha256) } }
                        dt { "Subject" } dd { code { (v.subject) } }
                    }
                    Receipt::V1(v) => {
                        dt { "Stored since" } dd { (v.created_at) }
                        dt { "Region" } dd { (v.region) }
                        dt { "Stamped file" } dd { "SHA-256 " code { (v.sha256) } }
                    }
                }
                dt { "Signed with" } dd { (r.alg) ", key " code { (r.key_id) } }
            }
            p.small {
                "The receipt names the deleted file only through its subject, a salted commitment "
                "that its owner can open; it holds nothing of the picture."
            }
        }
        section.card {
            h2 { "Check it yourself" }
            p { a href={ "/v1/receipts/" (id) } download={ (id) ".json" } { "Download the receipt" }
                ", save the service's public key below as " code { "receipts.pem" } ", and check both offline:" }
            pre { code { "pixseal receipt verify " (id) ".json --pubkey receipts.pem" } }
            details {
                summary { "The service's public key (key " (key.key_id) ")" }
                pre #receipt-key { (key.public_key_pem) }
            }
            details {
                summary { "The signed receipt (JSON)" }
                pre #receipt-json { (json) }
            }
        }
        section #paste .card hidden {
            h2 { "Check another receipt" }
            p { "Paste a receipt this service issued (JSON, as downloaded). It is checked here, in your browser, and sent nowhere." }
            form #paste-form {
                label for="paste-text" { "Receipt" }
                textarea #paste-text rows="8" spellcheck="false" required {}
                button type="submit" { "Check" }
            }
            p #paste-result role="status" aria-live="polite" {}
        }
        script type="module" src="/assets/receipt.js" {}
    }
}
