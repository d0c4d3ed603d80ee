//! One pipeline, many pictures: nothing a picture does (refused or not) changes how the next one
//! decodes. Each picture's result is compared with what a fresh pipeline makes of it.

use std::path::Path;

use pixseal_media::{Limits, Options, OutputFormat, Pipeline};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures")
            .join(name),
    )
    .unwrap()
}

/// The offsets of every segment with this marker (`FF xx`), as (start, end) of the whole
/// segment, walking from SOI up to the first SOS.
fn segments(j: &[u8], marker: u8) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 2;
    while pos + 4 <= j.len() && j[pos] == 0xFF {
        let m = j[pos + 1];
        let len = ((j[pos + 2] as usize) << 8) | j[pos + 3] as usize;
        if m == marker {
            out.push((pos, pos + 2 + len));
        }
        if m == 0xDA {
            break;
        }
        pos += 2 + len;
    }
    out
}

/// A JPEG libjpeg refuses after our marker walk accepted it: the first component's sampling
/// factors set to 0 ("bogus sampling factors").
fn bogus_sampling(good: &[u8]) -> Vec<u8> {
    let mut j = good.to_vec();
    let (sof, _) = segments(&j, 0xC0)
        .into_iter()
        .chain(segments(&j, 0xC2))
        .next()
        .unwrap();
    // FF C0, length (2), precision, height (2), width (2), count, then id + sampling + table.
    j[sof + 2 + 2 + 6 + 1] = 0x00;
    j
}

/// The same JPEG with its quantization tables removed.
fn without_dqt(good: &[u8]) -> Vec<u8> {
    let mut j = good.to_vec();
    for (a, b) in segments(good, 0xDB).into_iter().rev() {
        j.drain(a..b);
    }
    j
}

fn decode_fresh(bytes: &[u8]) -> Result<Vec<u8>, String> {
    Pipeline::new(Limits::default())
        .decode(bytes, None)
        .map(|d| d.pixels.data)
        .map_err(|e| e.code().to_string())
}

#[test]
fn decoder_state_does_not_leak_after_a_refused_jpeg() {
    let good = fixture("photos/garden.jpg");
    let bad = bogus_sampling(&good);
    assert!(
        decode_fresh(&bad).is_err(),
        "the bogus file must be refused"
    );
    let expected = decode_fresh(&good).unwrap();
    let mut p = Pipeline::new(Limits::default());
    for _ in 0..3 {
        assert!(p.decode(&bad, None).is_err());
        let d = p
            .decode(&good, None)
            .expect("a valid JPEG after a refused one");
        assert!(
            d.pixels.data == expected,
            "pixels differ from a fresh decode"
        );
        p.recycle(d.pixels);
        // The sanitize fast path (JPEG → JPEG from YUV planes) too.
        assert!(p.sanitize(&bad, &jpeg_opts()).is_err());
        let s = p
            .sanitize(&good, &jpeg_opts())
            .expect("sanitize after a refusal");
        let fresh = Pipeline::new(Limits::default())
            .sanitize(&good, &jpeg_opts())
            .unwrap();
        assert_eq!(s.bytes, fresh.bytes);
    }
}

#[test]
fn a_jpeg_without_quantization_tables_is_refused_after_another_jpeg() {
    let good = fixture("photos/garden.jpg");
    let bare = without_dqt(&good);
    assert!(segments(&bare, 0xDB).is_empty());
    let fresh = decode_fresh(&bare);
    assert!(fresh.is_err(), "no tables: refused by a fresh pipeline");
    let mut p = Pipeline::new(Limits::default());
    let d = p.decode(&good, None).unwrap();
    p.recycle(d.pixels);
    assert_eq!(
        p.decode(&bare, None)
            .map(|_| ())
            .map_err(|e| e.code().to_string()),
        fresh.map(|_| ()),
        "decoded with the previous picture's tables"
    );
    assert!(p.sanitize(&bare, &jpeg_opts()).is_err());
}

fn jpeg_opts() -> Options {
    Options {
        format: Some(OutputFormat::Jpeg),
        quality: 85,
        max_edge: None,
    }
}
