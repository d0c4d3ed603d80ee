//! Streaming seal/open of objects (AES-256-GCM, STREAM-BE32 segments).

use std::io::{self, Read, Write};

use crate::gcm::Aes256GcmLc;
use aead::stream::{DecryptorBE32, EncryptorBE32, NewStream, StreamBE32};
use zeroize::Zeroizing;

use crate::error::{Result, SealError};
use crate::header::{
    DEFAULT_SEGMENT_SIZE, Header, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE, NONCE_PREFIX_LEN,
    PREAMBLE_LEN, segment_aad,
};
use crate::provider::{DataKey, KeyProvider, WrappedKey, random_bytes, validate_region};

/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;

/// What a sealed object is bound to. All three are authenticated with every segment, so a
/// blob copied to another object id, tenant or region does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectRef<'a> {
    /// Stable object (artifact) id.
    pub object_id: &'a str,
    /// Owning tenant.
    pub tenant: &'a str,
    /// The tenant's region (selects the master key).
    pub region: &'a str,
}

impl ObjectRef<'_> {
    fn validate(&self) -> Result<()> {
        validate_region(self.region)?;
        for (what, v) in [("object id", self.object_id), ("tenant", self.tenant)] {
            if v.is_empty() || v.len() > 1024 {
                return Err(SealError::Config(format!("{what} must be 1..=1024 bytes")));
            }
        }
        Ok(())
    }
}

/// Where the wrapped data key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPlacement {
    /// In the blob header: the blob is self-contained (CLI, exports). Crypto-shredding then
    /// needs every copy of the blob deleted, or the master key version destroyed.
    Embedded,
    /// Only a key reference (provider, name, version) in the header; the caller stores
    /// [`SealSummary::wrapped_key`] (e.g. in the object's database row). Deleting that row
    /// crypto-shreds every copy of the blob, backups included. What the store uses.
    Detached,
}

/// Result of sealing one object.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "with KeyPlacement::Detached the wrapped key must be stored or the object is lost"]
pub struct SealSummary {
    /// The object's wrapped data key (also embedded in the header with `Embedded`).
    pub wrapped_key: WrappedKey,
    /// Where the wrapped key is.
    pub placement: KeyPlacement,
    /// Plaintext bytes read.
    pub plaintext_len: u64,
    /// Sealed bytes written (header + segments).
    pub sealed_len: u64,
}

/// Seals and opens objects with one key provider.
///
/// Memory use is one segment (64 KiB by default) plus the header, whatever the object size.
#[derive(Clone, Copy)]
pub struct Sealer<'p> {
    provider: &'p dyn KeyProvider,
    placement: KeyPlacement,
    segment_size: u32,
}

impl std::fmt::Debug for Sealer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("provider", &self.provider.id())
            .field("placement", &self.placement)
            .field("segment_size", &self.segment_size)
            .finish()
    }
}

impl<'p> Sealer<'p> {
    /// A sealer with 64 KiB segments.
    pub fn new(provider: &'p dyn KeyProvider, placement: KeyPlacement) -> Self {
        Sealer {
            provider,
            placement,
            segment_size: DEFAULT_SEGMENT_SIZE,
        }
    }

