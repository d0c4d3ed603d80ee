//! Deletions and their receipts: each deletion is decided once (its receipt's id, reason, time
//! and subject salt fixed on the row by a conditional `… → deleting` update), finished once
//! (row removal conditional on that receipt id, one receipt per artifact by a unique index),
//! and a stale one is taken over by the purge pass instead of being dropped.

use sqlx::Row;

use crate::meta::{Artifact, Db, DbError, DbKind, artifact_from};
use crate::states::{ArtifactState, DeletionReason};

/// What a deletion's receipt will say, fixed when the deletion began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    pub receipt_id: String,
    pub reason: DeletionReason,
    /// When the artifact stopped being served (RFC 3339).
    pub deleted_at: String,
    /// The receipt subject's salt, 64 hex digits.
    pub salt: String,
    /// When the eraser working on it last claimed it (epoch ms); a claim older than the purge
    /// pass's stale age is taken over.
    pub claimed_ms: i64,
}

/// A stored receipt: the public signed JSON, and what the tenant's view adds to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReceipt {
    pub receipt_id: String,
    pub artifact_id: String,
    pub tenant_id: String,
    /// The public view (a `SignedReceipt` without its opening).
    pub signed_json: String,
    /// The subject's salt and the original's SHA-256 (version 2 receipts; `None` for version
    /// 1, which carries both in its signed fields).
    pub salt: Option<String>,
    pub original_sha256: Option<String>,
}

/// The artifact columns followed by the deletion columns, as a macro so queries stay
/// `&'static str`.
macro_rules! deleting_columns {
    () => {
        concat!(
            artifact_columns!(),
            ", receipt_id, deletion_reason, deleted_at, subject_salt, claimed_ms"
        )
    };
}

/// A `deleting` row: the artifact and, unless an older version left it without one, its
/// deletion.
fn deleting_from(r: &sqlx::any::AnyRow) -> Result<(Artifact, Option<Deletion>), sqlx::Error> {
    let a = artifact_from(r)?;
    let receipt_id: Option<String> = r.try_get("receipt_id")?;
    let reason: Option<String> = r.try_get("deletion_reason")?;
    let deleted_at: Option<String> = r.try_get("deleted_at")?;
    let salt: Option<String> = r.try_get("subject_salt")?;
    let claimed_ms: Option<i64> = r.try_get("claimed_ms")?;
    let d = match (receipt_id, reason, deleted_at, salt) {
        (Some(receipt_id), Some(reason), Some(deleted_at), Some(salt)) => Some(Deletion {
            receipt_id,
            reason: reason.parse().map_err(|e| sqlx::Error::ColumnDecode {
                index: "deletion_reason".into(),
                source: Box::new(e),
            })?,
            deleted_at,
            salt,
            claimed_ms: claimed_ms.unwrap_or(0),
        }),
        _ => None,
    };
    Ok((a, d))
}

fn receipt_from(r: &sqlx::any::AnyRow) -> Result<StoredReceipt, sqlx::Error> {
    Ok(StoredReceipt {
        receipt_id: r.try_get("receipt_id")?,
        artifact_id: r.try_get("artifact_id")?,
        tenant_id: r.try_get("tenant_id")?,
        signed_json: r.try_get("signed_json")?,
        salt: r.try_get("subject_salt")?,
        original_sha256: r.try_get("original_sha256")?,
    })
}

