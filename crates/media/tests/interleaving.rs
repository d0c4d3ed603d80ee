//! Random orders of hostile and valid pictures through one pipeline (one worker): every picture
//! comes out exactly as a fresh pipeline makes it, refusal or output, whatever came before.

use std::path::Path;
use std::sync::OnceLock;

use pixseal_media::{Limits, Options, Pipeline};
use proptest::prelude::*;

/// (name, bytes) of every fixture picture, and hostile variants of some of them.
fn inputs() -> &'static [(String, Vec<u8>)] {
    static ALL: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    ALL.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
        let mut all = Vec::new();
        for dir in ["photos", "orientation", "metadata"] {
            let mut names: Vec<_> = std::fs::read_dir(root.join(dir))
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .collect();
            names.sort();
            for p in names {
                all.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
        let jpeg = std::fs::read(root.join("photos/garden.jpg")).unwrap();
        let png = std::fs::read(root.join("photos/alpha.png")).unwrap();
        let tiff = std::fs::read(root.join("photos/scan.tif")).unwrap();
        let mut hostile = vec![
            ("jpeg cut in half", jpeg[..jpeg.len() / 2].to_vec()),
            ("png cut in half", png[..png.len() / 2].to_vec()),
            ("tiff cut in half", tiff[..tiff.len() / 2].to_vec()),
            (
                "jpeg without quantization tables",
                without_segments(&jpeg, 0xDB),
            ),
            ("jpeg without huffman tables", without_segments(&jpeg, 0xC4)),
            ("jpeg with bogus sampling factors", bogus_sampling(&jpeg)),
            (
                "garbage",
                (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect(),
            ),
        ];
        // Entropy-coded data scribbled over (a damaged photo that still has all its markers).
        let mut scribbled = jpeg.clone();
        let sos = segment_starts(&jpeg, 0xDA)[0];
        for i in (sos + 40..jpeg.len() - 2).step_by(97) {
            scribbled[i] = 0x5A;
        }
        hostile.push(("jpeg with damaged entropy data", scribbled));
        all.extend(hostile.into_iter().map(|(n, b)| (n.to_string(), b)));
        all
    })
}

/// Offsets of the segments with this marker before the first SOS (the SOS itself included).
fn segment_starts(j: &[u8], marker: u8) -> Vec<usize> {
    let (mut out, mut pos) = (Vec::new(), 2);
    while pos + 4 <= j.len() && j[pos] == 0xFF {
        let len = ((j[pos + 2] as usize) << 8) | j[pos + 3] as usize;
        if j[pos + 1] == marker {
            out.push(pos);
        }
        if j[pos + 1] == 0xDA {
            break;
        }
        pos += 2 + len;
    }
    out
}

fn without_segments(j: &[u8], marker: u8) -> Vec<u8> {
    let mut out = j.to_vec();
    for at in segment_starts(j, marker).into_iter().rev() {
        let len = ((j[at + 2] as usize) << 8) | j[at + 3] as usize;
        out.drain(at..at + 2 + len);
    }
    out
}

fn bogus_sampling(j: &[u8]) -> Vec<u8> {
    let mut out = j.to_vec();
    let sof = segment_starts(j, 0xC0)
        .into_iter()
        .chain(segment_starts(j, 0xC2))
        .next()
        .unwrap();
    out[sof + 11] = 0x00;
    out
}

/// What a fresh pipeline makes of a picture: its output bytes, or its refusal's code.
fn fresh(bytes: &[u8]) -> Result<Vec<u8>, String> {
    Pipeline::new(Limits::default())
        .sanitize(bytes, &Options::default())
        .map(|s| s.bytes)
        .map_err(|e| e.code().to_string())
}

fn expected() -> &'static [Result<Vec<u8>, String>] {
    static E: OnceLock<Vec<Result<Vec<u8>, String>>> = OnceLock::new();
    E.get_or_init(|| inputs().iter().map(|(_, b)| fresh(b)).collect())
}

#[test]
fn the_hostile_set_is_really_hostile() {
    let refused = expected().iter().filter(|r| r.is_err()).count();
    assert!(refused >= 6, "only {refused} refusals among the inputs");
    assert!(expected().iter().filter(|r| r.is_ok()).count() >= 15);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_order_through_one_pipeline_gives_what_a_fresh_one_gives(
        order in prop::collection::vec(0..inputs().len(), 1..16)
    ) {
        let mut p = Pipeline::new(Limits::default());
        for i in order {
            let got = p
                .sanitize(&inputs()[i].1, &Options::default())
                .map(|s| s.bytes)
                .map_err(|e| e.code().to_string());
            prop_assert!(got == expected()[i], "{} differs after the others", inputs()[i].0);
        }
    }
}
