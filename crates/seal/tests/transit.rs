//! The transit provider against a real OpenBao dev server (started by scripts/openbao.sh).
//! Set PIXSEAL_SKIP_TRANSIT=1 to skip (otherwise a server that cannot start fails the tests).

mod common;

use std::time::{Duration, Instant};

use common::{Bao, OBJ, assert_tampered, bao, data, obj, rotation_scenario, shredding_scenario};
use pixseal_seal::header::Header;
use pixseal_seal::{
    KeyPlacement, KeyProvider, ProviderId, SealError, Sealer, TransitConfig, TransitKeyProvider,
    open_field, open_json, seal_field, seal_json,
};

fn server() -> Option<Bao> {
    let b = bao();
    if b.is_none() {
        eprintln!("skipped: PIXSEAL_SKIP_TRANSIT=1");
    }
    b
}

#[test]
fn datakey_unwrap_round_trip() {
    let Some(b) = server() else { return };
    let p = b.app();
    let (dek, w) = p.generate_data_key("us").unwrap();
    assert_eq!(w.provider, ProviderId::Transit);
    assert_eq!(w.key_name, "pixseal-us");
    assert!(
        w.ciphertext
            .starts_with(format!("vault:v{}:", w.version).as_bytes())
    );
    assert_eq!(*p.unwrap_data_key(&w, "us").unwrap(), *dek);
    // A wrapped key of one region is not accepted for another (no cross-region use).
    assert_tampered(p.unwrap_data_key(&w, "eu"), "us key presented for eu");
    let (dek2, _) = p.generate_data_key("us").unwrap();
    assert_ne!(*dek, *dek2);
}

#[test]
fn seal_round_trip_both_placements() {
    let Some(b) = server() else { return };
    let p = b.app();
    for placement in [KeyPlacement::Embedded, KeyPlacement::Detached] {
        let s = Sealer::new(&p, placement);
        for n in [0usize, 1, 65535, 65536, 65537, 300_000] {
            let pt = data(n, n as u64 + 1);
            let (blob, r) = s.seal_bytes(&pt, &OBJ).unwrap();
            let d = (placement == KeyPlacement::Detached).then_some(&r.wrapped_key);
            assert!(
                s.open_bytes(&blob, &OBJ, d).unwrap() == pt,
                "{placement:?} {n}"
            );
        }
    }
}

#[test]
fn every_header_byte_flip_is_tampered_with_transit() {
    let Some(b) = server() else { return };
    let p = b.app();
    let s = Sealer::new(&p, KeyPlacement::Embedded);
    let pt = data(2000, 77);
    let (blob, _) = s.seal_bytes(&pt, &OBJ).unwrap();
    let hlen = Header::parse(&blob).unwrap().1;
    for i in 0..hlen {
        for mask in [0x01u8, 0x20, 0xFF] {
            let mut t = blob.clone();
            t[i] ^= mask;
            assert_tampered(
                s.open_bytes(&t, &OBJ, None),
                &format!("header byte {i} ^ {mask:#x}"),
            );
        }
    }
}

#[test]
fn moved_blob_is_tampered_with_transit() {
    let Some(b) = server() else { return };
    let p = b.app();
    let s = Sealer::new(&p, KeyPlacement::Embedded);
    let (blob, _) = s.seal_bytes(&data(1000, 1), &OBJ).unwrap();
    for moved in [
        obj("other-object", OBJ.tenant, OBJ.region),
        obj(OBJ.object_id, "tenant-b", OBJ.region),
        obj(OBJ.object_id, OBJ.tenant, "eu"),
    ] {
        assert_tampered(s.open_bytes(&blob, &moved, None), &format!("{moved:?}"));
    }
}

#[test]
fn rotation_rewrap_and_min_decryption_version_transit() {
    let Some(b) = server() else { return };
    let app = b.app();
    // The app token may not change min_decryption_version: that is an admin operation.
    let v = app.key_versions("rot").unwrap();
    match app.set_min_decryption_version("rot", v.latest) {
        Err(SealError::PermissionDenied(_)) => {}
        other => panic!("app token set min_decryption_version: {other:?}"),
    }
    rotation_scenario(&app, &b.admin(), "rot");
}

