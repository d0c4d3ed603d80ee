//! The dashboard's workflows: an API key (or a member's passkey, `passkeys.rs`) exchanged for a
//! server-side session (the browser holds only a random token; the database only its SHA-256),
//! the session's caller, its CSRF token, and the gallery read a page at a time.

use pixseal_store::{DbError, PageAfter, Scope};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::artifacts::ArtifactView;
use crate::{Actor, Caller, Outcome, Result, ServiceError, Services};

/// The most artifacts one gallery page holds.
pub const MAX_PAGE: u32 = 100;

/// Whose a session is, told by its token's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionKind {
    /// Opened with an API key.
    Key,
    /// Opened by a member with a passkey.
    Member,
}

impl SessionKind {
    fn prefix(self) -> &'static str {
        match self {
            SessionKind::Key => "pxs_",
            SessionKind::Member => "pxm_",
        }
    }

    /// The kind of a well-formed token (a prefix and 64 lowercase hex digits), else `None`.
    fn of(token: &str) -> Option<SessionKind> {
        let kind = [SessionKind::Key, SessionKind::Member]
            .into_iter()
            .find(|k| token.starts_with(k.prefix()))?;
        let rest = &token[4..];
        (rest.len() == 64 && rest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then_some(kind)
    }
}

/// A new session: the token the browser keeps (in an HttpOnly cookie) and how long it lasts.
pub struct Session {
    pub token: String,
    pub max_age_secs: i64,
}

/// One page of a tenant's artifacts, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ArtifactPage {
    pub artifacts: Vec<ArtifactView>,
    /// The tenant's active artifacts in all.
    pub total: i64,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next: Option<String>,
}

/// The CSRF token of a session: derived from its token, so it needs no storage, and a page
/// that cannot read the HttpOnly cookie cannot compute it.
pub fn csrf_token(session_token: &str) -> String {
    let d = Sha256::new()
        .chain_update(b"pixseal csrf v1\n")
        .chain_update(session_token.as_bytes())
        .finalize();
    hex::encode(&d[..16])
}

/// Whether `given` is the CSRF token of `session_token`. The two are compared as hashes, so
/// the comparison's time says nothing about the expected token.
pub fn csrf_matches(session_token: &str, given: &str) -> bool {
    Sha256::digest(csrf_token(session_token).as_bytes()) == Sha256::digest(given.as_bytes())
}

fn parse_cursor(c: &str) -> Result<PageAfter> {
    let bad = || ServiceError::request("cursor is not one this service gave");
    let (ms, id) = c.split_once('.').ok_or_else(bad)?;
    let created_ms = ms.parse().map_err(|_| bad())?;
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(bad());
    }
    Ok(PageAfter {
        created_ms,
        id: id.to_string(),
    })
}

impl Services {
    /// Exchange an API key holding `artifacts:read` for a session of `[server].session_minutes`.
    pub async fn sign_in(&self, secret: &str) -> Result<(Caller, Session)> {
        let caller = self.authenticate(secret, "/app/sign-in").await?;
        caller.require(Scope::ArtifactsRead)?;
        let Actor::ApiKey(key_id) = caller.actor() else {
            return Err(ServiceError::internal(
                "an API key's caller without its key",
            ));
        };
        let (token, now, expires_ms, max_age_secs) = self.new_session(SessionKind::Key)?;
        self.db
            .create_web_session(&token, &key_id, now, expires_ms)
            .await?;
        self.audit(&caller.actor(), "session.create", &key_id, Outcome::Ok)
            .await;
        Ok((
            caller,
            Session {
                token,
                max_age_secs,
            },
        ))
    }

