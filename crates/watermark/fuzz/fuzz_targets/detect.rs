#![no_main]
//! Watermark detection on pictures of any shape: width, height, channel count and pixel bytes
//! all come from the input, sides from 0 to 2^24 with the pixel count capped so one run stays
//! well under the RSS limit. Optionally a proof id is embedded first, so the decoding paths past
//! the sync search are reached too. `detect` must never panic, and a picture marked with one id
//! must never be read as carrying another.
//!
//! Input: `flags, w[3], h[3], (id[8] when flags & 1), pattern...`; the pattern is repeated to
//! fill the picture (a short one gives the periodic structure the lattice search reacts to).

use libfuzzer_sys::fuzz_target;
use pixseal_media::Pixels;
use pixseal_proof::ProofId;
use pixseal_watermark::{Strength, detect, embed};

/// Most pixels detected on: 4 MP, so a 5-channel picture is 20 MB and ASan's shadow stays small,
/// and the slowest (unmarked, every hypothesis tried) run keeps within the timeout.
const MAX_PIXELS: u64 = 1 << 22;
/// Embedding costs more per pixel than detection; keep it to the sizes the fuzzer can afford.
const MAX_EMBED_PIXELS: u64 = 1 << 20;

fn take<const N: usize>(data: &mut &[u8]) -> Option<[u8; N]> {
    let (head, rest) = data.split_first_chunk::<N>()?;
    *data = rest;
    Some(*head)
}

fn le24(b: [u8; 3]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], 0])
}

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let Some([flags]) = take::<1>(&mut data) else {
        return;
    };
    let (Some(w), Some(h)) = (take::<3>(&mut data), take::<3>(&mut data)) else {
        return;
    };
    let (mut w, mut h) = (le24(w), le24(h));
    let channels = (flags >> 1) % 6;
    let id = if flags & 1 == 1 {
        take::<8>(&mut data).map(|b| ProofId(u64::from_le_bytes(b)))
    } else {
        None
    };
    // Over the cap, the long side gives way: the extreme aspect ratios are the interesting shapes.
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        if w >= h {
            w = (MAX_PIXELS / u64::from(h)) as u32;
        } else {
            h = (MAX_PIXELS / u64::from(w)) as u32;
        }
    }
    let len = w as usize * h as usize * channels as usize;
    let pattern = if data.is_empty() { &[0u8][..] } else { data };
    let bytes: Vec<u8> = pattern.iter().copied().cycle().take(len).collect();
    let mut px = Pixels::new(w, h, channels, bytes);

    let marked = match id {
        Some(id)
            if matches!(channels, 3 | 4) && u64::from(w) * u64::from(h) <= MAX_EMBED_PIXELS =>
        {
            embed(&mut px, id, Strength::default()).ok().map(|_| id)
        }
        _ => None,
    };
    let found = detect(&px);
    assert!(found.sync_score.is_finite());
    if let (Some(id), Some(got)) = (marked, found.proof_id) {
        assert_eq!(got, id, "a picture marked with one id read as another");
    }
});
