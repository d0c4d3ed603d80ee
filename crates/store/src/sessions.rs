//! Dashboard sessions and the gallery's pages: a session is a token's SHA-256 bound to the API
//! key it was exchanged for, or to the passkey a member signed in with (valid while that is),
//! and a tenant's artifacts are read newest first in pages keyed by (created_ms, id), so a page
//! costs the same at any depth.

use sqlx::Row;

use crate::meta::{
    ApiKey, Artifact, Db, DbError, Tenant, artifact_from, key_from, secret_hash, tenant_from,
};

/// The member behind a passkey session, and their account.
#[derive(Debug, Clone)]
pub struct MemberSession {
    pub member_id: String,
    pub passkey_id: String,
    pub tenant: Tenant,
}

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

    /// Forget sessions that expired before `now_ms`, those of revoked keys and passkeys, and
    /// passkey sign-ins never finished.
    pub async fn purge_web_sessions(&self, now_ms: i64) -> Result<u64, DbError> {
        let r = sqlx::query(
            "DELETE FROM web_sessions WHERE expires_ms <= $1 \
             OR key_id IN (SELECT id FROM api_keys WHERE revoked_at IS NOT NULL)",
        )
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        let m = sqlx::query(
            "DELETE FROM member_sessions WHERE expires_ms <= $1 \
             OR passkey_id IN (SELECT id FROM passkeys WHERE revoked_at IS NOT NULL)",
        )
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        sqlx::query("DELETE FROM passkey_sign_ins WHERE expires_ms <= $1")
            .bind(now_ms)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() + m.rows_affected())
    }

    /// Record a member's session for `token` (kept as its SHA-256 only), bound to the passkey
    /// `passkey_id` it was opened with.
    pub async fn create_member_session(
        &self,
        token: &str,
        passkey_id: &str,
        created_ms: i64,
        expires_ms: i64,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO member_sessions (token_sha256, passkey_id, created_ms, expires_ms) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(secret_hash(token))
        .bind(passkey_id)
        .bind(created_ms)
        .bind(expires_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The member behind a session that has not expired at `now_ms`; `NotFound` for an unknown
    /// or expired session, or one whose passkey was revoked.
    pub async fn member_session(&self, token: &str, now_ms: i64) -> Result<MemberSession, DbError> {
        let r = sqlx::query(
            "SELECT p.member_id, p.id AS passkey_id, \
             t.id, t.name, t.region, t.retention_days, t.created_at \
             FROM member_sessions s JOIN passkeys p ON p.id = s.passkey_id \
             JOIN tenants t ON t.id = p.tenant_id \
             WHERE s.token_sha256 = $1 AND s.expires_ms > $2 AND p.revoked_at IS NULL",
        )
        .bind(secret_hash(token))
        .bind(now_ms)
        .fetch_one(self.pool())
        .await?;
        Ok(MemberSession {
            member_id: r.try_get("member_id")?,
            passkey_id: r.try_get("passkey_id")?,
            tenant: tenant_from(&r)?,
        })
    }

    /// End a member's session. Whether there was one to end.
    pub async fn delete_member_session(&self, token: &str) -> Result<bool, DbError> {
        let r = sqlx::query("DELETE FROM member_sessions WHERE token_sha256 = $1")
            .bind(secret_hash(token))
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Remember a passkey sign-in's challenge (hex) until `expires_ms`.
    pub async fn insert_sign_in(
        &self,
        id: &str,
        challenge: &str,
        expires_ms: i64,
    ) -> Result<(), DbError> {
        sqlx::query("INSERT INTO passkey_sign_ins (id, challenge, expires_ms) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(challenge)
            .bind(expires_ms)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// How many passkey sign-ins are under way (unexpired) at `now_ms`.
    pub async fn sign_ins_under_way(&self, now_ms: i64) -> Result<i64, DbError> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM passkey_sign_ins WHERE expires_ms > $1")
            .bind(now_ms)
            .fetch_one(self.pool())
            .await?;
        Ok(r.try_get("n")?)
    }

    /// Take (delete and return) a sign-in's challenge, if it is known and unexpired at `now_ms`:
    /// exactly one caller gets it.
    pub async fn take_sign_in(&self, id: &str, now_ms: i64) -> Result<Option<String>, DbError> {
        let r = sqlx::query(
            "DELETE FROM passkey_sign_ins WHERE id = $1 RETURNING challenge, expires_ms",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = r else { return Ok(None) };
        let expires: i64 = r.try_get("expires_ms")?;
        Ok((expires > now_ms)
            .then(|| r.try_get("challenge"))
            .transpose()?)
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
