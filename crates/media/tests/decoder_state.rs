//! One pipeline, many pictures: nothing a picture does (refused or not) changes how the next one
//! decodes. Each picture's result is compared with what a fresh pipeline makes of it.

use std::path::Path;

use pixseal_media::{Limits, Options, OutputFormat, Pipeline};
use pixseal_testkit::hostile::{jpeg_bogus_sampling, jpeg_segments, jpeg_without};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures")
            .join(name),
    )
    .unwrap()
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
    let bad = jpeg_bogus_sampling(&good);
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
    let bare = jpeg_without(&good, 0xDB);
    assert!(jpeg_segments(&bare, 0xDB).is_empty());
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