    /// A new session's token (`pxs_` for an API key's, `pxm_` for a member's, then 64 hex
    /// digits of OS randomness), its start and end, and its length in seconds.
    pub(crate) fn new_session(&self, kind: SessionKind) -> Result<(String, i64, i64, i64)> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw)
            .map_err(|e| ServiceError::internal(format!("OS randomness: {e}")))?;
        let token = format!("{}{}", kind.prefix(), hex::encode(raw));
        let minutes =
            i64::try_from(self.config.session_minutes.clamp(1, 60 * 24 * 30)).unwrap_or(60);
        let now = self.clock.now_ms();
        Ok((
            token,
            now,
            now.saturating_add(minutes * 60_000),
            minutes * 60,
        ))
    }

    /// The caller of a live session: an API key's (revoking the key ends it) or a member's
    /// (revoking the passkey it was opened with ends it).
    pub async fn session_caller(&self, token: &str) -> Result<Caller> {
        let ended = || ServiceError::Unauthorized("no session, or it ended");
        let kind = SessionKind::of(token).ok_or_else(ended)?;
        let now = self.clock.now_ms();
        let found = match kind {
            SessionKind::Key => self
                .db
                .web_session_key(token, now)
                .await
                .map(Caller::with_key),
            SessionKind::Member => self
                .db
                .member_session(token, now)
                .await
                .map(|m| Caller::member(m.member_id, m.tenant)),
        };
        match found {
            Ok(caller) => Ok(caller),
            Err(DbError::NotFound) => Err(ended()),
            Err(e) => Err(e.into()),
        }
    }

    /// End a session.
    pub async fn sign_out(&self, caller: &Caller, token: &str) -> Result<()> {
        match SessionKind::of(token) {
            Some(SessionKind::Member) => self.db.delete_member_session(token).await?,
            _ => self.db.delete_web_session(token).await?,
        };
        self.audit(&caller.actor(), "session.end", caller.id(), Outcome::Ok)
            .await;
        Ok(())
    }

    /// Up to `limit` (at most [`MAX_PAGE`]) of the caller's artifacts, newest first, after
    /// `cursor` (from the previous page's `next`).
    pub async fn artifacts_page(
        &self,
        caller: &Caller,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<ArtifactPage> {
        let tenant = caller.require(Scope::ArtifactsRead)?;
        let after = cursor.map(parse_cursor).transpose()?;
        let limit = limit.clamp(1, MAX_PAGE);
        let mut rows = self
            .db
            .artifacts_page(&tenant.id, after.as_ref(), i64::from(limit) + 1)
            .await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next = more
            .then(|| rows.last().map(|a| format!("{}.{}", a.created_ms, a.id)))
            .flatten();
        let total = self.db.count_artifacts(&tenant.id).await?;
        self.audit(&caller.actor(), "artifact.list", &tenant.id, Outcome::Ok)
            .await;
        Ok(ArtifactPage {
            artifacts: rows.iter().map(|a| self.view(a)).collect(),
            total,
            next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let a = "pxs_".to_string() + &"a".repeat(64);
        let b = "pxs_".to_string() + &"b".repeat(64);
        assert!(csrf_matches(&a, &csrf_token(&a)));
        assert!(!csrf_matches(&a, &csrf_token(&b)));
        assert!(!csrf_matches(&a, ""));
        assert_eq!(csrf_token(&a).len(), 32);
    }

    #[test]
    fn session_tokens_say_whose_they_are() {
        let hex = "0123456789abcdef".repeat(4);
        assert_eq!(
            SessionKind::of(&format!("pxs_{hex}")),
            Some(SessionKind::Key)
        );
        assert_eq!(
            SessionKind::of(&format!("pxm_{hex}")),
            Some(SessionKind::Member)
        );
        assert_eq!(SessionKind::of(&format!("pxk_{hex}")), None);
        assert_eq!(SessionKind::of(&format!("pxm_{}", &hex[1..])), None);
        assert_eq!(
            SessionKind::of(&format!("pxm_{}", hex.to_uppercase())),
            None
        );
        assert_eq!(SessionKind::of("pxm_"), None);
    }

    #[test]
    fn cursors_are_checked() {
        assert_eq!(
            parse_cursor("1700000000000.0192aaaa-0000-7000-8000-000000000000").unwrap(),
            PageAfter {
                created_ms: 1_700_000_000_000,
                id: "0192aaaa-0000-7000-8000-000000000000".into()
            }
        );
        for bad in ["", "x", "12", "12.", "a.b", "1.a'b", "1.a b"] {
            assert!(parse_cursor(bad).is_err(), "{bad}");
        }
    }
}
