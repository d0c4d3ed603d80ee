//! Signed deletion receipts (SPEC §8): the fields of the receipt, serialised in a fixed order,
//! signed with Ed25519 (detached, base64), verifiable offline with the published public key.

use std::path::Path;

use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a deletion receipt states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub receipt_id: String,
    pub artifact_id: String,
    pub proof_id: String,
    pub sha256: String,
    pub original_sha256: String,
    pub region: String,
    pub created_at: String,
    pub deleted_at: String,
    pub reason: String,
}

/// A receipt with its detached signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedReceipt {
    pub receipt: Receipt,
    /// Always "Ed25519".
    pub alg: String,
    /// First 16 hex digits of SHA-256 of the public key (SubjectPublicKeyInfo DER).
    pub key_id: String,
    /// Base64 Ed25519 signature over [`Receipt::signed_bytes`].
    pub signature: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReceiptError {
    #[error("signature does not verify: the receipt was changed or signed by another key")]
    BadSignature,
    #[error("receipt signed by key {found}, not by {expected}")]
    WrongKey { found: String, expected: String },
    #[error("malformed receipt: {0}")]
    Malformed(String),
    #[error("receipt signing key: {0}")]
    Key(String),
}

impl Receipt {
    /// The exact bytes signed: a domain-separation line, then the JSON of the fields in their
    /// declared order (serde keeps struct order; no map is involved).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut b = b"pixseal deletion receipt v1\n".to_vec();
        b.extend(serde_json::to_vec(self).expect("a struct of strings serialises"));
        b
    }
}

/// The installation's receipt-signing key.
pub struct ReceiptSigner {
    key: SigningKey,
    key_id: String,
}

fn key_id(vk: &VerifyingKey) -> String {
    let der = vk
        .to_public_key_der()
        .map(|d| d.as_bytes().to_vec())
        .unwrap_or_else(|_| vk.to_bytes().to_vec());
    hex::encode(&Sha256::digest(der)[..8])
}

impl ReceiptSigner {
    /// Load the PKCS#8 PEM key at `path`, creating it (mode 0600) on first use.
    pub fn open(path: &Path) -> Result<Self, ReceiptError> {
        let key = match std::fs::read_to_string(path) {
            Ok(pem) => SigningKey::from_pkcs8_pem(&pem)
                .map_err(|e| ReceiptError::Key(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = zeroize::Zeroizing::new([0u8; 32]);
                getrandom::fill(&mut seed[..]).map_err(|e| ReceiptError::Key(e.to_string()))?;
                let key = SigningKey::from_bytes(&seed);
                let pem = key
                    .to_pkcs8_pem(Default::default())
                    .map_err(|e| ReceiptError::Key(e.to_string()))?;
                write_private(path, pem.as_bytes())?;
                key
            }
            Err(e) => return Err(ReceiptError::Key(format!("{}: {e}", path.display()))),
        };
        let key_id = key_id(&key.verifying_key());
        Ok(ReceiptSigner { key, key_id })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key as PEM (SubjectPublicKeyInfo), what verifiers need.
    pub fn public_key_pem(&self) -> String {
        self.key
            .verifying_key()
            .to_public_key_pem(Default::default())
            .unwrap_or_default()
    }

    pub fn sign(&self, receipt: Receipt) -> SignedReceipt {
        let sig = self.key.sign(&receipt.signed_bytes());
        SignedReceipt {
            receipt,
            alg: "Ed25519".into(),
            key_id: self.key_id.clone(),
            signature: base64::engine::general_purpose::STANDARD.encode(sig.to_bytes()),
        }
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ReceiptError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ReceiptError::Key(e.to_string()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| ReceiptError::Key(format!("{}: {e}", path.display())))?;
    f.write_all(bytes)
        .map_err(|e| ReceiptError::Key(e.to_string()))
}

impl SignedReceipt {
    /// Verify against a public key (PEM); the key id must match too.
    pub fn verify_pem(&self, public_key_pem: &str) -> Result<(), ReceiptError> {
        let vk = VerifyingKey::from_public_key_pem(public_key_pem.trim())
            .map_err(|e| ReceiptError::Malformed(format!("public key: {e}")))?;
        self.verify(&vk)
    }

    pub fn verify(&self, vk: &VerifyingKey) -> Result<(), ReceiptError> {
        if self.alg != "Ed25519" {
            return Err(ReceiptError::Malformed(format!(
                "unknown alg {:?}",
                self.alg
            )));
        }
        let expected = key_id(vk);
        if self.key_id != expected {
            return Err(ReceiptError::WrongKey {
                found: self.key_id.clone(),
                expected,
            });
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&self.signature)
            .map_err(|_| ReceiptError::Malformed("signature is not base64".into()))?;
        let sig = Signature::from_slice(&raw)
            .map_err(|_| ReceiptError::Malformed("signature has the wrong length".into()))?;
        vk.verify(&self.receipt.signed_bytes(), &sig)
            .map_err(|_| ReceiptError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt() -> Receipt {
        Receipt {
            receipt_id: "rcpt_1".into(),
            artifact_id: "0192".into(),
            proof_id: "px_0H8Z4K2M9QW3R".into(),
            sha256: "ab".repeat(32),
            original_sha256: "cd".repeat(32),
            region: "eu".into(),
            created_at: "2026-11-01T00:00:00Z".into(),
            deleted_at: "2026-11-08T00:00:00Z".into(),
            reason: "retention_expired".into(),
        }
    }

    #[test]
    fn signs_verifies_and_every_field_change_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("receipt.key");
        let signer = ReceiptSigner::open(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            ReceiptSigner::open(&path).unwrap().key_id(),
            signer.key_id(),
            "key reloads"
        );
        let signed = signer.sign(receipt());
        let pem = signer.public_key_pem();
        signed.verify_pem(&pem).unwrap();
        // Round trip through JSON, then change each field in turn.
        let json = serde_json::to_value(&signed).unwrap();
        let back: SignedReceipt = serde_json::from_value(json.clone()).unwrap();
        back.verify_pem(&pem).unwrap();
        for field in [
            "receipt_id",
            "artifact_id",
            "proof_id",
            "sha256",
            "original_sha256",
            "region",
            "created_at",
            "deleted_at",
            "reason",
        ] {
            let mut j = json.clone();
            let v = j["receipt"][field].as_str().unwrap().to_string();
            j["receipt"][field] = serde_json::Value::String(format!("{v}x"));
            let t: SignedReceipt = serde_json::from_value(j).unwrap();
            assert_eq!(
                t.verify_pem(&pem),
                Err(ReceiptError::BadSignature),
                "{field}"
            );
        }
        let mut j = json.clone();
        j["receipt"]["extra"] = serde_json::Value::String("x".into());
        assert!(
            serde_json::from_value::<SignedReceipt>(j).is_err(),
            "unknown fields refused"
        );
        // Another installation's key: refused by key id.
        let other = ReceiptSigner::open(&dir.path().join("other.key")).unwrap();
        assert!(matches!(
            signed.verify_pem(&other.public_key_pem()),
            Err(ReceiptError::WrongKey { .. })
        ));
    }
}
