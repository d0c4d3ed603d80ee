//! A tenant's own key brought into Transit (BYOK), against a real OpenBao dev server: wrapped on
//! the tenant's side under Transit's wrapping key, imported with an operator token whose policy
//! allows only that, then used by pixseal's app token. The data keys Transit hands out are shown
//! to be under the tenant's key material by opening them here with AES-256-GCM and that key,
//! not through our code. PIXSEAL_SKIP_TRANSIT=1 skips.

mod common;

use aes_gcm::aead::{Aead, KeyInit};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::{bao, bao_request, data};
use pixseal_seal::{
    KeyProvider, SealError, TransitConfig, TransitImporter, TransitKeyProvider, wrap_for_import,
};

fn cfg(addr: &str, token: &str) -> TransitConfig {
    TransitConfig::new(addr, token, &["us"])
}

/// A token with exactly `policy` (HCL), made with the root token.
fn token_with(addr: &str, root: &str, name: &str, policy: &str) -> String {
    let body = serde_json::json!({ "policy": policy }).to_string();
    let (st, v) = bao_request(
        addr,
        root,
        "POST",
        &format!("sys/policies/acl/{name}"),
        &body,
    );
    assert!((200..300).contains(&st), "{st} {v}");
    let body = serde_json::json!({"policies": [name], "no_default_policy": true, "ttl": "10m"});
    let (st, v) = bao_request(addr, root, "POST", "auth/token/create", &body.to_string());
    assert_eq!(st, 200, "{v}");
    v["auth"]["client_token"].as_str().unwrap().to_owned()
}

/// The data key inside a Transit ciphertext (`vault:v1:` ‖ base64(nonce ‖ ct ‖ tag)), opened
/// with the raw AES-256 key.
fn open_with(key: &[u8], ciphertext: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(ciphertext).unwrap();
    let raw = B64.decode(text.strip_prefix("vault:v1:").unwrap()).unwrap();
    let (nonce, ct) = raw.split_at(12);
    aes_gcm::Aes256Gcm::new_from_slice(key)
        .unwrap()
        .decrypt(nonce.into(), ct)
        .expect("the data key opens with the tenant's key material")
}

#[test]
fn a_brought_key_wraps_data_keys_and_never_leaves_transit() {
    let Some(b) = bao() else { return };
    let name = format!("pixseal-tenant-byok-{}", std::process::id());
    // The operator's import policy (docs/keys.md): the wrapping key and imports, nothing else.
    let operator = token_with(
        b.addr(),
        b.root_token(),
        "pixseal-import-test",
        "path \"transit/wrapping_key\" { capabilities = [\"read\"] }\n\
         path \"transit/keys/+/import\" { capabilities = [\"update\"] }\n",
    );
    let key = data(32, u64::from(std::process::id()));

    // The tenant's side: Transit's wrapping key (pixseal's app token may read it).
    let pem = TransitImporter::new(&cfg(b.addr(), b.token()))
        .unwrap()
        .wrapping_key()
        .unwrap();
    assert!(pem.contains("BEGIN PUBLIC KEY"), "{pem}");
    let wrapped = wrap_for_import(&pem, &key).unwrap();

    // pixseal's app token cannot import.
    let app_importer = TransitImporter::new(&cfg(b.addr(), b.token())).unwrap();
    assert!(matches!(
        app_importer.import(&name, &wrapped),
        Err(SealError::PermissionDenied(_))
    ));
    let op = TransitImporter::new(&cfg(b.addr(), &operator)).unwrap();
    // A wrapped key that was tampered with is refused by Transit.
    let mut bad = B64.decode(&wrapped).unwrap();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(op.import(&name, &B64.encode(&bad)).is_err());
    op.import(&name, &wrapped).unwrap();
    // Importing over an existing key is refused.
    assert!(op.import(&name, &wrapped).is_err());

    // pixseal's app token uses it; every data key is under the tenant's key material.
    let mut c = cfg(b.addr(), b.token());
    c.keys = [("us".to_owned(), name.clone())].into();
    let p = TransitKeyProvider::new(c).unwrap();
    let (dek, w) = p.generate_data_key("us").unwrap();
    assert_eq!(open_with(&key, &w.ciphertext), dek.to_vec());
    assert_eq!(p.unwrap_data_key(&w, "us").unwrap(), dek);
    // A data key moved onto it (`keys rewrap --tenant`) too.
    let moved = p.wrap_data_key(&[9u8; 32].into(), "us").unwrap();
    assert_eq!(moved.key_name, name);
    assert_eq!(open_with(&key, &moved.ciphertext), vec![9u8; 32]);
    assert_eq!(*p.unwrap_data_key(&moved, "us").unwrap(), [9u8; 32]);

    // The key never leaves: not exportable, no backup, even for root; the operator's token
    // cannot use, read, reconfigure or delete it; the app token cannot make a missing key by
    // encrypting.
    for (token, method, path) in [
        (
            operator.as_str(),
            "POST",
            format!("transit/keys/{name}/config"),
        ),
        (
            operator.as_str(),
            "POST",
            format!("transit/keys/{name}/rotate"),
        ),
        (
            b.root_token(),
            "GET",
            format!("transit/export/encryption-key/{name}"),
        ),
        (b.root_token(), "GET", format!("transit/backup/{name}")),
        (operator.as_str(), "GET", format!("transit/keys/{name}")),
        (operator.as_str(), "DELETE", format!("transit/keys/{name}")),
        (
            operator.as_str(),
            "POST",
            format!("transit/datakey/plaintext/{name}"),
        ),
        (
            b.token(),
            "POST",
            format!(
                "transit/encrypt/pixseal-tenant-missing-{}",
                std::process::id()
            ),
        ),
    ] {
        let body = r#"{"plaintext":"aGVsbG8="}"#;
        let (st, v) = bao_request(b.addr(), token, method, &path, body);
        // Refused (OpenBao answers a refused backup with 500 "exporting is disallowed"), and
        // nothing comes back.
        assert!(st >= 400, "{method} {path}: {st} {v}");
        assert!(v["data"].is_null(), "{method} {path}: {v}");
    }
    let (st, _) = bao_request(
        b.addr(),
        b.root_token(),
        "GET",
        &format!("transit/keys/pixseal-tenant-missing-{}", std::process::id()),
        "",
    );
    assert_eq!(st, 404, "encrypt made no key");
}