    /// Overrides the segment size (256 B ..= 1 MiB; recorded in the header). Only tests and
    /// benchmarks need this; the format's default is 64 KiB.
    pub fn with_segment_size(mut self, segment_size: u32) -> Result<Self> {
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&segment_size) {
            return Err(SealError::Config(format!(
                "segment size {segment_size} outside {MIN_SEGMENT_SIZE}..={MAX_SEGMENT_SIZE}"
            )));
        }
        self.segment_size = segment_size;
        Ok(self)
    }

    /// Encrypts everything `reader` yields into `writer`: header, then segments. Generates a
    /// fresh data key for the object from the provider (latest master key version of
    /// `obj.region`).
    pub fn seal<R: Read, W: Write>(
        &self,
        reader: R,
        writer: W,
        obj: &ObjectRef<'_>,
    ) -> Result<SealSummary> {
        obj.validate()?;
        let (dek, wrapped) = self.provider.generate_data_key(obj.region)?;
        wrapped.validate()?;
        if wrapped.provider != self.provider.id() {
            return Err(SealError::Internal(
                "provider returned a foreign wrapped key".into(),
            ));
        }
        seal_with_dek(
            &dek,
            wrapped,
            self.placement,
            self.segment_size,
            reader,
            writer,
            obj,
        )
    }

    /// Decrypts a sealed object from `reader` into `writer`; returns the plaintext length.
    ///
    /// `detached_key` is the stored wrapped key for blobs sealed with
    /// [`KeyPlacement::Detached`] (`None` for embedded ones).
    ///
    /// Each segment is written only after its tag verified, but a stream can still turn out to
    /// be truncated or reordered at a later segment: the output is trustworthy only if this
    /// returns `Ok` (an HTTP response must be aborted, not completed, on `Err`).
    pub fn open<R: Read, W: Write>(
        &self,
        mut reader: R,
        writer: W,
        obj: &ObjectRef<'_>,
        detached_key: Option<&WrappedKey>,
    ) -> Result<u64> {
        let (header, header_bytes) = read_header_bytes(&mut reader)?;
        let (dek, aad) = self.unwrap_for(&header, &header_bytes, obj, detached_key)?;
        decrypt_segments(&dek, &header, &aad, reader, writer)
    }

    /// The data key of a parsed header and the segments' associated data, once the header is
    /// checked to belong to `obj`'s region and this provider.
    pub(crate) fn unwrap_for(
        &self,
        header: &Header,
        header_bytes: &[u8],
        obj: &ObjectRef<'_>,
        detached_key: Option<&WrappedKey>,
    ) -> Result<(DataKey, [u8; 32])> {
        obj.validate()?;
        if header.provider != self.provider.id() {
            // A blob of this region always belongs to this region's provider.
            return Err(SealError::Tampered);
        }
        let wrapped = header.wrapped_key(detached_key)?;
        if wrapped.key_name != self.provider.key_name(obj.region)? {
            // Wrapped by another region's (or tenant's) key: the blob or its key was moved.
            return Err(SealError::Tampered);
        }
        let dek = self.provider.unwrap_data_key(&wrapped, obj.region)?;
        let aad = segment_aad(header_bytes, obj.object_id, obj.tenant, obj.region);
        Ok((dek, aad))
    }

    /// [`Sealer::seal`] for an in-memory plaintext.
    pub fn seal_bytes(
        &self,
        plaintext: &[u8],
        obj: &ObjectRef<'_>,
    ) -> Result<(Vec<u8>, SealSummary)> {
        let mut out = Vec::with_capacity(sealed_len_estimate(plaintext.len(), self.segment_size));
        let summary = self.seal(plaintext, &mut out, obj)?;
        Ok((out, summary))
    }

    /// [`Sealer::open`] into memory. The plaintext is returned only if the whole blob verified.
    pub fn open_bytes(
        &self,
        blob: &[u8],
        obj: &ObjectRef<'_>,
        detached_key: Option<&WrappedKey>,
    ) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(blob.len());
        self.open(blob, &mut out, obj, detached_key)?;
        Ok(out)
    }

    /// Re-encrypts a sealed object under a fresh data key wrapped by the latest master key
    /// version (for embedded-key blobs after a rotation, or to move off an old version before
    /// raising `min_decryption_version`). Streams segment by segment; plaintext is held one
    /// segment at a time in zeroized memory. The output must replace the input only if this
    /// returns `Ok`. (For detached keys, [`KeyProvider::rewrap`] of the stored wrapped key is
    /// enough: the blob does not change.)
    pub fn reseal<R: Read, W: Write>(
        &self,
        reader: R,
        writer: W,
        obj: &ObjectRef<'_>,
        detached_key: Option<&WrappedKey>,
    ) -> Result<SealSummary> {
        obj.validate()?;
        let mut writer = writer;
        let (dek, wrapped) = self.provider.generate_data_key(obj.region)?;
        wrapped.validate()?;
        let mut enc = StreamSealer::start(
            &dek,
            wrapped,
            self.placement,
            self.segment_size,
            &mut writer,
            obj,
        )?;
        let mut pipe = SegmentPipe::default();
        let sink = ForwardWriter {
            enc: &mut enc,
            buf: &mut pipe,
        };
        let n = self.open(reader, sink, obj, detached_key)?;
        let summary = enc.finish(&mut pipe)?;
        if summary.plaintext_len != n {
            return Err(SealError::Internal("reseal length mismatch".into()));
        }
        Ok(summary)
    }
}

