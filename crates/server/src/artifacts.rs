//! `/v1/artifacts`: upload (raw or multipart) → ingest in memory → stamp → seal → store;
//! metadata; content decrypted on demand; delete (blob and wrapped data key).

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pixseal_media::{Options, OutputFormat, Pipeline};
use pixseal_proof::ProofId;
use pixseal_provenance::ProofAssertion;
use pixseal_provenance::stamp::{MarkOptions, StampError, stamp};
use pixseal_seal::{KeyPlacement, ObjectRef, Sealer, WrappedKey};
use pixseal_store::{Artifact, BlobKey, ProofRecord, meta};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::auth::Caller;
use crate::{ApiError, AppState};

thread_local! {
    static PIPELINE: RefCell<Option<Pipeline>> = const { RefCell::new(None) };
}

const DAY_MS: i64 = 86_400_000;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// The upload's bytes: a raw body, or the first file part of a multipart form.
pub(crate) async fn upload_bytes(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let too_large = |e: &dyn std::fmt::Display| {
        let limit = state.config.max_body_bytes;
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "file_too_large",
            format!("request body over the max_body_bytes limit of {limit} ({e})"),
        )
    };
    if is_multipart {
        let mut mp = Multipart::from_request(req, state).await.map_err(|e| {
            ApiError::bad_request("corrupt", format!("multipart body: {}", e.body_text()))
        })?;
        loop {
            match mp.next_field().await {
                Ok(Some(field)) if field.file_name().is_some() || field.name() == Some("file") => {
                    return field.bytes().await.map_err(|e| {
                        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                            too_large(&e.body_text())
                        } else {
                            ApiError::bad_request("corrupt", e.body_text())
                        }
                    });
                }
                Ok(Some(_)) => continue,
                Ok(None) => {
                    return Err(ApiError::bad_request(
                        "unsupported_format",
                        "multipart form has no file part",
                    ));
                }
                Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    return Err(too_large(&e.body_text()));
                }
                Err(e) => {
                    return Err(ApiError::bad_request(
                        "corrupt",
                        format!("multipart body: {}", e.body_text()),
                    ));
                }
            }
        }
    }
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(&e.body_text())
        } else {
            ApiError::bad_request("corrupt", e.body_text())
        }
    })
}

fn public(a: &Artifact, verify_base: &str) -> Value {
    json!({
        "id": a.id, "proof_id": a.proof_id, "sha256": a.sha256, "original_sha256": a.original_sha256,
        "region": a.region, "content_type": a.content_type, "width": a.width, "height": a.height,
        "bytes": a.bytes, "created_at": a.created_at, "expires_at": a.expires_at,
        "verify_url": format!("{}/v/{}", verify_base.trim_end_matches('/'), a.proof_id),
    })
}

