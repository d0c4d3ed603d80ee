//! PDQ: agreement with Meta's reference implementation (pdqhash, on identical pixels), matches
//! that survive resizing and re-encoding by Pillow, and unrelated photos that never match.
//! Distances are printed (`--nocapture`) for docs/provenance.md.

use std::path::{Path, PathBuf};

use pixseal_media::{Limits, OutputFormat, Pipeline, Pixels, encode::Encoder};
use pixseal_provenance::pdq::{self, MATCH_THRESHOLD, Pdq};
use pixseal_testkit::{c2pa_ref, repo_root};

/// Meta's guidance: hashes of quality under 50 (flat pictures) are not to be relied on.
const QUALITY_MIN: i64 = 50;

fn decode(path: &Path) -> Option<Pixels> {
    let bytes = std::fs::read(path).ok()?;
    Pipeline::new(Limits::default())
        .decode(&bytes, None)
        .ok()
        .map(|d| d.pixels)
}

fn hash(px: &Pixels) -> pdq::PdqResult {
    pdq::hash_rgb(&px.data, px.width, px.height, px.channels).expect("hashable")
}

/// The photo fixtures, always present: every assertion below must hold on them alone.
const FIXTURES: &[&str] = &["garden.jpg", "street.webp", "scan.tif", "alpha.png"];

/// Fixtures under QUALITY_MIN by design (scan.tif: a 120×90 scan with little detail), so the
/// comparison with the reference skips them; every other fixture must be compared.
const FLAT_FIXTURES: &[&str] = &["scan.tif"];

/// The transforms of `c2pa_ref.py variants` a match must survive (its crop is only reported).
const MATCHING_TRANSFORMS: &[&str] = &["resize50", "resize25", "jpeg60", "webp70"];

struct Photo {
    path: PathBuf,
    /// Photos of one group are versions of one picture: the orientation samples are one picture
    /// under eight EXIF orientations (two pictures in all), so pairs inside a group are not
    /// "unrelated".
    group: String,
    /// The fixture's file name; `None` for a corpus photo.
    fixture: Option<&'static str>,
}

struct Photos {
    list: Vec<Photo>,
    /// Whether `../shared/corpus` was there: only then do the tests require more photos than
    /// the fixtures.
    corpus: bool,
}

/// The fixtures first (each must decode), then, when present, the shared corpus' JPEGs of at
/// least 400 px a side that decode.
fn photos() -> Photos {
    let root = repo_root();
    let mut list: Vec<Photo> = FIXTURES
        .iter()
        .map(|&n| {
            let path = root.join("fixtures/photos").join(n);
            assert!(decode(&path).is_some(), "fixture {n} does not decode");
            Photo {
                path,
                group: n.to_string(),
                fixture: Some(n),
            }
        })
        .collect();
    let manifest = root.join("../shared/corpus/manifest.tsv");
    let Ok(tsv) = std::fs::read_to_string(&manifest) else {
        eprintln!(
            "note: ../shared/corpus not found; fixtures only (the corpus-sized minimums are skipped)"
        );
        return Photos {
            list,
            corpus: false,
        };
    };
    for line in tsv.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let (path, format, w, h) = (f[0], f[2], f[3], f[4]);
        let (w, h) = (w.parse::<u32>().unwrap_or(0), h.parse::<u32>().unwrap_or(0));
        if format != "JPEG" || w.min(h) < 400 || w as u64 * h as u64 > 13_000_000 {
            continue;
        }
        let name = Path::new(path)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_lowercase();
        let group = if name.starts_with("landscape") {
            "landscape".to_string()
        } else if name.starts_with("portrait") {
            "portrait".to_string()
        } else {
            name.clone()
        };
        let path = root.join("../shared/corpus").join(path);
        if decode(&path).is_some() {
            list.push(Photo {
                path,
                group,
                fixture: None,
            });
        }
    }
    Photos { list, corpus: true }
}

