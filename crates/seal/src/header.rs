//! The versioned header of a sealed object (layout in `docs/sealed-format.md`).
//!
//! Parsing is strict and total: every input either yields a header whose re-serialization is
//! byte-identical to the input prefix, or [`SealError::Tampered`]. It never panics.

use sha2::{Digest, Sha256};

use crate::error::{Result, SealError};
use crate::provider::{MAX_WRAPPED_LEN, ProviderId, WrappedKey, parse_key_name, validate_key_name};

/// `PXSL`.
pub const MAGIC: [u8; 4] = *b"PXSL";
/// Format version written by this crate.
pub const FORMAT_VERSION: u8 = 1;
/// AES-256-GCM in the STREAM construction, 32-bit big-endian counter + last-segment flag
/// (`aead::stream::StreamBE32`), 7-byte nonce prefix.
pub const ALG_AES256GCM_STREAM_BE32: u8 = 1;
/// Default plaintext bytes per segment (64 KiB).
pub const DEFAULT_SEGMENT_SIZE: u32 = 64 * 1024;
/// Smallest accepted segment size.
pub const MIN_SEGMENT_SIZE: u32 = 256;
/// Largest accepted segment size (bounds the memory a hostile header can ask for).
pub const MAX_SEGMENT_SIZE: u32 = 1024 * 1024;
/// Length of the STREAM nonce prefix.
pub const NONCE_PREFIX_LEN: usize = 7;
/// Bytes before the variable part: magic(4) version(1) header_len(2).
pub const PREAMBLE_LEN: usize = 7;
/// Fixed part: preamble + alg(1) provider(1) flags(1) segment(4) nonce(7) name_len(1)
/// + version(4) + wrapped_len(2).
pub const FIXED_LEN: usize = PREAMBLE_LEN + 1 + 1 + 1 + 4 + NONCE_PREFIX_LEN + 1 + 4 + 2;
/// Largest header accepted.
pub const MAX_HEADER_LEN: usize = FIXED_LEN + crate::provider::MAX_KEY_NAME_LEN + MAX_WRAPPED_LEN;

/// Flag bit: the wrapped data key is stored outside the blob (in the store's database row).
pub const FLAG_DETACHED_KEY: u8 = 0x01;

/// A parsed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Key provider that wrapped the data key.
    pub provider: ProviderId,
    /// Master key name.
    pub key_name: String,
    /// Master key version that wrapped the embedded data key; 0 when the key is detached (a
    /// detached key can be rewrapped to a new version without touching the blob, so the blob
    /// does not record a version — the stored [`WrappedKey`] does).
    pub key_version: u32,
    /// The wrapped data key, or `None` when it is detached (stored by the caller).
    pub wrapped_dek: Option<Vec<u8>>,
    /// STREAM nonce prefix.
    pub nonce_prefix: [u8; NONCE_PREFIX_LEN],
    /// Plaintext bytes per segment.
    pub segment_size: u32,
}

impl Header {
    /// Serialized length.
    pub fn len(&self) -> usize {
        FIXED_LEN + self.key_name.len() + self.wrapped_dek.as_ref().map_or(0, Vec::len)
    }

