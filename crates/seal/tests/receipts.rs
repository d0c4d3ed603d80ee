//! Deletion receipts signed by an Ed25519 key held in Transit, against a real OpenBao dev server
//! (scripts/openbao.sh creates `pixseal-receipts` and the app policy). Verification here uses
//! ed25519-dalek directly, with the public key taken from OpenBao itself, not from our code.
//! Set PIXSEAL_SKIP_TRANSIT=1 to skip (otherwise a server that cannot start fails the tests).

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::{Bao, bao, bao_request, receipt};
use ed25519_dalek::pkcs8::DecodePublicKey;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use pixseal_proof::{ReceiptPublicKey, ReceiptSigner, SignedReceipt};
use pixseal_seal::{
    KeysConfig, Pkcs11Config, ReceiptProviderKind, TransitConfig, TransitReceiptSigner,
};

const KEY: &str = "pixseal-receipts";

fn server() -> Option<Bao> {
    let b = bao();
    if b.is_none() {
        eprintln!("skipped: PIXSEAL_SKIP_TRANSIT=1");
    }
    b
}

fn cfg(b: &Bao, token: &str) -> TransitConfig {
    TransitConfig::new(b.addr(), token, &["us"])
}

/// GET `path` on OpenBao with `token`: (status, JSON body).
fn bao_get(b: &Bao, token: &str, path: &str) -> (u16, serde_json::Value) {
    request(b, token, "GET", path, "")
}

fn request(b: &Bao, token: &str, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    bao_request(b.addr(), token, method, path, body)
}

