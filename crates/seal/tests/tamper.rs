//! Every modification of a sealed object fails with `tampered`, never a panic.

mod common;

use common::{OBJ, assert_tampered, data, local, obj};
use pixseal_seal::header::Header;
use pixseal_seal::stream::TAG_LEN;
use pixseal_seal::{KeyPlacement, LocalKeyProvider, SealError, Sealer, WrappedKey};

const SEG: usize = 65536;
const CSEG: usize = SEG + TAG_LEN;

struct Fixture {
    _dir: tempfile::TempDir,
    p: LocalKeyProvider,
}

impl Fixture {
    fn new() -> Self {
        let (dir, p) = local();
        Fixture { _dir: dir, p }
    }
    fn sealer(&self, placement: KeyPlacement) -> Sealer<'_> {
        Sealer::new(&self.p, placement)
    }
}

/// Opens into a writer; on failure checks that only whole, verified segments were released
/// (a prefix of the true plaintext whose length is a multiple of the segment size).
fn open_checked(
    s: &Sealer<'_>,
    blob: &[u8],
    pt: &[u8],
    seg: usize,
    detached: Option<&WrappedKey>,
) -> Result<u64, SealError> {
    let mut out = Vec::new();
    let r = s.open(blob, &mut out, &OBJ, detached);
    if r.is_err() {
        assert_eq!(out.len() % seg, 0, "partial segment released");
        assert!(
            pt.starts_with(&out),
            "released bytes are not verified plaintext"
        );
    }
    r
}

#[test]
fn every_header_byte_flip_is_tampered() {
    let f = Fixture::new();
    for placement in [KeyPlacement::Embedded, KeyPlacement::Detached] {
        let s = f.sealer(placement);
        // Small plaintext, but the header is the real one (64 KiB segments).
        let pt = data(1000, 11);
        let (blob, r) = s.seal_bytes(&pt, &OBJ).unwrap();
        let detached = (placement == KeyPlacement::Detached).then_some(&r.wrapped_key);
        let hlen = Header::parse(&blob).unwrap().1;
        for i in 0..hlen {
            for mask in 1..=255u8 {
                let mut t = blob.clone();
                t[i] ^= mask;
                assert_tampered(
                    open_checked(&s, &t, &pt, SEG, detached),
                    &format!("{placement:?} header byte {i} ^ {mask:#04x}"),
                );
            }
        }
    }
}

#[test]
fn every_body_byte_flip_is_tampered_64k_segments() {
    let f = Fixture::new();
    let s = f.sealer(KeyPlacement::Detached);
    let pt = data(SEG + 1, 12); // two segments: one full, one of 1 byte
    let (blob, r) = s.seal_bytes(&pt, &OBJ).unwrap();
    let hlen = Header::parse(&blob).unwrap().1;
    assert_eq!(blob.len(), hlen + CSEG + 1 + TAG_LEN);
    // Release builds (what scripts/test.sh and CI run) flip every body byte. Unoptimized
    // builds compile the generic AES-GCM code of this crate at opt-level 0 (~1.7 ms per open),
    // so there every byte within 1 KiB of a segment edge and every 13th byte elsewhere is
    // flipped instead.
    let near_edge = |i: usize| {
        let off = (i - hlen) % CSEG;
        !(1024..CSEG - 1024).contains(&off) || i >= hlen + CSEG
    };
    let mut t = blob.clone();
    let mut flipped = 0;
    for i in hlen..blob.len() {
        if cfg!(debug_assertions) && !near_edge(i) && i % 13 != 0 {
            continue;
        }
        flipped += 1;
        t[i] ^= 0x01;
        assert_tampered(
            open_checked(&s, &t, &pt, SEG, Some(&r.wrapped_key)),
            &format!("body byte {i}"),
        );
        t[i] ^= 0x01;
    }
    assert!(
        flipped
            >= if cfg!(debug_assertions) {
                6000
            } else {
                blob.len() - hlen
            }
    );
    assert_eq!(s.open_bytes(&t, &OBJ, Some(&r.wrapped_key)).unwrap(), pt);
}

