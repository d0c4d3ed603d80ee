//! Level 4: codes signed on the account's device. The device (here `pixseal codes sign`) mints
//! the code and signs, with its Ed25519 key, the canonical text
//!
//! ```text
//! pixseal-code-signature-v1
//! code=<12 characters + check symbol, canonical>
//! message_sha256=<hex>
//! recipient_sha256=<hex of the normalized recipient>
//! expires=<unix seconds>
//! ```
//!
//! The server only ever sees the public key. It refuses a level-4 code without a signature that
//! verifies (strict Ed25519: no small-order keys, no malleable signatures), and checks the
//! stored signature again at every verification.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2_11::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::MessageCode;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceSignatureError {
    #[error("not an Ed25519 public key (base64 of 32 bytes, or PEM): {0}")]
    PublicKey(String),
    #[error("not an Ed25519 private key (PKCS#8 PEM): {0}")]
    PrivateKey(String),
    #[error("signature is not base64 of 64 bytes")]
    Malformed,
    #[error("signature does not verify with the account's device key")]
    Invalid,
    #[error("OS randomness: {0}")]
    Random(String),
}

/// What a level-4 device signs for one code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCode {
    pub code: MessageCode,
    pub message_sha256: String,
    pub recipient_sha256: String,
    pub expires_s: i64,
}

impl SignedCode {
    /// The exact bytes signed.
    pub fn payload(&self) -> Vec<u8> {
        self.text("pixseal-code-signature-v1")
    }

    /// The WebAuthn challenge a passkey signs for this code: the SHA-256 of the same fields
    /// under their own first line (`pixseal-code-passkey-v1`), so neither signature can stand in
    /// for the other.
    pub fn passkey_challenge(&self) -> [u8; 32] {
        Sha256::digest(self.text("pixseal-code-passkey-v1")).into()
    }

    fn text(&self, first_line: &str) -> Vec<u8> {
        format!(
            "{first_line}\ncode={}\nmessage_sha256={}\nrecipient_sha256={}\nexpires={}\n",
            self.code.canonical(),
            self.message_sha256,
            self.recipient_sha256,
            self.expires_s
        )
        .into_bytes()
    }

    /// Check `signature` (base64) against the device's public key.
    pub fn verify(
        &self,
        public_key: &VerifyingKey,
        signature: &str,
    ) -> Result<(), DeviceSignatureError> {
        let raw = B64
            .decode(signature.trim())
            .map_err(|_| DeviceSignatureError::Malformed)?;
        let sig = Signature::from_slice(&raw).map_err(|_| DeviceSignatureError::Malformed)?;
        public_key
            .verify_strict(&self.payload(), &sig)
            .map_err(|_| DeviceSignatureError::Invalid)
    }
}

/// A public device key as given by an account: base64 of the 32 raw bytes, or a PEM
/// SubjectPublicKeyInfo. Weak (small-order) keys are refused.
pub fn parse_public_key(s: &str) -> Result<VerifyingKey, DeviceSignatureError> {
    let s = s.trim();
    let vk = if s.starts_with("-----BEGIN") {
        VerifyingKey::from_public_key_pem(s)
            .map_err(|e| DeviceSignatureError::PublicKey(e.to_string()))?
    } else {
        let raw = B64
            .decode(s)
            .map_err(|e| DeviceSignatureError::PublicKey(e.to_string()))?;
        let raw: [u8; 32] = raw
            .try_into()
            .map_err(|_| DeviceSignatureError::PublicKey("not 32 bytes".into()))?;
        VerifyingKey::from_bytes(&raw)
            .map_err(|e| DeviceSignatureError::PublicKey(e.to_string()))?
    };
    if vk.is_weak() {
        return Err(DeviceSignatureError::PublicKey(
            "weak (small-order) key".into(),
        ));
    }
    Ok(vk)
}

/// The canonical text form of a public key (base64 of its 32 bytes).
pub fn public_key_text(vk: &VerifyingKey) -> String {
    B64.encode(vk.as_bytes())
}

/// A short fingerprint of a public key (first 8 bytes of its SHA-256, hex), for display/audit.
pub fn fingerprint(vk: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(vk.as_bytes())[..8])
}

/// The device's private key (what a phone keeps in its secure element; here a PEM file).
pub struct DeviceKey(SigningKey);

impl DeviceKey {
    pub fn generate() -> Result<Self, DeviceSignatureError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut seed[..]).map_err(|e| DeviceSignatureError::Random(e.to_string()))?;
        Ok(DeviceKey(SigningKey::from_bytes(&seed)))
    }

    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, DeviceSignatureError> {
        SigningKey::from_pkcs8_pem(pem)
            .map(DeviceKey)
            .map_err(|e| DeviceSignatureError::PrivateKey(e.to_string()))
    }

    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, DeviceSignatureError> {
        self.0
            .to_pkcs8_pem(Default::default())
            .map(|p| Zeroizing::new(p.to_string()))
            .map_err(|e| DeviceSignatureError::PrivateKey(e.to_string()))
    }

    pub fn public_key(&self) -> VerifyingKey {
        self.0.verifying_key()
    }

    /// Sign one code; the signature as base64.
    pub fn sign(&self, code: &SignedCode) -> String {
        B64.encode(self.0.sign(&code.payload()).to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SignedCode {
        SignedCode {
            code: MessageCode::from_value(12345),
            message_sha256: "a".repeat(64),
            recipient_sha256: "b".repeat(64),
            expires_s: 1_800_000_000,
        }
    }

    #[test]
    fn sign_and_verify() {
        let dk = DeviceKey::generate().unwrap();
        let pem = dk.to_pkcs8_pem().unwrap();
        let dk2 = DeviceKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(dk.public_key(), dk2.public_key());
        let vk = parse_public_key(&public_key_text(&dk.public_key())).unwrap();
        let s = sample();
        let sig = dk.sign(&s);
        assert_eq!(s.verify(&vk, &sig), Ok(()));
        // Any field changed, another key, garbage: refused.
        for other in [
            SignedCode {
                expires_s: s.expires_s + 1,
                ..s.clone()
            },
            SignedCode {
                code: MessageCode::from_value(12346),
                ..s.clone()
            },
            SignedCode {
                message_sha256: "c".repeat(64),
                ..s.clone()
            },
            SignedCode {
                recipient_sha256: "c".repeat(64),
                ..s.clone()
            },
        ] {
            assert_eq!(other.verify(&vk, &sig), Err(DeviceSignatureError::Invalid));
        }
        let other_key = DeviceKey::generate().unwrap().public_key();
        assert_eq!(
            s.verify(&other_key, &sig),
            Err(DeviceSignatureError::Invalid)
        );
        assert_eq!(
            s.verify(&vk, "not base64!"),
            Err(DeviceSignatureError::Malformed)
        );
        assert_eq!(s.verify(&vk, ""), Err(DeviceSignatureError::Malformed));
    }

    #[test]
    fn public_key_forms() {
        let dk = DeviceKey::generate().unwrap();
        let pem = ed25519_dalek::pkcs8::EncodePublicKey::to_public_key_pem(
            &dk.public_key(),
            Default::default(),
        )
        .unwrap();
        assert_eq!(parse_public_key(&pem).unwrap(), dk.public_key());
        assert!(parse_public_key("AAAA").is_err());
        // The identity point is a small-order key.
        let mut id = [0u8; 32];
        id[0] = 1;
        assert!(parse_public_key(&B64.encode(id)).is_err());
        assert_eq!(fingerprint(&dk.public_key()).len(), 16);
    }
}
