//! Round trips through the streaming API with the local provider.

mod common;

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::rc::Rc;

use common::{OBJ, data, local};
use pixseal_seal::header::{DEFAULT_SEGMENT_SIZE, Header};
use pixseal_seal::stream::{TAG_LEN, body_len};
use pixseal_seal::{KeyPlacement, Sealer, read_header};

const SIZES: [usize; 7] = [0, 1, 65535, 65536, 65537, 3 * 65536, 3 * 65536 + 7];

#[test]
fn round_trip_sizes_both_placements() {
    let (_d, p) = local();
    for placement in [KeyPlacement::Embedded, KeyPlacement::Detached] {
        let s = Sealer::new(&p, placement);
        for &n in &SIZES {
            let pt = data(n, n as u64);
            let (blob, summary) = s.seal_bytes(&pt, &OBJ).unwrap();
            let header = read_header(&blob[..]).unwrap();
            assert_eq!(header.segment_size, DEFAULT_SEGMENT_SIZE);
            assert_eq!(summary.plaintext_len, n as u64);
            assert_eq!(summary.sealed_len, blob.len() as u64);
            assert_eq!(
                blob.len() as u64,
                header.len() as u64 + body_len(n as u64, DEFAULT_SEGMENT_SIZE),
                "size {n}"
            );
            assert_eq!(
                header.wrapped_dek.is_none(),
                placement == KeyPlacement::Detached
            );
            let detached = (placement == KeyPlacement::Detached).then_some(&summary.wrapped_key);
            let back = s.open_bytes(&blob, &OBJ, detached).unwrap();
            assert!(back == pt, "size {n} {placement:?}: round trip differs");
        }
    }
}

#[test]
fn round_trip_50_mib_streaming() {
    let (_d, p) = local();
    let s = Sealer::new(&p, KeyPlacement::Embedded);
    let n = 50 * 1024 * 1024;
    let pt = data(n, 50);
    let mut blob = Vec::new();
    let r = s.seal(&pt[..], &mut blob, &OBJ).unwrap();
    assert_eq!(r.plaintext_len, n as u64);
    let segments = n.div_ceil(DEFAULT_SEGMENT_SIZE as usize);
    assert_eq!(
        blob.len(),
        Header::parse(&blob).unwrap().1 + n + segments * TAG_LEN
    );
    let mut out = Vec::with_capacity(n);
    assert_eq!(s.open(&blob[..], &mut out, &OBJ, None).unwrap(), n as u64);
    assert!(out == pt, "50 MiB round trip differs");
}

/// A reader that hands out at most `chunk` bytes per call and counts what it gave.
struct Dribble<'a> {
    data: &'a [u8],
    chunk: usize,
    given: Rc<Cell<usize>>,
}

impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.chunk.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.given.set(self.given.get() + n);
        Ok(n)
    }
}

/// A writer that records how much input had been consumed when its first byte arrived.
struct Watch {
    out: Vec<u8>,
    given: Rc<Cell<usize>>,
    first_write_at: Option<usize>,
}

