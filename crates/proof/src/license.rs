//! Licences and device tokens, signed with the installation's receipt key: a licence key is
//! what a customer pastes into `pixseal license activate`; a device token is what lets one
//! activated device work offline until it expires. Both verify offline with the public key.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::{ReceiptError, ReceiptPublicKey, ReceiptSigner};

/// What every licence key starts with (and how a pasted one is recognised).
pub const LICENSE_KEY_PREFIX: &str = "pixseal-license";

/// What a licence grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct License {
    /// The installation that issued it (and whose key signs it).
    pub installation: String,
    /// The licence id (also in device tokens and usage reports).
    pub id: String,
    /// The tenant it belongs to (id).
    pub tenant: String,
    /// Devices that may be active at once.
    pub seats: u32,
    /// When it was issued and when it ends (RFC 3339, UTC).
    pub issued_at: String,
    pub expires_at: String,
    /// The signing key's id, so a device can tell which public key it needs.
    pub key_id: String,
}

/// One device's permission to work offline under a licence until `valid_until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceToken {
    pub installation: String,
    /// The licence id.
    pub license: String,
    /// The device: a salted hash of its machine id (hex), never the id itself.
    pub device: String,
    pub issued_at: String,
    /// Past this (RFC 3339, UTC) the device needs a new token: it must check in.
    pub valid_until: String,
}

fn b64url() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn json_of<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("a struct of strings and integers serialises")
}

impl License {
    /// The exact bytes signed: a domain-separation line (no receipt, checkpoint or device
    /// token can pass for a licence), then the JSON of the fields in declared order.
    pub fn signed_bytes(payload_json: &[u8]) -> Vec<u8> {
        let mut b = b"pixseal license v1\n".to_vec();
        b.extend_from_slice(payload_json);
        b
    }

    /// Sign with the installation's receipt key, giving the licence key text:
    /// `pixseal-license.<base64url JSON>.<base64url signature>`.
    pub fn sign(&self, signer: &dyn ReceiptSigner) -> Result<String, ReceiptError> {
        let payload = json_of(self);
        let sig = signer.sign_message(&Self::signed_bytes(&payload))?;
        let key = format!(
            "{LICENSE_KEY_PREFIX}.{}.{}",
            b64url().encode(&payload),
            b64url().encode(sig)
        );
        // A signer never hands out a licence that would not verify offline.
        Self::open(&key, signer.public_key())?;
        Ok(key)
    }

    /// Read a licence key without checking its signature (to learn which key and server it
    /// names); [`License::open`] is the check.
    pub fn peek(key: &str) -> Result<License, ReceiptError> {
        Ok(Self::split(key)?.0)
    }

    /// Read a licence key and check that `key` signed it.
    pub fn open(text: &str, key: &ReceiptPublicKey) -> Result<License, ReceiptError> {
        let (license, payload, sig) = Self::split(text)?;
        if license.key_id != key.key_id() {
            return Err(ReceiptError::WrongKey {
                found: license.key_id,
                expected: key.key_id().to_string(),
            });
        }
        crate::checkpoint::check_raw_signature(key, &Self::signed_bytes(&payload), &sig)?;
        Ok(license)
    }

    fn split(text: &str) -> Result<(License, Vec<u8>, Vec<u8>), ReceiptError> {
        let malformed = |m: &str| ReceiptError::Malformed(format!("licence key: {m}"));
        let mut parts = text.trim().split('.');
        let (Some(prefix), Some(payload), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("not three dot-separated parts"));
        };
        if prefix != LICENSE_KEY_PREFIX {
            return Err(malformed("does not start with pixseal-license"));
        }
        let payload = b64url()
            .decode(payload)
            .map_err(|_| malformed("payload is not base64url"))?;
        let sig = b64url()
            .decode(sig)
            .map_err(|_| malformed("signature is not base64url"))?;
        let license: License =
            serde_json::from_slice(&payload).map_err(|e| malformed(&format!("payload: {e}")))?;
        Ok((license, payload, sig))
    }
}

/// A device token with its detached signature: what the server hands a device, and what the
/// device checks before every batch (offline).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedDeviceToken {
    pub token: DeviceToken,
    /// Always "Ed25519".
    pub alg: String,
    pub key_id: String,
    /// Base64 Ed25519 signature over [`DeviceToken::signed_bytes`].
    pub signature: String,
}

