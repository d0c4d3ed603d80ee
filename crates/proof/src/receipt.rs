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

use crate::subject::SubjectOpening;

/// What a deletion receipt states, in either format: version 2 (issued now) or version 1
/// (issued before; still parsed and verified, see docs/receipts.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum Receipt {
    V2(ReceiptV2),
    V1(ReceiptV1),
}

/// Version 2: the artifact is named only through `subject`, a salted commitment to its id and
/// to the original's SHA-256 ([`SubjectOpening`]), so the receipt alone can be public.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReceiptV2 {
    /// Always 2.
    pub version: u32,
    pub receipt_id: String,
    pub proof_id: String,
    /// SHA-256 of the stamped artifact.
    pub sha256: String,
    pub region: String,
    pub created_at: String,
    /// When the deletion began: from then on the artifact was no longer served.
    pub deleted_at: String,
    /// `deleted_by_owner`, `retention_expired` or `picked_up` (a pickup link's one download).
    pub reason: String,
    /// Hex SHA-256 commitment to (salt, artifact id, original SHA-256): see [`SubjectOpening`].
    pub subject: String,
}

/// Version 1 (SPEC §8 as first written): names the artifact id and the original's SHA-256 in
/// clear, so it is shown to its tenant only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReceiptV1 {
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

/// A receipt with its detached signature, and, in its tenant's view only, what opens its
/// subject.
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
    /// The tenant's view only (version 2): the salt, artifact id and original SHA-256 whose
    /// commitment is `receipt.subject`. Not signed itself: it is checked against the signed
    /// subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub opening: Option<SubjectOpening>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReceiptError {
    #[error("signature does not verify: the receipt was changed or signed by another key")]
    BadSignature,
    #[error("receipt signed by key {found}, not by {expected}")]
    WrongKey { found: String, expected: String },
    #[error("the artifact id, original SHA-256 or salt shown do not open the receipt's subject")]
    SubjectMismatch,
    #[error("malformed receipt: {0}")]
    Malformed(String),
    #[error("receipt signing key: {0}")]
    Key(String),
    /// The key service holding the signing key could not be reached (after its retries).
    #[error("receipt signing service unavailable: {0}")]
    Unavailable(String),
}

impl ReceiptError {
    /// The stable error code (SPEC §3).
    pub fn code(&self) -> &'static str {
        match self {
            ReceiptError::BadSignature
            | ReceiptError::WrongKey { .. }
            | ReceiptError::SubjectMismatch => "tampered",
            ReceiptError::Malformed(_) => "corrupt",
            ReceiptError::Key(_) => "internal",
            ReceiptError::Unavailable(_) => "key_unavailable",
        }
    }
}