    /// Never empty (kept for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Serializes the header.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        validate_key_name(&self.key_name)?;
        if let Some(w) = &self.wrapped_dek
            && (w.is_empty() || w.len() > MAX_WRAPPED_LEN)
        {
            return Err(SealError::Internal(
                "wrapped key length out of range".into(),
            ));
        }
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&self.segment_size) {
            return Err(SealError::Config(format!(
                "segment size {} outside {MIN_SEGMENT_SIZE}..={MAX_SEGMENT_SIZE}",
                self.segment_size
            )));
        }
        if (self.key_version == 0) != self.wrapped_dek.is_none() {
            return Err(SealError::Internal(
                "key version must be 0 exactly when the key is detached".into(),
            ));
        }
        let len = self.len();
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&MAGIC);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.push(ALG_AES256GCM_STREAM_BE32);
        out.push(self.provider.as_byte());
        out.push(if self.wrapped_dek.is_none() {
            FLAG_DETACHED_KEY
        } else {
            0
        });
        out.extend_from_slice(&self.segment_size.to_be_bytes());
        out.extend_from_slice(&self.nonce_prefix);
        out.push(self.key_name.len() as u8);
        out.extend_from_slice(self.key_name.as_bytes());
        out.extend_from_slice(&self.key_version.to_be_bytes());
        let w = self.wrapped_dek.as_deref().unwrap_or(&[]);
        out.extend_from_slice(&(w.len() as u16).to_be_bytes());
        out.extend_from_slice(w);
        debug_assert_eq!(out.len(), len);
        Ok(out)
    }

    /// Reads the declared total header length from the 7-byte preamble.
    pub fn declared_len(preamble: &[u8]) -> Result<usize> {
        let mut r = Cursor::new(preamble);
        if r.take(4)? != MAGIC || r.u8()? != FORMAT_VERSION {
            return Err(SealError::Tampered);
        }
        let len = r.u16()? as usize;
        if !(FIXED_LEN + 1..=MAX_HEADER_LEN).contains(&len) {
            return Err(SealError::Tampered);
        }
        Ok(len)
    }

    /// Parses a header from the start of `bytes`; returns it and its length. Any malformed,
    /// unknown or inconsistent field is [`SealError::Tampered`].
    pub fn parse(bytes: &[u8]) -> Result<(Header, usize)> {
        let len = Self::declared_len(bytes.get(..PREAMBLE_LEN).ok_or(SealError::Tampered)?)?;
        let mut r = Cursor::new(bytes.get(..len).ok_or(SealError::Tampered)?);
        r.take(PREAMBLE_LEN)?;
        if r.u8()? != ALG_AES256GCM_STREAM_BE32 {
            return Err(SealError::Tampered);
        }
        let provider = ProviderId::from_byte(r.u8()?).ok_or(SealError::Tampered)?;
        let flags = r.u8()?;
        if flags & !FLAG_DETACHED_KEY != 0 {
            return Err(SealError::Tampered);
        }
        let segment_size = r.u32()?;
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&segment_size) {
            return Err(SealError::Tampered);
        }
        let mut nonce_prefix = [0u8; NONCE_PREFIX_LEN];
        nonce_prefix.copy_from_slice(r.take(NONCE_PREFIX_LEN)?);
        let name_len = r.u8()? as usize;
        let key_name = parse_key_name(r.take(name_len)?)?;
        let key_version = r.u32()?;
        let wlen = r.u16()? as usize;
        let detached = flags & FLAG_DETACHED_KEY != 0;
        let wrapped_dek = match (detached, key_version, wlen) {
            (true, 0, 0) => None,
            (false, 1.., 1..=MAX_WRAPPED_LEN) => Some(r.take(wlen)?.to_vec()),
            _ => return Err(SealError::Tampered),
        };
        r.finish()?;
        Ok((
            Header {
                provider,
                key_name,
                key_version,
                wrapped_dek,
                nonce_prefix,
                segment_size,
            },
            len,
        ))
    }

    /// The wrapped key this header refers to: the embedded one, or `detached` checked against
    /// the header's provider and key name (a mismatch is `Tampered`; the version is the stored
    /// key's own, since rewrapping changes it).
    pub fn wrapped_key(&self, detached: Option<&WrappedKey>) -> Result<WrappedKey> {
        match (&self.wrapped_dek, detached) {
            (Some(ct), None) => Ok(WrappedKey {
                provider: self.provider,
                key_name: self.key_name.clone(),
                version: self.key_version,
                ciphertext: ct.clone(),
            }),
            // The stored key is authoritative for a detached blob: it may have moved to
            // another master key of the same provider since (`keys rewrap --tenant`), the way
            // it moves to newer versions, without the blob changing.
            (None, Some(w)) => {
                if w.provider != self.provider {
                    return Err(SealError::Tampered);
                }
                Ok(w.clone())
            }
            (None, None) => Err(SealError::KeyNotFound(
                "this blob's wrapped data key is stored separately and was not supplied".into(),
            )),
            (Some(_), Some(_)) => Err(SealError::Config(
                "a detached wrapped key was supplied for a blob that embeds its own".into(),
            )),
        }
    }
}