/// The public key of `key` version `v` as OpenBao publishes it (32 raw bytes, base64).
fn bao_public_key(b: &Bao, key: &str, v: u32) -> VerifyingKey {
    let (st, body) = bao_get(b, b.root_token(), &format!("transit/keys/{key}"));
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["data"]["type"], "ed25519");
    let raw = B64
        .decode(
            body["data"]["keys"][v.to_string()]["public_key"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    VerifyingKey::from_bytes(&raw.try_into().unwrap()).unwrap()
}

/// ed25519-dalek alone: the signature over the documented signed bytes.
fn dalek_verifies(vk: &VerifyingKey, s: &SignedReceipt) -> bool {
    let Ok(raw) = B64.decode(&s.signature) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(&raw) else {
        return false;
    };
    vk.verify(&s.receipt.signed_bytes(), &sig).is_ok()
}

#[test]
fn transit_signed_receipt_verifies_with_the_served_key_and_any_change_fails() {
    let Some(b) = server() else { return };
    // The app token (least privilege) is enough to open the signer and to sign.
    let signer = TransitReceiptSigner::open(&cfg(&b, b.token()), KEY).unwrap();
    assert_eq!(signer.provider(), "transit");
    let signed = signer.sign(receipt()).unwrap();
    assert_eq!(signed.alg, "Ed25519");
    assert_eq!(signed.receipt, receipt());

    // The key served at /v1/keys/receipts (the signer's PEM) is OpenBao's key.
    let served_pem = signer.public_key_pem();
    let served = VerifyingKey::from_public_key_pem(&served_pem).unwrap();
    assert_eq!(served, bao_public_key(&b, KEY, signer.key_version()));
    // The key id is derived from the public key exactly as for the local key file.
    assert_eq!(signed.key_id, signer.key_id());
    assert_eq!(
        ReceiptPublicKey::new(served).key_id(),
        signed.key_id,
        "same derivation as the local signer"
    );

    // Verifies with ed25519-dalek alone, and with the offline verifier; after a JSON round
    // trip too (what `pixseal receipt verify` reads).
    assert!(dalek_verifies(&served, &signed));
    signed.verify_pem(&served_pem).unwrap();
    let json = serde_json::to_value(&signed).unwrap();
    let back: SignedReceipt = serde_json::from_value(json.clone()).unwrap();
    assert!(dalek_verifies(&served, &back));

    // Any changed field fails, in both verifiers.
    for field in [
        "receipt_id",
        "proof_id",
        "sha256",
        "region",
        "created_at",
        "deleted_at",
        "reason",
        "subject",
    ] {
        let mut j = json.clone();
        let v = j["receipt"][field].as_str().unwrap().to_string();
        j["receipt"][field] = serde_json::Value::String(format!("{v}x"));
        let t: SignedReceipt = serde_json::from_value(j).unwrap();
        assert!(
            !dalek_verifies(&served, &t),
            "{field} changed, still verifies"
        );
        assert_eq!(
            t.verify_pem(&served_pem),
            Err(pixseal_proof::ReceiptError::BadSignature),
            "{field}"
        );
    }
    // A flipped signature bit, and another key id, fail too.
    let mut t = signed.clone();
    let mut raw = B64.decode(&t.signature).unwrap();
    raw[10] ^= 1;
    t.signature = B64.encode(raw);
    assert!(!dalek_verifies(&served, &t));
    assert!(t.verify_pem(&served_pem).is_err());
    let mut t = signed.clone();
    t.key_id = "0000000000000000".into();
    assert!(t.verify_pem(&served_pem).is_err());

    // Two signatures of the same receipt are the same (Ed25519 is deterministic), so the key
    // really is the one whose public half is served (not some other key that happened to work).
    assert_eq!(signer.sign(receipt()).unwrap(), signed);
    signer.check().unwrap();
}

#[test]
fn app_token_signs_but_cannot_export_or_change_the_receipt_key() {
    let Some(b) = server() else { return };
    let t = b.token();
    let input = format!(r#"{{"input":"{}"}}"#, B64.encode(b"x"));
    // Positive control: what the policy allows works.
    assert_eq!(
        request(&b, t, "POST", &format!("transit/sign/{KEY}"), &input).0,
        200
    );
    assert_eq!(bao_get(&b, t, &format!("transit/keys/{KEY}")).0, 200);
    // The key is not exportable, and the app cannot make it so, nor export, back up, rotate,
    // delete or re-create it, nor sign with another key.
    let (_, info) = bao_get(&b, b.root_token(), &format!("transit/keys/{KEY}"));
    assert_eq!(info["data"]["exportable"], false, "{info}");
    assert_eq!(info["data"]["type"], "ed25519");
    for (m, path, body) in [
        ("GET", format!("transit/export/signing-key/{KEY}"), ""),
        ("GET", format!("transit/export/signing-key/{KEY}/1"), ""),
        ("GET", format!("transit/export/public-key/{KEY}"), ""),
        ("GET", format!("transit/backup/{KEY}"), ""),
        (
            "POST",
            format!("transit/keys/{KEY}/config"),
            r#"{"exportable":true}"#,
        ),
        (
            "POST",
            format!("transit/keys/{KEY}/config"),
            r#"{"deletion_allowed":true}"#,
        ),
        ("POST", format!("transit/keys/{KEY}/rotate"), "{}"),
        ("DELETE", format!("transit/keys/{KEY}"), ""),
        (
            "POST",
            format!("transit/keys/{KEY}"),
            r#"{"type":"ed25519"}"#,
        ),
        ("POST", format!("transit/verify/{KEY}"), "{}"),
        ("POST", "transit/sign/pixseal-other".to_string(), "{}"),
        ("POST", "transit/keys/pixseal-other".to_string(), "{}"),
    ] {
        assert_eq!(
            request(&b, t, m, &path, body).0,
            403,
            "{m} {path} must be denied"
        );
    }
}

#[test]
fn signer_creates_a_missing_key_only_with_rights_pins_its_version_and_refuses_other_types() {
    let Some(b) = server() else { return };
    let name = format!("pixseal-receipts-test-{}", std::process::id());
    // The app token may not even look at another key name, let alone create it.
    let e = TransitReceiptSigner::open(&cfg(&b, b.token()), &name).unwrap_err();
    assert_eq!(e.code(), "permission_denied", "{e}");
    assert_eq!(
        bao_get(&b, b.root_token(), &format!("transit/keys/{name}")).0,
        404
    );
    // An admin token creates it, as ed25519.
    let admin = TransitReceiptSigner::open(&cfg(&b, b.root_token()), &name).unwrap();
    assert_eq!(admin.key_version(), 1);
    assert_eq!(
        VerifyingKey::from_public_key_pem(&admin.public_key_pem()).unwrap(),
        bao_public_key(&b, &name, 1)
    );
    // Opening again reuses it (same key id).
    let again = TransitReceiptSigner::open(&cfg(&b, b.root_token()), &name).unwrap();
    assert_eq!(again.key_id(), admin.key_id());
    // A rotation in Transit does not change what this signer signs with: every receipt still
    // verifies with the key it serves. A signer opened afterwards serves the new version.
    let (st, body) = request(
        &b,
        b.root_token(),
        "POST",
        &format!("transit/keys/{name}/rotate"),
        "{}",
    );
    assert!(st == 200 || st == 204, "{st} {body}");
    let signed = admin.sign(receipt()).unwrap();
    signed.verify_pem(&admin.public_key_pem()).unwrap();
    admin.check().unwrap();
    let newer = TransitReceiptSigner::open(&cfg(&b, b.root_token()), &name).unwrap();
    assert_eq!(newer.key_version(), 2);
    assert_ne!(newer.key_id(), admin.key_id());
    assert!(signed.verify_pem(&newer.public_key_pem()).is_err());
    // A key of another type (a region's AES key) is refused.
    let e = TransitReceiptSigner::open(&cfg(&b, b.root_token()), "pixseal-us").unwrap_err();
    assert_eq!(e.code(), "config", "{e}");
    assert!(e.to_string().contains("ed25519"), "{e}");
}

#[test]
fn keys_config_chooses_the_receipt_signer() {
    let Some(b) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut k = KeysConfig::default();
    // Default: the local key file, created 0600 under the data dir.
    let local = k
        .open_receipt_signer(dir.path(), &["us"], &Pkcs11Config::default())
        .unwrap();
    assert_eq!(local.provider(), "local");
    assert!(dir.path().join("receipt-signing.pem").exists());
    // transit without address or token: a configuration error, not a silent fallback.
    k.receipt_provider = ReceiptProviderKind::Transit;
    assert_eq!(
        k.open_receipt_signer(dir.path(), &["us"], &Pkcs11Config::default())
            .err()
            .unwrap()
            .code(),
        "config"
    );
    k.transit_addr = b.addr().to_string();
    k.transit_token = b.token().into();
    let t = k
        .open_receipt_signer(dir.path(), &["us"], &Pkcs11Config::default())
        .unwrap();
    assert_eq!(t.provider(), "transit");
    assert_eq!(k.transit_receipt_key(), KEY);
    assert_ne!(t.key_id(), local.key_id());
    t.sign(receipt())
        .unwrap()
        .verify_pem(&t.public_key_pem())
        .unwrap();
    // A region named "receipts" or "c2pa" would collide with a signing key's name.
    assert_eq!(
        k.open_receipt_signer(dir.path(), &["us", "receipts"], &Pkcs11Config::default())
            .err()
            .unwrap()
            .code(),
        "config"
    );
    assert_eq!(
        k.open_receipt_signer(dir.path(), &["us", "c2pa"], &Pkcs11Config::default())
            .err()
            .unwrap()
            .code(),
        "config"
    );
}
