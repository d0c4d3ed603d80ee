//! Metadata on SQLite (embedded default) or PostgreSQL through one `sqlx::Any` pool: tenants,
//! API keys (stored as SHA-256 only), artifacts. The same SQL and the same migrations run on
//! both (`$n` parameters, portable types).

use std::str::FromStr;

use base64::Engine;
use sha2::{Digest, Sha256};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

use crate::states::{ArtifactState, ProofStatus, Scope, UnknownValue};

/// Which database the pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => DbError::NotFound,
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                DbError::Conflict(d.message().to_string())
            }
            other => DbError::Unavailable(other.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub region: String,
    pub retention_days: i64,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub tenant: Tenant,
    pub scopes: Vec<Scope>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl ApiKey {
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes
            .iter()
            .any(|s| *s == scope || *s == Scope::Admin)
    }
}

/// A stored artifact's metadata row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub id: String,
    pub tenant_id: String,
    pub region: String,
    pub proof_id: String,
    pub state: ArtifactState,
    pub sha256: String,
    pub original_sha256: String,
    pub content_type: String,
    pub width: i64,
    pub height: i64,
    pub bytes: i64,
    /// `WrappedKey::to_bytes`, base64: deleting it crypto-shreds the blob.
    pub wrapped_key: String,
    pub label_sealed: Option<String>,
    pub client_ip_sealed: Option<String>,
    pub created_at: String,
    pub created_ms: i64,
    pub expires_at: String,
    pub expires_ms: i64,
}

/// The public proof record of one stamp (what survives the purge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofRecord {
    pub proof_id: String,
    pub sha256: String,
    pub original_sha256: String,
    /// PDQ hash, 64 hex digits (`None` for pictures too small to hash).
    pub pdq: Option<String>,
    pub issued_at: String,
    pub status: ProofStatus,
    pub purged_at: Option<String>,
    pub receipt_id: Option<String>,
}

/// The signed C2PA manifest store of one stamp, kept with its proof record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofManifest {
    pub proof_id: String,
    /// The manifest's label, `urn:c2pa:…`.
    pub manifest_id: String,
    /// The JUMBF manifest store (`application/c2pa`), base64.
    pub manifest: String,
}

fn manifest_from(r: &sqlx::any::AnyRow) -> Result<ProofManifest, sqlx::Error> {
    Ok(ProofManifest {
        proof_id: r.try_get("proof_id")?,
        manifest_id: r.try_get("manifest_id")?,
        manifest: r.try_get("manifest")?,
    })
}

/// A text column holding one of an enum's values; anything else is a decode error.
pub(crate) fn parse_text<T: std::str::FromStr<Err = UnknownValue>>(
    r: &sqlx::any::AnyRow,
    column: &str,
) -> Result<T, sqlx::Error> {
    let text: String = r.try_get(column)?;
    text.parse()
        .map_err(|e: UnknownValue| sqlx::Error::ColumnDecode {
            index: column.to_string(),
            source: Box::new(e),
        })
}

/// Scopes as stored: space-separated.
fn parse_scopes(text: &str) -> Result<Vec<Scope>, sqlx::Error> {
    text.split_whitespace()
        .map(|s| {
            s.parse()
                .map_err(|e: UnknownValue| sqlx::Error::ColumnDecode {
                    index: "scopes".into(),
                    source: Box::new(e),
                })
        })
        .collect()
}

fn proof_from(r: &sqlx::any::AnyRow) -> Result<ProofRecord, sqlx::Error> {
    Ok(ProofRecord {
        proof_id: r.try_get("proof_id")?,
        sha256: r.try_get("sha256")?,
        original_sha256: r.try_get("original_sha256")?,
        pdq: r.try_get("pdq")?,
        issued_at: r.try_get("issued_at")?,
        status: parse_text(r, "status")?,
        purged_at: r.try_get("purged_at")?,
        receipt_id: r.try_get("receipt_id")?,
    })
}

/// The metadata database.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    kind: DbKind,
}

/// Current time as (RFC 3339 UTC with `Z`, epoch milliseconds), to the second.
pub fn now() -> (String, i64) {
    at_ms(time::OffsetDateTime::now_utc().unix_timestamp() * 1000)
}

