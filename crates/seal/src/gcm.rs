//! AES-256-GCM from AWS-LC (FIPS-validated, AES-NI/VAES + PCLMUL assembly) behind RustCrypto's
//! `AeadInPlace` trait, so `aead::stream`'s STREAM construction runs on it unchanged. Nothing
//! cryptographic is implemented here: the adapter only moves bytes between the two APIs.

use aead::consts::{U0, U12, U16};
use aead::{AeadCore, AeadInPlace, Nonce, Tag};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce as LcNonce, UnboundKey};

pub struct Aes256GcmLc {
    key: LessSafeKey,
}

impl Aes256GcmLc {
    /// `key` must be 32 bytes; AWS-LC keeps its own copy of the expanded key and wipes it on drop.
    pub fn new(key: &[u8]) -> Option<Self> {
        let unbound = UnboundKey::new(&AES_256_GCM, key).ok()?;
        Some(Aes256GcmLc {
            key: LessSafeKey::new(unbound),
        })
    }
}

impl AeadCore for Aes256GcmLc {
    type NonceSize = U12;
    type TagSize = U16;
    type CiphertextOverhead = U0;
}

impl AeadInPlace for Aes256GcmLc {
    fn encrypt_in_place_detached(
        &self,
        nonce: &Nonce<Self>,
        aad: &[u8],
        buffer: &mut [u8],
    ) -> aead::Result<Tag<Self>> {
        let n = LcNonce::try_assume_unique_for_key(nonce.as_slice()).map_err(|_| aead::Error)?;
        let tag = self
            .key
            .seal_in_place_separate_tag(n, Aad::from(aad), buffer)
            .map_err(|_| aead::Error)?;
        Ok(Tag::<Self>::clone_from_slice(tag.as_ref()))
    }

    fn decrypt_in_place_detached(
        &self,
        nonce: &Nonce<Self>,
        aad: &[u8],
        buffer: &mut [u8],
        tag: &Tag<Self>,
    ) -> aead::Result<()> {
        let n = LcNonce::try_assume_unique_for_key(nonce.as_slice()).map_err(|_| aead::Error)?;
        self.key
            .open_in_place_separate_tag(n, Aad::from(aad), tag.as_slice(), buffer)
            .map(|_| ())
            .map_err(|_| aead::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aead::KeyInit;
    use aead::stream::{DecryptorBE32, EncryptorBE32, NewStream, StreamBE32};

    /// The adapter is interchangeable with RustCrypto's AES-GCM: a STREAM written by one opens
    /// with the other, byte for byte, in both directions.
    #[test]
    fn stream_interoperates_with_rustcrypto_aes_gcm() {
        let key = [7u8; 32];
        let prefix = [9u8; 7];
        let aad = b"object-binding";
        let seg = |i: u8| vec![i; 1000 + i as usize];
        let mut a = EncryptorBE32::from_stream_primitive(StreamBE32::from_aead(
            Aes256GcmLc::new(&key).unwrap(),
            (&prefix).into(),
        ));
        let mut b = EncryptorBE32::from_aead(
            aes_gcm::Aes256Gcm::new_from_slice(&key).unwrap(),
            (&prefix).into(),
        );
        let mut ca = Vec::new();
        let mut cb = Vec::new();
        for i in 0..3u8 {
            ca.push(a.encrypt_next(aead::Payload { msg: &seg(i), aad }).unwrap());
            cb.push(b.encrypt_next(aead::Payload { msg: &seg(i), aad }).unwrap());
        }
        ca.push(a.encrypt_last(aead::Payload { msg: &seg(3), aad }).unwrap());
        cb.push(b.encrypt_last(aead::Payload { msg: &seg(3), aad }).unwrap());
        assert_eq!(ca, cb);
        let mut d = DecryptorBE32::from_stream_primitive(StreamBE32::from_aead(
            Aes256GcmLc::new(&key).unwrap(),
            (&prefix).into(),
        ));
        for (i, c) in cb.iter().enumerate().take(3) {
            assert_eq!(
                d.decrypt_next(aead::Payload { msg: c, aad }).unwrap(),
                seg(i as u8)
            );
        }
        let mut bad = cb[3].clone();
        bad[0] ^= 1;
        assert!(
            DecryptorBE32::from_stream_primitive(StreamBE32::from_aead(
                Aes256GcmLc::new(&key).unwrap(),
                (&prefix).into()
            ))
            .decrypt_last(aead::Payload { msg: &bad, aad })
            .is_err()
        );
        assert_eq!(
            d.decrypt_last(aead::Payload { msg: &cb[3], aad }).unwrap(),
            seg(3)
        );
    }
}
