//! Bring-your-own-key import into Transit (docs/keys.md): key material wrapped for Transit's
//! import endpoint as Transit defines it — the key under a fresh AES-256 key with AES-KWP
//! (RFC 5649), that AES key under Transit's RSA wrapping key with RSA-OAEP (SHA-256,
//! MGF1-SHA-256), the two concatenated and base64-encoded. [`wrap_for_import`] runs where
//! the key is (the tenant's machine, no network); only its output travels.

use aws_lc_rs::key_wrap::{AES_256, AesKek, KeyWrapPadded};
use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::{Result, SealError};
use crate::provider::{random_data_key, validate_key_name};
use crate::transit::{Input, TransitClient, TransitConfig};

/// Bytes of the key material pixseal's master keys take (Transit type `aes256-gcm96`).
pub const IMPORTED_KEY_LEN: usize = 32;

/// Smallest RSA wrapping key accepted (Transit's own is 4096 bits).
const MIN_RSA_BYTES: usize = 2048 / 8;

/// Wraps a 32-byte AES-256 key for `transit/keys/<name>/import`, under the wrapping key
/// `GET transit/wrapping_key` returned (PEM, SubjectPublicKeyInfo).
pub fn wrap_for_import(wrapping_key_pem: &str, key: &[u8]) -> Result<String> {
    if key.len() != IMPORTED_KEY_LEN {
        return Err(SealError::Config(format!(
            "the key to import must be {IMPORTED_KEY_LEN} bytes (AES-256), not {}",
            key.len()
        )));
    }
    let der = pem::parse(wrapping_key_pem.trim())
        .map_err(|e| SealError::Config(format!("wrapping key: not PEM: {e}")))?;
    if der.tag() != "PUBLIC KEY" {
        return Err(SealError::Config(format!(
            "wrapping key: a PUBLIC KEY PEM was expected, not {}",
            der.tag()
        )));
    }
    let rsa = PublicEncryptingKey::from_der(der.contents())
        .map_err(|e| SealError::Config(format!("wrapping key: not an RSA public key: {e}")))?;
    if rsa.key_size_bytes() < MIN_RSA_BYTES {
        return Err(SealError::Config(format!(
            "wrapping key: {} bits is too small",
            rsa.key_size_bytes() * 8
        )));
    }
    let oaep = OaepPublicEncryptingKey::new(rsa)
        .map_err(|_| SealError::Internal("RSA-OAEP key setup failed".into()))?;

    let ephemeral = random_data_key()?;
    let mut wrapped_ephemeral = vec![0u8; oaep.ciphertext_size()];
    let n = oaep
        .encrypt(
            &OAEP_SHA256_MGF1SHA256,
            &ephemeral[..],
            &mut wrapped_ephemeral,
            None,
        )
        .map_err(|_| SealError::Internal("RSA-OAEP encryption failed".into()))?
        .len();
    wrapped_ephemeral.truncate(n);

    let kek = AesKek::new(&AES_256, &ephemeral[..])
        .map_err(|_| SealError::Internal("AES-KWP key setup failed".into()))?;
    // RFC 5649: the input padded to 8 bytes, plus one 8-byte block.
    let mut wrapped_key = vec![0u8; key.len().div_ceil(8) * 8 + 8];
    let n = kek
        .wrap_with_padding(key, &mut wrapped_key)
        .map_err(|_| SealError::Internal("AES-KWP wrap failed".into()))?
        .len();
    wrapped_key.truncate(n);

    wrapped_ephemeral.extend_from_slice(&wrapped_key);
    Ok(B64.encode(wrapped_ephemeral))
}

#[derive(Deserialize)]
struct WrappingKeyResp {
    public_key: String,
}

/// An operator's session with Transit for importing a tenant's key: the token is the
/// operator's (pixseal's app token may not create keys), used for these calls only.
pub struct TransitImporter {
    client: TransitClient,
}

impl std::fmt::Debug for TransitImporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransitImporter")
            .field("base", &self.client.base)
            .finish_non_exhaustive()
    }
}

