//! Dashboard sessions and the gallery's pages: a session is a token's SHA-256 bound to the API
//! key it was exchanged for (valid while the key is), and a tenant's artifacts are read newest
//! first in pages keyed by (created_ms, id), so a page costs the same at any depth.

use sqlx::Row;

use crate::meta::{ApiKey, Artifact, Db, DbError, artifact_from, key_from, secret_hash};

/// Where a gallery page starts: just after (older than) this artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageAfter {
    pub created_ms: i64,
    pub id: String,
}

impl Db {
    /// Record a session for `token` (kept as its SHA-256 only), bound to the key `key_id`.
    pub async fn create_web_session(
        &self,
        token: &str,
        key_id: &str,
        created_ms: i64,
        expires_ms: i64,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO web_sessions (token_sha256, key_id, created_ms, expires_ms) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(secret_hash(token))
        .bind(key_id)
        .bind(created_ms)
        .bind(expires_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The live key behind a session that has not expired at `now_ms`; `NotFound` for an
    /// unknown or expired session, or one whose key was revoked.
    pub async fn web_session_key(&self, token: &str, now_ms: i64) -> Result<ApiKey, DbError> {
        let r = sqlx::query(
            "SELECT k.id AS key_id, k.scopes, k.created_at AS key_created_at, k.revoked_at, \
             t.id, t.name, t.region, t.retention_days, t.created_at \
             FROM web_sessions s JOIN api_keys k ON k.id = s.key_id JOIN tenants t ON t.id = k.tenant_id \
             WHERE s.token_sha256 = $1 AND s.expires_ms > $2 AND k.revoked_at IS NULL",
        )
        .bind(secret_hash(token))
        .bind(now_ms)
        .fetch_one(self.pool())
        .await?;
        Ok(key_from(&r)?)
    }

    /// End a session (signing out). Whether there was one to end.
    pub async fn delete_web_session(&self, token: &str) -> Result<bool, DbError> {
        let r = sqlx::query("DELETE FROM web_sessions WHERE token_sha256 = $1")
            .bind(secret_hash(token))
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Forget sessions that expired before `now_ms`, and those of revoked keys.
    pub async fn purge_web_sessions(&self, now_ms: i64) -> Result<u64, DbError> {
        let r = sqlx::query(
            "DELETE FROM web_sessions WHERE expires_ms <= $1 \
             OR key_id IN (SELECT id FROM api_keys WHERE revoked_at IS NOT NULL)",
        )
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected())
    }

    /// Up to `limit` of a tenant's active artifacts, newest first, starting after `after`.
    pub async fn artifacts_page(
        &self,
        tenant_id: &str,
        after: Option<&PageAfter>,
        limit: i64,
    ) -> Result<Vec<Artifact>, DbError> {
        // The first page starts after a key greater than any: one statement for every page.
        let (created_ms, id) = after.map_or((i64::MAX, ""), |a| (a.created_ms, a.id.as_str()));
        let rows = sqlx::query(concat!(
            "SELECT ",
            artifact_columns!(),
            " FROM artifacts WHERE tenant_id = $1 AND state = 'active' \
             AND (created_ms < $2 OR (created_ms = $2 AND id < $3)) \
             ORDER BY created_ms DESC, id DESC LIMIT $4"
        ))
        .bind(tenant_id)
        .bind(created_ms)
        .bind(id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(artifact_from)
            .collect::<Result<_, _>>()
            .map_err(DbError::from)
    }

    /// How many active artifacts a tenant has.
    pub async fn count_artifacts(&self, tenant_id: &str) -> Result<i64, DbError> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS n FROM artifacts WHERE tenant_id = $1 AND state = 'active'",
        )
        .bind(tenant_id)
        .fetch_one(self.pool())
        .await?;
        Ok(r.try_get("n")?)
    }
}
