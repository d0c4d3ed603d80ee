//! Storage of verification codes (pixseal-codes holds the rules): per-region wrapped code
//! secrets, accounts with their level and device key, message codes as keyed tags, live call
//! sessions with their failure-cap state. Every state change that must happen once (using a
//! code, locking a session) is one conditional UPDATE whose affected-row count decides, the same
//! on SQLite and PostgreSQL.

use sqlx::Row;

use crate::meta::{Db, DbError, now};

/// A code account: the tenant seen by verifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeAccount {
    pub tenant_id: String,
    pub tenant_name: String,
    pub region: String,
    pub level: i64,
    pub display_name: String,
    /// Base64 of the Ed25519 public key registered by the account's device.
    pub device_key: Option<String>,
    /// Whether minting needs a passkey assertion; `None`: the installation's default.
    pub presence: Option<crate::Presence>,
}

/// A stored message code (the code itself is only its keyed tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageCodeRow {
    pub id: String,
    pub tenant_id: String,
    pub region: String,
    pub code_tag: String,
    pub message_sha256: String,
    pub recipient_tag: String,
    pub signature: Option<String>,
    pub created_at: String,
    pub expires_at: String,
    pub expires_ms: i64,
    pub used_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
    /// Minted with a passkey: the member, the credential and its assertion (JSON).
    pub member_id: Option<String>,
    pub passkey_id: Option<String>,
    pub assertion: Option<String>,
}

/// Hourly minting caps (0 = none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MintCap {
    pub account: i64,
    pub member: i64,
}

/// Which cap stopped an insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapReached {
    Account,
    Member,
}

/// A live call session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSession {
    pub id: String,
    pub tenant_id: String,
    pub region: String,
    pub created_at: String,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub revoked_ms: Option<i64>,
    pub attempts: i64,
    pub lock_level: i64,
    pub locked_until_ms: i64,
    pub last_ok_counter: i64,
    /// Started with a member present: who, with which passkey, and the assertion (over
    /// `live::passkey_challenge`) that is the session's signature.
    pub member_id: Option<String>,
    pub passkey_id: Option<String>,
    pub assertion: Option<String>,
}

/// One recorded level change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelEvent {
    pub id: String,
    pub tenant_id: String,
    pub from_level: i64,
    pub to_level: i64,
    pub evidence_sealed: String,
    pub device_key_fingerprint: Option<String>,
    pub at: String,
}

macro_rules! message_code_columns {
    () => {
        "id, tenant_id, region, code_tag, message_sha256, recipient_tag, signature, created_at, \
         expires_at, expires_ms, used_ms, revoked_ms, member_id, passkey_id, assertion"
    };
}

macro_rules! live_session_columns {
    () => {
        "id, tenant_id, region, created_at, created_ms, expires_ms, revoked_ms, attempts, \
         lock_level, locked_until_ms, last_ok_counter, member_id, passkey_id, assertion"
    };
}

fn message_code_from(r: &sqlx::any::AnyRow) -> Result<MessageCodeRow, sqlx::Error> {
    Ok(MessageCodeRow {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        region: r.try_get("region")?,
        code_tag: r.try_get("code_tag")?,
        message_sha256: r.try_get("message_sha256")?,
        recipient_tag: r.try_get("recipient_tag")?,
        signature: r.try_get("signature")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        expires_ms: r.try_get("expires_ms")?,
        used_ms: r.try_get("used_ms")?,
        revoked_ms: r.try_get("revoked_ms")?,
        member_id: r.try_get("member_id")?,
        passkey_id: r.try_get("passkey_id")?,
        assertion: r.try_get("assertion")?,
    })
}

fn live_session_from(r: &sqlx::any::AnyRow) -> Result<LiveSession, sqlx::Error> {
    Ok(LiveSession {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        region: r.try_get("region")?,
        created_at: r.try_get("created_at")?,
        created_ms: r.try_get("created_ms")?,
        expires_ms: r.try_get("expires_ms")?,
        revoked_ms: r.try_get("revoked_ms")?,
        attempts: r.try_get("attempts")?,
        lock_level: r.try_get("lock_level")?,
        locked_until_ms: r.try_get("locked_until_ms")?,
        last_ok_counter: r.try_get("last_ok_counter")?,
        member_id: r.try_get("member_id")?,
        passkey_id: r.try_get("passkey_id")?,
        assertion: r.try_get("assertion")?,
    })
}

