//! Storage of members, their passkeys and the WebAuthn ceremonies under way (pixseal-codes holds
//! the checks). Every step that must happen once — taking a ceremony, spending an enrollment
//! token, moving a signature counter — is one conditional statement whose affected-row count
//! decides, the same on SQLite and PostgreSQL.

use std::str::FromStr;

use sqlx::Row;

use crate::meta::{Db, DbError, now};

/// Whether an account's codes need a person present (a passkey assertion) to be minted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Required,
    Optional,
}

impl Presence {
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Required => "required",
            Presence::Optional => "optional",
        }
    }
}

impl FromStr for Presence {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "required" => Ok(Presence::Required),
            "optional" => Ok(Presence::Optional),
            other => Err(format!("presence is required or optional, not {other:?}")),
        }
    }
}

/// A member of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    /// Base64url of the member's 64-byte WebAuthn user handle.
    pub user_handle: String,
    pub created_at: String,
}

/// A registered passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRow {
    /// The credential ID, base64url.
    pub id: String,
    pub tenant_id: String,
    pub member_id: String,
    /// `PasskeyKey::to_text` form.
    pub public_key: String,
    pub sign_count: i64,
    pub aaguid: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// What a ceremony is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    Register,
    Mint,
    /// Starting a live call session with a member present.
    Live,
}

impl CeremonyKind {
    fn as_str(self) -> &'static str {
        match self {
            CeremonyKind::Register => "register",
            CeremonyKind::Mint => "mint",
            CeremonyKind::Live => "live",
        }
    }
}

/// A WebAuthn ceremony under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ceremony {
    pub id: String,
    pub kind: CeremonyKind,
    pub tenant_id: String,
    pub member_id: Option<String>,
    pub state: String,
    pub bound: Option<String>,
    pub code_expires_ms: Option<i64>,
    pub expires_ms: i64,
}

macro_rules! passkey_columns {
    () => {
        "id, tenant_id, member_id, public_key, sign_count, aaguid, created_at, last_used_at, \
         revoked_at"
    };
}

