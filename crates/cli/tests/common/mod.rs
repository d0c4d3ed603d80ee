//! Shared helpers for the CLI integration tests: run the real binary, find fixtures and the
//! shared corpus, scan outputs for metadata.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pixseal"))
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn fixtures() -> PathBuf {
    repo().join("fixtures")
}

/// `../shared/corpus` next to the repository, when present.
pub fn corpus() -> Option<PathBuf> {
    let p = repo().join("../shared/corpus");
    p.join("manifest.tsv").exists().then_some(p)
}

/// Run `pixseal ARGS` with a clean environment for config (no stray PIXSEAL_* settings).
pub fn pixseal(args: &[&str]) -> Output {
    pixseal_env(args, &[])
}

/// Run `pixseal ARGS` with exactly the given PIXSEAL_* settings.
pub fn pixseal_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin());
    c.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("PIXSEAL_") {
            c.env_remove(k);
        }
    }
    c.envs(env.iter().copied());
    c.output().expect("run pixseal")
}

/// The JSON lines printed on stdout.
pub fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("valid JSON line"))
        .collect()
}

/// Byte strings that must never appear in an output: long enough not to occur by chance in
/// compressed data (short chunk names are checked structurally instead).
pub const MARKERS: &[&[u8]] = &[
    b"Exif\0\0",
    b"http://ns.adobe.com/xap",
    b"x:xmpmeta",
    b"ICC_PROFILE",
    b"Photoshop 3.0",
    b"PXCANARY",
];

/// Problems found by a scan of an output file: markers, then per format the container
/// structure (JPEG: only a bare JFIF APP0 and no COM; PNG: only pixel chunks; WebP: only image
/// chunks and no metadata flags), and no bytes after the end.
pub fn scan_output(bytes: &[u8]) -> Vec<String> {
    let mut p = Vec::new();
    for m in MARKERS {
        if bytes.windows(m.len()).any(|w| w == *m) {
            p.push(format!("marker {:?}", String::from_utf8_lossy(m)));
        }
    }
    if bytes.starts_with(&[0xFF, 0xD8]) {
        let mut i = 2;
        while i + 4 <= bytes.len() && bytes[i] == 0xFF {
            let m = bytes[i + 1];
            let len = ((bytes[i + 2] as usize) << 8) | bytes[i + 3] as usize;
            if m == 0xDA {
                break;
            }
            let body = &bytes[i + 4..(i + 2 + len).min(bytes.len())];
            if m == 0xFE {
                p.push("COM segment".into());
            }
            if (0xE1..=0xEF).contains(&m) {
                p.push(format!("APP{} segment", m - 0xE0));
            }
            if m == 0xE0
                && (!body.starts_with(b"JFIF\0") || body.get(12).copied().unwrap_or(0) != 0)
            {
                p.push("APP0 that is not a bare JFIF".into());
            }
            i += 2 + len;
        }
        if !bytes.ends_with(&[0xFF, 0xD9]) {
            p.push("bytes after EOI or no EOI".into());
        }
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        let mut i = 8;
        let mut last = Vec::new();
        while i + 12 <= bytes.len() {
            let len = u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap()) as usize;
            let kind = bytes[i + 4..i + 8].to_vec();
            if !matches!(&kind[..], b"IHDR" | b"PLTE" | b"IDAT" | b"IEND" | b"tRNS") {
                p.push(format!("PNG chunk {}", String::from_utf8_lossy(&kind)));
            }
            i += 12 + len;
            last = kind;
        }
        if last != b"IEND" || i != bytes.len() {
            p.push("PNG does not end with IEND exactly".into());
        }
    } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        let end = 8 + u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
        if end != bytes.len() {
            p.push("bytes after the RIFF size".into());
        }
        let mut i = 12;
        while i + 8 <= end.min(bytes.len()) {
            let kind = &bytes[i..i + 4];
            let len = u32::from_le_bytes(bytes[i + 4..i + 8].try_into().unwrap()) as usize;
            if !matches!(kind, b"VP8 " | b"VP8L" | b"VP8X" | b"ALPH") {
                p.push(format!("WebP chunk {}", String::from_utf8_lossy(kind)));
            }
            if kind == b"VP8X" && bytes.get(i + 8).is_some_and(|f| f & 0x2C != 0) {
                p.push("VP8X announces ICC/EXIF/XMP".into());
            }
            i += 8 + len + (len & 1);
        }
    } else {
        p.push("output is not JPEG, PNG or WebP".into());
    }
    p
}

