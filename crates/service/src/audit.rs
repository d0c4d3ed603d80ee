//! Audit checkpoints: the audit chain's head signed with the receipt key (to keep off the box),
//! and the chain checked against such a checkpoint.

use pixseal_proof::{Checkpoint, SignedCheckpoint};
use serde::Serialize;

use crate::{Result, ServiceError, Services};

/// The chain judged against a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointCheck {
    /// Entries in the chain now.
    pub entries: usize,
    /// The checkpoint's head.
    pub checkpoint_seq: i64,
    /// `None` when the chain is intact and extends the checkpoint; else what is wrong.
    pub broken: Option<String>,
}

impl Services {
    /// The chain's head now, signed with the receipt key.
    pub async fn audit_checkpoint(&self) -> Result<SignedCheckpoint> {
        let (seq, hash) = self.db.audit_head().await?;
        let checkpoint = Checkpoint {
            installation: self.installation.to_string(),
            seq,
            hash,
            at: self.clock.now().0,
        };
        let signer = self.receipts.clone();
        Ok(tokio::task::spawn_blocking(move || checkpoint.sign(signer.as_ref())).await??)
    }

    /// Whether the chain is intact and still holds what `cp` saw. The checkpoint must be this
    /// installation's and signed by its receipt key: one that is not says nothing about this
    /// chain (`invalid_signature`).
    pub async fn audit_check(&self, cp: &SignedCheckpoint) -> Result<CheckpointCheck> {
        if cp.verify(self.receipts.public_key()).is_err() {
            return Err(ServiceError::invalid(
                "invalid_signature",
                "the checkpoint is not signed by this installation's receipt key",
            ));
        }
        if *cp.checkpoint.installation != *self.installation {
            return Err(ServiceError::invalid(
                "invalid_request",
                format!(
                    "the checkpoint is installation {}'s, this is {}",
                    cp.checkpoint.installation, self.installation
                ),
            ));
        }
        let (entries, broken) = self.db.audit_verify().await?;
        let broken = match broken {
            Some(b) => Some(format!("entry {}: {}", b.seq, b.reason)),
            None => {
                self.db
                    .audit_against(cp.checkpoint.seq, &cp.checkpoint.hash)
                    .await?
            }
        };
        Ok(CheckpointCheck {
            entries,
            checkpoint_seq: cp.checkpoint.seq,
            broken,
        })
    }
}
