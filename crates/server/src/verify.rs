//! Public verification: `POST /v1/verify` (a verdict for an uploaded file, which is never
//! stored) and `GET /v1/proofs/{proof_id}` (the minimal public record of a proof).

use std::cell::RefCell;

use axum::Json;
use axum::extract::{Path, Request, State};
use pixseal_media::Pipeline;
use pixseal_proof::ProofId;
use pixseal_provenance::pdq::{self, Pdq};
use pixseal_provenance::{Report, Verdict, detect_watermark};
use pixseal_store::{DbError, ProofRecord};
use serde_json::{Value, json};

use crate::artifacts::upload_bytes;
use crate::{ApiError, AppState};

thread_local! {
    static PIPELINE: RefCell<Option<Pipeline>> = const { RefCell::new(None) };
}

/// Proof records read per page by the near-match scan.
const PDQ_PAGE: i64 = 5000;

/// The public view of a proof record (SPEC §5): no hashes beyond what its receipt carries.
async fn public_record(state: &AppState, p: &ProofRecord) -> Result<Value, ApiError> {
    let mut v = json!({
        "proof_id": p.proof_id,
        "issued_at": p.issued_at,
        "issuer": state.provenance.issuer_name,
        "status": p.status,
    });
    if p.status == "purged" {
        v["purged_at"] = json!(p.purged_at);
        if let Some(rid) = &p.receipt_id {
            let signed = state.db.receipt(rid).await?;
            v["receipt"] = serde_json::from_str(&signed)
                .map_err(|_| ApiError::internal("stored receipt is not JSON"))?;
        }
    }
    Ok(v)
}

async fn record_of(state: &AppState, proof_id: &str) -> Result<Option<ProofRecord>, ApiError> {
    match state.db.proof(proof_id).await {
        Ok(p) => Ok(Some(p)),
        Err(DbError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `GET /v1/proofs/{proof_id}` (public).
pub async fn proof(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    // Normalised through the parser, so lower-case and Crockford aliases find the record.
    let id: ProofId = raw.parse().map_err(|_| ApiError::not_found())?;
    let p = record_of(&state, &id.to_string())
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(public_record(&state, &p).await?))
}

/// What the blocking part found.
struct Found {
    report: Report,
    watermark: Option<u64>,
    pdq: Option<Pdq>,
}

/// `POST /v1/verify` (public, rate limited per client IP). The body is held in memory for the
/// duration of the request only; nothing of it is stored or logged.
pub async fn verify(State(state): State<AppState>, req: Request) -> Result<Json<Value>, ApiError> {
    let body = upload_bytes(req, &state).await?;
    let _slot = state
        .decode_slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::internal("decode slots closed"))?;
    let (prov, limits) = (state.provenance.clone(), state.limits);
    let found = tokio::task::spawn_blocking(move || {
        let report = prov.verifier.verify(&body);
        let (mut watermark, mut hash) = (None, None);
        if report.verdict == Verdict::NotStamped {
            PIPELINE.with(|cell| {
                let mut slot = cell.borrow_mut();
                let p = slot.get_or_insert_with(|| Pipeline::new(limits));
                if let Ok(d) = p.decode(&body, None) {
                    // WATERMARK HOOK (verify): the proof id from the invisible watermark.
                    watermark = detect_watermark(&d.pixels);
                    if watermark.is_none() {
                        hash = pdq::hash_rgb(
                            &d.pixels.data,
                            d.pixels.width,
                            d.pixels.height,
                            d.pixels.channels,
                        )
                        .map(|r| r.hash);
                    }
                    p.recycle(d.pixels);
                }
            });
        }
        Found {
            report,
            watermark,
            pdq: hash,
        }
    })
    .await
    .map_err(|_| ApiError::internal("verify task failed"))?;
    let Found {
        mut report,
        watermark,
        pdq: hash,
    } = found;

    let mut record = None;
    let mut distance = None;
    match report.verdict {
        // Only a manifest signed under a trusted anchor vouches for its proof id; an
        // untrusted or altered manifest may claim any id, so no record is attached to it.
        Verdict::Verified => {
            if let Some(id) = report.proof_id() {
                record = record_of(&state, id).await?;
            }
        }
        Verdict::NotStamped => {
            if let Some(bits) = watermark {
                let id = ProofId(bits).to_string();
                report.verdict = Verdict::WatermarkOnly;
                report.message =
                    format!("no C2PA manifest, but the invisible watermark carries proof {id}");
                record = record_of(&state, &id).await?;
            } else if let Some(h) = hash
                && let Some((id, d)) = nearest(&state, &h).await?
            {
                report.verdict = Verdict::NearMatch;
                report.message = format!(
                    "no manifest or watermark, but the picture looks like stamped proof {id} (PDQ distance {d} of 256)"
                );
                record = record_of(&state, &id).await?;
                distance = Some(d);
            }
        }
        _ => {}
    }
    let proof_id = match (&record, report.verdict) {
        (Some(r), _) => Some(r.proof_id.clone()),
        (None, Verdict::Verified | Verdict::Untrusted | Verdict::Tampered) => {
            report.proof_id().map(str::to_string)
        }
        // A proof this service has no record of (another installation's): the id is still news.
        (None, Verdict::WatermarkOnly) => watermark.map(|b| ProofId(b).to_string()),
        _ => None,
    };
    let record = match &record {
        Some(r) => Some(public_record(&state, r).await?),
        None => None,
    };
    Ok(Json(json!({
        "verdict": report.verdict.as_str(),
        "message": report.message,
        "signer": report.signer,
        "time": report.time,
        "claim_generator": report.claim_generator,
        "assertions": report.assertions,
        "validation_codes": report.validation_codes,
        "proof_id": proof_id,
        "record": record,
        "pdq_distance": distance,
    })))
}

/// The closest stored PDQ within the threshold: (proof id, distance). A linear scan in pages:
/// fine for the record counts of one installation (≈1 µs per record); an index (multi-index
/// hashing) is the step up when that stops being true.
async fn nearest(state: &AppState, h: &Pdq) -> Result<Option<(String, u32)>, ApiError> {
    let threshold = state.provenance.pdq_threshold();
    let mut best: Option<(String, u32)> = None;
    let mut after = String::new();
    loop {
        let page = state.db.pdq_page(&after, PDQ_PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after = last.clone();
        for (id, hex) in &page {
            let Ok(other) = hex.parse::<Pdq>() else {
                continue;
            };
            let d = other.distance(h);
            if d <= threshold && best.as_ref().is_none_or(|(_, b)| d < *b) {
                best = Some((id.clone(), d));
            }
        }
        if (page.len() as i64) < PDQ_PAGE {
            break;
        }
    }
    Ok(best)
}