impl TransitImporter {
    /// Checks the address and builds the client (no network I/O).
    pub fn new(config: &TransitConfig) -> Result<Self> {
        Ok(TransitImporter {
            client: TransitClient::new(config)?,
        })
    }

    /// `GET transit/wrapping_key`: the RSA public key (PEM) to wrap an import under.
    pub fn wrapping_key(&self) -> Result<String> {
        let body = self
            .client
            .call(true, "wrapping_key", None, Input::Trusted)?;
        Ok(TransitClient::parse::<WrappingKeyResp>(&body)?.public_key)
    }

    /// `POST transit/keys/<name>/import`: a new `aes256-gcm96` key from `wrapped` (the output
    /// of [`wrap_for_import`]), never exportable, no plaintext backup.
    pub fn import(&self, key_name: &str, wrapped: &str) -> Result<()> {
        validate_key_name(key_name)?;
        let wrapped = Zeroizing::new(wrapped.trim().to_owned());
        if wrapped.is_empty() || B64.decode(wrapped.as_bytes()).is_err() {
            return Err(SealError::Config(
                "the wrapped key is not base64 (the output of `pixseal tenant wrap-key`)".into(),
            ));
        }
        self.client.call(
            false,
            &format!("keys/{key_name}/import"),
            Some(&serde_json::json!({
                "ciphertext": wrapped.as_str(),
                "type": "aes256-gcm96",
                "hash_function": "SHA256",
                "exportable": false,
                "allow_plaintext_backup": false,
            })),
            Input::Untrusted,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rsa::{KeySize, OaepPrivateDecryptingKey, PrivateDecryptingKey};

    /// The wrapped form is exactly RSA-OAEP(ephemeral) ‖ AES-KWP(key): unwrapping it with the
    /// RSA private key gives the key back.
    #[test]
    fn wrapped_key_unwraps_with_the_private_key() {
        let private = PrivateDecryptingKey::generate(KeySize::Rsa2048).unwrap();
        let public = private.public_key();
        let spki =
            aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(&public)
                .unwrap();
        let pem = pem::encode(&pem::Pem::new("PUBLIC KEY", spki.as_ref().to_vec()));
        let key = [7u8; 32];
        let wrapped = B64.decode(wrap_for_import(&pem, &key).unwrap()).unwrap();
        assert_eq!(wrapped.len(), 256 + 40);
        let (rsa_part, kwp_part) = wrapped.split_at(256);
        let oaep = OaepPrivateDecryptingKey::new(private).unwrap();
        let mut eph = vec![0u8; oaep.min_output_size()];
        let eph = oaep
            .decrypt(&OAEP_SHA256_MGF1SHA256, rsa_part, &mut eph, None)
            .unwrap()
            .to_vec();
        let kek = AesKek::new(&AES_256, &eph).unwrap();
        let mut out = [0u8; 40];
        let got = kek.unwrap_with_padding(kwp_part, &mut out).unwrap();
        assert_eq!(got, key);
        // A fresh ephemeral key every time.
        assert_ne!(
            wrap_for_import(&pem, &key).unwrap(),
            wrap_for_import(&pem, &key).unwrap()
        );
    }

    #[test]
    fn refuses_wrong_lengths_and_keys() {
        assert!(wrap_for_import("junk", &[0u8; 32]).is_err());
        let private = PrivateDecryptingKey::generate(KeySize::Rsa2048).unwrap();
        let spki = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(
            &private.public_key(),
        )
        .unwrap();
        let pem = pem::encode(&pem::Pem::new("PUBLIC KEY", spki.as_ref().to_vec()));
        for n in [0, 16, 31, 33, 64] {
            assert!(wrap_for_import(&pem, &vec![1u8; n]).is_err(), "{n} bytes");
        }
        let cert = pem::encode(&pem::Pem::new("CERTIFICATE", spki.as_ref().to_vec()));
        assert!(wrap_for_import(&cert, &[1u8; 32]).is_err());
    }
}