/// A millisecond timestamp as (RFC 3339, ms), truncated to the second.
pub fn at_ms(ms: i64) -> (String, i64) {
    let secs = ms.div_euclid(1000);
    let t =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let s = t
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    (s, secs * 1000)
}

fn random_hex(n: usize) -> Result<String, DbError> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|e| DbError::Unavailable(format!("OS randomness: {e}")))?;
    Ok(hex::encode(b))
}

/// SHA-256 of an API key secret, hex: what the database keeps.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The artifact columns, as a macro so queries stay `&'static str` (no SQL built at run time).
macro_rules! artifact_columns {
    () => {
        "id, tenant_id, region, proof_id, state, sha256, original_sha256, content_type, width, height, bytes, \
         wrapped_key, label_sealed, client_ip_sealed, created_at, created_ms, expires_at, expires_ms"
    };
}

pub(crate) fn artifact_from(r: &sqlx::any::AnyRow) -> Result<Artifact, sqlx::Error> {
    Ok(Artifact {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        region: r.try_get("region")?,
        proof_id: r.try_get("proof_id")?,
        state: parse_text(r, "state")?,
        sha256: r.try_get("sha256")?,
        original_sha256: r.try_get("original_sha256")?,
        content_type: r.try_get("content_type")?,
        width: r.try_get("width")?,
        height: r.try_get("height")?,
        bytes: r.try_get("bytes")?,
        wrapped_key: r.try_get("wrapped_key")?,
        label_sealed: r.try_get("label_sealed")?,
        client_ip_sealed: r.try_get("client_ip_sealed")?,
        created_at: r.try_get("created_at")?,
        created_ms: r.try_get("created_ms")?,
        expires_at: r.try_get("expires_at")?,
        expires_ms: r.try_get("expires_ms")?,
    })
}

fn artifacts_from(rows: &[sqlx::any::AnyRow]) -> Result<Vec<Artifact>, DbError> {
    rows.iter()
        .map(artifact_from)
        .collect::<Result<_, _>>()
        .map_err(DbError::from)
}