#[test]
fn every_body_byte_and_mask_small_segments() {
    let f = Fixture::new();
    let s = f
        .sealer(KeyPlacement::Embedded)
        .with_segment_size(256)
        .unwrap();
    let pt = data(3 * 256 + 40, 13);
    let (blob, _) = s.seal_bytes(&pt, &OBJ).unwrap();
    let hlen = Header::parse(&blob).unwrap().1;
    for i in hlen..blob.len() {
        for mask in [0x01u8, 0x02, 0x10, 0x80, 0xFF] {
            let mut t = blob.clone();
            t[i] ^= mask;
            assert_tampered(
                open_checked(&s, &t, &pt, 256, None),
                &format!("byte {i} ^ {mask}"),
            );
        }
    }
}

#[test]
fn truncations_at_and_around_segment_boundaries() {
    let f = Fixture::new();
    let s = f.sealer(KeyPlacement::Embedded);
    for n in [0usize, 1, SEG - 1, SEG, SEG + 1, 3 * SEG] {
        let pt = data(n, n as u64);
        let (blob, _) = s.seal_bytes(&pt, &OBJ).unwrap();
        let hlen = Header::parse(&blob).unwrap().1;
        let mut cuts: Vec<usize> = (0..=hlen + TAG_LEN + 2).collect();
        let mut b = hlen;
        while b <= blob.len() + CSEG {
            for d in -20i64..=20 {
                cuts.push((b as i64 + d).max(0) as usize);
            }
            b += CSEG;
        }
        cuts.extend(blob.len().saturating_sub(40)..blob.len());
        cuts.sort_unstable();
        cuts.dedup();
        let mut tested = 0;
        for cut in cuts.into_iter().filter(|&c| c < blob.len()) {
            assert_tampered(
                open_checked(&s, &blob[..cut], &pt, SEG, None),
                &format!("size {n} cut at {cut} of {}", blob.len()),
            );
            tested += 1;
        }
        assert!(tested > 40, "size {n}: only {tested} cuts");
        // Appending anything is also detected (the last segment's flag is authenticated).
        for extra in [&[0u8][..], &[0u8; TAG_LEN], &blob[hlen..]] {
            let mut t = blob.clone();
            t.extend_from_slice(extra);
            assert_tampered(
                open_checked(&s, &t, &pt, SEG, None),
                &format!("size {n} + {}", extra.len()),
            );
        }
    }
}

#[test]
fn every_truncation_small_segments() {
    let f = Fixture::new();
    let s = f
        .sealer(KeyPlacement::Embedded)
        .with_segment_size(256)
        .unwrap();
    for n in [0usize, 256, 3 * 256, 3 * 256 + 1] {
        let pt = data(n, 5);
        let (blob, _) = s.seal_bytes(&pt, &OBJ).unwrap();
        for cut in 0..blob.len() {
            assert_tampered(
                open_checked(&s, &blob[..cut], &pt, 256, None),
                &format!("n {n} cut {cut}"),
            );
        }
    }
}

#[test]
fn swapped_dropped_and_duplicated_segments() {
    let f = Fixture::new();
    let s = f.sealer(KeyPlacement::Embedded);
    let pt = data(3 * SEG + 5, 21);
    let (blob, _) = s.seal_bytes(&pt, &OBJ).unwrap();
    let hlen = Header::parse(&blob).unwrap().1;
    let seg = |i: usize| {
        let a = hlen + i * CSEG;
        &blob[a..(a + CSEG).min(blob.len())]
    };
    let build = |order: &[usize]| {
        let mut v = blob[..hlen].to_vec();
        for &i in order {
            v.extend_from_slice(seg(i));
        }
        v
    };
    assert_eq!(s.open_bytes(&build(&[0, 1, 2, 3]), &OBJ, None).unwrap(), pt);
    for order in [
        &[1, 0, 2, 3][..],
        &[0, 2, 1, 3],
        &[0, 1, 3, 2],
        &[0, 1, 3],
        &[0, 2, 3],
        &[1, 2, 3],
        &[0, 0, 1, 2, 3],
        &[0, 1, 1, 2, 3],
        &[0, 1, 2, 3, 3],
        &[0, 1, 2],
        &[3],
    ] {
        assert_tampered(
            open_checked(&s, &build(order), &pt, SEG, None),
            &format!("{order:?}"),
        );
    }
    // A segment from another blob sealed under another key, spliced in at the same position.
    let (other, _) = s.seal_bytes(&data(3 * SEG + 5, 22), &OBJ).unwrap();
    let mut spliced = blob.clone();
    spliced[hlen + CSEG..hlen + 2 * CSEG].copy_from_slice(&other[hlen + CSEG..hlen + 2 * CSEG]);
    assert_tampered(
        open_checked(&s, &spliced, &pt, SEG, None),
        "spliced segment",
    );
    // Header of one blob on the body of another.
    let mut mixed = other[..hlen].to_vec();
    mixed.extend_from_slice(&blob[hlen..]);
    assert_tampered(open_checked(&s, &mixed, &pt, SEG, None), "foreign header");
}