impl Db {
    /// Begin erasing an artifact that is in state `from` (and not already being erased): it
    /// goes `deleting`, no longer served, with `d` fixed on the row. False when the row is not
    /// in `from` any more: someone else is erasing it, and the caller must not sign anything.
    pub async fn begin_deletion(
        &self,
        id: &str,
        from: ArtifactState,
        d: &Deletion,
    ) -> Result<bool, DbError> {
        let r = sqlx::query(
            "UPDATE artifacts SET state = 'deleting', receipt_id = $1, deletion_reason = $2, deleted_at = $3, subject_salt = $4, claimed_ms = $5 \
             WHERE id = $6 AND state = $7 AND receipt_id IS NULL",
        )
        .bind(&d.receipt_id)
        .bind(d.reason.as_str())
        .bind(&d.deleted_at)
        .bind(&d.salt)
        .bind(d.claimed_ms)
        .bind(id)
        .bind(from.as_str())
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Undo [`Db::begin_deletion`] when nothing irreversible happened yet (the receipt could
    /// not be signed): back to `to`, only if the deletion is still `d` and still claimed by
    /// its beginner (not taken over meanwhile). False otherwise.
    pub async fn abandon_deletion(
        &self,
        id: &str,
        to: ArtifactState,
        d: &Deletion,
    ) -> Result<bool, DbError> {
        let r = sqlx::query(
            "UPDATE artifacts SET state = $1, receipt_id = NULL, deletion_reason = NULL, deleted_at = NULL, subject_salt = NULL \
             WHERE id = $2 AND state = 'deleting' AND receipt_id = $3 AND claimed_ms = $4",
        )
        .bind(to.as_str())
        .bind(id)
        .bind(&d.receipt_id)
        .bind(d.claimed_ms)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Take over up to `limit` deletions whose eraser stopped or died: `deleting` rows claimed
    /// before `now_ms - stale_ms` (or never), re-claimed at `now_ms`. On PostgreSQL the rows
    /// are locked `FOR UPDATE SKIP LOCKED`, so concurrent workers never take the same one.
    pub async fn claim_stale_deletions(
        &self,
        now_ms: i64,
        stale_ms: i64,
        limit: i64,
    ) -> Result<Vec<(Artifact, Option<Deletion>)>, DbError> {
        let sql = match self.kind() {
            DbKind::Postgres => concat!(
                "UPDATE artifacts SET claimed_ms = $1 WHERE id IN (",
                "SELECT id FROM artifacts WHERE state = 'deleting' AND (claimed_ms IS NULL OR claimed_ms < $2) ",
                "ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING ",
                deleting_columns!()
            ),
            DbKind::Sqlite => concat!(
                "UPDATE artifacts SET claimed_ms = $1 WHERE id IN (",
                "SELECT id FROM artifacts WHERE state = 'deleting' AND (claimed_ms IS NULL OR claimed_ms < $2) ",
                "ORDER BY id LIMIT $3) RETURNING ",
                deleting_columns!()
            ),
        };
        let rows = sqlx::query(sql)
            .bind(now_ms)
            .bind(now_ms - stale_ms)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(deleting_from)
            .collect::<Result<_, _>>()
            .map_err(DbError::from)
    }

    /// Finish deletion `d` of `a` in one transaction: the row (and with it the wrapped data
    /// key) goes, the receipt is stored, the public proof record says purged. Only if the row
    /// is still `deleting` under this very receipt id: false when another finisher got there
    /// first or the deletion was abandoned (nothing is written then).
    pub async fn record_deletion(
        &self,
        a: &Artifact,
        d: &Deletion,
        signed_json: &str,
    ) -> Result<bool, DbError> {
        let mut tx = self.pool().begin().await?;
        // First: on PostgreSQL this locks the row, so a concurrent finisher waits here and
        // then finds nothing to delete.
        let gone = sqlx::query(
            "DELETE FROM artifacts WHERE id = $1 AND state = 'deleting' AND receipt_id = $2",
        )
        .bind(&a.id)
        .bind(&d.receipt_id)
        .execute(&mut *tx)
        .await?;
        if gone.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO receipts (receipt_id, artifact_id, proof_id, tenant_id, signed_json, deleted_at, subject_salt, original_sha256) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&d.receipt_id)
        .bind(&a.id)
        .bind(&a.proof_id)
        .bind(&a.tenant_id)
        .bind(signed_json)
        .bind(&d.deleted_at)
        .bind(&d.salt)
        .bind(&a.original_sha256)
        .execute(&mut *tx)
        .await?;
        // The public proof record stays, marked purged, pointing at its receipt.
        sqlx::query(
            "UPDATE proofs SET status = 'purged', purged_at = $1, receipt_id = $2 WHERE proof_id = $3 AND status = 'active'",
        )
        .bind(&d.deleted_at)
        .bind(&d.receipt_id)
        .bind(&a.proof_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A stored receipt by its id.
    pub async fn receipt(&self, receipt_id: &str) -> Result<StoredReceipt, DbError> {
        let r = sqlx::query(
            "SELECT receipt_id, artifact_id, tenant_id, signed_json, subject_salt, original_sha256 FROM receipts WHERE receipt_id = $1",
        )
        .bind(receipt_id)
        .fetch_one(self.pool())
        .await?;
        Ok(receipt_from(&r)?)
    }

    /// The one stored receipt of an artifact, if it was erased.
    pub async fn receipt_of_artifact(
        &self,
        artifact_id: &str,
    ) -> Result<Option<StoredReceipt>, DbError> {
        let r = sqlx::query(
            "SELECT receipt_id, artifact_id, tenant_id, signed_json, subject_salt, original_sha256 FROM receipts WHERE artifact_id = $1",
        )
        .bind(artifact_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(r.as_ref().map(receipt_from).transpose()?)
    }

    pub async fn receipt_count(&self) -> Result<i64, DbError> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM receipts")
            .fetch_one(self.pool())
            .await?;
        Ok(r.try_get("n")?)
    }
}
