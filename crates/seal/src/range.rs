//! Random access into a sealed object: any plaintext byte range opened from the segments that
//! hold it and nothing else (HTTP Range requests on a stored video, without fetching or
//! decrypting the rest).
//!
//! Each segment is authenticated with its position and with whether it is the last one, and
//! the last one is known from the object's stored length: a segment moved, a segment of
//! another object, or an object cut inside a segment fails to open. An object cut exactly at
//! a segment boundary opens as a shorter one until its new last segment is read, so a caller
//! must also hold the length it stored (the content route checks the artifact row's).

use std::ops::Range;

use aead::stream::{NewStream, StreamBE32, StreamPrimitive};
use zeroize::Zeroizing;

use crate::error::{Result, SealError};
use crate::gcm::Aes256GcmLc;
use crate::header::{Header, PREAMBLE_LEN};
use crate::provider::WrappedKey;
use crate::stream::{ObjectRef, Sealer, TAG_LEN};

/// An opened sealed object ready for random reads: the data key unwrapped once, and the
/// object's layout read from its header and stored length.
pub struct RangeOpener {
    stream: StreamBE32<Aes256GcmLc>,
    aad: [u8; 32],
    header_len: u64,
    segment_size: u64,
    sealed_len: u64,
    segments: u64,
    plaintext_len: u64,
}

impl std::fmt::Debug for RangeOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RangeOpener")
            .field("segment_size", &self.segment_size)
            .field("segments", &self.segments)
            .field("plaintext_len", &self.plaintext_len)
            .finish_non_exhaustive()
    }
}

impl Sealer<'_> {
    /// Ready a sealed object for random access. `head` is its first bytes, at least the whole
    /// header (`header::MAX_HEADER_LEN` bytes always are, or the whole object if shorter);
    /// `sealed_len` is its full stored length. `detached_key` as for [`Sealer::open`].
    pub fn range_opener(
        &self,
        head: &[u8],
        sealed_len: u64,
        obj: &ObjectRef<'_>,
        detached_key: Option<&WrappedKey>,
    ) -> Result<RangeOpener> {
        let preamble = head.get(..PREAMBLE_LEN).ok_or(SealError::Tampered)?;
        let len = Header::declared_len(preamble)?;
        let header_bytes = head.get(..len).ok_or(SealError::Tampered)?;
        let (header, n) = Header::parse(header_bytes)?;
        if n != len {
            return Err(SealError::Tampered);
        }
        let segment_size = u64::from(header.segment_size);
        let sealed_segment = segment_size + TAG_LEN as u64;
        let body = sealed_len
            .checked_sub(len as u64)
            .ok_or(SealError::Tampered)?;
        let (full, rest) = (body / sealed_segment, body % sealed_segment);
        // The last segment holds 1..=segment_size bytes (none only in an empty object), so
        // the body is whole segments, or whole segments and a shorter, non-empty one with its
        // tag. (Only a caller that knows the object's length can tell a cut at a segment
        // boundary: the content route compares it with the stored row's.)
        let tag = TAG_LEN as u64;
        let (segments, plaintext_len) = match rest {
            0 if full == 0 => return Err(SealError::Tampered),
            0 => (full, full * segment_size),
            r if r < tag || (r == tag && full > 0) => return Err(SealError::Tampered),
            r => (full + 1, full * segment_size + r - tag),
        };
        if segments - 1 > u64::from(u32::MAX) {
            return Err(SealError::Tampered);
        }
        let (dek, aad) = self.unwrap_for(&header, header_bytes, obj, detached_key)?;
        let cipher = Aes256GcmLc::new(&dek[..])
            .ok_or_else(|| SealError::Internal("bad data key length".into()))?;
        Ok(RangeOpener {
            stream: StreamBE32::from_aead(cipher, header.nonce_prefix.as_slice().into()),
            aad,
            header_len: len as u64,
            segment_size,
            sealed_len,
            segments,
            plaintext_len,
        })
    }
}

impl RangeOpener {
    /// The object's plaintext length.
    pub fn len(&self) -> u64 {
        self.plaintext_len
    }

    /// Whether the object is empty.
    pub fn is_empty(&self) -> bool {
        self.plaintext_len == 0
    }

