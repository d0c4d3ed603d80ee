//! The C2PA claim-signing key held in Vault / OpenBao Transit (`[provenance].signer =
//! "transit"`): the [`pixseal_provenance::HeldKey`] whose private half never leaves the
//! service. It shares the HTTP client, token handling and retry policy of the
//! [`crate::TransitKeyProvider`].
//!
//! | operation | call | app-token capability |
//! |---|---|---|
//! | public keys, type, versions | `GET transit/keys/<k>` | read |
//! | sign | `POST transit/sign/<k>/<hash>` (`input`, `key_version`, `marshaling_algorithm = asn1`) | update |
//!
//! The key is never created here: an operator makes it (`bao write transit/keys/<k>
//! type=ecdsa-p256`) and has a certificate issued for its public key. The version signing is
//! pinned when the key opens: the one whose public key the configured certificate certifies
//! (or the latest, when a development certificate is about to be made for it), so a rotation
//! in Transit never produces a signature the certificate does not cover.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use pixseal_provenance::{HeldKey, ProvenanceError, SignAlg, SignerKind};

use crate::error::{Result, SealError};
use crate::provider::validate_key_name;
use crate::transit::{Input, KeyInfo, SignResp, TransitClient, TransitConfig};

/// A Transit key that signs C2PA claims. See the module docs.
pub struct TransitClaimKey {
    client: TransitClient,
    key: String,
    version: u32,
    alg: SignAlg,
    public: Vec<u8>,
}

impl std::fmt::Debug for TransitClaimKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransitClaimKey")
            .field("base", &self.client.base)
            .field("key", &self.key)
            .field("version", &self.version)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// DER SubjectPublicKeyInfo prefix of an Ed25519 key (RFC 8410); the 32 key bytes follow.
pub(crate) const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

impl TransitClaimKey {
    /// Connects to Transit (address, token, mount and retries from `config`; its region keys
    /// are not used) and pins the version of `key_name` whose public key is `certified` (DER
    /// SubjectPublicKeyInfo), or the latest version when `certified` is `None`.
    pub fn open(config: &TransitConfig, key_name: &str, certified: Option<&[u8]>) -> Result<Self> {
        validate_key_name(key_name)?;
        let client = TransitClient::new(config)?;
        let body = client
            .call(true, &format!("keys/{key_name}"), None, Input::Trusted)
            .map_err(|e| match e {
                SealError::KeyNotFound(m) => SealError::KeyNotFound(format!(
                    "transit key {key_name:?} does not exist (an operator creates it: \
                     `bao write transit/keys/{key_name} type=ecdsa-p256`): {m}"
                )),
                other => other,
            })?;
        let info: KeyInfo = TransitClient::parse(&body)?;
        let alg = match info.kind.as_str() {
            "ecdsa-p256" => SignAlg::Es256,
            "ecdsa-p384" => SignAlg::Es384,
            "ed25519" => SignAlg::Ed25519,
            other => {
                return Err(SealError::Config(format!(
                    "transit key {key_name:?} is of type {other:?}; C2PA claims need \
                     \"ecdsa-p256\", \"ecdsa-p384\" or \"ed25519\""
                )));
            }
        };
        let mut versions: Vec<(u32, Vec<u8>)> = Vec::new();
        for (v, entry) in &info.keys {
            let Ok(v) = v.parse::<u32>() else { continue };
            let text = entry
                .get("public_key")
                .and_then(|p| p.as_str())
                .unwrap_or_default();
            versions.push((v, spki_of(alg, text, key_name, v)?));
        }
        let (version, public) = match certified {
            Some(want) => versions
                .into_iter()
                .find(|(_, spki)| spki == want)
                .ok_or_else(|| {
                    SealError::Config(format!(
                        "no version of transit key {key_name:?} is the key the signing \
                         certificate certifies (a certificate for another key?)"
                    ))
                })?,
            None => versions
                .into_iter()
                .find(|(v, _)| *v == info.latest_version)
                .ok_or_else(|| {
                    SealError::KeyNotFound(format!(
                        "transit key {key_name:?} has no public key for its latest version"
                    ))
                })?,
        };
        Ok(TransitClaimKey {
            client,
            key: key_name.to_owned(),
            version,
            alg,
            public,
        })
    }