/// Reads and parses the header of a sealed object (e.g. to learn its key version before a
/// rotation sweep). Consumes exactly the header bytes from `reader`.
pub fn read_header<R: Read>(mut reader: R) -> Result<Header> {
    Ok(read_header_bytes(&mut reader)?.0)
}

fn read_header_bytes<R: Read>(reader: &mut R) -> Result<(Header, Vec<u8>)> {
    let mut bytes = vec![0u8; PREAMBLE_LEN];
    if read_full(reader, &mut bytes)? != PREAMBLE_LEN {
        return Err(SealError::Tampered);
    }
    let len = Header::declared_len(&bytes)?;
    bytes.resize(len, 0);
    if read_full(reader, &mut bytes[PREAMBLE_LEN..])? != len - PREAMBLE_LEN {
        return Err(SealError::Tampered);
    }
    let (header, n) = Header::parse(&bytes)?;
    if n != len {
        return Err(SealError::Tampered);
    }
    Ok((header, bytes))
}

/// Sealed size of a plaintext of `len` bytes (excluding the header).
pub fn body_len(len: u64, segment_size: u32) -> u64 {
    let seg = u64::from(segment_size);
    let segments = if len == 0 { 1 } else { len.div_ceil(seg) };
    len + segments * TAG_LEN as u64
}

fn sealed_len_estimate(len: usize, segment_size: u32) -> usize {
    (body_len(len as u64, segment_size) as usize).saturating_add(crate::header::MAX_HEADER_LEN)
}

/// Reads until `buf` is full or EOF; returns the number of bytes read.
fn read_full<R: Read + ?Sized>(reader: &mut R, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(SealError::Io(e)),
        }
    }
    Ok(n)
}

/// Incremental encryptor: header written at start, segments as plaintext arrives.
struct StreamSealer<'w, W: Write> {
    enc: EncryptorBE32<Aes256GcmLc>,
    aad: [u8; 32],
    writer: &'w mut W,
    seg: usize,
    summary: SealSummary,
}

impl<'w, W: Write> StreamSealer<'w, W> {
    fn start(
        dek: &DataKey,
        wrapped: WrappedKey,
        placement: KeyPlacement,
        segment_size: u32,
        writer: &'w mut W,
        obj: &ObjectRef<'_>,
    ) -> Result<Self> {
        let mut nonce_prefix = [0u8; NONCE_PREFIX_LEN];
        random_bytes(&mut nonce_prefix)?;
        let header = Header {
            provider: wrapped.provider,
            key_name: wrapped.key_name.clone(),
            key_version: match placement {
                KeyPlacement::Embedded => wrapped.version,
                KeyPlacement::Detached => 0,
            },
            wrapped_dek: match placement {
                KeyPlacement::Embedded => Some(wrapped.ciphertext.clone()),
                KeyPlacement::Detached => None,
            },
            nonce_prefix,
            segment_size,
        };
        let header_bytes = header.to_bytes()?;
        let aad = segment_aad(&header_bytes, obj.object_id, obj.tenant, obj.region);
        let cipher = Aes256GcmLc::new(&dek[..])
            .ok_or_else(|| SealError::Internal("bad data key length".into()))?;
        let enc = EncryptorBE32::from_stream_primitive(StreamBE32::from_aead(
            cipher,
            nonce_prefix.as_slice().into(),
        ));
        writer.write_all(&header_bytes)?;
        Ok(StreamSealer {
            enc,
            aad,
            writer,
            seg: segment_size as usize,
            summary: SealSummary {
                wrapped_key: wrapped,
                placement,
                plaintext_len: 0,
                sealed_len: header_bytes.len() as u64,
            },
        })
    }