    /// The segments holding `plain`, as indexes.
    fn segments_of(&self, plain: &Range<u64>) -> Result<Range<u64>> {
        if plain.start >= plain.end || plain.end > self.plaintext_len {
            return Err(SealError::Config(format!(
                "range {}..{} outside the object's {} bytes",
                plain.start, plain.end, self.plaintext_len
            )));
        }
        Ok(plain.start / self.segment_size..(plain.end - 1) / self.segment_size + 1)
    }

    /// The stored bytes that hold plaintext `plain` (a non-empty range within [`len`]): whole
    /// segments, so usually a little more.
    ///
    /// [`len`]: RangeOpener::len
    pub fn sealed_range(&self, plain: &Range<u64>) -> Result<Range<u64>> {
        let segs = self.segments_of(plain)?;
        let sealed_segment = self.segment_size + TAG_LEN as u64;
        let start = self.header_len + segs.start * sealed_segment;
        let end = (self.header_len + segs.end * sealed_segment).min(self.sealed_len);
        Ok(start..end)
    }

    /// Plaintext `plain` from `sealed`, the stored bytes at [`sealed_range`]`(plain)`. Every
    /// segment is authenticated before any of its bytes are returned.
    ///
    /// [`sealed_range`]: RangeOpener::sealed_range
    pub fn open(&self, plain: &Range<u64>, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let segs = self.segments_of(plain)?;
        let want = self.sealed_range(plain)?;
        if sealed.len() as u64 != want.end - want.start {
            // The store returned less than asked: the object was cut short.
            return Err(SealError::Tampered);
        }
        let sealed_segment = (self.segment_size as usize) + TAG_LEN;
        let mut out = Zeroizing::new(Vec::with_capacity(sealed.len()));
        let mut work = Zeroizing::new(Vec::with_capacity(sealed_segment));
        for (i, chunk) in segs.clone().zip(sealed.chunks(sealed_segment)) {
            work.clear();
            work.extend_from_slice(chunk);
            let last = i + 1 == self.segments;
            self.stream
                .decrypt_in_place(i as u32, last, &self.aad, &mut *work)
                .map_err(|_| SealError::Tampered)?;
            out.extend_from_slice(&work);
        }
        let skip = (plain.start - segs.start * self.segment_size) as usize;
        let take = (plain.end - plain.start) as usize;
        if out.len() < skip + take {
            return Err(SealError::Tampered);
        }
        // Moved to the front in place: no second copy of the plaintext is made.
        out.copy_within(skip..skip + take, 0);
        out.truncate(take);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalKeyProvider;
    use crate::stream::KeyPlacement;

    fn provider() -> (tempfile::TempDir, LocalKeyProvider) {
        let dir = tempfile::tempdir().unwrap();
        let p = LocalKeyProvider::open(dir.path().join("keys"), &["us", "eu"]).unwrap();
        (dir, p)
    }

    const OBJ: ObjectRef<'static> = ObjectRef {
        object_id: "art_1",
        tenant: "t1",
        region: "us",
    };

    fn sealed(p: &LocalKeyProvider, plain: &[u8], seg: u32) -> (Vec<u8>, WrappedKey) {
        let sealer = Sealer::new(p, KeyPlacement::Detached)
            .with_segment_size(seg)
            .unwrap();
        let (blob, summary) = sealer.seal_bytes(plain, &OBJ).unwrap();
        (blob, summary.wrapped_key)
    }

    fn opener(p: &LocalKeyProvider, blob: &[u8], key: &WrappedKey) -> Result<RangeOpener> {
        let head = &blob[..blob.len().min(crate::header::MAX_HEADER_LEN)];
        Sealer::new(p, KeyPlacement::Detached).range_opener(
            head,
            blob.len() as u64,
            &OBJ,
            Some(key),
        )
    }

    fn read(o: &RangeOpener, blob: &[u8], plain: Range<u64>) -> Result<Vec<u8>> {
        let at = o.sealed_range(&plain)?;
        Ok(o.open(&plain, &blob[at.start as usize..at.end as usize])?
            .to_vec())
    }

