//! `/stamp`: pictures dropped here are stamped by `POST /v1/stamp` and handed straight back;
//! the page says what is kept (each proof record, nothing else). Past `challenge_over`
//! pictures its script solves the proof-of-work challenge in a Web Worker first.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use super::page;
use crate::AppState;

pub async fn form(State(s): State<AppState>) -> Response {
    let open = s.stamp.anonymous;
    page(
        StatusCode::OK,
        "Stamp photos",
        html! {
            section.card {
                h1 { "Stamp photos" }
                p.lead { "Each photo comes back cleaned of its metadata and stamped: a visible mark, an "
                    "invisible watermark and a signed credential that anyone can check later." }
                h2 { "What is kept" }
                p { "Only each photo's proof record: its proof id, fingerprints (hashes) of the photo "
                    "you sent and of the stamped copy, a perceptual hash, the time, and the signed "
                    "credential. It holds nothing personal and is kept for as long as this service "
                    "runs, so the stamp can always be checked." }
                p { "Your photo and the stamped copy are not kept: they are held in memory while "
                    "they are stamped and handed back to you. Nothing about you is kept either." }
            }
            @if open {
                section.card {
                    form #stamp-form.stack method="post" action="/v1/stamp" enctype="multipart/form-data"
                        data-challenge-over=(s.stamp_max_files(false)) data-max-files=(s.stamp_max_files(true)) {
                        div #drop.drop {
                            p { "Drop photos here, or choose them." }
                            label for="file" { "Photos" }
                            input #file type="file" name="file" multiple accept="image/*" required;
                        }
                        div.row {
                            div {
                                label for="format" { "Format" }
                                select #format name="format" {
                                    option value="" { "JPEG (PNG for transparency)" }
                                    option value="webp" { "WebP" }
                                    option value="png" { "PNG" }
                                }
                            }
                            div {
                                label.check {
                                    input #visible type="checkbox" checked;
                                    " Visible mark"
                                }
                            }
                        }
                        button type="submit" { "Stamp" }
                        progress #stamp-progress max="100" value="0" hidden {}
                        p #stamp-status role="status" {}
                    }
                    p.small { "Up to " (s.stamp_max_files(true)) " photos at once; past "
                        (s.stamp_max_files(false)) " your browser first does a little work (a "
                        "proof-of-work challenge) so that nobody can stamp in bulk for free." }
                }
                ul #stamped.gallery aria-live="polite" {}
                script type="module" src="/assets/stamp.js" {}
            } @else {
                section.card {
                    h2 { "Not open on this installation" }
                    p { "This installation stamps for its account holders only: with an API key "
                        "that has the " code { "stamp" } " scope (" code { "POST /v1/stamp" } "), or from "
                        "the command line with " code { "pixseal stamp --server" } "." }
                }
            }
        },
    )
}