#[test]
fn crypto_shredding_transit() {
    let Some(b) = server() else { return };
    shredding_scenario(&b.app(), "shred");
}

#[test]
fn fields_and_json_with_transit() {
    let Some(b) = server() else { return };
    let p = b.app();
    let s = seal_field(&p, "eu", "uploads.client_ip.7", b"192.0.2.1").unwrap();
    assert_eq!(
        &open_field(&p, "eu", "uploads.client_ip.7", &s).unwrap()[..],
        b"192.0.2.1"
    );
    assert_tampered(open_field(&p, "eu", "uploads.client_ip.8", &s), "other row");
    assert_tampered(
        open_field(&p, "us", "uploads.client_ip.7", &s),
        "other region",
    );
    let j = seal_json(&p, "eu", "meta.1", &vec!["x", "y"]).unwrap();
    assert_eq!(
        open_json::<Vec<String>>(&p, "eu", "meta.1", &j).unwrap(),
        ["x", "y"]
    );
}

/// HTTP status of one call with `token` (for checking the policy itself).
fn status(b: &Bao, token: &str, method: &str, path: &str, body: &str) -> u16 {
    let c = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let url = format!("{}/v1/{path}", b.addr());
    let req = match method {
        "GET" => c.get(&url),
        "DELETE" => c.delete(&url),
        "LIST" => c.request(reqwest::Method::from_bytes(b"LIST").unwrap(), &url),
        _ => c.post(&url).body(body.to_owned()),
    };
    req.header("X-Vault-Token", token)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn app_token_cannot_export_delete_or_reconfigure_keys() {
    let Some(b) = server() else { return };
    let t = b.token();
    // Positive control: what the policy allows works.
    assert_eq!(
        status(&b, t, "POST", "transit/datakey/plaintext/pixseal-us", "{}"),
        200
    );
    assert_eq!(status(&b, t, "GET", "transit/keys/pixseal-us", ""), 200);
    let denied = [
        ("DELETE", "transit/keys/pixseal-us", ""),
        ("GET", "transit/export/encryption-key/pixseal-us", ""),
        ("GET", "transit/export/encryption-key/pixseal-us/1", ""),
        (
            "POST",
            "transit/keys/pixseal-us/config",
            r#"{"deletion_allowed":true}"#,
        ),
        (
            "POST",
            "transit/keys/pixseal-us/config",
            r#"{"exportable":true}"#,
        ),
        (
            "POST",
            "transit/keys/pixseal-us/config",
            r#"{"min_decryption_version":1}"#,
        ),
        (
            "POST",
            "transit/keys/pixseal-us/trim",
            r#"{"min_available_version":1}"#,
        ),
        ("GET", "transit/backup/pixseal-us", ""),
        ("POST", "transit/keys/pixseal-new", "{}"),
        ("LIST", "transit/keys", ""),
        (
            "POST",
            "transit/encrypt/pixseal-us",
            r#"{"plaintext":"AA=="}"#,
        ),
        ("POST", "transit/datakey/wrapped/pixseal-us", "{}"),
        ("POST", "transit/datakey/plaintext/pixseal-other", "{}"),
        ("GET", "sys/policies/acl/pixseal-app", ""),
        ("GET", "auth/token/lookup-self", ""),
        ("POST", "sys/mounts/transit2", r#"{"type":"transit"}"#),
    ];
    for (m, path, body) in denied {
        assert_eq!(
            status(&b, t, m, path, body),
            403,
            "{m} {path} must be denied"
        );
    }
    // Through the provider API too: a typed permission error.
    let p = b.app();
    assert_eq!(
        p.set_min_decryption_version("us", 1).unwrap_err().code(),
        "permission_denied"
    );
    // The key still exists and still works.
    let (dek, w) = p.generate_data_key("us").unwrap();
    assert_eq!(*p.unwrap_data_key(&w, "us").unwrap(), *dek);
}

#[test]
fn service_down_is_key_unavailable_and_never_falls_back() {
    let Some(b) = server() else { return };
    // A loopback port with nothing listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let down = TransitKeyProvider::new(TransitConfig::new(
        &format!("http://127.0.0.1:{port}"),
        b.token(),
        &["us"],
    ))
    .unwrap();
    let t0 = Instant::now();
    let e = Sealer::new(&down, KeyPlacement::Embedded)
        .seal_bytes(b"x", &OBJ)
        .unwrap_err();
    assert_eq!(e.code(), "key_unavailable", "{e}");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());

    // A blob sealed while the service was up cannot be opened while it is down: the error is
    // key_unavailable, never a result obtained with some other key.
    let up = b.app();
    let (blob, _) = Sealer::new(&up, KeyPlacement::Embedded)
        .seal_bytes(b"secret", &OBJ)
        .unwrap();
    let e = Sealer::new(&down, KeyPlacement::Embedded)
        .open_bytes(&blob, &OBJ, None)
        .unwrap_err();
    assert_eq!(e.code(), "key_unavailable", "{e}");

    // A configured key that does not exist on the server: an error, not another key.
    let mut cfg = TransitConfig::new(b.addr(), b.root_token(), &["us"]);
    cfg.keys.insert("us".into(), "pixseal-missing".into());
    let missing = TransitKeyProvider::new(cfg).unwrap();
    let e = missing.generate_data_key("us").unwrap_err();
    assert!(matches!(e, SealError::KeyNotFound(_)), "missing key: {e:?}");
    // Wrong token: permission_denied.
    let bad =
        TransitKeyProvider::new(TransitConfig::new(b.addr(), "s.not-a-token", &["us"])).unwrap();
    assert_eq!(
        bad.generate_data_key("us").unwrap_err().code(),
        "permission_denied"
    );
}

