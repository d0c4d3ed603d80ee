//! Signed deletion receipts (SPEC §8): the fields of the receipt, serialised in a fixed order,
//! signed with Ed25519 (detached, base64), verifiable offline with the published public key.
//!
//! Who signs is behind [`ReceiptSigner`]: [`LocalReceiptSigner`] (a PKCS#8 PEM file) here, and a
//! key held by Vault/OpenBao Transit in `pixseal-seal` (this crate does no network I/O). The key
//! id is derived from the public key alone ([`ReceiptPublicKey`]), so it is the same whoever
//! holds the private half, and a receipt verifies offline with nothing but the public key.

use std::path::Path;

use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a deletion receipt states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// The key service holding the signing key could not be reached (after its retries).
    #[error("receipt signing service unavailable: {0}")]
    Unavailable(String),
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

/// The public half of a receipt-signing key: what verifiers need, and the key id derived from
/// it (the same derivation whoever holds the private half).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptPublicKey {
    vk: VerifyingKey,
    key_id: String,
    pem: String,
}

impl ReceiptPublicKey {
    pub fn new(vk: VerifyingKey) -> Self {
        ReceiptPublicKey {
            key_id: key_id(&vk),
            pem: vk.to_public_key_pem(Default::default()).unwrap_or_default(),
            vk,
        }
    }

    /// From the 32 raw bytes of an Ed25519 public key (as a key service publishes it).
    pub fn from_raw(bytes: &[u8]) -> Result<Self, ReceiptError> {
        let raw: [u8; 32] = bytes.try_into().map_err(|_| {
            ReceiptError::Key(format!(
                "an Ed25519 public key is 32 bytes, not {}",
                bytes.len()
            ))
        })?;
        VerifyingKey::from_bytes(&raw)
            .map(Self::new)
            .map_err(|e| ReceiptError::Key(format!("not an Ed25519 public key: {e}")))
    }

    /// From a SubjectPublicKeyInfo PEM (as served at `/v1/keys/receipts`).
    pub fn from_pem(pem: &str) -> Result<Self, ReceiptError> {
        VerifyingKey::from_public_key_pem(pem.trim())
            .map(Self::new)
            .map_err(|e| ReceiptError::Malformed(format!("public key: {e}")))
    }

    /// First 16 hex digits of SHA-256 of the SubjectPublicKeyInfo DER.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// SubjectPublicKeyInfo PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.vk
    }

    /// Attach a detached signature made elsewhere (a key service) to `receipt`, after checking
    /// that it verifies under this key: a signer never hands out a receipt that would not
    /// verify offline.
    pub fn attach(
        &self,
        receipt: Receipt,
        signature: &[u8],
    ) -> Result<SignedReceipt, ReceiptError> {
        let signed = SignedReceipt {
            receipt,
            alg: "Ed25519".into(),
            key_id: self.key_id.clone(),
            signature: base64::engine::general_purpose::STANDARD.encode(signature),
        };
        signed.verify(&self.vk)?;
        Ok(signed)
    }
}

/// Whatever signs this installation's deletion receipts: the local key file
/// ([`LocalReceiptSigner`]) or a key held by a key service (the Transit signer in
/// `pixseal-seal`). Object-safe (`Arc<dyn ReceiptSigner>`).
///
/// [`ReceiptSigner::sign`] may block (a remote signer does network I/O): async code calls it
/// on the blocking pool (`tokio::task::spawn_blocking`).
pub trait ReceiptSigner: Send + Sync {
    /// Where the private key lives, for people: `local` or `transit`.
    fn provider(&self) -> &'static str;

    /// The public key receipts verify with.
    fn public_key(&self) -> &ReceiptPublicKey;

    /// Sign `receipt` (Ed25519 over [`Receipt::signed_bytes`]). The result verifies under
    /// [`ReceiptSigner::public_key`]; [`ReceiptError::Unavailable`] when a key service cannot
    /// be reached.
    fn sign(&self, receipt: Receipt) -> Result<SignedReceipt, ReceiptError>;

    /// Whether signing would work now (readiness); the local key always can.
    fn check(&self) -> Result<(), ReceiptError> {
        Ok(())
    }

