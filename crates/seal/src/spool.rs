//! An encrypted scratch file for work too large to hold in memory (a video on its way through
//! sanitize, keyframe hashing and signing), so that nothing of it reaches the disk readable.
//!
//! The file is unlinked from the start and every 64 KiB segment is AES-256-GCM under a key
//! that exists only in this process's memory, with a fresh random nonce each time the segment
//! is written. The nonces stay in memory too, so a segment on disk swapped, moved or rolled
//! back to an earlier write fails to open. Dropping the spool forgets the key: whatever a
//! crash leaves on disk cannot be read.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use aead::{AeadInPlace, Nonce, Tag};
use zeroize::Zeroizing;

use crate::error::{Result, SealError};
use crate::gcm::Aes256GcmLc;
use crate::provider::{random_bytes, random_data_key};
use crate::stream::TAG_LEN;

/// Plaintext bytes per segment.
const SEGMENT: usize = 64 * 1024;
/// Each segment's place on disk: its ciphertext and tag.
const SLOT: u64 = (SEGMENT + TAG_LEN) as u64;

/// The segment in memory: the one last read or written.
struct Cached {
    index: u64,
    plain: Zeroizing<Vec<u8>>,
    dirty: bool,
}

/// A seekable, readable and writable scratch file, encrypted at rest under a key held only in
/// memory. Reads and writes go through one cached segment; `read_at` serves any offset
/// without moving the cursor.
pub struct Spool {
    file: File,
    cipher: Aes256GcmLc,
    /// The nonce each segment was last written with.
    nonces: Vec<[u8; 12]>,
    len: u64,
    pos: u64,
    cache: Option<Cached>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("len", &self.len)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

fn tampered() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, SealError::Tampered)
}

impl Spool {
    /// A new, empty spool in `dir` (a file with no name: it is gone when the spool is).
    pub fn new_in(dir: &Path) -> Result<Spool> {
        let file = tempfile::tempfile_in(dir)?;
        let key = random_data_key()?;
        let cipher = Aes256GcmLc::new(&key[..])
            .ok_or_else(|| SealError::Internal("bad spool key length".into()))?;
        Ok(Spool {
            file,
            cipher,
            nonces: Vec::new(),
            len: 0,
            pos: 0,
            cache: None,
        })
    }

    /// Bytes written so far (the end).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many plaintext bytes segment `index` holds now.
    fn segment_len(&self, index: u64) -> usize {
        let start = index * SEGMENT as u64;
        self.len.saturating_sub(start).min(SEGMENT as u64) as usize
    }

    /// Segment `index` as stored, opened into `out` (cleared first).
    fn load(&self, index: u64, out: &mut Vec<u8>) -> io::Result<()> {
        out.clear();
        let n = self.segment_len(index);
        if n == 0 {
            return Ok(());
        }
        let nonce = self.nonces.get(index as usize).ok_or_else(tampered)?;
        out.resize(n + TAG_LEN, 0);
        self.file.read_exact_at(out, index * SLOT)?;
        let tag = Tag::<Aes256GcmLc>::clone_from_slice(&out[n..]);
        out.truncate(n);
        self.cipher
            .decrypt_in_place_detached(
                Nonce::<Aes256GcmLc>::from_slice(nonce),
                &index.to_be_bytes(),
                out,
                &tag,
            )
            .map_err(|_| tampered())
    }

    /// Write the cached segment out if it changed, under a fresh nonce.
    fn store(&mut self) -> io::Result<()> {
        let Some(c) = self.cache.as_mut().filter(|c| c.dirty) else {
            return Ok(());
        };
        let mut nonce = [0u8; 12];
        random_bytes(&mut nonce).map_err(io::Error::other)?;
        let mut work = Zeroizing::new(c.plain.to_vec());
        let tag = self
            .cipher
            .encrypt_in_place_detached(
                Nonce::<Aes256GcmLc>::from_slice(&nonce),
                &c.index.to_be_bytes(),
                &mut work,
            )
            .map_err(|_| io::Error::other("spool encryption failed"))?;
        work.extend_from_slice(&tag);
        self.file.write_all_at(&work, c.index * SLOT)?;
        let i = c.index as usize;
        if self.nonces.len() <= i {
            self.nonces.resize(i + 1, [0; 12]);
        }
        self.nonces[i] = nonce;
        c.dirty = false;
        Ok(())
    }

    /// Make segment `index` the cached one.
    fn cache(&mut self, index: u64) -> io::Result<&mut Cached> {
        if self.cache.as_ref().is_none_or(|c| c.index != index) {
            self.store()?;
            let mut plain = match self.cache.take() {
                Some(c) => c.plain,
                None => Zeroizing::new(Vec::with_capacity(SEGMENT + TAG_LEN)),
            };
            self.load(index, &mut plain)?;
            self.cache = Some(Cached {
                index,
                plain,
                dirty: false,
            });
        }
        Ok(self.cache.as_mut().expect("cached"))
    }