    #[test]
    fn every_range_reads_what_was_sealed() {
        let (_d, p) = provider();
        let seg = 256u32;
        // Lengths around segment edges: one byte, one segment, one segment and a byte, …
        for len in [1usize, 255, 256, 257, 511, 512, 513, 1000] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let (blob, key) = sealed(&p, &plain, seg);
            let o = opener(&p, &blob, &key).unwrap();
            assert_eq!(o.len(), len as u64);
            let edges = [0, 1, 255, 256, 257, 300, 511, 512, 513, len - 1, len];
            for &a in &edges {
                for &b in &edges {
                    if a < b && b <= len {
                        let got = read(&o, &blob, a as u64..b as u64).unwrap();
                        assert_eq!(got, &plain[a..b], "len {len} range {a}..{b}");
                    }
                }
            }
        }
    }

    #[test]
    fn only_the_segments_asked_for_are_read() {
        let (_d, p) = provider();
        let plain = vec![9u8; 256 * 10];
        let (mut blob, key) = sealed(&p, &plain, 256);
        let o = opener(&p, &blob, &key).unwrap();
        let first = o.sealed_range(&(0..256)).unwrap();
        let sixth = o.sealed_range(&(1280..1290)).unwrap();
        assert_eq!(first.end - first.start, 256 + TAG_LEN as u64);
        assert_eq!(sixth.start, first.start + 5 * (256 + TAG_LEN as u64));
        // A damaged sixth segment leaves the first readable, and the sixth not.
        blob[sixth.start as usize + 3] ^= 1;
        assert_eq!(read(&o, &blob, 0..256).unwrap(), &plain[..256]);
        assert!(matches!(
            read(&o, &blob, 1280..1290),
            Err(SealError::Tampered)
        ));
    }

    #[test]
    fn moved_cut_or_foreign_segments_do_not_open() {
        let (_d, p) = provider();
        let plain: Vec<u8> = (0..256 * 4).map(|i| i as u8).collect();
        let (blob, key) = sealed(&p, &plain, 256);
        let o = opener(&p, &blob, &key).unwrap();
        let cseg = 256 + TAG_LEN;
        let s1 = o.sealed_range(&(256..512)).unwrap();
        let s2 = o.sealed_range(&(512..768)).unwrap();
        // Segment 2's bytes offered as segment 1: its position is authenticated.
        let moved = &blob[s2.start as usize..s2.end as usize];
        assert!(matches!(
            o.open(&(256..512), moved),
            Err(SealError::Tampered)
        ));
        assert_eq!(s1.end - s1.start, cseg as u64);

        // Cut after three segments: the third now looks last, and it was not sealed as last.
        let cut = &blob[..blob.len() - cseg];
        let o_cut = opener(&p, cut, &key).unwrap();
        assert_eq!(o_cut.len(), 768);
        assert!(matches!(
            read(&o_cut, cut, 512..768),
            Err(SealError::Tampered)
        ));

        // Another object's blob under this object's name.
        let other = ObjectRef {
            object_id: "art_2",
            ..OBJ
        };
        let head = &blob[..blob.len().min(crate::header::MAX_HEADER_LEN)];
        let o_other = Sealer::new(&p, KeyPlacement::Detached)
            .range_opener(head, blob.len() as u64, &other, Some(&key))
            .unwrap();
        assert!(matches!(
            read(&o_other, &blob, 0..10),
            Err(SealError::Tampered)
        ));

        // Short reads from the store, lengths no sealer writes, ranges outside the object.
        assert!(matches!(
            o.open(&(0..10), &blob[s1.start as usize..][..10]),
            Err(SealError::Tampered)
        ));
        let head_len = blob.len() - (4 * cseg);
        // Shorter than a header, no segment, a piece of a tag, an empty segment after full ones.
        for bad_len in [
            head_len as u64 - 1,
            head_len as u64,
            head_len as u64 + 5,
            blob.len() as u64 + TAG_LEN as u64,
        ] {
            assert!(matches!(
                Sealer::new(&p, KeyPlacement::Detached).range_opener(
                    head,
                    bad_len,
                    &OBJ,
                    Some(&key)
                ),
                Err(SealError::Tampered)
            ));
        }
        assert!(matches!(
            o.sealed_range(&(0..1025)),
            Err(SealError::Config(_))
        ));
        assert!(matches!(o.sealed_range(&(5..5)), Err(SealError::Config(_))));
    }
}