/// `POST /v1/artifacts`.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Result<Response, ApiError> {
    caller.require("artifacts:write")?;
    let tenant = caller.0.tenant.clone();
    let retention = match q.get("retention_days") {
        None => tenant.retention_days,
        Some(v) => {
            let allowed = &state.config.retention_days_allowed;
            match v.parse::<i64>() {
                Ok(d) if allowed.contains(&d) => d,
                _ => {
                    return Err(ApiError::bad_request(
                        "retention_not_allowed",
                        format!("retention_days must be one of {allowed:?}"),
                    ));
                }
            }
        }
    };
    let label = q.get("label").cloned().filter(|l| !l.is_empty());
    let visible = match q.get("visible").map(String::as_str) {
        None | Some("true") | Some("1") => true,
        Some("false") | Some("0") => false,
        Some(_) => {
            return Err(ApiError::bad_request(
                "corrupt",
                "visible must be true or false",
            ));
        }
    };
    if label.as_ref().is_some_and(|l| l.len() > 200) {
        return Err(ApiError::bad_request(
            "corrupt",
            "label longer than 200 bytes",
        ));
    }
    if !state.blobs.regions().any(|r| r == tenant.region) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "region_mismatch",
            "the tenant's region is not served here",
        ));
    }
    let body = upload_bytes(req, &state).await?;
    let original_sha256 = hex::encode(Sha256::digest(&body));

    // Everything CPU-bound or blocking (decode, encode, key service calls) runs on the blocking
    // pool, at most `decode_concurrency` at once. The upload's bytes never leave memory.
    let _slot = state
        .decode_slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::internal("decode slots closed"))?;
    let id = uuid::Uuid::now_v7().to_string();
    let proof_bits = ProofId::random().map_err(|e| ApiError::internal(&e.to_string()))?;
    let proof_id = proof_bits.to_string();
    let (created_at, created_ms) = meta::now();
    let proof = ProofAssertion {
        proof_id: proof_id.clone(),
        issued_at: created_at.clone(),
        verify_url: format!(
            "{}/v/{proof_id}",
            state.config.public_url.trim_end_matches('/')
        ),
    };
    let marks = MarkOptions {
        visible,
        label: label.clone(),
    };
    let provenance = state.provenance.clone();
    let (keys, limits, region, tenant_id) = (
        state.keys.clone(),
        state.limits,
        tenant.region.clone(),
        tenant.id.clone(),
    );
    let (id2, ip) = (id.clone(), peer.ip().to_string());
    let work = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        // Stamp stage: decode → watermark hook (pixseal_provenance::apply_watermarks, where the
        // watermark issue plugs in) → PDQ → encode → signed C2PA manifest.
        let out = PIPELINE
            .with(|cell| {
                let mut slot = cell.borrow_mut();
                let p = slot.get_or_insert_with(|| Pipeline::new(limits));
                stamp(
                    p,
                    &body,
                    &Options {
                        format: Some(OutputFormat::WebP),
                        quality: 85,
                        max_edge: None,
                    },
                    proof_bits.0,
                    &proof,
                    &marks,
                    provenance.signer.as_ref(),
                )
            })
            .map_err(stamp_error)?;
        drop(body);
        let obj = ObjectRef {
            object_id: &id2,
            tenant: &tenant_id,
            region: &region,
        };
        let (sealed, receipt) =
            Sealer::new(keys.as_ref(), KeyPlacement::Detached).seal_bytes(&out.bytes, &obj)?;
        let label_sealed = match &label {
            Some(l) => Some(pixseal_seal::seal_field(
                keys.as_ref(),
                &region,
                &format!("artifacts.label.{id2}"),
                l.as_bytes(),
            )?),
            None => None,
        };
        let ip_sealed = pixseal_seal::seal_field(
            keys.as_ref(),
            &region,
            &format!("artifacts.client_ip.{id2}"),
            ip.as_bytes(),
        )?;
        Ok((out, sealed, receipt.wrapped_key, label_sealed, ip_sealed))
    })
    .await
    .map_err(|_| ApiError::internal("ingest task failed"))?;
    let actor = format!("key:{}", caller.0.id);
    let (out, sealed, wrapped, label_sealed, ip_sealed) = match work {
        Ok(v) => v,
        Err(e) => {
            state
                .audit(&actor, "artifact.create", &id, "refused", e.code)
                .await;
            return Err(e);
        }
    };

    let (expires_at, expires_ms) = meta::at_ms(created_ms + retention * DAY_MS);
    let artifact = Artifact {
        id: id.clone(),
        tenant_id: tenant.id.clone(),
        region: tenant.region.clone(),
        proof_id,
        state: "pending".into(),
        sha256: hex::encode(Sha256::digest(&out.bytes)),
        original_sha256,
        content_type: out.format.media_type().into(),
        width: out.width as i64,
        height: out.height as i64,
        bytes: out.bytes.len() as i64,
        wrapped_key: base64::Engine::encode(&b64(), wrapped.to_bytes()),
        label_sealed,
        client_ip_sealed: Some(ip_sealed),
        created_at,
        created_ms,
        expires_at,
        expires_ms,
    };
    // Row first (pending), then blob, then active: a crash in between leaves a pending row that
    // the repair pass removes (with its blob, if any) — never a visible half-stored artifact.
    state.db.insert_artifact(&artifact).await?;
    let key = BlobKey::new(&id).map_err(|e| ApiError::internal(&e.to_string()))?;
    if let Err(e) = state
        .blobs
        .put(&artifact.region, &key, Bytes::from(sealed))
        .await
    {
        let _ = state.db.delete_artifact(&id).await;
        return Err(e.into());
    }
    let record = ProofRecord {
        proof_id: artifact.proof_id.clone(),
        sha256: artifact.sha256.clone(),
        original_sha256: artifact.original_sha256.clone(),
        pdq: out.pdq.map(|p| p.to_string()),
        issued_at: artifact.created_at.clone(),
        status: "active".into(),
        purged_at: None,
        receipt_id: None,
    };
    if let Err(e) = state.db.activate_artifact(&id, &record).await {
        let _ = state.blobs.delete(&artifact.region, &key).await;
        let _ = state.db.delete_artifact(&id).await;
        return Err(match e {
            pixseal_store::DbError::NotFound => {
                ApiError::internal("upload row vanished before activation")
            }
            other => other.into(),
        });
    }
    state.audit(&actor, "artifact.create", &id, "ok", "").await;
    let mut body = public(&artifact, &state.config.public_url);
    body["label"] = json!(label_present(&artifact));
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