impl Db {
    /// The region's wrapped code secret, if one was created.
    pub async fn code_key(&self, region: &str) -> Result<Option<String>, DbError> {
        let r = sqlx::query("SELECT wrapped_key FROM code_keys WHERE region = $1")
            .bind(region)
            .fetch_optional(self.pool())
            .await?;
        Ok(r.map(|r| r.try_get("wrapped_key")).transpose()?)
    }

    /// Store a region's wrapped code secret unless another instance stored one first; returns
    /// the one that is stored (the winner's), so every instance uses the same secret.
    pub async fn insert_code_key(&self, region: &str, wrapped: &str) -> Result<String, DbError> {
        let (at, _) = now();
        sqlx::query("INSERT INTO code_keys (region, wrapped_key, created_at) VALUES ($1, $2, $3) ON CONFLICT (region) DO NOTHING")
            .bind(region)
            .bind(wrapped)
            .bind(&at)
            .execute(self.pool())
            .await?;
        self.code_key(region).await?.ok_or(DbError::NotFound)
    }

    /// Every region's wrapped code secret: (region, wrapped key), for rewrapping.
    pub async fn code_keys(&self) -> Result<Vec<(String, String)>, DbError> {
        let rows = sqlx::query("SELECT region, wrapped_key FROM code_keys ORDER BY region")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("region")?, r.try_get("wrapped_key")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(DbError::from)
    }

