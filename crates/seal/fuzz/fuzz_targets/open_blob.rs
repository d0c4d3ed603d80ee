#![no_main]
//! The whole open path (header, key unwrap, segments) on arbitrary bytes with a local provider:
//! never panics, and nothing that was not sealed by us opens.

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pixseal_seal::{KeyPlacement, LocalKeyProvider, ObjectRef, Sealer};

struct Fixture {
    _dir: std::path::PathBuf,
    p: LocalKeyProvider,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("pixseal-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = LocalKeyProvider::open(dir.join("keys.json"), &["us"]).unwrap();
        Fixture { _dir: dir, p }
    })
}

const OBJ: ObjectRef<'static> = ObjectRef {
    object_id: "fuzz",
    tenant: "t",
    region: "us",
};

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let s = Sealer::new(&f.p, KeyPlacement::Embedded)
        .with_segment_size(256)
        .unwrap();
    let mut out = Vec::new();
    let r = s.open(data, &mut out, &OBJ, None);
    // Random bytes cannot carry a valid wrapped key for a fresh random master key.
    assert!(r.is_err());
    let _ = pixseal_seal::open_field(&f.p, "us", "ctx", &String::from_utf8_lossy(data));
});