    /// Encrypts `work` (exactly one full segment) as a non-last segment.
    fn push_full(&mut self, work: &mut Vec<u8>) -> Result<()> {
        debug_assert_eq!(work.len(), self.seg);
        self.summary.plaintext_len += work.len() as u64;
        self.enc
            .encrypt_next_in_place(&self.aad, work)
            .map_err(|_| SealError::Internal("segment counter exhausted".into()))?;
        self.writer.write_all(work)?;
        self.summary.sealed_len += work.len() as u64;
        Ok(())
    }

    /// Encrypts `work` (0..=segment bytes) as the last segment.
    fn finish_with(self, work: &mut Vec<u8>) -> Result<SealSummary> {
        let mut summary = self.summary;
        summary.plaintext_len += work.len() as u64;
        self.enc
            .encrypt_last_in_place(&self.aad, work)
            .map_err(|_| SealError::Internal("segment encryption failed".into()))?;
        self.writer.write_all(work)?;
        self.writer.flush()?;
        summary.sealed_len += work.len() as u64;
        Ok(summary)
    }

    /// Final segment from what is buffered in `pipe`.
    fn finish(self, pipe: &mut SegmentPipe) -> Result<SealSummary> {
        let mut work = std::mem::take(&mut pipe.buf);
        self.finish_with(&mut work)
    }
}

fn seal_with_dek<R: Read, W: Write>(
    dek: &DataKey,
    wrapped: WrappedKey,
    placement: KeyPlacement,
    segment_size: u32,
    mut reader: R,
    mut writer: W,
    obj: &ObjectRef<'_>,
) -> Result<SealSummary> {
    let mut s = StreamSealer::start(dek, wrapped, placement, segment_size, &mut writer, obj)?;
    let seg = s.seg;
    // One segment + one look-ahead byte (to know whether a full segment is the last one) + tag.
    let mut work = Zeroizing::new(Vec::with_capacity(seg + TAG_LEN + 1));
    let mut carry: Option<u8> = None;
    loop {
        work.clear();
        if let Some(b) = carry.take() {
            work.push(b);
        }
        let start = work.len();
        work.resize(seg + 1, 0);
        let filled = start + read_full(&mut reader, &mut work[start..])?;
        if filled == seg + 1 {
            carry = Some(work[seg]);
            work.truncate(seg);
            s.push_full(&mut work)?;
        } else {
            work.truncate(filled);
            return s.finish_with(&mut work);
        }
    }
}

fn decrypt_segments<R: Read, W: Write>(
    dek: &DataKey,
    header: &Header,
    aad: &[u8; 32],
    mut reader: R,
    mut writer: W,
) -> Result<u64> {
    let cipher = Aes256GcmLc::new(&dek[..])
        .ok_or_else(|| SealError::Internal("bad data key length".into()))?;
    let mut dec = DecryptorBE32::from_stream_primitive(StreamBE32::from_aead(
        cipher,
        header.nonce_prefix.as_slice().into(),
    ));
    let cseg = header.segment_size as usize + TAG_LEN;
    let mut work = Zeroizing::new(Vec::with_capacity(cseg + 1));
    let mut carry: Option<u8> = None;
    let mut total = 0u64;
    loop {
        work.clear();
        if let Some(b) = carry.take() {
            work.push(b);
        }
        let start = work.len();
        work.resize(cseg + 1, 0);
        let filled = start + read_full(&mut reader, &mut work[start..])?;
        if filled == cseg + 1 {
            carry = Some(work[cseg]);
            work.truncate(cseg);
            dec.decrypt_next_in_place(aad, &mut *work)
                .map_err(|_| SealError::Tampered)?;
            writer.write_all(&work)?;
            total += work.len() as u64;
        } else {
            if filled < TAG_LEN {
                return Err(SealError::Tampered);
            }
            work.truncate(filled);
            dec.decrypt_last_in_place(aad, &mut *work)
                .map_err(|_| SealError::Tampered)?;
            writer.write_all(&work)?;
            writer.flush()?;
            total += work.len() as u64;
            return Ok(total);
        }
    }
}