impl Write for Watch {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !buf.is_empty() && self.first_write_at.is_none() {
            self.first_write_at = Some(self.given.get());
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn streams_without_buffering_the_whole_object() {
    let (_d, p) = local();
    let s = Sealer::new(&p, KeyPlacement::Embedded);
    let n = 8 * 65536 + 123;
    let pt = data(n, 7);
    for chunk in [1usize, 1000, 65536, 1 << 20] {
        let given = Rc::new(Cell::new(0));
        let mut w = Watch {
            out: Vec::new(),
            given: given.clone(),
            first_write_at: None,
        };
        let _summary = s
            .seal(
                Dribble {
                    data: &pt,
                    chunk,
                    given: given.clone(),
                },
                &mut w,
                &OBJ,
            )
            .unwrap();
        // The header and first segment were written long before the input ended.
        assert!(w.first_write_at.unwrap() <= 2 * 65536, "seal chunk {chunk}");
        let blob = w.out;

        let given = Rc::new(Cell::new(0));
        let mut w = Watch {
            out: Vec::new(),
            given: given.clone(),
            first_write_at: None,
        };
        s.open(
            Dribble {
                data: &blob,
                chunk,
                given: given.clone(),
            },
            &mut w,
            &OBJ,
            None,
        )
        .unwrap();
        assert!(w.first_write_at.unwrap() <= 3 * 65536, "open chunk {chunk}");
        assert!(w.out == pt, "chunk {chunk}: round trip differs");
    }
}

#[test]
fn each_seal_uses_a_fresh_key_and_nonce() {
    let (_d, p) = local();
    let s = Sealer::new(&p, KeyPlacement::Embedded);
    let pt = data(1000, 1);
    let (a, ra) = s.seal_bytes(&pt, &OBJ).unwrap();
    let (b, rb) = s.seal_bytes(&pt, &OBJ).unwrap();
    assert_ne!(ra.wrapped_key, rb.wrapped_key);
    assert_ne!(
        read_header(&a[..]).unwrap().nonce_prefix,
        read_header(&b[..]).unwrap().nonce_prefix
    );
    let ha = Header::parse(&a).unwrap().1;
    let hb = Header::parse(&b).unwrap().1;
    assert_ne!(a[ha..], b[hb..]);
}

#[test]
fn small_segments_round_trip() {
    let (_d, p) = local();
    let s = Sealer::new(&p, KeyPlacement::Detached)
        .with_segment_size(256)
        .unwrap();
    for n in [0usize, 1, 255, 256, 257, 512, 1000] {
        let pt = data(n, 3);
        let (blob, r) = s.seal_bytes(&pt, &OBJ).unwrap();
        assert_eq!(read_header(&blob[..]).unwrap().segment_size, 256);
        assert_eq!(s.open_bytes(&blob, &OBJ, Some(&r.wrapped_key)).unwrap(), pt);
    }
    assert!(
        Sealer::new(&p, KeyPlacement::Detached)
            .with_segment_size(100)
            .is_err()
    );
    assert!(
        Sealer::new(&p, KeyPlacement::Detached)
            .with_segment_size(2 << 20)
            .is_err()
    );
}

#[test]
fn invalid_object_refs_are_config_errors() {
    let (_d, p) = local();
    let s = Sealer::new(&p, KeyPlacement::Embedded);
    for bad in [
        common::obj("", "t", "us"),
        common::obj("o", "", "us"),
        common::obj("o", "t", ""),
        common::obj("o", "t", "US"),
    ] {
        let e = s.seal_bytes(b"x", &bad).unwrap_err();
        assert_eq!(e.code(), "config", "{bad:?}");
    }
    // Region without a key: key_not_found, nothing written.
    let mut out = Vec::new();
    let e = s
        .seal(&b"x"[..], &mut out, &common::obj("o", "t", "ca"))
        .unwrap_err();
    assert_eq!(e.code(), "key_not_found");
    assert!(out.is_empty());
}

#[test]
fn reseal_round_trip_sizes() {
    let (_d, p) = local();
    for placement in [KeyPlacement::Embedded, KeyPlacement::Detached] {
        let s = Sealer::new(&p, placement);
        for &n in &SIZES {
            let pt = data(n, n as u64 + 5);
            let (blob, r) = s.seal_bytes(&pt, &OBJ).unwrap();
            let d = (placement == KeyPlacement::Detached).then_some(&r.wrapped_key);
            let mut again = Vec::new();
            let r2 = s.reseal(&blob[..], &mut again, &OBJ, d).unwrap();
            assert_eq!(r2.plaintext_len, n as u64);
            assert_eq!(r2.sealed_len, again.len() as u64);
            assert_ne!(r2.wrapped_key, r.wrapped_key, "fresh data key");
            let d2 = (placement == KeyPlacement::Detached).then_some(&r2.wrapped_key);
            assert!(
                s.open_bytes(&again, &OBJ, d2).unwrap() == pt,
                "{placement:?} {n}"
            );
        }
    }
}
