//! Random orders of hostile and valid pictures through one pipeline (one worker): every picture
//! comes out exactly as a fresh pipeline makes it, refusal or output, whatever came before.

use std::sync::OnceLock;

use pixseal_media::{Limits, Options, Pipeline};
use proptest::prelude::*;

fn inputs() -> &'static [(String, Vec<u8>)] {
    static ALL: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    ALL.get_or_init(pixseal_testkit::hostile::mixed_inputs)
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