    /// Fill `buf` from `offset` without moving the cursor (a read past the end fails).
    pub fn read_at(&self, mut offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|end| end > self.len)
        {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of the spool",
            ));
        }
        let mut work = Zeroizing::new(Vec::new());
        let mut filled = 0;
        while filled < buf.len() {
            let index = offset / SEGMENT as u64;
            let within = (offset % SEGMENT as u64) as usize;
            let plain: &[u8] = match &self.cache {
                Some(c) if c.index == index => &c.plain,
                _ => {
                    self.load(index, &mut work)?;
                    &work
                }
            };
            let n = (plain.len() - within).min(buf.len() - filled);
            buf[filled..filled + n].copy_from_slice(&plain[within..within + n]);
            filled += n;
            offset += n as u64;
        }
        Ok(())
    }
}

impl Read for Spool {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let index = self.pos / SEGMENT as u64;
        let within = (self.pos % SEGMENT as u64) as usize;
        let c = self.cache(index)?;
        let n = (c.plain.len() - within).min(buf.len());
        buf[..n].copy_from_slice(&c.plain[within..within + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for Spool {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        if self.pos > self.len {
            // Writing past the end: the gap reads as zeros, as in a file.
            let (at, gap) = (self.pos, self.pos - self.len);
            self.pos = self.len;
            io::copy(&mut io::repeat(0).take(gap), self)?;
            self.pos = at;
        }
        let index = self.pos / SEGMENT as u64;
        let within = (self.pos % SEGMENT as u64) as usize;
        let c = self.cache(index)?;
        let n = (SEGMENT - within).min(data.len());
        if c.plain.len() < within + n {
            c.plain.resize(within + n, 0);
        }
        c.plain[within..within + n].copy_from_slice(&data[..n]);
        c.dirty = true;
        self.pos += n as u64;
        self.len = self.len.max(self.pos);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.store()
    }
}

impl Seek for Spool {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let at = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos =
            at.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spool() -> (tempfile::TempDir, Spool) {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::new_in(dir.path()).unwrap();
        (dir, s)
    }

    /// A little deterministic generator, so a failure replays.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self, below: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % below.max(1)
        }
    }

    #[test]
    fn reads_back_what_was_written_wherever_it_was_written() {
        let (_d, mut s) = spool();
        let mut model: Vec<u8> = Vec::new();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..400 {
            let at = rng.next(model.len() as u64 + 70_000);
            let n = rng.next(150_000) as usize;
            let data: Vec<u8> = (0..n).map(|i| (i as u64 * 31 + round) as u8).collect();
            s.seek(SeekFrom::Start(at)).unwrap();
            s.write_all(&data).unwrap();
            let at = at as usize;
            if model.len() < at + n {
                model.resize(at + n, 0);
            }
            model[at..at + n].copy_from_slice(&data);
            assert_eq!(s.len(), model.len() as u64);
            // A read from anywhere, by the cursor and by offset.
            let from = rng.next(model.len() as u64) as usize;
            let want = rng.next((model.len() - from) as u64 + 1) as usize;
            let mut got = vec![0u8; want];
            s.read_at(from as u64, &mut got).unwrap();
            assert_eq!(got, &model[from..from + want], "round {round}");
            s.seek(SeekFrom::Start(from as u64)).unwrap();
            let mut got = Vec::new();
            (&mut s).take(want as u64).read_to_end(&mut got).unwrap();
            assert_eq!(got, &model[from..from + want], "round {round}");
        }
        s.rewind().unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        assert_eq!(all, model);
        let mut past = [0u8; 1];
        assert!(s.read_at(model.len() as u64, &mut past).is_err());
    }

    #[test]
    fn nothing_readable_reaches_the_disk() {
        let (_d, mut s) = spool();
        let text = b"GPS 37.3349,-122.0090 ".repeat(20_000);
        s.write_all(&text).unwrap();
        s.flush().unwrap();
        let mut disk = Vec::new();
        s.file.seek(SeekFrom::Start(0)).unwrap();
        s.file.read_to_end(&mut disk).unwrap();
        assert!(disk.len() as u64 >= s.len());
        assert!(!disk.windows(8).any(|w| w == b"37.3349,"));
    }

    #[test]
    fn a_segment_changed_moved_or_rolled_back_on_disk_fails() {
        let (_d, mut s) = spool();
        s.write_all(&vec![1u8; 3 * SEGMENT]).unwrap();
        s.flush().unwrap();
        let slot = |s: &Spool, i: u64| {
            let mut b = vec![0u8; SLOT as usize];
            s.file.read_exact_at(&mut b, i * SLOT).unwrap();
            b
        };
        let first = slot(&s, 0);
        // Rewritten: the old ciphertext put back is an earlier write and fails.
        s.rewind().unwrap();
        s.write_all(&[2u8; 10]).unwrap();
        s.flush().unwrap();
        s.cache = None;
        s.file.write_all_at(&first, 0).unwrap();
        let mut b = [0u8; 4];
        assert_eq!(
            s.read_at(0, &mut b).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        // Segment 2's bytes in segment 1's place.
        let second = slot(&s, 2);
        s.file.write_all_at(&second, SLOT).unwrap();
        assert!(s.read_at(SEGMENT as u64, &mut b).is_err());
        // One flipped bit.
        let mut third = slot(&s, 2);
        third[7] ^= 1;
        s.file.write_all_at(&third, 2 * SLOT).unwrap();
        assert!(s.read_at(2 * SEGMENT as u64, &mut b).is_err());
        s.seek(SeekFrom::Start(2 * SEGMENT as u64)).unwrap();
        assert!(s.read(&mut b).is_err());
    }
}
