//! HEIC/HEIF, AVIF and JPEG XL inputs: the valid fixtures decode to their size, and every hostile
//! one (`fixtures/phone/README.md` says how each was made and what libheif/libjxl do with it) is
//! refused with the code that names what is wrong, before any decode where the header says it.

use std::path::{Path, PathBuf};

use pixseal_media::{Format, Limits, Options, OutputFormat, Pipeline};

fn phone(name: &str) -> Vec<u8> {
    let p: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/phone")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn valid_phone_pictures_decode_to_their_size() {
    let mut p = Pipeline::new(Limits::default());
    for (name, format, w, h) in [
        ("valid-64x48.heic", Format::Heif, 64, 48),
        ("valid-128x96.heic", Format::Heif, 128, 96),
        ("valid-grid-2x2.heic", Format::Heif, 128, 96),
        ("valid-64x48.avif", Format::Avif, 64, 48),
        ("valid-8x8.jxl", Format::Jxl, 8, 8),
        ("valid-8x8-container.jxl", Format::Jxl, 8, 8),
    ] {
        let d = p
            .decode(&phone(name), None)
            .unwrap_or_else(|e| panic!("{name}: {} {e}", e.code()));
        assert_eq!(d.input_format, format, "{name}");
        assert_eq!((d.pixels.width, d.pixels.height), (w, h), "{name}");
        // The picture is really there: not one flat colour.
        let first = &d.pixels.data[..3];
        let flat = d
            .pixels
            .data
            .chunks_exact(d.pixels.channels as usize)
            .all(|px| &px[..3] == first);
        assert!(!flat, "{name}: decoded to a single colour");
    }
}

#[test]
fn hostile_phone_pictures_are_refused_with_the_code_that_names_the_lie() {
    let mut p = Pipeline::new(Limits::default());
    for (name, code) in [
        ("hostile-ispe-40000x40000.heic", "dimensions_too_large"),
        ("hostile-ispe-8000x8000.heic", "too_many_pixels"),
        ("hostile-ispe-16x16.heic", "corrupt"),
        ("hostile-grid-10000-tiles.heic", "decode_too_costly"),
        ("hostile-grid-100x100-4-refs.heic", "decode_too_costly"),
        ("hostile-grid-self-ref.heic", "corrupt"),
        ("hostile-grid-mutual-ref.heic", "corrupt"),
        ("hostile-no-hvcC.heic", "corrupt"),
        ("hostile-iloc-offset-past-eof.heic", "truncated"),
        ("hostile-iloc-length-past-eof.heic", "truncated"),
        ("hostile-mdat-truncated.heic", "truncated"),
        ("hostile-ftyp-avif-on-hevc.avif", "corrupt"),
        ("hostile-ftyp-heic-no-meta.heic", "corrupt"),
        ("hostile-ftyp-mp42.heic", "unsupported_format"),
        ("hostile-iinf-1000000-items.heic", "decode_too_costly"),
        ("hostile-avif-ispe-40000x40000.avif", "dimensions_too_large"),
        ("hostile-avif-no-av1C.avif", "corrupt"),
        ("hostile-avif-mdat-truncated.avif", "truncated"),
        ("hostile-jxl-32768x32768.jxl", "dimensions_too_large"),
        ("hostile-jxl-16384x16384.jxl", "too_many_pixels"),
        (
            "hostile-jxl-container-32768x32768.jxl",
            "dimensions_too_large",
        ),
        ("hostile-jxl-truncated-after-header.jxl", "truncated"),
        ("hostile-jxl-truncated-mid-frame.jxl", "truncated"),
    ] {
        match p.decode(&phone(name), None) {
            Ok(d) => panic!("{name}: accepted as {}x{}", d.pixels.width, d.pixels.height),
            Err(e) => assert_eq!(e.code(), code, "{name}: {e}"),
        }
        // The worker is unharmed: a valid picture still decodes right after.
        let ok = p.decode(&phone("valid-128x96.heic"), None).unwrap();
        assert_eq!(
            (ok.pixels.width, ok.pixels.height),
            (128, 96),
            "after {name}"
        );
    }
}

#[test]
fn refusals_name_the_limit() {
    let mut p = Pipeline::new(Limits {
        max_heif_tiles: 3,
        ..Limits::default()
    });
    let e = p.decode(&phone("valid-grid-2x2.heic"), None).unwrap_err();
    assert_eq!(e.code(), "decode_too_costly");
    assert!(e.to_string().contains("max_heif_tiles"), "{e}");
    let e = p
        .decode(&phone("hostile-iinf-1000000-items.heic"), None)
        .unwrap_err();
    assert!(e.to_string().contains("max_heif_items"), "{e}");
    let e = p
        .decode(&phone("hostile-ispe-8000x8000.heic"), None)
        .unwrap_err();
    assert!(e.to_string().contains("max_pixels"), "{e}");
}

/// Every phone input encodes in every output format, and the output is one of ours: the
/// container's items (Exif, XMP, ICC) cannot survive a re-encode from pixels.
#[test]
fn phone_pictures_come_out_in_every_format() {
    let mut p = Pipeline::new(Limits::default());
    for name in ["valid-grid-2x2.heic", "valid-64x48.avif", "valid-8x8.jxl"] {
        for format in [OutputFormat::Jpeg, OutputFormat::Png, OutputFormat::WebP] {
            let opts = Options {
                format: Some(format),
                ..Options::default()
            };
            let out = p.sanitize(&phone(name), &opts).unwrap();
            assert_eq!(out.format, format);
            let expected = match format {
                OutputFormat::Jpeg => Format::Jpeg,
                OutputFormat::Png => Format::Png,
                OutputFormat::WebP => Format::WebP,
            };
            assert_eq!(
                pixseal_media::sniff(&out.bytes).unwrap(),
                expected,
                "{name}"
            );
        }
    }
}

/// A HEIC with an alpha auxiliary image keeps its transparency (and so comes out as PNG by
/// default), with the alpha ramp the file holds: transparent at the top, opaque at the bottom.
#[test]
fn heic_alpha_is_kept() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/photos/alpha.heic");
    let input = std::fs::read(path).unwrap();
    let mut p = Pipeline::new(Limits::default());
    let d = p.decode(&input, None).unwrap();
    assert_eq!(d.pixels.channels, 4);
    let row = d.pixels.width as usize * 4;
    let alpha_at = |y: usize| d.pixels.data[y * row + 3 + 4 * (d.pixels.width as usize / 2)];
    let last = d.pixels.height as usize - 1;
    assert!(
        alpha_at(0) < 16 && alpha_at(last) > 240,
        "{} {}",
        alpha_at(0),
        alpha_at(last)
    );
    let out = p.sanitize(&input, &Options::default()).unwrap();
    assert_eq!(out.format, OutputFormat::Png);
}
