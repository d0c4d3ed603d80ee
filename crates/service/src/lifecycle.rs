//! Retention and crash repair. The purge pass finishes deletions whose eraser stopped, deletes
//! every artifact whose retention ended (blob, wrapped data key, metadata, personal fields),
//! each with its signed receipt; it also forgets client IPs older than 30 days, and
//! verification codes 30 days after they expired. The repair pass removes what an interrupted
//! upload left.

use pixseal_store::{BlobKey, OWNER_MARKER, PrefixOwner};
use serde::Serialize;

use pixseal_store::ArtifactState;

use crate::clock::DAY_MS;
use crate::erase::DeletionReason;
use crate::{Actor, Outcome, Result, ServiceError, Services};

/// Client IPs are kept this long for abuse handling (SPEC §8), then removed.
pub const IP_RETENTION_MS: i64 = 30 * DAY_MS;
/// Expired codes still answer `expired` this long, then are deleted (and answer `unknown`).
pub const EXPIRED_CODE_RETENTION_MS: i64 = 30 * DAY_MS;

/// What one purge pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    pub purged: u64,
    /// Deletions whose eraser stopped (a DELETE or a purge that failed half-way, a crash),
    /// taken over once stale and finished with their receipt.
    pub resumed: u64,
    pub failed: u64,
    pub ips_forgotten: u64,
    pub codes_forgotten: u64,
    /// Dashboard sessions that expired or whose key was revoked.
    pub sessions_ended: u64,
    /// Spent proof-of-work challenges forgotten once expired.
    pub challenges_forgotten: u64,
    /// Pickup links forgotten a day after they ended.
    pub pickups_forgotten: u64,
}

/// What one repair pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct RepairReport {
    pub unfinished_rows: usize,
    pub orphan_blobs: usize,
    /// Regions whose blob prefix another installation owns: not swept.
    pub foreign_prefixes: usize,
}

impl Services {
    /// One purge pass at the service clock's now, with the configured batch and stale-claim
    /// age.
    pub async fn purge(&self) -> Result<PurgeReport> {
        let stale_ms = self.config.purge_stale_claim_secs as i64 * 1000;
        self.purge_at(
            self.clock.now_ms(),
            i64::from(self.config.purge_batch),
            stale_ms,
        )
        .await
    }

    /// How many artifacts are due now (`pixseal purge --dry-run`).
    pub async fn count_due(&self) -> Result<u64> {
        Ok(self.db.count_due(self.clock.now_ms()).await? as u64)
    }