fn stamp_error(e: StampError) -> ApiError {
    match e {
        StampError::Ingest(e) => e.into(),
        StampError::Provenance(e) if e.code() == "key_unavailable" => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "key_unavailable",
            "signing key unavailable, retry later",
        ),
        StampError::Provenance(e) => ApiError::internal(&e.to_string()),
    }
}

fn label_present(a: &Artifact) -> bool {
    a.label_sealed.is_some()
}

fn unwrap_key(a: &Artifact) -> Result<WrappedKey, ApiError> {
    let raw = base64::Engine::decode(&b64(), &a.wrapped_key)
        .map_err(|_| ApiError::internal("stored wrapped key is not base64"))?;
    WrappedKey::from_bytes(&raw).map_err(|e| ApiError::internal(&e.to_string()))
}

/// `GET /v1/artifacts/{id}`: the caller's own artifact; anyone else's is 404.
pub async fn metadata(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require("artifacts:read")?;
    let a = state.db.artifact(&caller.0.tenant.id, &id).await?;
    state
        .audit(
            &format!("key:{}", caller.0.id),
            "artifact.read",
            &a.id,
            "ok",
            "",
        )
        .await;
    let mut body = public(&a, &state.config.public_url);
    if let Some(sealed) = a.label_sealed.clone() {
        let (keys, region, ctx) = (
            state.keys.clone(),
            a.region.clone(),
            format!("artifacts.label.{}", a.id),
        );
        let label = tokio::task::spawn_blocking(move || {
            pixseal_seal::open_field(keys.as_ref(), &region, &ctx, &sealed)
        })
        .await
        .map_err(|_| ApiError::internal("label task failed"))??;
        body["label"] = json!(String::from_utf8_lossy(&label));
    }
    Ok(Json(body))
}

/// `GET /v1/artifacts/{id}/content`: decrypted on demand, never cached.
pub async fn content(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require("artifacts:read")?;
    let a = state.db.artifact(&caller.0.tenant.id, &id).await?;
    state
        .audit(
            &format!("key:{}", caller.0.id),
            "artifact.content",
            &a.id,
            "ok",
            "",
        )
        .await;
    let key = BlobKey::new(&a.id).map_err(|_| ApiError::not_found())?;
    let sealed = state.blobs.get(&a.region, &key).await?;
    let wrapped = unwrap_key(&a)?;
    let (keys, a2) = (state.keys.clone(), a.clone());
    let plain = tokio::task::spawn_blocking(move || {
        let obj = ObjectRef {
            object_id: &a2.id,
            tenant: &a2.tenant_id,
            region: &a2.region,
        };
        Sealer::new(keys.as_ref(), KeyPlacement::Detached).open_bytes(&sealed, &obj, Some(&wrapped))
    })
    .await
    .map_err(|_| ApiError::internal("unseal task failed"))??;
    let mut resp = plain.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&a.content_type).unwrap_or(HeaderValue::from_static("image/webp")),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline"),
    );
    Ok(resp)
}