/// An API key from a row of the key columns (`key_id`, `scopes`, `key_created_at`,
/// `revoked_at`) joined with its tenant's.
pub(crate) fn key_from(r: &sqlx::any::AnyRow) -> Result<ApiKey, sqlx::Error> {
    let scopes: String = r.try_get("scopes")?;
    Ok(ApiKey {
        id: r.try_get("key_id")?,
        tenant: tenant_from(r)?,
        scopes: parse_scopes(&scopes)?,
        created_at: r.try_get("key_created_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

pub(crate) fn tenant_from(r: &sqlx::any::AnyRow) -> Result<Tenant, sqlx::Error> {
    Ok(Tenant {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        region: r.try_get("region")?,
        retention_days: r.try_get("retention_days")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Db {
    /// Connect (creating the SQLite file if needed) and run the migrations.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        install_default_drivers();
        let kind = if url.starts_with("sqlite:") {
            DbKind::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            DbKind::Postgres
        } else {
            return Err(DbError::Invalid(format!(
                "database url must start with sqlite: or postgres: ({url:.12}…)"
            )));
        };
        let mut opts =
            AnyPoolOptions::new().max_connections(if kind == DbKind::Sqlite { 4 } else { 16 });
        if kind == DbKind::Sqlite {
            opts = opts.after_connect(|conn, _| {
                Box::pin(async move {
                    use sqlx::Executor;
                    // secure_delete: freed pages are overwritten with zeros, so a deleted row
                    // (a wrapped key, a sealed IP) does not linger in the file's free pages.
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA secure_delete = ON;")
                        .await?;
                    Ok(())
                })
            });
        }
        let url = if kind == DbKind::Sqlite && !url.contains("mode=") {
            format!("{url}{}mode=rwc", if url.contains('?') { "&" } else { "?" })
        } else {
            url.to_string()
        };
        let pool = opts.connect(&url).await?;
        // One set of migrations: the schema uses only types both databases share.
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| DbError::Unavailable(format!("migrations: {e}")))?;
        let db = Db { pool, kind };
        db.backfill_pdq_keys().await?;
        Ok(db)
    }

    pub fn kind(&self) -> DbKind {
        self.kind
    }

    /// This installation's id (made on first use): a random UUID, the same for every instance
    /// sharing this database.
    pub async fn installation_id(&self) -> Result<String, DbError> {
        sqlx::query("INSERT INTO installation (id, installation_id) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
            .bind(uuid::Uuid::new_v4().to_string())
            .execute(&self.pool)
            .await?;
        let r = sqlx::query("SELECT installation_id FROM installation WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get("installation_id")?)
    }

    /// SQLite: copy the write-ahead log into the database and truncate it, so pages written
    /// before a deletion (which still hold the deleted rows) leave the log file too. A no-op
    /// on PostgreSQL.
    pub async fn checkpoint(&self) -> Result<(), DbError> {
        if self.kind == DbKind::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Readiness probe.
    pub async fn check(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn create_tenant(
        &self,
        name: &str,
        region: &str,
        retention_days: i64,
    ) -> Result<Tenant, DbError> {
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
        {
            return Err(DbError::Invalid(
                "tenant name: 1–64 characters of [A-Za-z0-9-_.]".into(),
            ));
        }
        let (created_at, _) = now();
        let t = Tenant {
            id: uuid::Uuid::now_v7().to_string(),
            name: name.into(),
            region: region.into(),
            retention_days,
            created_at,
        };
        sqlx::query("INSERT INTO tenants (id, name, region, retention_days, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&t.id)
            .bind(&t.name)
            .bind(&t.region)
            .bind(t.retention_days)
            .bind(&t.created_at)
            .execute(&self.pool)
            .await
            .map_err(|e| match DbError::from(e) {
                DbError::Conflict(_) => DbError::Conflict(format!("tenant {name:?} already exists")),
                other => other,
            })?;
        Ok(t)
    }

    pub async fn tenant(&self, id: &str) -> Result<Tenant, DbError> {
        let r = sqlx::query(
            "SELECT id, name, region, retention_days, created_at FROM tenants WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        Ok(tenant_from(&r)?)
    }

    pub async fn tenant_by_name(&self, name: &str) -> Result<Tenant, DbError> {
        let r = sqlx::query(
            "SELECT id, name, region, retention_days, created_at FROM tenants WHERE name = $1",
        )
        .bind(name)
        .fetch_one(&self.pool)
        .await?;
        Ok(tenant_from(&r)?)
    }

    /// Create an API key; returns the row and the secret, which is shown once and never stored.
    pub async fn create_api_key(
        &self,
        tenant: &Tenant,
        scopes: &[Scope],
    ) -> Result<(ApiKey, String), DbError> {
        if scopes.is_empty() {
            return Err(DbError::Invalid(format!(
                "at least one scope of {:?}",
                Scope::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()
            )));
        }
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw)
            .map_err(|e| DbError::Unavailable(format!("OS randomness: {e}")))?;
        let secret = format!(
            "pxk_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        );
        let id = format!("key_{}", random_hex(8)?);
        let (created_at, _) = now();
        sqlx::query("INSERT INTO api_keys (id, tenant_id, secret_sha256, scopes, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&id)
            .bind(&tenant.id)
            .bind(secret_hash(&secret))
            .bind(
                scopes
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            )
            .bind(&created_at)
            .execute(&self.pool)
            .await?;
        let key = ApiKey {
            id,
            tenant: tenant.clone(),
            scopes: scopes.to_vec(),
            created_at,
            revoked_at: None,
        };
        Ok((key, secret))
    }

    /// The live (not revoked) key with this secret.
    pub async fn api_key_by_secret(&self, secret: &str) -> Result<ApiKey, DbError> {
        let r = sqlx::query(
            "SELECT k.id AS key_id, k.scopes, k.created_at AS key_created_at, k.revoked_at, \
             t.id, t.name, t.region, t.retention_days, t.created_at \
             FROM api_keys k JOIN tenants t ON t.id = k.tenant_id \
             WHERE k.secret_sha256 = $1 AND k.revoked_at IS NULL",
        )
        .bind(secret_hash(secret))
        .fetch_one(&self.pool)
        .await?;
        Ok(key_from(&r)?)
    }

    pub async fn list_api_keys(&self, tenant: &Tenant) -> Result<Vec<ApiKey>, DbError> {
        let rows = sqlx::query("SELECT id, scopes, created_at, revoked_at FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id")
            .bind(&tenant.id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let scopes: String = r.try_get("scopes")?;
                Ok(ApiKey {
                    id: r.try_get("id")?,
                    tenant: tenant.clone(),
                    scopes: parse_scopes(&scopes)?,
                    created_at: r.try_get("created_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(DbError::from)
    }

    pub async fn revoke_api_key(&self, tenant: &Tenant, key_id: &str) -> Result<(), DbError> {
        let (at, _) = now();
        let r = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND tenant_id = $3 AND revoked_at IS NULL")
            .bind(&at)
            .bind(key_id)
            .bind(&tenant.id)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            Err(DbError::NotFound)
        } else {
            Ok(())
        }
    }

    /// Insert an artifact row (state `pending` until its blob is stored).
    pub async fn insert_artifact(&self, a: &Artifact) -> Result<(), DbError> {
        sqlx::query(concat!(
            "INSERT INTO artifacts (",
            artifact_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
        ))
        .bind(&a.id)
        .bind(&a.tenant_id)
        .bind(&a.region)
        .bind(&a.proof_id)
        .bind(a.state.as_str())
        .bind(&a.sha256)
        .bind(&a.original_sha256)
        .bind(&a.content_type)
        .bind(a.width)
        .bind(a.height)
        .bind(a.bytes)
        .bind(&a.wrapped_key)
        .bind(&a.label_sealed)
        .bind(&a.client_ip_sealed)
        .bind(&a.created_at)
        .bind(a.created_ms)
        .bind(&a.expires_at)
        .bind(a.expires_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Make an uploaded artifact visible and publish its proof record with its signed manifest,
    /// in one transaction: a proof is public exactly when its artifact became active.
    pub async fn activate_artifact(
        &self,
        id: &str,
        proof: &ProofRecord,
        manifest: &ProofManifest,
        also: &[crate::pdq_index::Hash],
    ) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "UPDATE artifacts SET state = 'active' WHERE id = $1 AND state = 'pending'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Err(DbError::NotFound);
        }
        self.insert_proof(&mut tx, proof, manifest).await?;
        crate::pdq_index::insert_more_keys(&mut tx, self.kind, &proof.proof_id, also).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A proof record published without an artifact (ephemeral stamping): the record, its
    /// near-match keys and its signed manifest, in one transaction.
    pub async fn publish_proof(
        &self,
        proof: &ProofRecord,
        manifest: &ProofManifest,
    ) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        self.insert_proof(&mut tx, proof, manifest).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The proof row, its near-match keys and its manifest, inside the caller's transaction.
    async fn insert_proof(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        proof: &ProofRecord,
        manifest: &ProofManifest,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO proofs (proof_id, sha256, original_sha256, pdq, issued_at, status) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&proof.proof_id)
        .bind(&proof.sha256)
        .bind(&proof.original_sha256)
        .bind(&proof.pdq)
        .bind(&proof.issued_at)
        .bind(proof.status.as_str())
        .execute(&mut **tx)
        .await?;
        if let Some(h) = proof.pdq.as_deref().and_then(crate::pdq_index::parse) {
            crate::pdq_index::insert_keys(tx, self.kind, &proof.proof_id, &h).await?;
        }
        sqlx::query(
            "INSERT INTO proof_manifests (proof_id, manifest_id, manifest) VALUES ($1, $2, $3)",
        )
        .bind(&manifest.proof_id)
        .bind(&manifest.manifest_id)
        .bind(&manifest.manifest)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The signed manifest of a proof, if it was kept (stamps issued before manifests were kept
    /// have none).
    pub async fn proof_manifest(&self, proof_id: &str) -> Result<Option<ProofManifest>, DbError> {
        let r = sqlx::query(
            "SELECT proof_id, manifest_id, manifest FROM proof_manifests WHERE proof_id = $1",
        )
        .bind(proof_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(r.as_ref().map(manifest_from).transpose()?)
    }

    /// A kept manifest by its label.
    pub async fn manifest_by_id(
        &self,
        manifest_id: &str,
    ) -> Result<Option<ProofManifest>, DbError> {
        let r = sqlx::query(
            "SELECT proof_id, manifest_id, manifest FROM proof_manifests WHERE manifest_id = $1",
        )
        .bind(manifest_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(r.as_ref().map(manifest_from).transpose()?)
    }

    /// A public proof record by proof id.
    pub async fn proof(&self, proof_id: &str) -> Result<ProofRecord, DbError> {
        let r = sqlx::query(
            "SELECT proof_id, sha256, original_sha256, pdq, issued_at, status, purged_at, receipt_id FROM proofs WHERE proof_id = $1",
        )
        .bind(proof_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(proof_from(&r)?)
    }

    /// The proof whose stamped artifact has exactly this SHA-256, if any.
    pub async fn proof_by_sha256(&self, sha256: &str) -> Result<Option<ProofRecord>, DbError> {
        let r = sqlx::query(
            "SELECT proof_id, sha256, original_sha256, pdq, issued_at, status, purged_at, receipt_id FROM proofs WHERE sha256 = $1 ORDER BY issued_at LIMIT 1",
        )
        .bind(sha256)
        .fetch_optional(&self.pool)
        .await?;
        Ok(r.as_ref().map(proof_from).transpose()?)
    }

    /// Every (proof id, PDQ hex) with a perceptual hash, in pages of `limit` after `after`
    /// (proof id order), for the near-match scan.
    pub async fn pdq_page(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(String, String)>, DbError> {
        let rows = sqlx::query(
            "SELECT proof_id, pdq FROM proofs WHERE pdq IS NOT NULL AND proof_id > $1 ORDER BY proof_id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("proof_id")?, r.try_get("pdq")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(DbError::from)
    }

    /// The tenant's own artifact in state `active`; anything else is `NotFound` (no existence oracle).
    pub async fn artifact(&self, tenant_id: &str, id: &str) -> Result<Artifact, DbError> {
        let r = sqlx::query(concat!(
            "SELECT ",
            artifact_columns!(),
            " FROM artifacts WHERE id = $1 AND tenant_id = $2 AND state = 'active'"
        ))
        .bind(id)
        .bind(tenant_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(artifact_from(&r)?)
    }

    /// Delete an artifact row, and with it the wrapped data key (crypto-shredding).
    pub async fn delete_artifact(&self, id: &str) -> Result<bool, DbError> {
        let r = sqlx::query("DELETE FROM artifacts WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Rows an interrupted upload left behind: `pending` ones created before `before_ms`.
    /// (`deleting` rows are finished by the purge pass, with their receipt.)
    pub async fn unfinished(&self, before_ms: i64) -> Result<Vec<Artifact>, DbError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            artifact_columns!(),
            " FROM artifacts WHERE state = 'pending' AND created_ms < $1"
        ))
        .bind(before_ms)
        .fetch_all(&self.pool)
        .await?;
        artifacts_from(&rows)
    }

    /// Every stored wrapped data key: (artifact id, tenant id, region, wrapped key), for
    /// rewrapping.
    pub async fn wrapped_keys(&self) -> Result<Vec<(String, String, String, String)>, DbError> {
        let rows =
            sqlx::query("SELECT id, tenant_id, region, wrapped_key FROM artifacts ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get("tenant_id")?,
                    r.try_get("region")?,
                    r.try_get("wrapped_key")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(DbError::from)
    }

    /// Replace one artifact's wrapped data key, only if it is still the one that was read
    /// (a concurrent delete or rewrap wins).
    pub async fn replace_wrapped_key(
        &self,
        id: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, DbError> {
        let r =
            sqlx::query("UPDATE artifacts SET wrapped_key = $1 WHERE id = $2 AND wrapped_key = $3")
                .bind(new)
                .bind(id)
                .bind(old)
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected() == 1)
    }

    /// A tenant's active artifacts, oldest first (what `keys rewrap --tenant` moves).
    pub async fn tenant_artifacts(&self, tenant_id: &str) -> Result<Vec<Artifact>, DbError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            artifact_columns!(),
            " FROM artifacts WHERE tenant_id = $1 AND state = 'active' ORDER BY created_ms, id"
        ))
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(artifact_from)
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// Replace one artifact's wrapped data key and sealed fields together, only if its wrapped
    /// key is still the one that was read (a concurrent delete, purge or rewrap wins).
    pub async fn replace_artifact_keys(
        &self,
        id: &str,
        old_wrapped: &str,
        new_wrapped: &str,
        label_sealed: Option<&str>,
        client_ip_sealed: Option<&str>,
    ) -> Result<bool, DbError> {
        let r = sqlx::query(
            "UPDATE artifacts SET wrapped_key = $1, label_sealed = $2, client_ip_sealed = $3 \
             WHERE id = $4 AND wrapped_key = $5 AND state = 'active'",
        )
        .bind(new_wrapped)
        .bind(label_sealed)
        .bind(client_ip_sealed)
        .bind(id)
        .bind(old_wrapped)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Claim up to `limit` artifacts due for purge at `now_ms` (active and expired, or claimed
    /// by a worker whose claim is older than `stale_ms`), marking them `purging`. On PostgreSQL
    /// the candidate rows are locked `FOR UPDATE SKIP LOCKED`, so concurrent workers never
    /// claim the same row; SQLite has a single writer.
    pub async fn claim_due(
        &self,
        now_ms: i64,
        stale_ms: i64,
        limit: i64,
    ) -> Result<Vec<Artifact>, DbError> {
        let sql = match self.kind {
            DbKind::Postgres => concat!(
                "UPDATE artifacts SET state = 'purging', claimed_ms = $1 WHERE id IN (",
                "SELECT id FROM artifacts WHERE expires_ms <= $1 AND (state = 'active' OR (state = 'purging' AND claimed_ms < $2)) ",
                "ORDER BY expires_ms LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING ",
                artifact_columns!()
            ),
            DbKind::Sqlite => concat!(
                "UPDATE artifacts SET state = 'purging', claimed_ms = $1 WHERE id IN (",
                "SELECT id FROM artifacts WHERE expires_ms <= $1 AND (state = 'active' OR (state = 'purging' AND claimed_ms < $2)) ",
                "ORDER BY expires_ms LIMIT $3) RETURNING ",
                artifact_columns!()
            ),
        };
        let rows = sqlx::query(sql)
            .bind(now_ms)
            .bind(now_ms - stale_ms)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        artifacts_from(&rows)
    }

    /// How many artifacts are due at `now_ms` (for `purge --dry-run`).
    pub async fn count_due(&self, now_ms: i64) -> Result<i64, DbError> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM artifacts WHERE expires_ms <= $1 AND state IN ('active', 'purging')")
            .bind(now_ms)
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get("n")?)
    }

    /// Forget client IPs of artifacts created before `before_ms` (abuse-handling window over).
    pub async fn forget_ips(&self, before_ms: i64) -> Result<u64, DbError> {
        let r = sqlx::query("UPDATE artifacts SET client_ip_sealed = NULL WHERE created_ms < $1 AND client_ip_sealed IS NOT NULL")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// Whether any row (any state) names this artifact id.
    pub async fn artifact_exists(&self, id: &str) -> Result<bool, DbError> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM artifacts WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        let n: i64 = r.try_get("n")?;
        Ok(n > 0)
    }
}

impl FromStr for DbKind {
    type Err = DbError;
    fn from_str(s: &str) -> Result<Self, DbError> {
        match s {
            "sqlite" => Ok(DbKind::Sqlite),
            "postgres" => Ok(DbKind::Postgres),
            other => Err(DbError::Invalid(format!("unknown database kind {other:?}"))),
        }
    }
}

#[cfg(test)]
mod secure_delete {
    use super::*;

    /// A deleted row leaves no trace in the SQLite files once the log is checkpointed: its
    /// freed page was overwritten, not just unlinked.
    #[tokio::test]
    async fn deleted_rows_leave_no_bytes_behind() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.db");
        let db = Db::connect(&format!("sqlite://{}", file.display()))
            .await
            .unwrap();
        let canary = "PXCANARY-SECURE-DELETE-".repeat(200);
        sqlx::query("CREATE TABLE canary (x TEXT)")
            .execute(&db.pool)
            .await
            .unwrap();
        for _ in 0..20 {
            sqlx::query("INSERT INTO canary (x) VALUES ($1)")
                .bind(&canary)
                .execute(&db.pool)
                .await
                .unwrap();
        }
        db.checkpoint().await.unwrap();
        let holds = |needle: &[u8]| {
            std::fs::read_dir(dir.path()).unwrap().any(|e| {
                let bytes = std::fs::read(e.unwrap().path()).unwrap();
                bytes.windows(needle.len()).any(|w| w == needle)
            })
        };
        assert!(holds(b"PXCANARY-SECURE-DELETE"), "the canary was written");
        sqlx::query("DELETE FROM canary")
            .execute(&db.pool)
            .await
            .unwrap();
        db.checkpoint().await.unwrap();
        assert!(
            !holds(b"PXCANARY-SECURE-DELETE"),
            "a deleted row lingers on disk"
        );
    }
}
