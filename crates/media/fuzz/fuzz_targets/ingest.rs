//! Fuzz target: arbitrary bytes through sniff → limits → decode → orient → colour → encode.
//! Any panic, abort, timeout or memory blow-up is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pixseal_media::{Limits, Options, OutputFormat, Pipeline};

fuzz_target!(|data: &[u8]| {
    // Smaller caps than production keep each run fast; the code paths are the same.
    let limits = Limits { max_pixels: 4_000_000, max_side: 4096, ..Limits::default() };
    let mut p = Pipeline::new(limits);
    let opts = Options { format: Some(OutputFormat::Png), quality: 80, max_edge: Some(256) };
    if let Ok(out) = p.sanitize(data, &opts) {
        assert!(out.width >= 1 && out.height >= 1 && out.width <= 256 && out.height <= 256);
        assert!(out.bytes.starts_with(b"\x89PNG"));
    }
});
