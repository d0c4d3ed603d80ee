//! The audit log: append-only, hash-chained entries (who, what, which object, when, outcome)
//! and the check that recomputes the chain. Entries never hold secrets or image bytes.

use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::meta::{Db, DbError, now};

/// One audit entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: String,
    /// `key:<api key id>`, `tenant:<id>`, `member:<id>`, `cli`, `system`, or `anonymous`.
    pub actor: String,
    pub action: String,
    pub object: String,
    pub outcome: String,
    /// Short, non-personal context (e.g. an error code).
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The chain's genesis value.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// SHA-256 over the previous hash, the sequence number and the fields (at, actor, action,
/// object, outcome, detail), each length-prefixed (no ambiguity).
pub fn entry_hash(prev: &str, seq: i64, fields: [&str; 6]) -> String {
    let mut h = Sha256::new();
    h.update(b"pixseal audit v1");
    let seq = seq.to_string();
    for part in [prev, seq.as_str()].into_iter().chain(fields) {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Where a chain check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    pub seq: i64,
    pub reason: String,
}

impl Db {
    /// Append one entry to the chain.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        object: &str,
        outcome: &str,
        detail: &str,
    ) -> Result<AuditEntry, DbError> {
        let mut tx = self.pool().begin().await?;
        let entry = audit_in(&mut tx, [actor, action, object, outcome, detail]).await?;
        tx.commit().await?;
        Ok(entry)
    }

    pub async fn audit_entries(&self) -> Result<Vec<AuditEntry>, DbError> {
        let rows = sqlx::query("SELECT seq, at, actor, action, object, outcome, detail, prev_hash, hash FROM audit_log ORDER BY seq")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    seq: r.try_get("seq")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    object: r.try_get("object")?,
                    outcome: r.try_get("outcome")?,
                    detail: r.try_get("detail")?,
                    prev_hash: r.try_get("prev_hash")?,
                    hash: r.try_get("hash")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(DbError::from)
    }

    /// The chain's head as recorded: its sequence number and hash (0 and the genesis value
    /// while empty).
    pub async fn audit_head(&self) -> Result<(i64, String), DbError> {
        let r = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_optional(self.pool())
            .await?;
        Ok(match r {
            Some(r) => (r.try_get("seq")?, r.try_get("hash")?),
            None => (0, GENESIS.to_string()),
        })
    }

    /// What is wrong with the chain against a checkpoint that saw entry `seq` with `hash`:
    /// `None` when the chain still holds that entry (an intact chain then extends the
    /// checkpoint: each entry's hash covers every one before it).
    pub async fn audit_against(&self, seq: i64, hash: &str) -> Result<Option<String>, DbError> {
        if seq == 0 {
            return Ok((hash != GENESIS)
                .then(|| "the checkpoint's empty chain has another genesis".into()));
        }
        let r = sqlx::query("SELECT hash FROM audit_log WHERE seq = $1")
            .bind(seq)
            .fetch_optional(self.pool())
            .await?;
        Ok(match r {
            None => Some(format!(
                "entry {seq}, the head at the checkpoint, is gone: the chain was cut"
            )),
            Some(r) => {
                let now: String = r.try_get("hash")?;
                (now != hash).then(|| {
                    format!("entry {seq} differs from the checkpoint: the chain was rewritten")
                })
            }
        })
    }

    /// Recompute the chain from genesis to the head; `Ok(None)` when intact, else the first
    /// broken link (an edited, inserted or deleted entry, or a head that does not match).
    pub async fn audit_verify(&self) -> Result<(usize, Option<BrokenLink>), DbError> {
        let entries = self.audit_entries().await?;
        let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(self.pool())
            .await?;
        let (head_seq, head_hash): (i64, String) = (head.try_get("seq")?, head.try_get("hash")?);
        let mut prev = GENESIS.to_string();
        for (i, e) in entries.iter().enumerate() {
            let expected_seq = i as i64 + 1;
            if e.seq != expected_seq {
                return Ok((
                    entries.len(),
                    Some(BrokenLink {
                        seq: expected_seq,
                        reason: format!("entry {expected_seq} is missing"),
                    }),
                ));
            }
            if e.prev_hash != prev {
                return Ok((
                    entries.len(),
                    Some(BrokenLink {
                        seq: e.seq,
                        reason: "previous-hash link does not match".into(),
                    }),
                ));
            }
            let h = entry_hash(
                &prev,
                e.seq,
                [&e.at, &e.actor, &e.action, &e.object, &e.outcome, &e.detail],
            );
            if h != e.hash {
                return Ok((
                    entries.len(),
                    Some(BrokenLink {
                        seq: e.seq,
                        reason: "entry content does not match its hash".into(),
                    }),
                ));
            }
            prev = h;
        }
        if head_seq != entries.len() as i64 || head_hash != prev {
            let seq = entries.len() as i64 + 1;
            return Ok((
                entries.len(),
                Some(BrokenLink {
                    seq,
                    reason: format!(
                        "chain ends at {} but the head says {head_seq}",
                        entries.len()
                    ),
                }),
            ));
        }
        Ok((entries.len(), None))
    }
}

/// Appends one entry (actor, action, object, outcome, detail) to the chain inside `tx`, so that
/// it lands together with the change it records, or not at all.
pub(crate) async fn audit_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    [actor, action, object, outcome, detail]: [&str; 5],
) -> Result<AuditEntry, DbError> {
    // Taking the head row for update first serialises concurrent appends.
    let head = sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
        .fetch_one(&mut **tx)
        .await?;
    let seq: i64 = head.try_get("seq")?;
    let prev: String = head.try_get("hash")?;
    let (at, _) = now();
    let hash = entry_hash(&prev, seq, [&at, actor, action, object, outcome, detail]);
    sqlx::query(
        "INSERT INTO audit_log (seq, at, actor, action, object, outcome, detail, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(seq)
    .bind(&at)
    .bind(actor)
    .bind(action)
    .bind(object)
    .bind(outcome)
    .bind(detail)
    .bind(&prev)
    .bind(&hash)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&hash)
        .execute(&mut **tx)
        .await?;
    Ok(AuditEntry {
        seq,
        at,
        actor: actor.into(),
        action: action.into(),
        object: object.into(),
        outcome: outcome.into(),
        detail: detail.into(),
        prev_hash: prev,
        hash,
    })
}