/// Buffer between the decryptor and the encryptor in [`Sealer::reseal`].
#[derive(Default)]
struct SegmentPipe {
    buf: Vec<u8>,
}

impl Drop for SegmentPipe {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.buf);
    }
}

/// A writer that feeds a [`StreamSealer`] in whole segments, keeping at least one byte back so
/// the final segment is always emitted by `finish`.
struct ForwardWriter<'a, 'w, W: Write> {
    enc: &'a mut StreamSealer<'w, W>,
    buf: &'a mut SegmentPipe,
}

impl<W: Write> Write for ForwardWriter<'_, '_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let seg = self.enc.seg;
        if self.buf.buf.capacity() < seg + TAG_LEN + 1 {
            // Reserve once so the buffer never reallocates (no stray plaintext copies).
            let mut fresh = Vec::with_capacity(seg + TAG_LEN + 1);
            fresh.extend_from_slice(&self.buf.buf);
            zeroize::Zeroize::zeroize(&mut self.buf.buf);
            self.buf.buf = fresh;
        }
        let mut rest = data;
        while !rest.is_empty() {
            // Flush a full segment only when more data follows it.
            if self.buf.buf.len() == seg {
                self.enc
                    .push_full(&mut self.buf.buf)
                    .map_err(|e| io::Error::other(e.to_string()))?;
                self.buf.buf.clear();
            }
            let take = (seg - self.buf.buf.len()).min(rest.len());
            self.buf.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_len_matches_segments() {
        assert_eq!(body_len(0, 65536), 16);
        assert_eq!(body_len(1, 65536), 17);
        assert_eq!(body_len(65536, 65536), 65536 + 16);
        assert_eq!(body_len(65537, 65536), 65537 + 32);
    }

    #[test]
    fn raw_segments_reject_random_keys() {
        // Crypto-shredding at the primitive level: without the data key, no other key opens it.
        let dek = crate::provider::random_data_key().unwrap();
        let wrapped = WrappedKey {
            provider: crate::provider::ProviderId::Local,
            key_name: "pixseal-us".into(),
            version: 1,
            ciphertext: vec![0; 60],
        };
        let obj = ObjectRef {
            object_id: "o",
            tenant: "t",
            region: "us",
        };
        let mut blob = Vec::new();
        let data = vec![42u8; 1000];
        let _ = seal_with_dek(
            &dek,
            wrapped,
            KeyPlacement::Detached,
            256,
            &data[..],
            &mut blob,
            &obj,
        )
        .unwrap();
        let (h, hb) = read_header_bytes(&mut &blob[..]).unwrap();
        let aad = segment_aad(&hb, "o", "t", "us");
        let mut out = Vec::new();
        let n = decrypt_segments(&dek, &h, &aad, &blob[hb.len()..], &mut out).unwrap();
        assert_eq!((n, out), (1000, data));
        for _ in 0..64 {
            let other = crate::provider::random_data_key().unwrap();
            let mut sink = Vec::new();
            assert!(matches!(
                decrypt_segments(&other, &h, &aad, &blob[hb.len()..], &mut sink),
                Err(SealError::Tampered)
            ));
            assert!(
                sink.is_empty(),
                "no plaintext released before authentication"
            );
        }
    }
}