/// A detached blob opens with the master key its stored wrapped key names: after its data key
/// moved to another key (`wrap_data_key`, as `keys rewrap --tenant` does), that key opens the
/// unchanged blob and the old one no longer does; an embedded blob still follows its header.
#[test]
fn a_detached_blob_follows_its_data_key_to_another_master_key() {
    let Some(b) = server() else { return };
    let name = format!("pixseal-tenant-move-{}", std::process::id());
    let (st, v) = common::bao_request(
        b.addr(),
        b.root_token(),
        "POST",
        &format!("transit/keys/{name}"),
        r#"{"type":"aes256-gcm96"}"#,
    );
    assert!((200..300).contains(&st), "{st} {v}");
    let region = b.app();
    let mut c = TransitConfig::new(b.addr(), b.token(), &["us"]);
    c.keys = [("us".to_owned(), name.clone())].into();
    let tenant = TransitKeyProvider::new(c).unwrap();
    let pt = data(70_000, 11);

    let (blob, sealed) = Sealer::new(&region, KeyPlacement::Detached)
        .seal_bytes(&pt, &OBJ)
        .unwrap();
    let dek = region.unwrap_data_key(&sealed.wrapped_key, "us").unwrap();
    let moved = tenant.wrap_data_key(&dek, "us").unwrap();
    assert_eq!(moved.key_name, name);
    assert_eq!(
        Sealer::new(&tenant, KeyPlacement::Detached)
            .open_bytes(&blob, &OBJ, Some(&moved))
            .unwrap(),
        pt
    );
    // The region's key with the moved key, or the tenant's with the old one: refused.
    assert_tampered(
        Sealer::new(&region, KeyPlacement::Detached).open_bytes(&blob, &OBJ, Some(&moved)),
        "region sealer, moved key",
    );
    assert_tampered(
        Sealer::new(&tenant, KeyPlacement::Detached).open_bytes(
            &blob,
            &OBJ,
            Some(&sealed.wrapped_key),
        ),
        "tenant sealer, old key",
    );
    // A moved key under another object's binding still fails the segment tags.
    assert_tampered(
        Sealer::new(&tenant, KeyPlacement::Detached).open_bytes(
            &blob,
            &obj("another", "tenant-a", "us"),
            Some(&moved),
        ),
        "moved key, other object",
    );
    // Embedded: the header names the key, and only that key opens it.
    let (emb, _) = Sealer::new(&region, KeyPlacement::Embedded)
        .seal_bytes(&pt, &OBJ)
        .unwrap();
    assert_tampered(
        Sealer::new(&tenant, KeyPlacement::Embedded).open_bytes(&emb, &OBJ, None),
        "embedded blob, another key",
    );
}