impl DeviceToken {
    /// A domain-separation line, then the JSON of the fields in declared order.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut b = b"pixseal device token v1\n".to_vec();
        b.extend(json_of(self));
        b
    }

    pub fn sign(self, signer: &dyn ReceiptSigner) -> Result<SignedDeviceToken, ReceiptError> {
        let sig = signer.sign_message(&self.signed_bytes())?;
        let signed = SignedDeviceToken {
            token: self,
            alg: "Ed25519".into(),
            key_id: signer.key_id().to_string(),
            signature: b64().encode(sig),
        };
        signed.verify(signer.public_key())?;
        Ok(signed)
    }
}

impl SignedDeviceToken {
    /// Check the algorithm, the key id and the signature under `key`.
    pub fn verify(&self, key: &ReceiptPublicKey) -> Result<(), ReceiptError> {
        crate::checkpoint::check_detached(
            key,
            &self.alg,
            &self.key_id,
            &self.signature,
            &self.token.signed_bytes(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalReceiptSigner;

    fn license(signer: &LocalReceiptSigner) -> License {
        License {
            installation: "inst".into(),
            id: "lic_1".into(),
            tenant: "t1".into(),
            seats: 2,
            issued_at: "2026-12-06T00:00:00Z".into(),
            expires_at: "2027-12-31T23:59:59Z".into(),
            key_id: signer.key_id().into(),
        }
    }

    #[test]
    fn a_licence_key_opens_only_unchanged_and_under_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let signer = LocalReceiptSigner::open(&dir.path().join("k.pem")).unwrap();
        let l = license(&signer);
        let key = l.sign(&signer).unwrap();
        assert!(key.starts_with("pixseal-license."));
        assert_eq!(License::open(&key, signer.public_key()).unwrap(), l);
        assert_eq!(License::peek(&key).unwrap(), l);

        // More seats, same signature: refused.
        let mut more = l.clone();
        more.seats = 200;
        let sig = key.rsplit('.').next().unwrap();
        let forged = format!(
            "pixseal-license.{}.{sig}",
            b64url().encode(serde_json::to_vec(&more).unwrap())
        );
        assert_eq!(
            License::open(&forged, signer.public_key()),
            Err(ReceiptError::BadSignature)
        );
        // Another installation's key.
        let other = LocalReceiptSigner::open(&dir.path().join("o.pem")).unwrap();
        assert!(matches!(
            License::open(&key, other.public_key()),
            Err(ReceiptError::WrongKey { .. })
        ));
        for bad in [
            "",
            "pixseal-license",
            "x.y.z",
            "pixseal-license.!!.AA",
            &key[..40],
        ] {
            assert!(
                matches!(
                    License::open(bad, signer.public_key()),
                    Err(ReceiptError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_device_token_is_not_a_licence_and_catches_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let signer = LocalReceiptSigner::open(&dir.path().join("k.pem")).unwrap();
        let t = DeviceToken {
            installation: "inst".into(),
            license: "lic_1".into(),
            device: "ab".repeat(32),
            issued_at: "2026-12-06T00:00:00Z".into(),
            valid_until: "2026-12-20T00:00:00Z".into(),
        };
        let signed = t.clone().sign(&signer).unwrap();
        signed.verify(signer.public_key()).unwrap();
        let mut later = signed.clone();
        later.token.valid_until = "2036-12-20T00:00:00Z".into();
        assert_eq!(
            later.verify(signer.public_key()),
            Err(ReceiptError::BadSignature)
        );
        let mut moved = signed.clone();
        moved.token.device = "cd".repeat(32);
        assert_eq!(
            moved.verify(signer.public_key()),
            Err(ReceiptError::BadSignature)
        );
        // The same key's signature over a licence's bytes does not pass as a token's.
        let raw = signer
            .sign_message(&License::signed_bytes(&serde_json::to_vec(&t).unwrap()))
            .unwrap();
        let mut swapped = signed.clone();
        swapped.signature = b64().encode(raw);
        assert_eq!(
            swapped.verify(signer.public_key()),
            Err(ReceiptError::BadSignature)
        );
    }
}
