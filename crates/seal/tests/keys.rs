//! Local key provider: key file, rotation, rewrap, min_decryption_version, crypto-shredding.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{OBJ, data, rotation_scenario, shredding_scenario};
use pixseal_seal::{KeyPlacement, KeyProvider, LocalKeyProvider, SealError, Sealer};

#[test]
fn key_file_created_0600_with_versioned_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pixseal-keys.json");
    assert!(!path.exists());
    let p = LocalKeyProvider::open(&path, &["us", "eu"]).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["regions"]["us"]["key_name"], "pixseal-us");
    assert!(v["regions"]["eu"]["versions"]["1"].is_string());
    // Rotation rewrites it atomically, still 0600.
    assert_eq!(p.rotate("us").unwrap(), 2);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(v["regions"]["us"]["versions"]["2"].is_string());
    // No temporary files left behind: the key file and its lock file only.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(names, [file.clone(), format!("{file}.lock")]);
}

#[test]
fn blobs_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.json");
    let pt = data(200_000, 4);
    let blob = {
        let p = LocalKeyProvider::open(&path, &["us"]).unwrap();
        Sealer::new(&p, KeyPlacement::Embedded)
            .seal_bytes(&pt, &OBJ)
            .unwrap()
            .0
    };
    let p = LocalKeyProvider::open(&path, &["us"]).unwrap();
    assert!(
        Sealer::new(&p, KeyPlacement::Embedded)
            .open_bytes(&blob, &OBJ, None)
            .unwrap()
            == pt
    );
    // A different key file (another installation) cannot open it.
    let other = LocalKeyProvider::open(dir.path().join("other.json"), &["us"]).unwrap();
    common::assert_tampered(
        Sealer::new(&other, KeyPlacement::Embedded).open_bytes(&blob, &OBJ, None),
        "other key file",
    );
}

#[test]
fn rotation_rewrap_and_min_decryption_version_local() {
    let (_d, p) = common::local();
    rotation_scenario(&p, &p, "us");
    // The other region is untouched.
    let kv = p.key_versions("eu").unwrap();
    assert_eq!((kv.latest, kv.min_decryption_version), (1, 1));
}

#[test]
fn crypto_shredding_local() {
    let (_d, p) = common::local();
    shredding_scenario(&p, "us");
}

#[test]
fn unknown_region_is_refused_not_redirected() {
    let (_d, p) = common::local();
    let s = Sealer::new(&p, KeyPlacement::Embedded);
    let (blob, _) = s.seal_bytes(b"x", &OBJ).unwrap();
    let ca = common::obj(OBJ.object_id, OBJ.tenant, "ca");
    match s.open_bytes(&blob, &ca, None) {
        Err(SealError::KeyNotFound(m)) => assert!(m.contains("ca"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(p.rotate("ca").unwrap_err().code(), "key_not_found");
}

#[test]
fn provider_is_object_safe_and_shareable() {
    let (_d, p) = common::local();
    let boxed: Box<dyn KeyProvider + Send + Sync> = Box::new(p);
    let arc: std::sync::Arc<dyn KeyProvider + Send + Sync> = std::sync::Arc::from(boxed);
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let arc = arc.clone();
            std::thread::spawn(move || {
                let s = Sealer::new(&*arc, KeyPlacement::Detached);
                let pt = data(10_000, i);
                let (blob, r) = s.seal_bytes(&pt, &OBJ).unwrap();
                s.open_bytes(&blob, &OBJ, Some(&r.wrapped_key)).unwrap() == pt
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().unwrap());
    }
}