/// exiftool's view of a file, when exiftool is installed: the tags outside the groups any clean
/// image has (File, JFIF, Composite, ExifTool, PNG/RIFF structure).
pub fn exiftool_metadata(path: &Path) -> Option<Vec<String>> {
    let out = Command::new("exiftool")
        .args(["-j", "-G", "-a", "-u"])
        .arg(path)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let obj = v.as_array()?.first()?.as_object()?.clone();
    let allowed_groups = [
        "SourceFile",
        "File:",
        "JFIF:",
        "Composite:",
        "ExifTool:",
        "PNG:",
        "RIFF:",
        "GIF:",
    ];
    // Structural facts of the pixel stream that exiftool files under PNG/RIFF but are not metadata.
    let bad_structural = [
        "PNG:TextualData",
        "PNG:Comment",
        "PNG:Description",
        "RIFF:Exif",
        "RIFF:XMP",
    ];
    Some(
        obj.keys()
            .filter(|k| {
                !allowed_groups.iter().any(|g| k.starts_with(g))
                    || bad_structural.iter().any(|b| k.starts_with(b))
            })
            .cloned()
            .collect(),
    )
}

pub fn exiftool_available() -> bool {
    Command::new("exiftool")
        .arg("-ver")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Decode with the `image` crate (independent of pixseal's own decoders) to RGB.
pub fn decode_rgb(path: &Path) -> image::RgbImage {
    image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8()
}

/// Mean absolute difference between two pictures after both are shrunk to `n`x`n`.
pub fn thumb_distance(a: &image::RgbImage, b: &image::RgbImage, n: u32) -> f64 {
    let f = image::imageops::FilterType::Triangle;
    let ta = image::imageops::resize(a, n, n, f);
    let tb = image::imageops::resize(b, n, n, f);
    let sum: u64 = ta
        .as_raw()
        .iter()
        .zip(tb.as_raw())
        .map(|(x, y)| (*x as i64 - *y as i64).unsigned_abs())
        .sum();
    sum as f64 / ta.as_raw().len() as f64
}

/// A check that cannot run here: said on stderr, except under CI=true, where it fails.
pub fn missing(what: &str) {
    let msg = format!("offline check not run: {what}");
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
    eprintln!("{msg}");
}

/// Whether `tool PROBE…` runs and succeeds.
pub fn available(tool: &str, probe: &[&str]) -> bool {
    Command::new(tool)
        .args(probe)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Run pixseal under strace; its output, and every network system call that is not on a Unix
/// domain socket (`socket(AF_INET…)`, `connect(… sa_family=AF_INET6 …)`, …).
pub fn traced(args: &[&str], log: &Path) -> (Output, Vec<String>) {
    let out = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=network", "-o"])
        .arg(log)
        .arg("--")
        .arg(bin())
        .args(args)
        .output()
        .unwrap();
    let calls = std::fs::read_to_string(log).unwrap_or_default();
    let foreign = calls
        .lines()
        .filter(|l| {
            let opens = l.contains(" socket(") || l.contains(" socketpair(");
            (opens && !l.contains("(AF_UNIX"))
                || (l.contains("sa_family=AF_") && !l.contains("sa_family=AF_UNIX"))
        })
        .map(str::to_string)
        .collect();
    (out, foreign)
}
