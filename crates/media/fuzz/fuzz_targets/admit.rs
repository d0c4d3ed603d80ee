#![no_main]
//! The upload gate on arbitrary bytes: `admit` (size limit, sniff, container header against the
//! limits) and the probes it dispatches to, each also run on bytes whose signature names another
//! format, since they are public. Nothing here decodes a pixel, so every input must be answered
//! quickly, without a panic and without allocating more than the input's size.
//!
//! Invariants: what `admit` accepts, `sniff` names the same way; and whatever passes strict
//! limits passes the defaults (a stricter limit can only refuse more).

use libfuzzer_sys::fuzz_target;
use pixseal_media::{AnimatedPolicy, Limits, admit, jpeg, probe, sniff};

/// Every field at most its default, so that acceptance here implies acceptance there; small
/// enough that the fuzzer reaches each limit's refusal.
const STRICT: Limits = Limits {
    max_file_bytes: 64 * 1024,
    max_pixels: 4096,
    max_side: 64,
    max_jpeg_scans: 2,
    max_frames: 4,
    max_heif_items: 8,
    max_heif_tiles: 4,
    animated: AnimatedPolicy::Reject,
};

fuzz_target!(|data: &[u8]| {
    let defaults = Limits::default();
    let admitted = admit(data, &defaults);
    if let Ok(format) = admitted {
        assert_eq!(sniff(data).ok(), Some(format));
    }
    if let Ok(format) = admit(data, &STRICT) {
        assert_eq!(
            admitted.as_ref().ok(),
            Some(&format),
            "passed strict limits only"
        );
    }
    for limits in [&defaults, &STRICT] {
        let _ = jpeg::walk(data, limits);
        let _ = probe::png(data, limits);
        let _ = probe::gif(data, limits);
        let _ = probe::webp(data, limits);
    }
    let _ = probe::tiff(data);
});