#[test]
fn pdq_agrees_with_the_reference_implementation() {
    let Photos { list, corpus } = photos();
    // The fixtures come first, so all of them are among the 24.
    let list: Vec<&Photo> = list.iter().take(24).collect();
    let d = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut ours = Vec::new();
    for (i, photo) in list.iter().enumerate() {
        let mut px = decode(&photo.path).unwrap();
        let h = hash(&px);
        // Hand the reference exactly our pixels (lossless PNG), so only the algorithm differs.
        px.drop_opaque_alpha();
        let png = Encoder::new()
            .encode(&mut px, OutputFormat::Png, 85)
            .unwrap();
        let f = d.path().join(format!("{i}.png"));
        std::fs::write(&f, png).unwrap();
        files.push(f.display().to_string());
        ours.push(h);
    }
    let mut args = vec!["pdq"];
    args.extend(files.iter().map(String::as_str));
    let lines = c2pa_ref(&args);
    assert_eq!(lines.len(), ours.len());
    let (mut exact, mut compared, mut flat) = (0, 0, 0);
    let (mut fixtures_compared, mut fixtures_flat) = (Vec::new(), Vec::new());
    for (((line, o), photo), file) in lines.iter().zip(&ours).zip(&list).zip(&files) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        // The fixture bookkeeping below relies on the reference answering in input order.
        assert_eq!(v["file"].as_str(), Some(file.as_str()));
        let reference: Pdq = v["pdq"].as_str().unwrap().parse().unwrap();
        let q = v["quality"].as_u64().unwrap() as i64;
        assert!(
            (q - o.quality as i64).abs() <= 1,
            "quality {q} vs {}",
            o.quality
        );
        if q < QUALITY_MIN {
            // Flat pictures: many DCT coefficients tie with the median, so float rounding
            // decides bits; the reference itself says not to trust such hashes.
            flat += 1;
            fixtures_flat.extend(photo.fixture);
            continue;
        }
        compared += 1;
        fixtures_compared.extend(photo.fixture);
        let dist = reference.distance(&o.hash);
        assert!(
            dist <= 2,
            "{}: ours {} reference {reference} ({dist} bits)",
            photo.path.display(),
            o.hash
        );
        if dist == 0 {
            exact += 1;
        }
    }
    eprintln!(
        "pdq vs reference: {exact}/{compared} identical, the rest within 2 bits; {flat} flat pictures (quality < {QUALITY_MIN}) not compared"
    );
    // Without the corpus the fixtures are all there is: a fixture silently turning flat would
    // leave the agreement checked on almost nothing.
    assert_eq!(
        fixtures_flat, FLAT_FIXTURES,
        "fixtures under quality {QUALITY_MIN}"
    );
    let expected: Vec<&str> = FIXTURES
        .iter()
        .copied()
        .filter(|n| !FLAT_FIXTURES.contains(n))
        .collect();
    assert_eq!(
        fixtures_compared, expected,
        "fixtures compared with the reference"
    );
    if corpus {
        assert!(compared >= 10, "too few photos compared");
    } else {
        eprintln!(
            "note: ../shared/corpus absent: minimum of 10 photos compared skipped ({} fixtures compared)",
            expected.len()
        );
    }
    assert!(
        exact * 10 >= compared * 8,
        "most hashes must be bit-identical"
    );
}