/// `DELETE /v1/artifacts/{id}`: blob deleted, wrapped data key destroyed with the row, and a
/// signed deletion receipt returned (and kept, for `GET /v1/receipts/{id}`).
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<pixseal_proof::SignedReceipt>, ApiError> {
    caller.require("artifacts:delete")?;
    let a = state.db.artifact(&caller.0.tenant.id, &id).await?;
    let signed = erase(&state, &a, "deleted_by_owner").await?;
    state
        .audit(
            &format!("key:{}", caller.0.id),
            "artifact.delete",
            &a.id,
            "ok",
            &signed.receipt.receipt_id,
        )
        .await;
    Ok(Json(signed))
}

/// Delete one artifact for `reason` and return its signed receipt. The receipt is signed first
/// (the signer may be a key service that is down: then nothing has changed, the artifact is
/// still served and the caller gets `key_unavailable`), then the row goes `deleting` (no longer
/// served), then the blob, then receipt + row removal in one transaction: a crash anywhere
/// leaves a state the repair pass finishes. The receipt is published only once that commits.
pub async fn erase(
    state: &AppState,
    a: &Artifact,
    reason: &str,
) -> Result<pixseal_proof::SignedReceipt, ApiError> {
    let key = BlobKey::new(&a.id).map_err(|_| ApiError::not_found())?;
    let (deleted_at, _) = meta::now();
    let mut rid = [0u8; 16];
    getrandom_fill(&mut rid)?;
    let receipt = pixseal_proof::Receipt {
        receipt_id: format!("rcpt_{}", hex::encode(rid)),
        artifact_id: a.id.clone(),
        proof_id: a.proof_id.clone(),
        sha256: a.sha256.clone(),
        original_sha256: a.original_sha256.clone(),
        region: a.region.clone(),
        created_at: a.created_at.clone(),
        deleted_at: deleted_at.clone(),
        reason: reason.into(),
    };
    let signer = state.receipts.clone();
    let signed = tokio::task::spawn_blocking(move || signer.sign(receipt))
        .await
        .map_err(|_| ApiError::internal("receipt signing task failed"))??;
    let json = serde_json::to_string(&signed).map_err(|e| ApiError::internal(&e.to_string()))?;
    state.db.set_artifact_state(&a.id, "deleting").await?;
    state.blobs.delete(&a.region, &key).await?;
    state
        .db
        .record_deletion(
            &a.id,
            &signed.receipt.receipt_id,
            &a.proof_id,
            &a.tenant_id,
            &json,
            &deleted_at,
        )
        .await?;
    Ok(signed)
}

fn getrandom_fill(b: &mut [u8]) -> Result<(), ApiError> {
    // Reuse the proof-id source of randomness: the OS CSPRNG.
    for chunk in b.chunks_mut(8) {
        let v = ProofId::random()
            .map_err(|e| ApiError::internal(&e.to_string()))?
            .0
            .to_be_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    Ok(())
}

/// `GET /v1/receipts/{id}` (public: receipt ids are 128 random bits and hold nothing personal).
pub async fn receipt(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !id.starts_with("rcpt_") || id.len() > 64 {
        return Err(ApiError::not_found());
    }
    let json = state.db.receipt(&id).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

/// `GET /v1/keys/receipts`: the public key that verifies this installation's receipts.
pub async fn receipt_key(State(state): State<AppState>) -> Json<Value> {
    Json(
        json!({"alg": "Ed25519", "key_id": state.receipts.key_id(), "public_key_pem": state.receipts.public_key_pem()}),
    )
}