impl Receipt {
    /// The exact bytes signed: a domain-separation line naming the version, then the JSON of
    /// the fields in their declared order (serde keeps struct order; no map is involved).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let (mut b, json) = match self {
            Receipt::V2(r) => (
                b"pixseal deletion receipt v2\n".to_vec(),
                serde_json::to_vec(r),
            ),
            Receipt::V1(r) => (
                b"pixseal deletion receipt v1\n".to_vec(),
                serde_json::to_vec(r),
            ),
        };
        b.extend(json.expect("a struct of strings and integers serialises"));
        b
    }

    pub fn version(&self) -> u32 {
        match self {
            Receipt::V2(r) => r.version,
            Receipt::V1(_) => 1,
        }
    }

    pub fn receipt_id(&self) -> &str {
        match self {
            Receipt::V2(r) => &r.receipt_id,
            Receipt::V1(r) => &r.receipt_id,
        }
    }

    pub fn proof_id(&self) -> &str {
        match self {
            Receipt::V2(r) => &r.proof_id,
            Receipt::V1(r) => &r.proof_id,
        }
    }

    pub fn sha256(&self) -> &str {
        match self {
            Receipt::V2(r) => &r.sha256,
            Receipt::V1(r) => &r.sha256,
        }
    }

    pub fn deleted_at(&self) -> &str {
        match self {
            Receipt::V2(r) => &r.deleted_at,
            Receipt::V1(r) => &r.deleted_at,
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Receipt::V2(r) => &r.reason,
            Receipt::V1(r) => &r.reason,
        }
    }

    /// The artifact id and the original's SHA-256, when this receipt or `opening` shows them.
    pub fn named<'a>(&'a self, opening: Option<&'a SubjectOpening>) -> Option<(&'a str, &'a str)> {
        match (self, opening) {
            (Receipt::V1(r), _) => Some((&r.artifact_id, &r.original_sha256)),
            (Receipt::V2(_), Some(o)) => Some((&o.artifact_id, &o.original_sha256)),
            (Receipt::V2(_), None) => None,
        }
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
            opening: None,
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

    /// The raw Ed25519 signature of `message` with the same key. Callers sign only
    /// domain-separated messages (a receipt's or a checkpoint's `signed_bytes`), so no
    /// signature made for one can pass for the other.
    fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, ReceiptError>;

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
    fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, ReceiptError> {
        (**self).sign_message(message)
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

    fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, ReceiptError> {
        Ok(self.key.sign(message).to_bytes().to_vec())
    }

    fn sign(&self, receipt: Receipt) -> Result<SignedReceipt, ReceiptError> {
        let sig = self.key.sign(&receipt.signed_bytes());
        Ok(SignedReceipt {
            receipt,
            alg: "Ed25519".into(),
            key_id: self.public.key_id.clone(),
            signature: base64::engine::general_purpose::STANDARD.encode(sig.to_bytes()),
            opening: None,
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

    /// Check the signature, the key id and, when an opening is shown, that it opens the
    /// signed subject. A version 2 receipt must say version 2 (the signed bytes name it too).
    pub fn verify(&self, vk: &VerifyingKey) -> Result<(), ReceiptError> {
        if self.alg != "Ed25519" {
            return Err(ReceiptError::Malformed(format!(
                "unknown alg {:?}",
                self.alg
            )));
        }
        if let Receipt::V2(r) = &self.receipt
            && r.version != 2
        {
            return Err(ReceiptError::Malformed(format!(
                "unknown receipt version {}",
                r.version
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
            .map_err(|_| ReceiptError::BadSignature)?;
        match (&self.receipt, &self.opening) {
            (_, None) => Ok(()),
            (Receipt::V2(r), Some(o)) if o.subject()? == r.subject => Ok(()),
            (Receipt::V2(_), Some(_)) => Err(ReceiptError::SubjectMismatch),
            (Receipt::V1(_), Some(_)) => Err(ReceiptError::Malformed(
                "a version 1 receipt has no subject to open".into(),
            )),
        }
    }

    /// What anyone may see: the signed receipt without its opening.
    pub fn public(&self) -> SignedReceipt {
        SignedReceipt {
            opening: None,
            ..self.clone()
        }
    }

    /// The tenant's view: the signed receipt with the opening of its subject.
    pub fn with_opening(self, opening: SubjectOpening) -> SignedReceipt {
        SignedReceipt {
            opening: Some(opening),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opening() -> SubjectOpening {
        SubjectOpening {
            salt: "5a".repeat(32),
            artifact_id: "0192".into(),
            original_sha256: "cd".repeat(32),
        }
    }

    fn receipt() -> Receipt {
        Receipt::V2(ReceiptV2 {
            version: 2,
            receipt_id: "rcpt_1".into(),
            proof_id: "px_0H8Z4K2M9QW3R".into(),
            sha256: "ab".repeat(32),
            region: "eu".into(),
            created_at: "2026-11-01T00:00:00Z".into(),
            deleted_at: "2026-11-08T00:00:00Z".into(),
            reason: "retention_expired".into(),
            subject: opening().subject().unwrap(),
        })
    }

    fn receipt_v1() -> Receipt {
        Receipt::V1(ReceiptV1 {
            receipt_id: "rcpt_1".into(),
            artifact_id: "0192".into(),
            proof_id: "px_0H8Z4K2M9QW3R".into(),
            sha256: "ab".repeat(32),
            original_sha256: "cd".repeat(32),
            region: "eu".into(),
            created_at: "2026-11-01T00:00:00Z".into(),
            deleted_at: "2026-11-08T00:00:00Z".into(),
            reason: "retention_expired".into(),
        })
    }

    /// Sign `r`, then check that it verifies, survives JSON, and that changing any one of
    /// `fields` (or adding one) is caught.
    fn tamper_check(signer: &LocalReceiptSigner, r: Receipt, fields: &[&str]) -> SignedReceipt {
        let signed = signer.sign(r).unwrap();
        let pem = signer.public_key_pem();
        signed.verify_pem(&pem).unwrap();
        let json = serde_json::to_value(&signed).unwrap();
        let back: SignedReceipt = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, signed);
        back.verify_pem(&pem).unwrap();
        for field in fields {
            let mut j = json.clone();
            j["receipt"][field] = match &j["receipt"][field] {
                serde_json::Value::String(v) => serde_json::Value::String(format!("{v}x")),
                serde_json::Value::Number(n) => (n.as_u64().unwrap() ^ 1).into(),
                other => panic!("{field}: {other}"),
            };
            let t: SignedReceipt = serde_json::from_value(j).unwrap();
            assert!(
                matches!(
                    t.verify_pem(&pem),
                    Err(ReceiptError::BadSignature | ReceiptError::Malformed(_))
                ),
                "{field}"
            );
        }
        let mut j = json.clone();
        j["receipt"]["extra"] = serde_json::Value::String("x".into());
        assert!(
            serde_json::from_value::<SignedReceipt>(j).is_err(),
            "unknown fields refused"
        );
        signed
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
        let signed = tamper_check(
            &signer,
            receipt(),
            &[
                "version",
                "receipt_id",
                "proof_id",
                "sha256",
                "region",
                "created_at",
                "deleted_at",
                "reason",
                "subject",
            ],
        );
        // Version 1 receipts issued before still verify, field by field.
        let v1 = tamper_check(
            &signer,
            receipt_v1(),
            &[
                "receipt_id",
                "artifact_id",
                "proof_id",
                "sha256",
                "original_sha256",
                "region",
                "created_at",
                "deleted_at",
                "reason",
            ],
        );
        assert_eq!(v1.receipt.version(), 1);
        assert!(matches!(v1.receipt, Receipt::V1(_)));
        // The same statement signed as v1 and v2 gives different bytes: no signature of one
        // format verifies as the other.
        assert_ne!(receipt().signed_bytes(), receipt_v1().signed_bytes());
        let mut crossed = v1.clone();
        crossed.receipt = receipt();
        assert_eq!(
            crossed.verify_pem(&signer.public_key_pem()),
            Err(ReceiptError::BadSignature)
        );
        // Another installation's key: refused by key id.
        let other = LocalReceiptSigner::open(&dir.path().join("other.key")).unwrap();
        assert!(matches!(
            signed.verify_pem(&other.public_key_pem()),
            Err(ReceiptError::WrongKey { .. })
        ));
    }

    /// The public view names neither the artifact nor the original; the tenant's view adds the
    /// opening, which must open the signed subject; both verify with the public key alone.
    #[test]
    fn public_and_tenant_views_verify_and_a_wrong_opening_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let signer = LocalReceiptSigner::open(&dir.path().join("k.pem")).unwrap();
        let pem = signer.public_key_pem();
        let full = signer.sign(receipt()).unwrap().with_opening(opening());
        full.verify_pem(&pem).unwrap();
        assert_eq!(
            full.receipt.named(full.opening.as_ref()),
            Some(("0192", &*"cd".repeat(32)))
        );
        let public = full.public();
        public.verify_pem(&pem).unwrap();
        let text = serde_json::to_string(&public).unwrap();
        assert!(
            !text.contains("0192") && !text.contains(&"cd".repeat(32)),
            "{text}"
        );
        assert!(!text.contains("opening"), "{text}");
        assert_eq!(public.receipt.named(None), None);
        // The tenant's view round-trips through JSON (what DELETE answers, what the CLI reads).
        let back: SignedReceipt =
            serde_json::from_str(&serde_json::to_string(&full).unwrap()).unwrap();
        assert_eq!(back, full);
        for wrong in [
            SubjectOpening {
                artifact_id: "0193".into(),
                ..opening()
            },
            SubjectOpening {
                original_sha256: "ce".repeat(32),
                ..opening()
            },
            SubjectOpening {
                salt: "5b".repeat(32),
                ..opening()
            },
        ] {
            assert_eq!(
                public.clone().with_opening(wrong).verify_pem(&pem),
                Err(ReceiptError::SubjectMismatch)
            );
        }
        let v1 = signer.sign(receipt_v1()).unwrap();
        assert!(matches!(
            v1.with_opening(opening()).verify_pem(&pem),
            Err(ReceiptError::Malformed(_))
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
        let Receipt::V2(mut other) = receipt() else {
            unreachable!()
        };
        other.reason = "deleted_by_owner".into();
        assert_eq!(
            remote.attach(Receipt::V2(other), &sig),
            Err(ReceiptError::BadSignature)
        );
        assert!(matches!(
            remote.attach(receipt(), &sig[..63]),
            Err(ReceiptError::Malformed(_))
        ));
    }
}
