//! The C2PA claim-signing key held in Transit, against a real OpenBao dev server
//! (scripts/openbao.sh creates `pixseal-c2pa`, type ecdsa-p256, and the app policy). Signatures
//! are checked with the `p256` crate and the public key as OpenBao publishes it, not through our
//! code. Set PIXSEAL_SKIP_TRANSIT=1 to skip.

mod common;

use std::sync::Arc;

use common::{bao, bao_request};
use p256::ecdsa::signature::Verifier;
use p256::pkcs8::DecodePublicKey;
use pixseal_provenance::identity::pem_certs;
use pixseal_provenance::{ClaimSigner, DevChain, HeldKey, HeldKeySigner, SignAlg, SignerKind};
use pixseal_seal::{TransitClaimKey, TransitConfig};

const KEY: &str = "pixseal-c2pa";

fn cfg(addr: &str, token: &str) -> TransitConfig {
    TransitConfig::new(addr, token, &["us"])
}

/// The P-256 public key of `key` version `v`, as OpenBao publishes it.
fn bao_public_key(addr: &str, root: &str, key: &str, v: u32) -> p256::ecdsa::VerifyingKey {
    let (st, body) = bao_request(addr, root, "GET", &format!("transit/keys/{key}"), "");
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["data"]["type"], "ecdsa-p256");
    let pem = body["data"]["keys"][v.to_string()]["public_key"]
        .as_str()
        .unwrap();
    p256::ecdsa::VerifyingKey::from_public_key_pem(pem).unwrap()
}

#[test]
fn transit_claim_key_signs_what_its_certificate_verifies() {
    let Some(b) = bao() else { return };
    // The app token (least privilege) opens the key and signs.
    let key = TransitClaimKey::open(&cfg(b.addr(), b.token()), KEY, None).unwrap();
    assert_eq!(key.alg(), SignAlg::Es256);
    assert_eq!(key.kind(), SignerKind::Transit);

    let sig = key.sign(b"claim bytes").unwrap();
    assert_eq!(sig.len(), 64, "COSE's r || s, not DER");
    let vk = bao_public_key(b.addr(), b.root_token(), KEY, key.key_version());
    let s = p256::ecdsa::Signature::from_slice(&sig).unwrap();
    vk.verify(b"claim bytes", &s)
        .expect("verifies with OpenBao's public key");
    assert!(vk.verify(b"other bytes", &s).is_err());

    // A development chain made for that public key pairs with it; a chain for any other key
    // is refused when the signer is built.
    let dev = DevChain::for_public_key("transit test", key.public_key_der()).unwrap();
    let chain = pem_certs(dev.chain_pem.as_bytes()).unwrap();
    let key: Arc<dyn HeldKey> = Arc::new(key);
    let signer = HeldKeySigner::new(key.clone(), chain).unwrap();
    signer.check().unwrap();
    let other = DevChain::generate("another key").unwrap();
    let e = HeldKeySigner::new(key, pem_certs(other.chain_pem.as_bytes()).unwrap())
        .err()
        .unwrap();
    assert!(e.to_string().contains("does not certify"), "{e}");
}