    /// Replace a region's wrapped code secret (same secret, newer master key version), only if
    /// it is still the one that was read.
    pub async fn replace_code_key(
        &self,
        region: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, DbError> {
        let r = sqlx::query(
            "UPDATE code_keys SET wrapped_key = $1 WHERE region = $2 AND wrapped_key = $3",
        )
        .bind(new)
        .bind(region)
        .bind(old)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The account of a tenant (level 0 and the tenant's name until the system says otherwise).
    pub async fn code_account(&self, tenant_id: &str) -> Result<CodeAccount, DbError> {
        let r = sqlx::query(
            "SELECT t.id, t.name, t.region, a.level, a.display_name, a.device_key, a.presence \
             FROM tenants t LEFT JOIN code_accounts a ON a.tenant_id = t.id WHERE t.id = $1",
        )
        .bind(tenant_id)
        .fetch_one(self.pool())
        .await?;
        let name: String = r.try_get("name")?;
        Ok(CodeAccount {
            tenant_id: r.try_get("id")?,
            region: r.try_get("region")?,
            level: r.try_get::<Option<i64>, _>("level")?.unwrap_or(0),
            display_name: r
                .try_get::<Option<String>, _>("display_name")?
                .unwrap_or_else(|| name.clone()),
            device_key: r.try_get("device_key")?,
            presence: r
                .try_get::<Option<String>, _>("presence")?
                .map(|p| p.parse())
                .transpose()
                .map_err(DbError::Invalid)?,
            tenant_name: name,
        })
    }

    pub(crate) async fn ensure_code_account(&self, tenant_id: &str) -> Result<(), DbError> {
        let (at, _) = now();
        sqlx::query(
            "INSERT INTO code_accounts (tenant_id, level, display_name, device_key, updated_at) \
             SELECT id, 0, name, NULL, $2 FROM tenants WHERE id = $1 \
             ON CONFLICT (tenant_id) DO NOTHING",
        )
        .bind(tenant_id)
        .bind(&at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Change an account's level from `event.from_level` to `event.to_level` and record the
    /// event, in one transaction. The UPDATE only applies while the level is still `from`, so
    /// two concurrent changes cannot both pass the one-step rule; `Conflict` when it moved.
    pub async fn change_code_level(
        &self,
        event: &LevelEvent,
        display_name: Option<&str>,
    ) -> Result<(), DbError> {
        self.ensure_code_account(&event.tenant_id).await?;
        let mut tx = self.pool().begin().await?;
        let r = sqlx::query(
            "UPDATE code_accounts SET level = $1, display_name = COALESCE($2, display_name), updated_at = $3 \
             WHERE tenant_id = $4 AND level = $5",
        )
        .bind(event.to_level)
        .bind(display_name)
        .bind(&event.at)
        .bind(&event.tenant_id)
        .bind(event.from_level)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Err(DbError::Conflict(
                "the account's level changed meanwhile".into(),
            ));
        }
        sqlx::query(
            "INSERT INTO code_level_events (id, tenant_id, from_level, to_level, evidence_sealed, device_key_fingerprint, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&event.id)
        .bind(&event.tenant_id)
        .bind(event.from_level)
        .bind(event.to_level)
        .bind(&event.evidence_sealed)
        .bind(&event.device_key_fingerprint)
        .bind(&event.at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replace one level event's sealed evidence, only if it is still the one that was read.
    pub async fn replace_level_event_evidence(
        &self,
        id: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, DbError> {
        let r = sqlx::query(
            "UPDATE code_level_events SET evidence_sealed = $1 WHERE id = $2 AND evidence_sealed = $3",
        )
        .bind(new)
        .bind(id)
        .bind(old)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn code_level_events(&self, tenant_id: &str) -> Result<Vec<LevelEvent>, DbError> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, from_level, to_level, evidence_sealed, device_key_fingerprint, at \
             FROM code_level_events WHERE tenant_id = $1 ORDER BY at, id",
        )
        .bind(tenant_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LevelEvent {
                    id: r.try_get("id")?,
                    tenant_id: r.try_get("tenant_id")?,
                    from_level: r.try_get("from_level")?,
                    to_level: r.try_get("to_level")?,
                    evidence_sealed: r.try_get("evidence_sealed")?,
                    device_key_fingerprint: r.try_get("device_key_fingerprint")?,
                    at: r.try_get("at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(DbError::from)
    }

    /// Register the account's device key. A new key has not been vetted, so an account at
    /// level 4 drops to 3 in the same statement; returns the level afterwards.
    pub async fn set_device_key(&self, tenant_id: &str, key: &str) -> Result<i64, DbError> {
        self.ensure_code_account(tenant_id).await?;
        let (at, _) = now();
        let r = sqlx::query(
            "UPDATE code_accounts SET device_key = $1, updated_at = $2, \
             level = CASE WHEN level >= 4 THEN 3 ELSE level END WHERE tenant_id = $3 RETURNING level",
        )
        .bind(key)
        .bind(&at)
        .bind(tenant_id)
        .fetch_one(self.pool())
        .await?;
        Ok(r.try_get("level")?)
    }

    /// Which cap, if any, `tenant` (or its `member`) has reached since `since` — read without
    /// the lock [`Self::insert_message_code`] takes, so a hint before a member's gesture; the
    /// insert decides.
    pub async fn mint_cap_reached(
        &self,
        tenant_id: &str,
        member_id: Option<&str>,
        since: &str,
        cap: MintCap,
    ) -> Result<Option<CapReached>, DbError> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(SUM(CASE WHEN member_id = $3 THEN 1 ELSE 0 END), 0) AS m \
             FROM message_codes WHERE tenant_id = $1 AND created_at >= $2",
        )
        .bind(tenant_id)
        .bind(since)
        .bind(member_id.unwrap_or(""))
        .fetch_one(self.pool())
        .await?;
        let (n, m): (i64, i64) = (r.try_get("n")?, r.try_get("m")?);
        Ok(if cap.account > 0 && n >= cap.account {
            Some(CapReached::Account)
        } else if cap.member > 0 && member_id.is_some() && m >= cap.member {
            Some(CapReached::Member)
        } else {
            None
        })
    }

    /// Inserts `c` unless its tenant has issued `cap.account` message codes or more since
    /// `since` (RFC 3339, UTC), or its member `cap.member` (0 = no cap). The counts and the
    /// insert run under a lock on the tenant's row, so concurrent issues cannot pass a cap
    /// together. `Ok(Some(cap))` names the cap reached: nothing is written.
    pub async fn insert_message_code(
        &self,
        c: &MessageCodeRow,
        since: &str,
        cap: MintCap,
    ) -> Result<Option<CapReached>, DbError> {
        let mut tx = self.pool().begin().await?;
        if cap.account > 0 || cap.member > 0 {
            sqlx::query("UPDATE tenants SET name = name WHERE id = $1")
                .bind(&c.tenant_id)
                .execute(&mut *tx)
                .await?;
        }
        if cap.account > 0 {
            let issued: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM message_codes WHERE tenant_id = $1 AND created_at >= $2",
            )
            .bind(&c.tenant_id)
            .bind(since)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
            if issued >= cap.account {
                return Ok(Some(CapReached::Account));
            }
        }
        if cap.member > 0
            && let Some(member) = &c.member_id
        {
            let issued: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM message_codes WHERE tenant_id = $1 AND member_id = $2 \
                 AND created_at >= $3",
            )
            .bind(&c.tenant_id)
            .bind(member)
            .bind(since)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
            if issued >= cap.member {
                return Ok(Some(CapReached::Member));
            }
        }
        sqlx::query(concat!(
            "INSERT INTO message_codes (",
            message_code_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .bind(&c.id)
        .bind(&c.tenant_id)
        .bind(&c.region)
        .bind(&c.code_tag)
        .bind(&c.message_sha256)
        .bind(&c.recipient_tag)
        .bind(&c.signature)
        .bind(&c.created_at)
        .bind(&c.expires_at)
        .bind(c.expires_ms)
        .bind(c.used_ms)
        .bind(c.revoked_ms)
        .bind(&c.member_id)
        .bind(&c.passkey_id)
        .bind(&c.assertion)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(None)
    }

    pub async fn message_code_by_tag(&self, tag: &str) -> Result<Option<MessageCodeRow>, DbError> {
        let r = sqlx::query(concat!(
            "SELECT ",
            message_code_columns!(),
            " FROM message_codes WHERE code_tag = $1"
        ))
        .bind(tag)
        .fetch_optional(self.pool())
        .await?;
        Ok(r.as_ref().map(message_code_from).transpose()?)
    }

    /// The one-time claim of a message code and its audit entry (`code.verify`, outcome ok,
    /// detail `valid`) in one transaction: a code is never used up without its entry, nor
    /// recorded as used without being so. Marks the code used at `now_ms` only if it is still
    /// unused, unrevoked and unexpired: exactly one of any number of concurrent callers gets
    /// `true`; the others get `false` and nothing is written.
    pub async fn claim_message_code_audited(
        &self,
        id: &str,
        now_ms: i64,
        actor: &str,
    ) -> Result<bool, DbError> {
        let mut tx = self.pool().begin().await?;
        let r = sqlx::query(
            "UPDATE message_codes SET used_ms = $1 WHERE id = $2 AND used_ms IS NULL \
             AND revoked_ms IS NULL AND expires_ms > $1",
        )
        .bind(now_ms)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        crate::audit::audit_in(&mut tx, [actor, "code.verify", id, "ok", "valid"]).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn message_code(&self, id: &str) -> Result<MessageCodeRow, DbError> {
        let r = sqlx::query(concat!(
            "SELECT ",
            message_code_columns!(),
            " FROM message_codes WHERE id = $1"
        ))
        .bind(id)
        .fetch_one(self.pool())
        .await?;
        Ok(message_code_from(&r)?)
    }

    /// Per account with at least `min_issued` message codes issued since `since` (RFC 3339,
    /// UTC): (tenant id, tenant name, codes issued, codes verified), most issued first.
    pub async fn code_volume_since(
        &self,
        since: &str,
        min_issued: i64,
    ) -> Result<Vec<(String, String, i64, i64)>, DbError> {
        let rows = sqlx::query(
            "SELECT m.tenant_id AS tenant_id, t.name AS name, COUNT(*) AS issued, \
             COUNT(m.used_ms) AS verified FROM message_codes m JOIN tenants t ON t.id = m.tenant_id \
             WHERE m.created_at >= $1 GROUP BY m.tenant_id, t.name HAVING COUNT(*) >= $2 \
             ORDER BY issued DESC, t.name",
        )
        .bind(since)
        .bind(min_issued)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("tenant_id")?,
                    r.try_get("name")?,
                    r.try_get("issued")?,
                    r.try_get("verified")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(DbError::from)
    }

    /// A tenant's outstanding message codes (unused, unrevoked, unexpired at `now_ms`),
    /// newest first, at most `limit`.
    pub async fn outstanding_message_codes(
        &self,
        tenant_id: &str,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<MessageCodeRow>, DbError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            message_code_columns!(),
            " FROM message_codes WHERE tenant_id = $1 AND used_ms IS NULL AND revoked_ms IS NULL \
             AND expires_ms > $2 ORDER BY created_at DESC, id DESC LIMIT $3"
        ))
        .bind(tenant_id)
        .bind(now_ms)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(message_code_from)
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// Revokes one of the tenant's outstanding message codes; `false` when it is not the
    /// tenant's, or already used, revoked or expired.
    pub async fn revoke_message_code(
        &self,
        tenant_id: &str,
        id: &str,
        now_ms: i64,
    ) -> Result<bool, DbError> {
        let r = sqlx::query(
            "UPDATE message_codes SET revoked_ms = $1 WHERE tenant_id = $2 AND id = $3 \
             AND used_ms IS NULL AND revoked_ms IS NULL AND expires_ms > $1",
        )
        .bind(now_ms)
        .bind(tenant_id)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Revoke every outstanding code of a tenant (unused message codes and live sessions) at
    /// once; returns (message codes, live sessions) revoked.
    pub async fn revoke_all_codes(
        &self,
        tenant_id: &str,
        now_ms: i64,
    ) -> Result<(u64, u64), DbError> {
        let mut tx = self.pool().begin().await?;
        let m = sqlx::query(
            "UPDATE message_codes SET revoked_ms = $1 WHERE tenant_id = $2 AND revoked_ms IS NULL AND used_ms IS NULL",
        )
        .bind(now_ms)
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        let l = sqlx::query(
            "UPDATE live_sessions SET revoked_ms = $1 WHERE tenant_id = $2 AND revoked_ms IS NULL",
        )
        .bind(now_ms)
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((m.rows_affected(), l.rows_affected()))
    }

    pub async fn insert_live_session(&self, s: &LiveSession) -> Result<(), DbError> {
        sqlx::query(concat!(
            "INSERT INTO live_sessions (",
            live_session_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(&s.id)
        .bind(&s.tenant_id)
        .bind(&s.region)
        .bind(&s.created_at)
        .bind(s.created_ms)
        .bind(s.expires_ms)
        .bind(s.revoked_ms)
        .bind(s.attempts)
        .bind(s.lock_level)
        .bind(s.locked_until_ms)
        .bind(s.last_ok_counter)
        .bind(&s.member_id)
        .bind(&s.passkey_id)
        .bind(&s.assertion)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn live_session(&self, id: &str) -> Result<Option<LiveSession>, DbError> {
        let r = sqlx::query(concat!(
            "SELECT ",
            live_session_columns!(),
            " FROM live_sessions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(r.as_ref().map(live_session_from).transpose()?)
    }

    /// Take one of the session's tries before a code is compared, so concurrent guesses cannot
    /// exceed the cap: `None` when the session is revoked, expired, locked or out of tries;
    /// otherwise (tries taken including this one, lock level).
    pub async fn reserve_live_attempt(
        &self,
        id: &str,
        now_ms: i64,
        max_failures: i64,
    ) -> Result<Option<(i64, i64)>, DbError> {
        let r = sqlx::query(
            "UPDATE live_sessions SET attempts = attempts + 1 WHERE id = $1 AND revoked_ms IS NULL \
             AND expires_ms > $2 AND locked_until_ms <= $2 AND attempts < $3 RETURNING attempts, lock_level",
        )
        .bind(id)
        .bind(now_ms)
        .bind(max_failures)
        .fetch_optional(self.pool())
        .await?;
        Ok(
            r.map(|r| Ok::<_, sqlx::Error>((r.try_get("attempts")?, r.try_get("lock_level")?)))
                .transpose()?,
        )
    }

    /// A right code of window `counter`: succeeds once per window (`false` = already verified
    /// in this window); a success clears the tries and the lock history.
    pub async fn live_success(&self, id: &str, counter: i64) -> Result<bool, DbError> {
        let r = sqlx::query(
            "UPDATE live_sessions SET attempts = 0, lock_level = 0, last_ok_counter = $1 \
             WHERE id = $2 AND last_ok_counter < $1",
        )
        .bind(counter)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Give back a reserved try (the code was right, only already used).
    pub async fn release_live_attempt(&self, id: &str) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE live_sessions SET attempts = attempts - 1 WHERE id = $1 AND attempts > 0",
        )
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The try that used up the cap locks the session until `until_ms` and starts a new cycle
    /// with the next (doubled) lock level.
    pub async fn lock_live_session(
        &self,
        id: &str,
        lock_level: i64,
        until_ms: i64,
    ) -> Result<bool, DbError> {
        let r = sqlx::query(
            "UPDATE live_sessions SET attempts = 0, lock_level = lock_level + 1, locked_until_ms = $1 \
             WHERE id = $2 AND lock_level = $3",
        )
        .bind(until_ms)
        .bind(id)
        .bind(lock_level)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Forget message codes and live sessions that expired before `before_ms` (verifiers still
    /// hear `expired` until then, `unknown` after).
    pub async fn forget_expired_codes(&self, before_ms: i64) -> Result<u64, DbError> {
        let m = sqlx::query("DELETE FROM message_codes WHERE expires_ms < $1")
            .bind(before_ms)
            .execute(self.pool())
            .await?;
        let l = sqlx::query("DELETE FROM live_sessions WHERE expires_ms < $1")
            .bind(before_ms)
            .execute(self.pool())
            .await?;
        let c = sqlx::query("DELETE FROM passkey_ceremonies WHERE expires_ms < $1")
            .bind(before_ms)
            .execute(self.pool())
            .await?;
        Ok(m.rows_affected() + l.rows_affected() + c.rows_affected())
    }
}
