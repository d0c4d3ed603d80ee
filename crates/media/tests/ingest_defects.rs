//! Regressions of pictures that were accepted and then handled wrongly: each test is named after
//! what must hold.

use std::path::{Path, PathBuf};

use pixseal_media::{Limits, Options, OutputFormat, Pipeline, Pixels};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn shared_corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    p.is_dir().then_some(p)
}

/// A TIFF payload (big-endian) holding one IFD with Orientation = `o`.
fn exif_orientation(o: u16) -> Vec<u8> {
    let mut t = b"MM\0\x2a\0\0\0\x08".to_vec();
    t.extend_from_slice(&1u16.to_be_bytes());
    t.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    t.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    t.extend_from_slice(&1u32.to_be_bytes());
    t.extend_from_slice(&o.to_be_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    t
}

fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = kind.to_vec();
    c.extend_from_slice(&(data.len() as u32).to_le_bytes());
    c.extend_from_slice(data);
    if data.len() % 2 == 1 {
        c.push(0);
    }
    c
}

/// A simple (VP8) WebP turned into an extended one carrying `exif` in an EXIF chunk.
fn webp_with_exif(simple: &[u8], width: u32, height: u32, exif: &[u8]) -> Vec<u8> {
    assert_eq!(&simple[12..16], b"VP8 ");
    let mut vp8x = vec![0x08, 0, 0, 0]; // flags: EXIF present
    vp8x.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
    let mut body = b"WEBP".to_vec();
    body.extend(chunk(b"VP8X", &vp8x));
    body.extend_from_slice(&simple[12..]);
    body.extend(chunk(b"EXIF", exif));
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend(body);
    out
}

#[test]
fn webp_exif_orientation_is_applied() {
    let simple = std::fs::read(fixtures().join("photos/street.webp")).unwrap();
    let mut p = Pipeline::new(Limits::default());
    let plain = p.decode(&simple, None).unwrap();
    let (w, h) = (plain.pixels.width, plain.pixels.height);
    assert_ne!(w, h);
    // As the EXIF standard lays it out, and with the `Exif\0\0` header many writers put in the
    // chunk too.
    let tiff = exif_orientation(6);
    let mut with_header = b"Exif\0\0".to_vec();
    with_header.extend_from_slice(&tiff);
    for exif in [tiff, with_header] {
        let rotated = p
            .decode(&webp_with_exif(&simple, w, h, &exif), None)
            .unwrap();
        assert_eq!(rotated.orientation, 6);
        assert_eq!(
            (rotated.pixels.width, rotated.pixels.height),
            (h, w),
            "orientation 6 turns the picture upright"
        );
    }
    // The corpus file that showed it (needs ../shared; skipped without it).
    let Some(corpus) = shared_corpus() else {
        eprintln!("../shared/corpus absent: the corpus WebP part is skipped");
        return;
    };
    let f = corpus.join("photos/metadata-extractor/Issue 473 (Java).webp");
    let d = p.decode(&std::fs::read(f).unwrap(), None).unwrap();
    assert_eq!(d.orientation, 6);
}

#[test]
fn a_picture_at_the_side_limit_encodes_in_every_format() {
    let side = Limits::default().max_side;
    let mut p = Pipeline::new(Limits::default());
    for format in [OutputFormat::WebP, OutputFormat::Jpeg, OutputFormat::Png] {
        let mut px = Pixels::new(side, 8, 3, vec![100; side as usize * 8 * 3]);
        let (bytes, f) = p
            .encode(&mut px, Some(format), 80)
            .unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!(f, format);
        let back = p.decode(&bytes, None).unwrap();
        assert!(back.pixels.width >= side - 1 && back.pixels.width <= side);
        assert!(back.pixels.height >= 7);
    }
}

#[test]
fn a_tiff_whose_strips_run_past_the_end_is_truncated() {
    let mut t = std::fs::read(fixtures().join("photos/scan.tif")).unwrap();
    assert_eq!(&t[..4], b"II*\0");
    let ifd = u32::from_le_bytes(t[4..8].try_into().unwrap()) as usize;
    let n = u16::from_le_bytes(t[ifd..ifd + 2].try_into().unwrap()) as usize;
    let e = (0..n)
        .map(|i| ifd + 2 + 12 * i)
        .find(|&e| u16::from_le_bytes(t[e..e + 2].try_into().unwrap()) == 279)
        .expect("StripByteCounts");
    assert_eq!(u32::from_le_bytes(t[e + 4..e + 8].try_into().unwrap()), 1);
    t[e + 8..e + 12].copy_from_slice(&0x7FFF_0000u32.to_le_bytes());
    let err = Pipeline::new(Limits::default())
        .decode(&t, None)
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.code(), "truncated", "{err}");
    // Cut short instead: also truncated.
    let whole = std::fs::read(fixtures().join("photos/scan.tif")).unwrap();
    let err = Pipeline::new(Limits::default())
        .decode(&whole[..whole.len() / 2], None)
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.code(), "truncated", "{err}");
}

