//! Valid and hostile pictures for the tests that run many pictures through one worker: the
//! repository's fixtures and damaged variants of them, built in memory.

use std::path::Path;

use crate::repo_root;

/// Offsets of the segments with this marker before the first SOS (the SOS itself included).
pub fn jpeg_segments(j: &[u8], marker: u8) -> Vec<usize> {
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

/// The JPEG with every segment of this marker removed (e.g. `0xDB`: no quantization tables).
pub fn jpeg_without(j: &[u8], marker: u8) -> Vec<u8> {
    let mut out = j.to_vec();
    for at in jpeg_segments(j, marker).into_iter().rev() {
        let len = ((j[at + 2] as usize) << 8) | j[at + 3] as usize;
        out.drain(at..at + 2 + len);
    }
    out
}

/// The JPEG with its first component's sampling factors set to 0: libjpeg refuses it after
/// the header checks accepted it.
pub fn jpeg_bogus_sampling(j: &[u8]) -> Vec<u8> {
    let mut out = j.to_vec();
    let sof = jpeg_segments(j, 0xC0)
        .into_iter()
        .chain(jpeg_segments(j, 0xC2))
        .next()
        .expect("a baseline or progressive frame header");
    // FF Cn, length (2), precision, height (2), width (2), count, id, then sampling.
    out[sof + 11] = 0x00;
    out
}

/// Every fixture picture (photos, orientation, metadata) by file name, then hostile variants:
/// files cut in half, a JPEG without quantization or Huffman tables, bogus sampling factors,
/// damaged entropy data, and bytes that are no picture at all.
pub fn mixed_inputs() -> Vec<(String, Vec<u8>)> {
    let root = repo_root().join("fixtures");
    let mut all = Vec::new();
    for dir in ["photos", "orientation", "metadata"] {
        let mut paths: Vec<_> = std::fs::read_dir(root.join(dir))
            .expect("fixtures")
            .flatten()
            .map(|e| e.path())
            .collect();
        paths.sort();
        for p in paths {
            let name = format!("{dir}-{}", file_name(&p));
            all.push((name, std::fs::read(&p).expect("fixture")));
        }
    }
    let read = |p: &str| std::fs::read(root.join(p)).expect("fixture");
    let (jpeg, png, tiff) = (
        read("photos/garden.jpg"),
        read("photos/alpha.png"),
        read("photos/scan.tif"),
    );
    let mut scribbled = jpeg.clone();
    let sos = jpeg_segments(&jpeg, 0xDA)[0];
    for i in (sos + 40..jpeg.len() - 2).step_by(97) {
        scribbled[i] = 0x5A;
    }
    let hostile = [
        ("cut.jpg", jpeg[..jpeg.len() / 2].to_vec()),
        ("cut.png", png[..png.len() / 2].to_vec()),
        ("cut.tif", tiff[..tiff.len() / 2].to_vec()),
        ("no-dqt.jpg", jpeg_without(&jpeg, 0xDB)),
        ("no-dht.jpg", jpeg_without(&jpeg, 0xC4)),
        ("bogus-sampling.jpg", jpeg_bogus_sampling(&jpeg)),
        ("scribbled.jpg", scribbled),
        (
            "garbage.jpg",
            (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect(),
        ),
    ];
    all.extend(
        hostile
            .into_iter()
            .map(|(n, b)| (format!("hostile-{n}"), b)),
    );
    all
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