/// Associated data of every segment: SHA-256 over a domain label, the serialized header and the
/// object binding, each length-prefixed (u32 BE).
pub fn segment_aad(header_bytes: &[u8], object_id: &str, tenant: &str, region: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"pixseal/seal/v1/segment-aad");
    for part in [
        header_bytes,
        object_id.as_bytes(),
        tenant.as_bytes(),
        region.as_bytes(),
    ] {
        h.update((part.len() as u32).to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// A bounds-checked reader over untrusted bytes; running off the end is `Tampered`.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(SealError::Tampered)?;
        let s = self.buf.get(self.pos..end).ok_or(SealError::Tampered)?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn rest_len(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }

    /// Errors unless every byte was consumed.
    pub(crate) fn finish(&self) -> Result<()> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(SealError::Tampered)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(detached: bool) -> Header {
        Header {
            provider: ProviderId::Local,
            key_name: "pixseal-us".into(),
            key_version: if detached { 0 } else { 2 },
            wrapped_dek: (!detached).then(|| vec![7u8; 60]),
            nonce_prefix: [1, 2, 3, 4, 5, 6, 7],
            segment_size: DEFAULT_SEGMENT_SIZE,
        }
    }

    #[test]
    fn round_trip_both_placements() {
        for detached in [false, true] {
            let h = sample(detached);
            let b = h.to_bytes().unwrap();
            assert_eq!(b.len(), h.len());
            let (p, n) = Header::parse(&b).unwrap();
            assert_eq!((p, n), (h, b.len()));
        }
    }

    #[test]
    fn parse_ignores_trailing_body() {
        let h = sample(false);
        let mut b = h.to_bytes().unwrap();
        let n = b.len();
        b.extend_from_slice(&[0xAA; 100]);
        assert_eq!(Header::parse(&b).unwrap(), (h, n));
    }

    #[test]
    fn every_prefix_and_every_flip_is_rejected_or_consistent() {
        let b = sample(false).to_bytes().unwrap();
        for n in 0..b.len() {
            assert!(
                matches!(Header::parse(&b[..n]), Err(SealError::Tampered)),
                "prefix {n}"
            );
        }
        for i in 0..b.len() {
            for x in [0x01u8, 0x80, 0xFF] {
                let mut t = b.clone();
                t[i] ^= x;
                // A flip either fails to parse, or yields a header that differs from the
                // original (so the segment AAD differs and authentication fails).
                match Header::parse(&t) {
                    Err(e) => assert!(matches!(e, SealError::Tampered)),
                    Ok((h, n)) => {
                        assert_ne!(h, sample(false));
                        assert_eq!(h.to_bytes().unwrap(), t[..n]);
                    }
                }
            }
        }
    }

    #[test]
    fn detached_key_must_match_the_headers_provider() {
        let h = sample(true);
        let good = WrappedKey {
            provider: ProviderId::Local,
            key_name: "pixseal-us".into(),
            version: 2,
            ciphertext: vec![1; 60],
        };
        assert_eq!(h.wrapped_key(Some(&good)).unwrap(), good);
        let mut rewrapped = good.clone();
        rewrapped.version = 3;
        assert_eq!(h.wrapped_key(Some(&rewrapped)).unwrap(), rewrapped);
        // Moved to another master key of the same provider: the stored key rules (the sealer
        // then checks that it is the key it opens with).
        let mut moved = good.clone();
        moved.key_name = "pixseal-tenant-t".into();
        assert_eq!(h.wrapped_key(Some(&moved)).unwrap(), moved);
        let mut transit = good.clone();
        transit.provider = ProviderId::Transit;
        assert!(matches!(
            h.wrapped_key(Some(&transit)),
            Err(SealError::Tampered)
        ));
        assert!(matches!(
            h.wrapped_key(None),
            Err(SealError::KeyNotFound(_))
        ));
        assert!(matches!(
            sample(false).wrapped_key(Some(&good)),
            Err(SealError::Config(_))
        ));
    }

    #[test]
    fn aad_binds_each_part_unambiguously() {
        let a = segment_aad(b"h", "obj", "t", "us");
        assert_ne!(a, segment_aad(b"h", "obj", "t", "eu"));
        assert_ne!(a, segment_aad(b"h", "obj2", "t", "us"));
        assert_ne!(a, segment_aad(b"h", "ob", "jt", "us"));
        assert_ne!(a, segment_aad(b"H", "obj", "t", "us"));
    }
}