    /// Finish every deletion whose eraser stopped more than `stale_ms` ago, then purge
    /// everything due at `now_ms`, in batches of `batch`. Safe with several instances (each
    /// row is claimed by exactly one worker) and idempotent after a crash (a claim older than
    /// `stale_ms` is taken over; a blob already gone is not an error).
    pub async fn purge_at(&self, now_ms: i64, batch: i64, stale_ms: i64) -> Result<PurgeReport> {
        let mut report = PurgeReport::default();
        loop {
            let stale = self
                .db
                .claim_stale_deletions(now_ms, stale_ms, batch)
                .await?;
            if stale.is_empty() {
                break;
            }
            for (a, d) in stale {
                let action = match d.as_ref().map(|d| d.reason) {
                    Some(DeletionReason::DeletedByOwner | DeletionReason::PickedUp) => {
                        "artifact.delete"
                    }
                    _ => "artifact.purge",
                };
                match self.finish_deletion(&a, d, now_ms).await {
                    Ok(r) => {
                        report.resumed += 1;
                        let rid = r.receipt.receipt_id();
                        self.audit_detail(&Actor::System, action, &a.id, Outcome::Ok, rid)
                            .await;
                    }
                    Err(ServiceError::NotFound) => {}
                    Err(e) => {
                        report.failed += 1;
                        tracing::error!(artifact = %a.id, code = e.code(), "finishing a stopped deletion failed; retried once stale again");
                        self.audit_detail(&Actor::System, action, &a.id, Outcome::Failed, e.code())
                            .await;
                    }
                }
            }
            if report.failed > 0 {
                break; // do not spin on a failing dependency; the next pass retries
            }
        }
        while report.failed == 0 {
            let claimed = self.db.claim_due(now_ms, stale_ms, batch).await?;
            if claimed.is_empty() {
                break;
            }
            for a in claimed {
                match self
                    .erase(&a, ArtifactState::Purging, DeletionReason::RetentionExpired)
                    .await
                {
                    Ok(r) => {
                        report.purged += 1;
                        let rid = r.receipt.receipt_id();
                        self.audit_detail(
                            &Actor::System,
                            "artifact.purge",
                            &a.id,
                            Outcome::Ok,
                            rid,
                        )
                        .await;
                    }
                    // Erased meanwhile by another worker: nothing left to do.
                    Err(ServiceError::NotFound) => {}
                    Err(e) => {
                        report.failed += 1;
                        tracing::error!(artifact = %a.id, code = e.code(), "purge failed; the claim will be retried");
                        self.audit_detail(
                            &Actor::System,
                            "artifact.purge",
                            &a.id,
                            Outcome::Failed,
                            e.code(),
                        )
                        .await;
                    }
                }
            }
        }
        report.ips_forgotten = self.db.forget_ips(now_ms - IP_RETENTION_MS).await?;
        report.sessions_ended = self.db.purge_web_sessions(now_ms).await?;
        report.challenges_forgotten = self.db.purge_spent_challenges(now_ms).await?;
        report.pickups_forgotten = self.forget_pickups(now_ms).await?;
        report.codes_forgotten = self
            .db
            .forget_expired_codes(now_ms - EXPIRED_CODE_RETENTION_MS)
            .await?;
        if report.purged + report.resumed + report.ips_forgotten + report.codes_forgotten > 0 {
            // SQLite: the pages written before these deletions leave the write-ahead log too.
            if let Err(e) = self.db.checkpoint().await {
                tracing::warn!(error = %e, "database checkpoint after a purge pass failed");
            }
        }
        Ok(report)
    }

    /// One repair pass with the configured grace (`[server].repair_grace_secs`).
    pub async fn repair(&self) -> Result<RepairReport> {
        self.repair_with_grace(self.config.repair_grace_secs as i64 * 1000)
            .await
    }

    /// Remove exactly what crashes leave: a `pending` row older than `grace_ms` (uploads in
    /// flight on another instance are younger), with its blob; and blobs without a row, which
    /// only a crash can produce (a row is always written before its blob and removed after
    /// it). A `deleting` row is left to the purge pass, which finishes it with its receipt.
    pub async fn repair_with_grace(&self, grace_ms: i64) -> Result<RepairReport> {
        let mut report = RepairReport::default();
        let now_ms = self.clock.now_ms();
        for a in self.db.unfinished(now_ms - grace_ms).await? {
            if let Ok(key) = BlobKey::new(&a.id) {
                self.blobs.delete(&a.region, &key).await?;
            }
            self.db.delete_artifact(&a.id).await?;
            report.unfinished_rows += 1;
        }
        let regions: Vec<String> = self.blobs.regions().map(String::from).collect();
        for region in regions {
            // Only a prefix this installation owns is swept: what another writes there is not
            // ours to judge (its rows are in its own database).
            if let PrefixOwner::Other(owner) = self.blobs.claim(&region, &self.installation).await?
            {
                tracing::error!(
                    region,
                    place = %self.blobs.describe(&region),
                    owner,
                    "repair: this region's blob prefix belongs to another installation; its orphan sweep is skipped"
                );
                report.foreign_prefixes += 1;
                continue;
            }
            for name in self.blobs.list_names(&region).await? {
                if name == OWNER_MARKER {
                    continue;
                }
                // A name that is not a key (a temporary file from an interrupted write) or a
                // key with no row at all is an orphan.
                let orphan = match BlobKey::new(&name) {
                    Ok(_) => !self.db.artifact_exists(&name).await?,
                    Err(_) => true,
                };
                if orphan {
                    self.blobs.delete_name(&region, &name).await?;
                    report.orphan_blobs += 1;
                }
            }
        }
        if report != RepairReport::default() {
            tracing::warn!(
                unfinished_rows = report.unfinished_rows,
                orphan_blobs = report.orphan_blobs,
                "repair pass fixed leftovers"
            );
        }
        Ok(report)
    }
}
