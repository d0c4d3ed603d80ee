//! Pickup links: the one-download handover of an ephemerally stamped file. A download claims
//! the link first, so two downloads never run at once; a claim is given back when a download
//! breaks off, and taken over when its holder vanished for longer than the stale age.

use sqlx::Row;

use crate::meta::{Db, DbError, parse_text};
use crate::states::PickupState;

/// One pickup link (its token is stored only as a SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pickup {
    pub token_sha256: String,
    pub artifact_id: String,
    pub tenant_id: String,
    pub proof_id: String,
    pub state: PickupState,
    pub expires_ms: i64,
    pub claimed_ms: Option<i64>,
}

/// What a download attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PickupClaim {
    /// The link is this download's now (its `claimed_ms` set).
    Claimed(Pickup),
    /// Downloaded already, or expired: the file is gone.
    Gone(Pickup),
    /// Another download holds it right now.
    InProgress,
    /// No such link (never issued, or forgotten a day after it ended).
    Unknown,
}

fn pickup_from(r: &sqlx::any::AnyRow) -> Result<Pickup, sqlx::Error> {
    Ok(Pickup {
        token_sha256: r.try_get("token_sha256")?,
        artifact_id: r.try_get("artifact_id")?,
        tenant_id: r.try_get("tenant_id")?,
        proof_id: r.try_get("proof_id")?,
        state: parse_text(r, "state")?,
        expires_ms: r.try_get("expires_ms")?,
        claimed_ms: r.try_get("claimed_ms")?,
    })
}

impl Db {
    pub async fn insert_pickup(&self, p: &Pickup) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO pickups (token_sha256, artifact_id, tenant_id, proof_id, state, expires_ms, claimed_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&p.token_sha256)
        .bind(&p.artifact_id)
        .bind(&p.tenant_id)
        .bind(&p.proof_id)
        .bind(p.state.as_str())
        .bind(p.expires_ms)
        .bind(p.claimed_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn pickup(&self, token_sha256: &str) -> Result<Option<Pickup>, DbError> {
        let r = sqlx::query(
            "SELECT token_sha256, artifact_id, tenant_id, proof_id, state, expires_ms, claimed_ms FROM pickups WHERE token_sha256 = $1",
        )
        .bind(token_sha256)
        .fetch_optional(self.pool())
        .await?;
        Ok(r.as_ref().map(pickup_from).transpose()?)
    }

    /// Claim a waiting, unexpired link for one download at `now_ms`; a claim older than
    /// `stale_ms` is taken over. The change is one conditional UPDATE, so of concurrent
    /// attempts (on any instance) exactly one wins.
    pub async fn claim_pickup(
        &self,
        token_sha256: &str,
        now_ms: i64,
        stale_ms: i64,
    ) -> Result<PickupClaim, DbError> {
        let r = sqlx::query(
            "UPDATE pickups SET claimed_ms = $1 WHERE token_sha256 = $2 AND state = $3 AND expires_ms > $1 AND (claimed_ms IS NULL OR claimed_ms <= $4)",
        )
        .bind(now_ms)
        .bind(token_sha256)
        .bind(PickupState::Waiting.as_str())
        .bind(now_ms - stale_ms)
        .execute(self.pool())
        .await?;
        let Some(p) = self.pickup(token_sha256).await? else {
            return Ok(PickupClaim::Unknown);
        };
        Ok(if r.rows_affected() == 1 {
            PickupClaim::Claimed(p)
        } else if p.state == PickupState::PickedUp || p.expires_ms <= now_ms {
            PickupClaim::Gone(p)
        } else {
            PickupClaim::InProgress
        })
    }

    /// Give back a claim whose download broke off (only the claim made at `claimed_ms`).
    pub async fn release_pickup(&self, token_sha256: &str, claimed_ms: i64) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE pickups SET claimed_ms = NULL WHERE token_sha256 = $1 AND state = $2 AND claimed_ms = $3",
        )
        .bind(token_sha256)
        .bind(PickupState::Waiting.as_str())
        .bind(claimed_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The download completed: the link is spent (its file is erased next).
    pub async fn finish_pickup(&self, token_sha256: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE pickups SET state = $1 WHERE token_sha256 = $2")
            .bind(PickupState::PickedUp.as_str())
            .bind(token_sha256)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Forget links that ended before `before_ms`; returns how many.
    pub async fn forget_pickups(&self, before_ms: i64) -> Result<u64, DbError> {
        let r = sqlx::query("DELETE FROM pickups WHERE expires_ms <= $1")
            .bind(before_ms)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected())
    }
}
