//! Signed audit checkpoints: the head of the audit log's hash chain (its sequence number and
//! hash) signed with the receipt key. A checkpoint kept off the box proves what the chain was:
//! a chain that later does not contain that entry with that hash was cut or rewritten, even
//! when whoever did it also rewrote the chain's head.

use base64::Engine;
use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};

use crate::{ReceiptError, ReceiptPublicKey, ReceiptSigner};

/// What a checkpoint states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The installation whose audit log this is.
    pub installation: String,
    /// Entries in the chain at that moment (the head's sequence number).
    pub seq: i64,
    /// The head entry's hash (hex), or the genesis value for an empty chain.
    pub hash: String,
    /// When it was taken (RFC 3339, UTC).
    pub at: String,
}

impl Checkpoint {
    /// The exact bytes signed: a domain-separation line (no receipt can be passed off as a
    /// checkpoint or the other way round), then the JSON of the fields in declared order.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut b = b"pixseal audit checkpoint v1\n".to_vec();
        b.extend(serde_json::to_vec(self).expect("a struct of strings and integers serialises"));
        b
    }

    /// Sign with the installation's receipt key.
    pub fn sign(self, signer: &dyn ReceiptSigner) -> Result<SignedCheckpoint, ReceiptError> {
        let sig = signer.sign_message(&self.signed_bytes())?;
        let signed = SignedCheckpoint {
            checkpoint: self,
            alg: "Ed25519".into(),
            key_id: signer.key_id().to_string(),
            signature: base64::engine::general_purpose::STANDARD.encode(sig),
        };
        // A signer never hands out a checkpoint that would not verify offline.
        signed.verify(signer.public_key())?;
        Ok(signed)
    }
}

/// A checkpoint with its detached signature: what `pixseal audit checkpoint` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    /// Always "Ed25519".
    pub alg: String,
    pub key_id: String,
    /// Base64 Ed25519 signature over [`Checkpoint::signed_bytes`].
    pub signature: String,
}

impl SignedCheckpoint {
    /// Check the algorithm, the key id and the signature under `key`.
    pub fn verify(&self, key: &ReceiptPublicKey) -> Result<(), ReceiptError> {
        check_detached(
            key,
            &self.alg,
            &self.key_id,
            &self.signature,
            &self.checkpoint.signed_bytes(),
        )
    }
}

/// A detached signature made with the receipt key (checkpoints, device tokens): the
/// algorithm named, the key id, then the base64 Ed25519 signature over `signed`.
pub(crate) fn check_detached(
    key: &ReceiptPublicKey,
    alg: &str,
    key_id: &str,
    signature: &str,
    signed: &[u8],
) -> Result<(), ReceiptError> {
    if alg != "Ed25519" {
        return Err(ReceiptError::Malformed(format!("unknown alg {alg:?}")));
    }
    if key_id != key.key_id() {
        return Err(ReceiptError::WrongKey {
            found: key_id.to_string(),
            expected: key.key_id().to_string(),
        });
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(signature.as_bytes())
        .map_err(|_| ReceiptError::Malformed("signature is not base64".into()))?;
    check_raw_signature(key, signed, &raw)
}

/// A raw 64-byte Ed25519 signature over `signed` (strict: no malleable or small-order forms).
pub(crate) fn check_raw_signature(
    key: &ReceiptPublicKey,
    signed: &[u8],
    raw: &[u8],
) -> Result<(), ReceiptError> {
    let sig = Signature::from_slice(raw)
        .map_err(|_| ReceiptError::Malformed("signature is not 64 bytes".into()))?;
    key.verifying_key()
        .verify_strict(signed, &sig)
        .map_err(|_| ReceiptError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalReceiptSigner;

    #[test]
    fn signs_verifies_and_every_change_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let signer = LocalReceiptSigner::open(&dir.path().join("k.pem")).unwrap();
        let cp = Checkpoint {
            installation: "inst".into(),
            seq: 42,
            hash: "ab".repeat(32),
            at: "2026-12-05T00:00:00Z".into(),
        };
        let signed = cp.clone().sign(&signer).unwrap();
        signed.verify(signer.public_key()).unwrap();
        let mut t = signed.clone();
        t.checkpoint.seq = 41;
        assert_eq!(
            t.verify(signer.public_key()),
            Err(ReceiptError::BadSignature)
        );
        let mut t = signed.clone();
        t.checkpoint.hash = "cd".repeat(32);
        assert_eq!(
            t.verify(signer.public_key()),
            Err(ReceiptError::BadSignature)
        );
        let other = LocalReceiptSigner::open(&dir.path().join("other.pem")).unwrap();
        assert!(matches!(
            signed.verify(other.public_key()),
            Err(ReceiptError::WrongKey { .. })
        ));
    }
}