#[test]
fn pdq_survives_resize_and_reencode_by_pillow() {
    let Photos { list, corpus } = photos();
    let d = tempfile::tempdir().unwrap();
    let photos: Vec<Photo> = list
        .into_iter()
        // alpha.png is a transparency test pattern (flat shapes over a gradient), not a photo.
        .filter(|p| p.fixture != Some("alpha.png"))
        .filter(|p| hash(&decode(&p.path).unwrap()).quality as i64 >= QUALITY_MIN)
        .take(30)
        .collect();
    let fixtures: Vec<&str> = photos.iter().filter_map(|p| p.fixture).collect();
    let expected: Vec<&str> = FIXTURES
        .iter()
        .copied()
        .filter(|n| *n != "alpha.png" && !FLAT_FIXTURES.contains(n))
        .collect();
    assert_eq!(fixtures, expected, "fixture photos tested");
    if corpus {
        assert!(photos.len() >= 10, "too few photos tested");
    } else {
        eprintln!(
            "note: ../shared/corpus absent: minimum of 10 photos skipped ({} fixtures tested)",
            photos.len()
        );
    }
    let mut originals = Vec::new();
    let mut inputs = Vec::new();
    for (i, photo) in photos.iter().enumerate() {
        let mut px = decode(&photo.path).unwrap();
        // What pixseal would hand out: the sanitised picture, re-encoded (alpha flattened).
        let jpg = Encoder::new()
            .encode(&mut px, OutputFormat::Jpeg, 85)
            .unwrap();
        let f = d.path().join(format!("p{i}.jpg"));
        std::fs::write(&f, jpg).unwrap();
        originals.push(hash(&decode(&f).unwrap()));
        inputs.push(f.display().to_string());
    }
    let out = d.path().join("variants");
    std::fs::create_dir(&out).unwrap();
    let mut args = vec!["variants", out.to_str().unwrap()];
    args.extend(inputs.iter().map(String::as_str));
    let mut worst = std::collections::BTreeMap::<String, u32>::new();
    let mut checked = vec![Vec::new(); photos.len()];
    for line in c2pa_ref(&args) {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let i: usize = Path::new(v["input"].as_str().unwrap())
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()[1..]
            .parse()
            .unwrap();
        let px = decode(Path::new(v["output"].as_str().unwrap())).unwrap();
        let dist = hash(&px).hash.distance(&originals[i].hash);
        let op = v["op"].as_str().unwrap().to_string();
        let w = worst.entry(op.clone()).or_default();
        *w = (*w).max(dist);
        if op.starts_with("crop") {
            // Reported, not required: PDQ is not built for crops (2% off each side here).
            continue;
        }
        assert!(
            dist <= MATCH_THRESHOLD,
            "{} after {op}: distance {dist} > {MATCH_THRESHOLD}",
            photos[i].path.display()
        );
        checked[i].push(op);
    }
    eprintln!(
        "pdq worst distance per transform over {} photos: {worst:?}",
        photos.len()
    );
    // A variant the reference failed to write would otherwise pass unnoticed.
    for (photo, ops) in photos.iter().zip(&checked) {
        assert_eq!(
            ops,
            MATCHING_TRANSFORMS,
            "transforms checked on {}",
            photo.path.display()
        );
    }
}

#[test]
fn pdq_unrelated_photos_never_match() {
    let photos = photos().list;
    let hashes: Vec<_> = photos
        .iter()
        .map(|p| hash(&decode(&p.path).unwrap()))
        .collect();
    let mut min = (u32::MAX, String::new());
    let mut pairs = 0;
    let mut histogram = [0u32; 9];
    for i in 0..photos.len() {
        for j in i + 1..photos.len() {
            if photos[i].group == photos[j].group {
                continue;
            }
            pairs += 1;
            let dist = hashes[i].hash.distance(&hashes[j].hash);
            histogram[(dist / 32).min(8) as usize] += 1;
            if dist < min.0 {
                min = (
                    dist,
                    format!(
                        "{} ~ {}",
                        photos[i].path.display(),
                        photos[j].path.display()
                    ),
                );
            }
            assert!(
                dist > MATCH_THRESHOLD,
                "unrelated photos match at {dist}: {} ~ {}",
                photos[i].path.display(),
                photos[j].path.display()
            );
        }
    }
    eprintln!(
        "pdq unrelated: {} photos, {pairs} pairs, min distance {} ({}), histogram by 32: {histogram:?}",
        photos.len(),
        min.0,
        min.1
    );
    // The fixtures are unrelated pictures, each its own group: every pair of them counts.
    let n = FIXTURES.len();
    assert!(pairs >= n * (n - 1) / 2, "{pairs} pairs compared");
}