#[test]
fn blob_moved_to_another_object_tenant_or_region() {
    let f = Fixture::new();
    for placement in [KeyPlacement::Embedded, KeyPlacement::Detached] {
        let s = f.sealer(placement);
        let pt = data(70_000, 31);
        let (blob, r) = s.seal_bytes(&pt, &OBJ).unwrap();
        let d = (placement == KeyPlacement::Detached).then_some(&r.wrapped_key);
        assert_eq!(s.open_bytes(&blob, &OBJ, d).unwrap(), pt);
        for moved in [
            obj("art_01HZY", OBJ.tenant, OBJ.region),
            obj(OBJ.object_id, "tenant-b", OBJ.region),
            obj(OBJ.object_id, OBJ.tenant, "eu"),
            obj("art_01HZXt", "enant-a", OBJ.region),
        ] {
            assert_tampered(
                s.open_bytes(&blob, &moved, d),
                &format!("{placement:?} moved to {moved:?}"),
            );
        }
    }
}

#[test]
fn detached_key_of_another_object_is_tampered() {
    let f = Fixture::new();
    let s = f.sealer(KeyPlacement::Detached);
    let (a, ra) = s.seal_bytes(&data(1000, 1), &OBJ).unwrap();
    let (_b, rb) = s.seal_bytes(&data(1000, 2), &OBJ).unwrap();
    assert_tampered(
        s.open_bytes(&a, &OBJ, Some(&rb.wrapped_key)),
        "other object's key",
    );
    let mut bad = ra.wrapped_key.clone();
    bad.ciphertext[20] ^= 4;
    assert_tampered(s.open_bytes(&a, &OBJ, Some(&bad)), "modified wrapped key");
    let mut bad = ra.wrapped_key.clone();
    bad.version += 1;
    assert_tampered(
        s.open_bytes(&a, &OBJ, Some(&bad)),
        "wrapped key with other version",
    );
}

#[test]
fn garbage_and_empty_inputs_are_tampered() {
    let f = Fixture::new();
    let s = f.sealer(KeyPlacement::Embedded);
    assert_tampered(s.open_bytes(&[], &OBJ, None), "empty");
    for len in [1usize, 6, 7, 8, 30, 31, 100, 1000, 70_000] {
        for seed in 0..8 {
            let mut g = data(len, seed * 1000 + len as u64);
            assert_tampered(s.open_bytes(&g, &OBJ, None), &format!("garbage {len}"));
            if len >= 4 {
                g[..4].copy_from_slice(b"PXSL");
                assert_tampered(
                    s.open_bytes(&g, &OBJ, None),
                    &format!("magic+garbage {len}"),
                );
            }
            if len >= 7 {
                g[4] = 1;
                g[5..7].copy_from_slice(&(len.min(200) as u16).to_be_bytes());
                assert_tampered(
                    s.open_bytes(&g, &OBJ, None),
                    &format!("preamble+garbage {len}"),
                );
            }
        }
    }
    // A valid header followed by nothing, or by less than a tag.
    let (blob, _) = s.seal_bytes(b"hello", &OBJ).unwrap();
    let hlen = Header::parse(&blob).unwrap().1;
    assert_tampered(s.open_bytes(&blob[..hlen], &OBJ, None), "header only");
    // A field envelope or JSON is not a blob.
    assert_tampered(s.open_bytes(b"{\"a\":1}", &OBJ, None), "json");
}
