#![no_main]
//! C2PA verification of arbitrary bytes: `Verifier::verify` must return a verdict, never panic
//! (the libFuzzer panic hook aborts even on the panics `verify` catches, so a panic inside the
//! C2PA reader is a finding too), never hang and never allocate without bound.
//!
//! Trust anchors: the PEM file named by `PIXSEAL_FUZZ_ANCHORS` (scripts/fuzz-all.sh passes the
//! root of the development chain that stamped the seeds, so the `verified` path is reached);
//! none otherwise.

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pixseal_provenance::{Verdict, Verifier};

struct Setup {
    verifier: Verifier,
    anchored: bool,
}

fn setup() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        let pem = std::env::var_os("PIXSEAL_FUZZ_ANCHORS")
            .map(|p| std::fs::read_to_string(p).expect("PIXSEAL_FUZZ_ANCHORS names a PEM file"))
            .unwrap_or_default();
        Setup {
            anchored: !pem.is_empty(),
            verifier: Verifier::new(&pem),
        }
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fuzz_target!(|data: &[u8]| {
    let s = setup();
    let report = s.verifier.verify(data);
    if !s.anchored {
        assert_ne!(report.verdict, Verdict::Verified, "verified with no anchor");
    }
    // Every embedded manifest store is a JUMBF superbox labelled c2pa; without both there is
    // nothing to have verified or found tampered.
    if !(contains(data, b"jumb") && contains(data, b"c2pa")) {
        assert_eq!(report.verdict, Verdict::NotStamped, "{report:?}");
    }
    // The report is what the service and the CLI serialize.
    serde_json::to_string(&report).expect("a report serializes");
});
