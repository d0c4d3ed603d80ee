//! Retention: the purge pass deletes every artifact whose retention ended (blob, wrapped data
//! key, metadata, personal fields) and issues its signed receipt; it also forgets client IPs
//! older than 30 days, and verification codes 30 days after they expired. Time is a parameter,
//! so tests run it at any instant.

use crate::{ApiError, AppState, artifacts};

/// Client IPs are kept this long for abuse handling (SPEC §8), then removed.
pub const IP_RETENTION_MS: i64 = 30 * 86_400_000;
/// Expired codes still answer `expired` this long, then are deleted (and answer `unknown`).
pub const EXPIRED_CODE_RETENTION_MS: i64 = 30 * 86_400_000;

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PurgeReport {
    pub purged: u64,
    pub failed: u64,
    pub ips_forgotten: u64,
    pub codes_forgotten: u64,
}

/// Purge everything due at `now_ms`, in batches of `batch`. Safe with several instances (each
/// row is claimed by exactly one worker) and idempotent after a crash (a claim older than
/// `stale_ms` is taken over; a blob already gone is not an error).
pub async fn purge_due(
    state: &AppState,
    now_ms: i64,
    batch: i64,
    stale_ms: i64,
) -> Result<PurgeReport, ApiError> {
    let mut report = PurgeReport::default();
    loop {
        let claimed = state.db.claim_due(now_ms, stale_ms, batch).await?;
        if claimed.is_empty() {
            break;
        }
        for a in claimed {
            match artifacts::erase(state, &a, "retention_expired").await {
                Ok(r) => {
                    report.purged += 1;
                    state
                        .audit(
                            "system",
                            "artifact.purge",
                            &a.id,
                            "ok",
                            &r.receipt.receipt_id,
                        )
                        .await;
                }
                Err(e) => {
                    report.failed += 1;
                    tracing::error!(artifact = %a.id, code = e.code, "purge failed; the claim will be retried");
                    state
                        .audit("system", "artifact.purge", &a.id, "failed", e.code)
                        .await;
                }
            }
        }
        if report.failed > 0 {
            break; // do not spin on a failing dependency; the next pass retries
        }
    }
    report.ips_forgotten = state.db.forget_ips(now_ms - IP_RETENTION_MS).await?;
    report.codes_forgotten = state
        .db
        .forget_expired_codes(now_ms - EXPIRED_CODE_RETENTION_MS)
        .await?;
    state.metrics.purged.inc_by(report.purged);
    Ok(report)
}
