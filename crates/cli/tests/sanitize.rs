//! `pixseal sanitize` end to end on real files: orientation on pixels, metadata gone (byte scan
//! and exiftool), exit codes and JSON lines, and the shared corpus when it is present.

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use common::*;

#[test]
fn every_exif_orientation_comes_out_upright() {
    let out = tempfile::tempdir().unwrap();
    let dir = fixtures().join("orientation");
    let r = pixseal(&[
        "sanitize",
        dir.to_str().unwrap(),
        "-o",
        out.path().to_str().unwrap(),
        "--json",
        "--format",
        "png",
    ]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let upright = decode_rgb(&dir.join("upright.png"));
    // Quadrant centres of the 48x32 reference: red, green / blue, white.
    let probes = [(12, 8), (36, 8), (12, 24), (36, 24)];
    for o in 1..=8 {
        let got = decode_rgb(&out.path().join(format!("orient-{o}.png")));
        assert_eq!(got.dimensions(), (48, 32), "orientation {o}: wrong size");
        for (x, y) in probes {
            let (a, b) = (got.get_pixel(x, y).0, upright.get_pixel(x, y).0);
            let d: i32 = a
                .iter()
                .zip(b.iter())
                .map(|(p, q)| (*p as i32 - *q as i32).abs())
                .max()
                .unwrap();
            assert!(
                d < 40,
                "orientation {o}: pixel ({x},{y}) is {a:?}, upright is {b:?}"
            );
        }
    }
    let lines = json_lines(&r);
    let seen: Vec<u64> = lines
        .iter()
        .filter_map(|l| l["orientation"].as_u64())
        .collect();
    assert!(
        seen.contains(&6) && seen.contains(&8),
        "orientations reported: {seen:?}"
    );
}

#[test]
fn metadata_and_canaries_never_survive() {
    let out = tempfile::tempdir().unwrap();
    let dir = fixtures().join("metadata");
    for format in ["jpeg", "webp", "png"] {
        let o = out.path().join(format);
        let r = pixseal(&[
            "sanitize",
            dir.to_str().unwrap(),
            "-o",
            o.to_str().unwrap(),
            "--format",
            format,
            // One run on the overlapped single-job path (decode and encode on two threads).
            "--jobs",
            if format == "png" { "1" } else { "2" },
        ]);
        assert_eq!(
            r.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&r.stderr)
        );
        let files: Vec<_> = fs::read_dir(&o)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(
            files.len(),
            fs::read_dir(&dir).unwrap().count(),
            "one output per input"
        );
        for f in files {
            let bytes = fs::read(&f).unwrap();
            let problems = scan_output(&bytes);
            assert!(problems.is_empty(), "{}: {problems:?}", f.display());
            if let Some(tags) = exiftool_metadata(&f) {
                assert!(
                    tags.is_empty(),
                    "{}: exiftool still sees {tags:?}",
                    f.display()
                );
            }
        }
    }
    // The scan itself must be able to fail: the inputs are full of what it looks for.
    let input = fs::read(dir.join("jpeg-all.jpg")).unwrap();
    assert!(scan_output(&input).len() >= 5, "{:?}", scan_output(&input));
    if let Some(tags) = exiftool_metadata(&dir.join("jpeg-all.jpg")) {
        assert!(
            tags.iter()
                .any(|t| t.starts_with("GPS:") || t.contains("GPS")),
            "{tags:?}"
        );
    }
}

#[test]
fn batch_reports_each_input_and_exits_2_when_one_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let bad = work.path().join("notes.jpg");
    fs::write(&bad, b"<html><body>PXCANARY-HTML</body></html>").unwrap();
    let good = fixtures().join("photos/garden.jpg");
    let missing = work.path().join("missing.png");
    let out = work.path().join("out");
    let r = pixseal(&[
        "sanitize",
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
        missing.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(r.status.code(), Some(2));
    let lines = json_lines(&r);
    assert_eq!(lines.len(), 3, "{lines:?}");
    let by_input: HashMap<String, &serde_json::Value> = lines
        .iter()
        .map(|l| (l["input"].as_str().unwrap().to_string(), l))
        .collect();
    let g = by_input[good.to_str().unwrap()];
    assert_eq!(g["status"], "ok");
    assert_eq!(
        (g["width"].as_u64(), g["height"].as_u64()),
        (Some(640), Some(480))
    );
    assert!(Path::new(g["output"].as_str().unwrap()).exists());
    assert_eq!(
        by_input[bad.to_str().unwrap()]["code"],
        "unsupported_format"
    );
    assert_eq!(by_input[missing.to_str().unwrap()]["code"], "not_found");
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("error[unsupported_format]: ")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("PXCANARY") && !String::from_utf8_lossy(&r.stdout).contains("PXCANARY")
    );
    assert_eq!(
        fs::read_dir(&out).unwrap().count(),
        1,
        "only the good input leaves an output"
    );
}