#[test]
fn the_certified_version_signs_after_a_rotation() {
    let Some(b) = bao() else { return };
    // A key of this test's own (rotated here), made and used with the root token.
    let name = format!("pixseal-c2pa-rot-{}", std::process::id());
    let (st, body) = bao_request(
        b.addr(),
        b.root_token(),
        "POST",
        &format!("transit/keys/{name}"),
        r#"{"type":"ecdsa-p256"}"#,
    );
    assert!(st == 200 || st == 204, "{st} {body}");
    let root = cfg(b.addr(), b.root_token());
    let v1 = TransitClaimKey::open(&root, &name, None).unwrap();
    let dev = DevChain::for_public_key("rotation", v1.public_key_der()).unwrap();
    let certified = v1.public_key_der().to_vec();

    let (st, body) = bao_request(
        b.addr(),
        b.root_token(),
        "POST",
        &format!("transit/keys/{name}/rotate"),
        "{}",
    );
    assert!(st == 200 || st == 204, "{st} {body}");
    let latest = TransitClaimKey::open(&root, &name, None).unwrap();
    assert_eq!(latest.key_version(), v1.key_version() + 1);
    assert_ne!(latest.public_key_der(), &certified[..]);

    // Opened for the certificate, the key keeps signing with the version it certifies.
    let pinned = TransitClaimKey::open(&root, &name, Some(&certified)).unwrap();
    assert_eq!(pinned.key_version(), v1.key_version());
    let signer = HeldKeySigner::new(
        Arc::new(pinned),
        pem_certs(dev.chain_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    let sig = signer.sign(b"after rotation").unwrap();
    let vk = bao_public_key(b.addr(), b.root_token(), &name, v1.key_version());
    vk.verify(
        b"after rotation",
        &p256::ecdsa::Signature::from_slice(&sig).unwrap(),
    )
    .unwrap();

    // A certificate no version matches is refused at open.
    let stranger = DevChain::generate("stranger").unwrap();
    let spki = pixseal_provenance::held::certified_key(
        &pem_certs(stranger.chain_pem.as_bytes()).unwrap()[0],
    )
    .unwrap();
    let e = TransitClaimKey::open(&root, &name, Some(&spki)).unwrap_err();
    assert_eq!(e.code(), "config", "{e}");
}

#[test]
fn the_app_token_signs_and_reads_only() {
    let Some(b) = bao() else { return };
    let app = b.token();
    // What pixseal needs: the public keys, and signatures with SHA-256.
    assert_eq!(
        bao_request(b.addr(), app, "GET", &format!("transit/keys/{KEY}"), "").0,
        200
    );
    let input = r#"{"input":"aGVsbG8="}"#;
    assert_eq!(
        bao_request(
            b.addr(),
            app,
            "POST",
            &format!("transit/sign/{KEY}/sha2-256"),
            input
        )
        .0,
        200
    );
    // Nothing else: another hash, export, backup, rotation, configuration, deletion, creation.
    for (method, path, body) in [
        (
            "POST",
            format!("transit/sign/{KEY}/sha2-512"),
            input.to_string(),
        ),
        ("POST", format!("transit/sign/{KEY}"), input.to_string()),
        (
            "GET",
            format!("transit/export/signing-key/{KEY}"),
            String::new(),
        ),
        ("GET", format!("transit/backup/{KEY}"), String::new()),
        ("POST", format!("transit/keys/{KEY}/rotate"), "{}".into()),
        (
            "POST",
            format!("transit/keys/{KEY}/config"),
            r#"{"deletion_allowed":true}"#.into(),
        ),
        ("DELETE", format!("transit/keys/{KEY}"), String::new()),
        (
            "POST",
            "transit/keys/pixseal-c2pa-new".to_string(),
            r#"{"type":"ecdsa-p256"}"#.into(),
        ),
    ] {
        let (st, body) = bao_request(b.addr(), app, method, &path, &body);
        assert_eq!(st, 403, "{method} {path}: {body}");
    }
}

#[test]
fn a_key_of_another_type_is_refused() {
    let Some(b) = bao() else { return };
    // The region key is AES: it cannot sign claims.
    let e = TransitClaimKey::open(&cfg(b.addr(), b.token()), "pixseal-us", None).unwrap_err();
    assert_eq!(e.code(), "config", "{e}");
    assert!(e.to_string().contains("aes256-gcm96"), "{e}");
    // A key that does not exist says who creates it.
    let e = TransitClaimKey::open(&cfg(b.addr(), b.root_token()), "pixseal-c2pa-missing", None)
        .unwrap_err();
    assert_eq!(e.code(), "key_not_found", "{e}");
    assert!(e.to_string().contains("bao write"), "{e}");
}