fn passkey_from(r: &sqlx::any::AnyRow) -> Result<PasskeyRow, sqlx::Error> {
    Ok(PasskeyRow {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        member_id: r.try_get("member_id")?,
        public_key: r.try_get("public_key")?,
        sign_count: r.try_get("sign_count")?,
        aaguid: r.try_get("aaguid")?,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

fn member_from(r: &sqlx::any::AnyRow) -> Result<Member, sqlx::Error> {
    Ok(Member {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        name: r.try_get("name")?,
        user_handle: r.try_get("user_handle")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Db {
    /// Add a member, or give an existing one (same tenant and name) a new enrollment token;
    /// only the token's SHA-256 is stored. Returns the member.
    pub async fn enroll_member(
        &self,
        m: &Member,
        enrollment_sha256: &str,
        enrollment_expires_ms: i64,
    ) -> Result<Member, DbError> {
        sqlx::query(
            "INSERT INTO members (id, tenant_id, name, user_handle, enrollment_sha256, \
             enrollment_expires_ms, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (tenant_id, name) DO UPDATE SET enrollment_sha256 = $5, \
             enrollment_expires_ms = $6",
        )
        .bind(&m.id)
        .bind(&m.tenant_id)
        .bind(&m.name)
        .bind(&m.user_handle)
        .bind(enrollment_sha256)
        .bind(enrollment_expires_ms)
        .bind(&m.created_at)
        .execute(self.pool())
        .await?;
        let r = sqlx::query(
            "SELECT id, tenant_id, name, user_handle, created_at FROM members \
             WHERE tenant_id = $1 AND name = $2",
        )
        .bind(&m.tenant_id)
        .bind(&m.name)
        .fetch_one(self.pool())
        .await?;
        Ok(member_from(&r)?)
    }

    /// The member an unexpired enrollment token (by its SHA-256) belongs to.
    pub async fn member_by_enrollment(
        &self,
        enrollment_sha256: &str,
        now_ms: i64,
    ) -> Result<Option<Member>, DbError> {
        let r = sqlx::query(
            "SELECT id, tenant_id, name, user_handle, created_at FROM members \
             WHERE enrollment_sha256 = $1 AND enrollment_expires_ms > $2",
        )
        .bind(enrollment_sha256)
        .bind(now_ms)
        .fetch_optional(self.pool())
        .await?;
        Ok(r.as_ref().map(member_from).transpose()?)
    }

    pub async fn member(&self, id: &str) -> Result<Member, DbError> {
        let r = sqlx::query(
            "SELECT id, tenant_id, name, user_handle, created_at FROM members WHERE id = $1",
        )
        .bind(id)
        .fetch_one(self.pool())
        .await?;
        Ok(member_from(&r)?)
    }

    pub async fn members(&self, tenant_id: &str) -> Result<Vec<Member>, DbError> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, name, user_handle, created_at FROM members \
             WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(tenant_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(member_from)
            .collect::<Result<_, sqlx::Error>>()?)
    }

    pub async fn insert_ceremony(&self, c: &Ceremony) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO passkey_ceremonies (id, kind, tenant_id, member_id, state, bound, \
             code_expires_ms, expires_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&c.id)
        .bind(c.kind.as_str())
        .bind(&c.tenant_id)
        .bind(&c.member_id)
        .bind(&c.state)
        .bind(&c.bound)
        .bind(c.code_expires_ms)
        .bind(c.expires_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Take (delete and return) an unexpired ceremony of `kind`: exactly one caller gets it.
    /// Only `tenant`'s, when given (a mint ceremony belongs to the account that asked).
    pub async fn take_ceremony(
        &self,
        id: &str,
        kind: CeremonyKind,
        tenant: Option<&str>,
        now_ms: i64,
    ) -> Result<Option<Ceremony>, DbError> {
        let q = match tenant {
            Some(_) => sqlx::query(
                "DELETE FROM passkey_ceremonies WHERE id = $1 AND kind = $2 AND tenant_id = $3 \
                 RETURNING id, tenant_id, member_id, state, bound, code_expires_ms, expires_ms",
            ),
            None => sqlx::query(
                "DELETE FROM passkey_ceremonies WHERE id = $1 AND kind = $2 \
                 RETURNING id, tenant_id, member_id, state, bound, code_expires_ms, expires_ms",
            ),
        };
        let q = q.bind(id).bind(kind.as_str());
        let q = match tenant {
            Some(t) => q.bind(t),
            None => q,
        };
        let r = q.fetch_optional(self.pool()).await?;
        let Some(r) = r else { return Ok(None) };
        let c = Ceremony {
            id: r.try_get("id")?,
            kind,
            tenant_id: r.try_get("tenant_id")?,
            member_id: r.try_get("member_id")?,
            state: r.try_get("state")?,
            bound: r.try_get("bound")?,
            code_expires_ms: r.try_get("code_expires_ms")?,
            expires_ms: r.try_get("expires_ms")?,
        };
        Ok((c.expires_ms > now_ms).then_some(c))
    }

    /// Store a registered passkey and spend the enrollment token it was made with, together:
    /// `Ok(false)` (nothing written) when the token was spent or replaced meanwhile.
    pub async fn insert_passkey(
        &self,
        p: &PasskeyRow,
        enrollment_sha256: &str,
        now_ms: i64,
    ) -> Result<bool, DbError> {
        let mut tx = self.pool().begin().await?;
        let spent = sqlx::query(
            "UPDATE members SET enrollment_sha256 = NULL, enrollment_expires_ms = NULL \
             WHERE id = $1 AND enrollment_sha256 = $2 AND enrollment_expires_ms > $3",
        )
        .bind(&p.member_id)
        .bind(enrollment_sha256)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        if spent.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(concat!(
            "INSERT INTO passkeys (",
            passkey_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&p.id)
        .bind(&p.tenant_id)
        .bind(&p.member_id)
        .bind(&p.public_key)
        .bind(p.sign_count)
        .bind(&p.aaguid)
        .bind(&p.created_at)
        .bind(&p.last_used_at)
        .bind(&p.revoked_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| match DbError::from(e) {
            DbError::Conflict(_) => DbError::Conflict("this passkey is already registered".into()),
            other => other,
        })?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn passkey(&self, id: &str) -> Result<Option<PasskeyRow>, DbError> {
        let r = sqlx::query(concat!(
            "SELECT ",
            passkey_columns!(),
            " FROM passkeys WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(r.as_ref().map(passkey_from).transpose()?)
    }

    pub async fn passkeys(&self, tenant_id: &str) -> Result<Vec<PasskeyRow>, DbError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            passkey_columns!(),
            " FROM passkeys WHERE tenant_id = $1 ORDER BY created_at, id"
        ))
        .bind(tenant_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(passkey_from)
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// Move an unrevoked passkey's counter up to `to` and note its use, only if the stored
    /// counter is still below `to` (or both are 0: an authenticator without a counter): of two
    /// racing assertions the higher counter lands, and an older one never moves it back.
    pub async fn advance_passkey(&self, id: &str, to: i64) -> Result<bool, DbError> {
        let (at, _) = now();
        let r = sqlx::query(
            "UPDATE passkeys SET sign_count = $1, last_used_at = $2 WHERE id = $3 \
             AND revoked_at IS NULL AND (sign_count < $1 OR (sign_count = 0 AND $4 = 0))",
        )
        .bind(to)
        .bind(&at)
        .bind(id)
        .bind(to)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Revoke one of a tenant's passkeys; `false` when it is not the tenant's or already revoked.
    pub async fn revoke_passkey(&self, tenant_id: &str, id: &str) -> Result<bool, DbError> {
        let (at, _) = now();
        let r = sqlx::query(
            "UPDATE passkeys SET revoked_at = $1 WHERE tenant_id = $2 AND id = $3 \
             AND revoked_at IS NULL",
        )
        .bind(&at)
        .bind(tenant_id)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Set whether an account's minting needs a person present (`None`: the default).
    pub async fn set_presence(
        &self,
        tenant_id: &str,
        presence: Option<Presence>,
    ) -> Result<(), DbError> {
        self.ensure_code_account(tenant_id).await?;
        let (at, _) = now();
        sqlx::query("UPDATE code_accounts SET presence = $1, updated_at = $2 WHERE tenant_id = $3")
            .bind(presence.map(Presence::as_str))
            .bind(&at)
            .bind(tenant_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
