//! Erasure with a signed deletion receipt: the owner's DELETE and the purge pass's, each
//! deletion decided once (the row goes `deleting` with its receipt fixed), signed, recorded
//! once; and a receipt's two views, public and the tenant's (docs/receipts.md).

use pixseal_proof::{ProofId, Receipt, ReceiptV2, SignedReceipt, SubjectOpening};
use pixseal_store::{Artifact, ArtifactState, BlobKey, Deletion, Scope, StoredReceipt};
use serde::Serialize;
use utoipa::ToSchema;

pub use pixseal_store::DeletionReason;

use crate::auth::Caller;
use crate::{Outcome, Result, ServiceError, Services};

/// The public key that verifies this installation's deletion receipts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReceiptKey {
    /// `Ed25519`.
    pub alg: &'static str,
    pub key_id: String,
    pub public_key_pem: String,
}

/// `rcpt_` + 128 random bits in hex (two draws of the proof-id source: the OS CSPRNG).
fn new_receipt_id() -> Result<String> {
    let mut rid = [0u8; 16];
    for chunk in rid.chunks_mut(8) {
        let v = ProofId::random()
            .map_err(|e| ServiceError::internal(e.to_string()))?
            .0
            .to_be_bytes();
        chunk.copy_from_slice(&v);
    }
    Ok(format!("rcpt_{}", hex::encode(rid)))
}

fn opening_of(a: &Artifact, d: &Deletion) -> SubjectOpening {
    SubjectOpening {
        salt: d.salt.clone(),
        artifact_id: a.id.clone(),
        original_sha256: a.original_sha256.clone(),
    }
}

fn parse(r: &StoredReceipt) -> Result<SignedReceipt> {
    serde_json::from_str(&r.signed_json)
        .map_err(|e| ServiceError::internal(format!("stored receipt {}: {e}", r.receipt_id)))
}

/// The tenant's view of a stored receipt: a version 2 receipt with the opening of its subject;
/// a version 1 receipt as signed (it names everything itself).
pub(crate) fn tenant_view(r: &StoredReceipt) -> Result<SignedReceipt> {
    let signed = parse(r)?;
    Ok(match (&signed.receipt, &r.salt, &r.original_sha256) {
        (Receipt::V2(_), Some(salt), Some(original)) => signed.with_opening(SubjectOpening {
            salt: salt.clone(),
            artifact_id: r.artifact_id.clone(),
            original_sha256: original.clone(),
        }),
        _ => signed,
    })
}

/// The public view of a stored receipt: a version 2 receipt alone. A version 1 receipt has no
/// public view: its signed fields name the artifact and the original's hash.
pub(crate) fn public_view(r: &StoredReceipt) -> Result<Option<SignedReceipt>> {
    let signed = parse(r)?;
    Ok(match signed.receipt {
        Receipt::V2(_) => Some(signed.public()),
        Receipt::V1(_) => None,
    })
}

impl Services {
    /// The owner deletes an artifact: blob deleted, wrapped data key destroyed with the row,
    /// and the signed deletion receipt returned in the tenant's view (and kept, for
    /// [`Services::receipt`]). Of concurrent DELETEs of one artifact exactly one gets the
    /// receipt; the others find the artifact gone (`not_found`), as a later DELETE would.
    pub async fn delete(&self, caller: &Caller, id: &str) -> Result<SignedReceipt> {
        let tenant = caller.require(Scope::ArtifactsDelete)?;
        let a = self.db.artifact(&tenant.id, id).await?;
        let signed = self
            .erase(&a, ArtifactState::Active, DeletionReason::DeletedByOwner)
            .await?;
        self.audit_detail(
            &caller.actor(),
            "artifact.delete",
            &a.id,
            Outcome::Ok,
            signed.receipt.receipt_id(),
        )
        .await;
        // SQLite: the deleted row's earlier pages leave the write-ahead log as well.
        if let Err(e) = self.db.checkpoint().await {
            tracing::warn!(error = %e, "database checkpoint after a deletion failed");
        }
        Ok(signed)
    }

    /// Erase artifact `a`, which is in state `from`, and return its receipt (tenant's view).
    ///
    /// The row goes `deleting` first, conditionally, with the receipt's id, reason, time and
    /// subject salt fixed on it: only the eraser that made that change signs anything, and
    /// any other gets `NotFound` without having signed. Then the receipt is signed (if the
    /// signer is down nothing irreversible happened: the row goes back to `from`, still served
    /// after an owner's DELETE, and the caller gets `key_unavailable`), the blob deleted, and
    /// receipt + row removal committed in one transaction. An eraser that stops after the
    /// signature leaves a `deleting` row that the purge pass takes over once stale and
    /// finishes with the same receipt.
    pub async fn erase(
        &self,
        a: &Artifact,
        from: ArtifactState,
        reason: DeletionReason,
    ) -> Result<SignedReceipt> {
        let now_ms = self.clock.now_ms();
        let d = Deletion {
            receipt_id: new_receipt_id()?,
            reason,
            deleted_at: pixseal_store::meta::at_ms(now_ms).0,
            salt: SubjectOpening::new(&a.id, &a.original_sha256)?.salt,
            claimed_ms: now_ms,
        };
        if !self.db.begin_deletion(&a.id, from, &d).await? {
            return Err(ServiceError::NotFound);
        }
        let signed = match self.sign_deletion(a, &d).await {
            Ok(s) => s,
            Err(e) => {
                // Refused when the purge pass took the deletion over meanwhile: it finishes it.
                if let Err(undo) = self.db.abandon_deletion(&a.id, from, &d).await {
                    tracing::error!(artifact = %a.id, code = ServiceError::from(undo).code(), "an unsigned deletion could not be undone; the purge pass will finish it");
                }
                return Err(e);
            }
        };
        self.complete_deletion(a, &d, signed).await
    }

