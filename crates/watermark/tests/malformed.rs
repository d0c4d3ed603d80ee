//! Pictures that break the `Pixels` contract (RGB or RGBA, exactly `width × height × channels`
//! bytes) are not found, and nothing panics. The first case is what the `detect` fuzz target
//! (crates/watermark/fuzz) found.

use pixseal_media::Pixels;
use pixseal_watermark::detect;

/// The `detect` fuzz target's minimized crash (`01 00 ff 00 ff 00 00`: embed flag without an id,
/// 0 channels, width `00 ff 00` and height `ff 00 00` as 24-bit little-endian, brought under its
/// 4 MP cap) is this picture: a 16448 × 255 strip with no channels and so no bytes.
#[test]
fn the_fuzzers_zero_channel_strip_is_not_found() {
    let px = Pixels::new(16_448, 255, 0, Vec::new());
    let d = detect(&px);
    assert!(!d.found());
    assert_eq!(d.sync_score, 0.0);
}

#[test]
fn channel_counts_other_than_rgb_and_rgba_are_not_found() {
    for channels in [0u8, 1, 2, 5] {
        let (w, h) = (96u32, 80u32);
        let data = vec![128; (w * h) as usize * channels as usize];
        let d = detect(&Pixels::new(w, h, channels, data));
        assert!(!d.found(), "{channels} channels");
    }
}

#[test]
fn a_buffer_shorter_or_longer_than_the_size_is_not_found() {
    for len in [0, 96 * 80 * 3 - 1, 96 * 80 * 3 + 1] {
        // Built by hand: `Pixels::new` rightly refuses the mismatch in debug builds.
        let px = Pixels {
            width: 96,
            height: 80,
            channels: 3,
            data: vec![128; len],
        };
        assert!(!detect(&px).found(), "{len} bytes");
    }
    // A size whose byte count does not fit in memory, let alone in the buffer.
    let huge = Pixels {
        width: u32::MAX,
        height: u32::MAX,
        channels: 4,
        data: vec![0; 64],
    };
    assert!(!detect(&huge).found());
}
