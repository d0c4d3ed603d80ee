//! Installation secrets (random keys every instance shares, stored wrapped) and the spent
//! proof-of-work challenges that make each solution good once.

use sqlx::Row;

use crate::meta::{Db, DbError};

impl Db {
    /// The wrapped secret for `purpose`: (region whose key wraps it, wrapped key).
    pub async fn installation_secret(
        &self,
        purpose: &str,
    ) -> Result<Option<(String, String)>, DbError> {
        let r = sqlx::query("SELECT region, wrapped FROM installation_secrets WHERE purpose = $1")
            .bind(purpose)
            .fetch_optional(self.pool())
            .await?;
        Ok(
            r.map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?)))
                .transpose()?,
        )
    }

    /// Store a wrapped secret for `purpose` unless another instance stored one first; returns
    /// the stored one (the winner's), so every instance uses the same secret.
    pub async fn insert_installation_secret(
        &self,
        purpose: &str,
        region: &str,
        wrapped: &str,
    ) -> Result<(String, String), DbError> {
        sqlx::query(
            "INSERT INTO installation_secrets (purpose, region, wrapped) VALUES ($1, $2, $3) ON CONFLICT (purpose) DO NOTHING",
        )
        .bind(purpose)
        .bind(region)
        .bind(wrapped)
        .execute(self.pool())
        .await?;
        self.installation_secret(purpose)
            .await?
            .ok_or(DbError::NotFound)
    }

    /// Every installation secret: (purpose, region, wrapped key), for rewrapping.
    pub async fn installation_secrets(&self) -> Result<Vec<(String, String, String)>, DbError> {
        let rows = sqlx::query(
            "SELECT purpose, region, wrapped FROM installation_secrets ORDER BY purpose",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(DbError::from)
    }

    /// Replace a wrapped installation secret (same secret, newer master key version), only if
    /// it is still the one that was read.
    pub async fn replace_installation_secret(
        &self,
        purpose: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, DbError> {
        let r = sqlx::query(
            "UPDATE installation_secrets SET wrapped = $1 WHERE purpose = $2 AND wrapped = $3",
        )
        .bind(new)
        .bind(purpose)
        .bind(old)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Record a challenge as spent until it expires: `false` when it already was (a replay),
    /// whichever instance saw it first.
    pub async fn spend_challenge(&self, signature: &str, expires_ms: i64) -> Result<bool, DbError> {
        let r = sqlx::query(
            "INSERT INTO challenges_spent (signature, expires_ms) VALUES ($1, $2) ON CONFLICT (signature) DO NOTHING",
        )
        .bind(signature)
        .bind(expires_ms)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Forget spent challenges that have expired (an expired one is refused as expired
    /// anyway); returns how many.
    pub async fn purge_spent_challenges(&self, now_ms: i64) -> Result<u64, DbError> {
        let r = sqlx::query("DELETE FROM challenges_spent WHERE expires_ms <= $1")
            .bind(now_ms)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected())
    }
}