    /// Finish a deletion the purge pass took over (its eraser stopped). A row that an older
    /// version left `deleting` without a decided receipt gets one now.
    pub(crate) async fn finish_deletion(
        &self,
        a: &Artifact,
        d: Option<Deletion>,
        now_ms: i64,
    ) -> Result<SignedReceipt> {
        let d = match d {
            Some(d) => d,
            None => {
                let reason = if a.expires_ms <= now_ms {
                    DeletionReason::RetentionExpired
                } else {
                    DeletionReason::DeletedByOwner
                };
                let d = Deletion {
                    receipt_id: new_receipt_id()?,
                    reason,
                    deleted_at: pixseal_store::meta::at_ms(now_ms).0,
                    salt: SubjectOpening::new(&a.id, &a.original_sha256)?.salt,
                    claimed_ms: now_ms,
                };
                if !self
                    .db
                    .begin_deletion(&a.id, ArtifactState::Deleting, &d)
                    .await?
                {
                    return Err(ServiceError::NotFound);
                }
                d
            }
        };
        let signed = self.sign_deletion(a, &d).await?;
        self.complete_deletion(a, &d, signed).await
    }

    /// Sign deletion `d` of `a` as a version 2 receipt; the tenant's view.
    async fn sign_deletion(&self, a: &Artifact, d: &Deletion) -> Result<SignedReceipt> {
        let opening = opening_of(a, d);
        let receipt = Receipt::V2(ReceiptV2 {
            version: 2,
            receipt_id: d.receipt_id.clone(),
            proof_id: a.proof_id.clone(),
            sha256: a.sha256.clone(),
            region: a.region.clone(),
            created_at: a.created_at.clone(),
            deleted_at: d.deleted_at.clone(),
            reason: d.reason.as_str().into(),
            subject: opening.subject()?,
        });
        let signer = self.receipts.clone();
        let signed = tokio::task::spawn_blocking(move || signer.sign(receipt)).await??;
        Ok(signed.with_opening(opening))
    }

    /// Blob, then receipt + row removal in one transaction. When another finisher of the same
    /// deletion recorded it first, its stored receipt (the same statement) is the answer.
    async fn complete_deletion(
        &self,
        a: &Artifact,
        d: &Deletion,
        signed: SignedReceipt,
    ) -> Result<SignedReceipt> {
        let key = BlobKey::new(&a.id).map_err(|_| ServiceError::NotFound)?;
        self.blobs.delete(&a.region, &key).await?;
        let json = serde_json::to_string(&signed.public())
            .map_err(|e| ServiceError::internal(e.to_string()))?;
        if self.db.record_deletion(a, d, &json).await? {
            return Ok(signed);
        }
        match self.db.receipt_of_artifact(&a.id).await? {
            Some(r) if r.receipt_id == d.receipt_id => tenant_view(&r),
            _ => Err(ServiceError::NotFound),
        }
    }

    /// A deletion receipt by id. Without a key, or with another tenant's, the public view (a
    /// version 1 receipt has none: `NotFound`); with a key of the receipt's tenant holding
    /// `artifacts:read` or `artifacts:delete`, the tenant's view.
    pub async fn receipt(&self, caller: Option<&Caller>, id: &str) -> Result<SignedReceipt> {
        if !id.starts_with("rcpt_") || id.len() > 64 {
            return Err(ServiceError::NotFound);
        }
        let r = self.db.receipt(id).await?;
        let owner = caller.filter(|c| {
            c.tenant().id == r.tenant_id
                && (c.has_scope(Scope::ArtifactsRead) || c.has_scope(Scope::ArtifactsDelete))
        });
        if let Some(c) = owner {
            self.audit(&c.actor(), "receipt.read", &r.receipt_id, Outcome::Ok)
                .await;
            return tenant_view(&r);
        }
        public_view(&r)?.ok_or(ServiceError::NotFound)
    }

    /// The public key that verifies this installation's receipts.
    pub fn receipt_key(&self) -> ReceiptKey {
        ReceiptKey {
            alg: "Ed25519",
            key_id: self.receipts.key_id().to_string(),
            public_key_pem: self.receipts.public_key_pem(),
        }
    }
}