    /// The key id (same derivation for every signer: [`ReceiptPublicKey::key_id`]).
    fn key_id(&self) -> &str {
        self.public_key().key_id()
    }

    /// The public key as PEM (SubjectPublicKeyInfo), what verifiers need.
    fn public_key_pem(&self) -> String {
        self.public_key().pem().to_owned()
    }
}

impl<T: ReceiptSigner + ?Sized> ReceiptSigner for std::sync::Arc<T> {
    fn provider(&self) -> &'static str {
        (**self).provider()
    }
    fn public_key(&self) -> &ReceiptPublicKey {
        (**self).public_key()
    }
    fn sign(&self, receipt: Receipt) -> Result<SignedReceipt, ReceiptError> {
        (**self).sign(receipt)
    }
    fn check(&self) -> Result<(), ReceiptError> {
        (**self).check()
    }
}

/// The receipt-signing key in a local PKCS#8 PEM file (the embedded default).
pub struct LocalReceiptSigner {
    key: SigningKey,
    public: ReceiptPublicKey,
}

fn key_id(vk: &VerifyingKey) -> String {
    let der = vk
        .to_public_key_der()
        .map(|d| d.as_bytes().to_vec())
        .unwrap_or_else(|_| vk.to_bytes().to_vec());
    hex::encode(&Sha256::digest(der)[..8])
}

impl LocalReceiptSigner {
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
        let public = ReceiptPublicKey::new(key.verifying_key());
        Ok(LocalReceiptSigner { key, public })
    }
}

impl ReceiptSigner for LocalReceiptSigner {
    fn provider(&self) -> &'static str {
        "local"
    }

    fn public_key(&self) -> &ReceiptPublicKey {
        &self.public
    }

    fn sign(&self, receipt: Receipt) -> Result<SignedReceipt, ReceiptError> {
        let sig = self.key.sign(&receipt.signed_bytes());
        Ok(SignedReceipt {
            receipt,
            alg: "Ed25519".into(),
            key_id: self.public.key_id.clone(),
            signature: base64::engine::general_purpose::STANDARD.encode(sig.to_bytes()),
        })
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
        self.verify(ReceiptPublicKey::from_pem(public_key_pem)?.verifying_key())
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
        let signer = LocalReceiptSigner::open(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            LocalReceiptSigner::open(&path).unwrap().key_id(),
            signer.key_id(),
            "key reloads"
        );
        let signed = signer.sign(receipt()).unwrap();
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
        let other = LocalReceiptSigner::open(&dir.path().join("other.key")).unwrap();
        assert!(matches!(
            signed.verify_pem(&other.public_key_pem()),
            Err(ReceiptError::WrongKey { .. })
        ));
    }

    #[test]
    fn key_id_is_derived_from_the_public_key_alone() {
        let dir = tempfile::tempdir().unwrap();
        let signer = LocalReceiptSigner::open(&dir.path().join("k.pem")).unwrap();
        let raw = signer.public_key().verifying_key().to_bytes();
        let remote = ReceiptPublicKey::from_raw(&raw).unwrap();
        assert_eq!(remote.key_id(), signer.key_id());
        assert_eq!(remote.pem(), signer.public_key_pem());
        assert_eq!(
            ReceiptPublicKey::from_pem(&signer.public_key_pem()).unwrap(),
            remote
        );
        assert_eq!(remote.key_id().len(), 16);
        assert!(matches!(
            ReceiptPublicKey::from_raw(&raw[..31]),
            Err(ReceiptError::Key(_))
        ));
        // A detached signature made elsewhere is attached only when it verifies.
        let made = signer.sign(receipt()).unwrap();
        let sig = base64::engine::general_purpose::STANDARD
            .decode(&made.signature)
            .unwrap();
        assert_eq!(remote.attach(receipt(), &sig).unwrap(), made);
        let mut other = receipt();
        other.reason = "deleted_by_owner".into();
        assert_eq!(remote.attach(other, &sig), Err(ReceiptError::BadSignature));
        assert!(matches!(
            remote.attach(receipt(), &sig[..63]),
            Err(ReceiptError::Malformed(_))
        ));
    }
}