#[test]
fn usage_errors_exit_1_and_limits_come_from_config() {
    let r = pixseal(&["sanitize", "-o", "/tmp/x"]);
    assert_eq!(r.status.code(), Some(1));
    let r = pixseal(&["sanitize", "a.jpg", "-o", "/tmp/x", "--quality", "0"]);
    assert_eq!(r.status.code(), Some(1));
    let work = tempfile::tempdir().unwrap();
    let cfg = work.path().join("p.toml");
    fs::write(&cfg, "[limits]\nmax_pixels = 1000\n").unwrap();
    let good = fixtures().join("photos/garden.jpg");
    let out = work.path().join("o");
    let r = pixseal(&[
        "--config",
        cfg.to_str().unwrap(),
        "sanitize",
        good.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(r.status.code(), Some(2));
    let l = &json_lines(&r)[0];
    assert_eq!(l["code"], "too_many_pixels");
    assert!(
        l["message"].as_str().unwrap().contains("1000"),
        "message names the limit: {l}"
    );
}

#[test]
fn example_config_documents_the_defaults() {
    // Loading the example must give exactly the built-in defaults (every key present, no typo).
    let r = pixseal(&[
        "--config",
        repo().join("pixseal.example.toml").to_str().unwrap(),
        "keys",
        "--help",
    ]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let text = fs::read_to_string(repo().join("pixseal.example.toml")).unwrap();
    for key in [
        "data_dir",
        "regions",
        "max_file_bytes",
        "max_pixels",
        "max_side",
        "max_jpeg_scans",
        "max_frames",
        "max_heif_items",
        "max_heif_tiles",
        "animated",
        "provider",
        "local_path",
        "transit_addr",
        "transit_token",
        "transit_token_file",
        "transit_mount",
        "transit_ca_cert",
        "transit_key_prefix",
        "backend",
        "path",
        "endpoint",
        "bucket",
        "access_key_id",
        "secret_access_key",
        "secret_access_key_file",
        "database_url_file",
        "rate_limit_redis_url_file",
        "aws_region",
        "allow_http",
        "prefix",
    ] {
        assert!(
            text.contains(&format!("\n{key} =")),
            "{key} undocumented in pixseal.example.toml"
        );
    }
}

/// Orientation on the shared corpus: Landscape_N / Portrait_N (N = EXIF orientation) must match
/// the un-tagged _0 picture after sanitizing, and be closer to it than the raw stored pixels.
#[test]
fn corpus_orientation_examples_match_their_reference() {
    let Some(corpus) = corpus() else {
        eprintln!("../shared/corpus absent: skipped");
        return;
    };
    let dir = corpus.join("photos/orientation");
    let out = tempfile::tempdir().unwrap();
    let r = pixseal(&[
        "sanitize",
        dir.to_str().unwrap(),
        "-o",
        out.path().to_str().unwrap(),
        "--format",
        "png",
    ]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    for kind in ["Landscape", "Portrait"] {
        let reference = decode_rgb(&dir.join(format!("{kind}_0.jpg")));
        for o in 1..=8 {
            let got = decode_rgb(&out.path().join(format!("{kind}_{o}.png")));
            assert_eq!(got.dimensions(), reference.dimensions(), "{kind}_{o}");
            let d = thumb_distance(&got, &reference, 16);
            assert!(
                d < 12.0,
                "{kind}_{o}: distance {d:.1} to the upright reference"
            );
            if o != 1 {
                let raw = decode_rgb(&dir.join(format!("{kind}_{o}.jpg")));
                if raw.dimensions() == reference.dimensions() {
                    let d_raw = thumb_distance(&raw, &reference, 16);
                    assert!(
                        d < d_raw,
                        "{kind}_{o}: output not closer to upright than the stored pixels"
                    );
                }
            }
        }
    }
}

/// The corpus's HEIC and AVIF photos come out the size and way up that a reference decoder
/// (Pillow with pillow-heif, which applies `irot`/`imir` as libheif does) gives, and look like
/// it. Needs `../shared/corpus`, and Python with pillow-heif (scripts/setup.sh installs it).
#[test]
fn corpus_phone_photos_match_a_reference_decode() {
    let Some(corpus) = corpus() else {
        eprintln!("../shared/corpus absent: skipped");
        return;
    };
    let manifest = fs::read_to_string(corpus.join("manifest.tsv")).unwrap();
    let inputs: Vec<String> = manifest
        .lines()
        .skip(1)
        .map(|row| row.split('\t').collect::<Vec<_>>())
        .filter(|c| matches!(c[2], "HEIC" | "AVIF") && c[15] == "ok")
        .map(|c| corpus.join(c[0]).to_string_lossy().into_owned())
        .collect();
    assert!(
        inputs.len() >= 11,
        "the corpus lists {} phone photos",
        inputs.len()
    );
    // Both sides shrink to this long edge: the check is about size, way up and look, and full
    // 12–16 MP PNGs made the test slow.
    const EDGE: &str = "1024";
    let refs = tempfile::tempdir().unwrap();
    let script = &"import sys, pathlib\n\
        from PIL import Image\n\
        import pillow_heif\n\
        pillow_heif.register_heif_opener()\n\
        out = pathlib.Path(sys.argv[1])\n\
        for f in sys.argv[2:]:\n\
        \x20   im = Image.open(f).convert('RGB')\n\
        \x20   im.thumbnail((EDGE, EDGE))\n\
        \x20   im.save(out / (pathlib.Path(f).stem + '.png'))\n"
        .replace("EDGE", EDGE);
    let mut args = vec!["-c", script, refs.path().to_str().unwrap()];
    args.extend(inputs.iter().map(String::as_str));
    let py = std::process::Command::new("python3")
        .args(&args)
        .output()
        .unwrap();
    if !py.status.success() {
        let err = String::from_utf8_lossy(&py.stderr);
        assert!(
            std::env::var_os("CI").is_none(),
            "reference decoder failed in CI: {err}"
        );
        eprintln!("reference decoder unavailable (pip install pillow-heif): skipped\n{err}");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let mut args = vec![
        "sanitize",
        "-o",
        out.path().to_str().unwrap(),
        "--format",
        "png",
        "--max-edge",
        EDGE,
        "--json",
    ];
    args.extend(inputs.iter().map(String::as_str));
    let r = pixseal(&args);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stdout)
    );
    for input in &inputs {
        let stem = Path::new(input).file_stem().unwrap().to_str().unwrap();
        let got = decode_rgb(&out.path().join(format!("{stem}.png")));
        let reference = decode_rgb(&refs.path().join(format!("{stem}.png")));
        // Shrunk by two resizers: sides may differ by a pixel of rounding.
        let (g, r) = (got.dimensions(), reference.dimensions());
        assert!(
            g.0.abs_diff(r.0) <= 1 && g.1.abs_diff(r.1) <= 1,
            "{stem}: {g:?} against the reference's {r:?} (size or way up differs)"
        );
        // Colours differ a little where we convert Display P3 to sRGB and the reference does not.
        let d = thumb_distance(&got, &reference, 16);
        assert!(d < 12.0, "{stem}: distance {d:.1} to the reference decode");
        // The size catches a quarter turn; a half turn keeps it (checked where a half turn
        // changes the picture at all: one corpus AVIF is a flat colour).
        let upside_down = image::imageops::rotate180(&reference);
        if thumb_distance(&reference, &upside_down, 16) > 4.0 {
            let d_turned = thumb_distance(&got, &upside_down, 16);
            assert!(d < d_turned, "{stem}: upside down");
        }
    }
}

/// Every corpus photo we accept comes out with no metadata (byte scan and exiftool); no input
/// crashes the tool; the files Pillow and image-rs both decode are accepted.
#[test]
fn corpus_outputs_carry_no_metadata() {
    let Some(corpus) = corpus() else {
        eprintln!("../shared/corpus absent: skipped");
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let r = pixseal(&[
        "sanitize",
        corpus.join("photos").to_str().unwrap(),
        "-o",
        out.path().to_str().unwrap(),
        "--json",
    ]);
    assert!(
        matches!(r.status.code(), Some(0) | Some(2)),
        "exit {:?}: {}",
        r.status.code(),
        String::from_utf8_lossy(&r.stderr)
    );
    let lines = json_lines(&r);
    let manifest = fs::read_to_string(corpus.join("manifest.tsv")).unwrap();
    let mut expect_ok = Vec::new();
    for row in manifest.lines().skip(1) {
        let c: Vec<&str> = row.split('\t').collect();
        // Phone formats are not in image-rs: Pillow (with pillow-heif) is their reference.
        let supported = matches!(c[2], "JPEG" | "PNG" | "GIF" | "WEBP" | "TIFF") && c[16] == "ok"
            || matches!(c[2], "HEIC" | "AVIF");
        if supported && c[15] == "ok" {
            expect_ok.push(c[0].to_string());
        }
    }
    let status: HashMap<String, &serde_json::Value> = lines
        .iter()
        .map(|l| {
            let input = l["input"].as_str().unwrap();
            let rel = input.split("/photos/").last().unwrap();
            (format!("photos/{rel}"), l)
        })
        .collect();
    let mut refused = Vec::new();
    for p in &expect_ok {
        match status.get(p) {
            Some(l) if l["status"] == "ok" => {}
            Some(l) => refused.push(format!("{p}: {} {}", l["code"], l["message"])),
            None => refused.push(format!("{p}: no result line")),
        }
    }
    assert!(
        refused.is_empty(),
        "decodable corpus files refused:\n{}",
        refused.join("\n")
    );
    assert!(
        lines.iter().all(|l| l["code"] != "internal"),
        "internal errors: {lines:?}"
    );
    let exif = exiftool_available();
    let mut problems = Vec::new();
    for l in lines.iter().filter(|l| l["status"] == "ok") {
        let f = Path::new(l["output"].as_str().unwrap());
        let bytes = fs::read(f).unwrap();
        for p in scan_output(&bytes) {
            problems.push(format!("{}: {p}", f.display()));
        }
        if exif
            && let Some(tags) = exiftool_metadata(f)
            && !tags.is_empty()
        {
            problems.push(format!("{}: exiftool {tags:?}", f.display()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