/// Offsets of the restart markers (`FF D0`–`FF D7`) in a JPEG's entropy-coded data.
fn restart_markers(j: &[u8]) -> Vec<usize> {
    (0..j.len() - 1)
        .filter(|&i| j[i] == 0xFF && (0xD0..=0xD7).contains(&j[i + 1]))
        .collect()
}

/// A JPEG cut in its scan data with an EOI written after the cut is complete to the marker walk,
/// and libjpeg only warns and paints the rest flat: that bottom was never in the file, so it is
/// `truncated`, never `ok`, on the RGB path, the YUV fast path and with restart markers.
#[test]
fn a_jpeg_whose_scan_data_ends_early_is_truncated() {
    let mut p = Pipeline::new(Limits::default());
    for name in ["photos/garden.jpg", "damaged/restart-markers.jpg"] {
        let whole = std::fs::read(fixtures().join(name)).unwrap();
        let mut cut = whole[..whole.len() / 2].to_vec();
        cut.extend_from_slice(&[0xFF, 0xD9]);
        let e = p.decode(&cut, None).unwrap_err();
        assert_eq!(e.code(), "truncated", "{name} (RGB path): {e}");
        let e = p.sanitize(&cut, &Options::default()).unwrap_err();
        assert_eq!(e.code(), "truncated", "{name} (JPEG → JPEG fast path): {e}");
        let shrunk = Options {
            max_edge: Some(200),
            ..Options::default()
        };
        let e = p.sanitize(&cut, &shrunk).unwrap_err();
        assert_eq!(e.code(), "truncated", "{name} (decoded at 1/2 scale): {e}");
        // The whole file still decodes on the same pipeline.
        assert!(p.decode(&whole, None).unwrap().warnings.is_empty());
    }
}

#[test]
fn a_damaged_jpeg_decodes_what_libjpeg_recovers() {
    let clean = std::fs::read(fixtures().join("damaged/restart-markers.jpg")).unwrap();
    let rst = restart_markers(&clean);
    assert!(rst.len() >= 20, "one restart interval per MCU row");
    // An invalid marker planted inside the 11th interval (MCU row 10): libjpeg warns, fills
    // that interval, and resyncs at the next restart marker.
    let mut damaged = clean.clone();
    damaged[rst[10] - 20] = 0xFF;
    damaged[rst[10] - 19] = 0x9F;
    let mut p = Pipeline::new(Limits::default());
    let clean_decode = p.decode(&clean, None).unwrap();
    assert!(clean_decode.warnings.is_empty());
    let want = clean_decode.pixels;
    let damaged_decode = p.decode(&damaged, None).expect("warnings are not errors");
    // What libjpeg recovered from is said, not hidden.
    assert!(
        damaged_decode
            .warnings
            .iter()
            .any(|w| w.contains("Corrupt JPEG data")),
        "{:?}",
        damaged_decode.warnings
    );
    let got = damaged_decode.pixels;
    assert_eq!((got.width, got.height), (want.width, want.height));
    // Every row after the damaged interval (and the one row that chroma upsampling blends with
    // it) is exactly what the undamaged file gives.
    let row = want.width as usize * want.channels as usize;
    let from = (16 * 11 + 1) * row;
    assert!(
        got.data[from..] == want.data[from..],
        "rows after the damage were lost"
    );
    // The corpus file that showed it (needs ../shared; skipped without it): all but the
    // damaged band decodes.
    let Some(corpus) = shared_corpus() else {
        eprintln!("../shared/corpus absent: the corpus JPEG part is skipped");
        return;
    };
    let f = corpus.join("photos/exif-samples/corrupted.jpg");
    let d = p.decode(&std::fs::read(f).unwrap(), None).unwrap().pixels;
    let row = d.width as usize * d.channels as usize;
    let flat = d
        .data
        .chunks(row)
        .filter(|r| r.iter().all(|v| *v == r[0]))
        .count();
    assert!(
        flat < d.height as usize / 20,
        "{flat} of {} rows are flat",
        d.height
    );
}