    /// The Transit key name.
    pub fn key_name(&self) -> &str {
        &self.key
    }

    /// The key version every claim is signed with.
    pub fn key_version(&self) -> u32 {
        self.version
    }

    fn sign_raw(&self, data: &[u8]) -> Result<Vec<u8>> {
        let path = match self.alg {
            SignAlg::Es256 => format!("sign/{}/sha2-256", self.key),
            SignAlg::Es384 => format!("sign/{}/sha2-384", self.key),
            SignAlg::Ed25519 => format!("sign/{}", self.key),
        };
        let body = self.client.call(
            false,
            &path,
            Some(&serde_json::json!({
                "input": B64.encode(data),
                "key_version": self.version,
                "marshaling_algorithm": "asn1",
            })),
            Input::Trusted,
        )?;
        let r: SignResp = TransitClient::parse(&body)?;
        let bad = || SealError::Internal("transit returned a malformed signature".into());
        let b64 = r
            .signature
            .strip_prefix(&format!("vault:v{}:", self.version))
            .ok_or_else(bad)?;
        let raw = B64.decode(b64).map_err(|_| bad())?;
        // COSE wants ECDSA as fixed-size r || s; Transit's asn1 marshaling is DER.
        match self.alg {
            SignAlg::Es256 => p256::ecdsa::Signature::from_der(&raw)
                .map(|s| s.to_bytes().to_vec())
                .map_err(|_| bad()),
            SignAlg::Es384 => p384::ecdsa::Signature::from_der(&raw)
                .map(|s| s.to_bytes().to_vec())
                .map_err(|_| bad()),
            SignAlg::Ed25519 if raw.len() == 64 => Ok(raw),
            SignAlg::Ed25519 => Err(bad()),
        }
    }
}

/// A Transit public key (PEM SubjectPublicKeyInfo for ECDSA, base64 of the 32 bytes for
/// Ed25519) as DER SubjectPublicKeyInfo.
fn spki_of(alg: SignAlg, text: &str, key_name: &str, version: u32) -> Result<Vec<u8>> {
    let bad = || {
        SealError::Internal(format!(
            "transit key {key_name:?} version {version}: unreadable public key"
        ))
    };
    match alg {
        SignAlg::Ed25519 => {
            let raw = B64.decode(text.trim()).map_err(|_| bad())?;
            if raw.len() != 32 {
                return Err(bad());
            }
            Ok([&ED25519_SPKI_PREFIX[..], &raw].concat())
        }
        SignAlg::Es256 | SignAlg::Es384 => {
            let body: String = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.starts_with("-----"))
                .collect();
            if !text.contains("-----BEGIN PUBLIC KEY-----") {
                return Err(bad());
            }
            B64.decode(body).map_err(|_| bad())
        }
    }
}

impl HeldKey for TransitClaimKey {
    fn kind(&self) -> SignerKind {
        SignerKind::Transit
    }
    fn alg(&self) -> SignAlg {
        self.alg
    }
    fn public_key_der(&self) -> &[u8] {
        &self.public
    }
    fn sign(&self, data: &[u8]) -> std::result::Result<Vec<u8>, ProvenanceError> {
        self.sign_raw(data).map_err(|e| {
            ProvenanceError::Signing(format!("transit key {:?} ({}): {e}", self.key, e.code()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_keys_of_each_type() {
        let e = spki_of(SignAlg::Ed25519, &B64.encode([7u8; 32]), "k", 1).unwrap();
        assert_eq!(e.len(), 44);
        assert_eq!(&e[12..], &[7u8; 32]);
        assert!(spki_of(SignAlg::Ed25519, &B64.encode([7u8; 31]), "k", 1).is_err());
        let pem = "-----BEGIN PUBLIC KEY-----\nAQID\n-----END PUBLIC KEY-----\n";
        assert_eq!(spki_of(SignAlg::Es256, pem, "k", 1).unwrap(), vec![1, 2, 3]);
        assert!(spki_of(SignAlg::Es256, "AQID", "k", 1).is_err());
    }
}
