//! Keys on a PKCS#11 token: Debian's SoftHSM2, the token made with `softhsm2-util` and its keys
//! with OpenSC's `pkcs11-tool`, as an operator would (crates/testkit/src/softhsm.rs). Signatures
//! are checked with the public key `pkcs11-tool` reads off the token, not through our code.
//! Tests hold the token's lock (SoftHSM and concurrent `pkcs11-tool` runs do not mix). Set
//! PIXSEAL_SKIP_PKCS11=1 to skip.

mod common;

use std::sync::Arc;

use common::receipt;
use ed25519_dalek::pkcs8::DecodePublicKey;
use p256::ecdsa::signature::Verifier;
use pixseal_proof::ReceiptSigner;
use pixseal_provenance::identity::pem_certs;
use pixseal_provenance::{ClaimSigner, DevChain, HeldKey, HeldKeySigner, SignAlg, SignerKind};
use pixseal_seal::{Pkcs11ClaimKey, Pkcs11Config, Pkcs11ReceiptSigner, Pkcs11Token, Secret};
use pixseal_testkit::softhsm::{KeyKind, SoftHsm, softhsm};

fn config(t: &SoftHsm, claim: &str, receipt: &str) -> Pkcs11Config {
    Pkcs11Config {
        module: t.module.clone(),
        token_label: t.token_label.clone(),
        pin: Secret::new(&t.pin),
        claim_key_label: claim.into(),
        receipt_key_label: receipt.into(),
        ..Pkcs11Config::default()
    }
}

#[test]
fn p256_claim_key_on_a_token_signs_what_its_certificate_verifies() {
    let Some(t) = softhsm() else { return };
    let _token = t.lock();
    t.generate("claim-p256", KeyKind::P256);
    let token = Pkcs11Token::open(&config(t, "claim-p256", "unused")).unwrap();
    let key = Pkcs11ClaimKey::open(token, &config(t, "claim-p256", "unused")).unwrap();
    assert_eq!(
        (key.kind(), key.alg()),
        (SignerKind::Pkcs11, SignAlg::Es256)
    );
    let exported = t.exported_public_key("claim-p256");
    assert_eq!(key.public_key_der(), &exported[..]);

    let sig = key.sign(b"claim bytes").unwrap();
    assert_eq!(sig.len(), 64);
    let vk = p256::ecdsa::VerifyingKey::from_public_key_der(&exported).unwrap();
    let s = p256::ecdsa::Signature::from_slice(&sig).unwrap();
    vk.verify(b"claim bytes", &s).unwrap();
    assert!(vk.verify(b"other", &s).is_err());

    let dev = DevChain::for_public_key("pkcs11 test", key.public_key_der()).unwrap();
    let signer =
        HeldKeySigner::new(Arc::new(key), pem_certs(dev.chain_pem.as_bytes()).unwrap()).unwrap();
    signer.check().unwrap();
}

#[test]
fn ed25519_receipt_key_on_a_token_signs_receipts_that_verify_offline() {
    let Some(t) = softhsm() else { return };
    let _token = t.lock();
    t.generate("receipts-ed", KeyKind::Ed25519);
    let c = config(t, "unused", "receipts-ed");
    let signer = Pkcs11ReceiptSigner::open(Pkcs11Token::open(&c).unwrap(), &c).unwrap();
    assert_eq!(signer.provider(), "pkcs11");
    let exported = t.exported_public_key("receipts-ed");
    let vk = ed25519_dalek::VerifyingKey::from_public_key_der(&exported).unwrap();
    assert_eq!(signer.public_key().verifying_key(), &vk);

    let signed = signer.sign(receipt()).unwrap();
    signed.verify_pem(&signer.public_key_pem()).unwrap();
    let raw = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        &signed.signature,
    )
    .unwrap();
    let sig = ed25519_dalek::Signature::from_slice(&raw).unwrap();
    vk.verify_strict(&signed.receipt.signed_bytes(), &sig)
        .unwrap();
    signer.check().unwrap();

    // A P-256 key cannot sign receipts.
    t.generate("receipts-p256", KeyKind::P256);
    let c = config(t, "unused", "receipts-p256");
    let e = Pkcs11ReceiptSigner::open(Pkcs11Token::open(&c).unwrap(), &c).unwrap_err();
    assert_eq!(e.code(), "config", "{e}");
}

#[test]
fn wrong_pin_missing_token_and_missing_key_are_told_apart() {
    let Some(t) = softhsm() else { return };
    let _token = t.lock();
    let mut c = config(t, "nothing-here", "nothing-here");
    c.pin = Secret::new("0000-wrong");
    let e = Pkcs11Token::open(&c).unwrap_err();
    assert_eq!(e.code(), "permission_denied", "{e}");
    assert!(!e.to_string().contains("0000-wrong"), "{e}");

    let mut c = config(t, "nothing-here", "nothing-here");
    c.token_label = "no-such-token".into();
    assert_eq!(Pkcs11Token::open(&c).unwrap_err().code(), "key_not_found");

    let c = config(t, "nothing-here", "nothing-here");
    let e = Pkcs11ClaimKey::open(Pkcs11Token::open(&c).unwrap(), &c)
        .err()
        .unwrap();
    assert_eq!(e.code(), "key_not_found", "{e}");
}

#[test]
fn a_key_removed_from_the_token_fails_readiness_and_signing() {
    let Some(t) = softhsm() else { return };
    let _token = t.lock();
    t.generate("receipts-gone", KeyKind::Ed25519);
    let c = config(t, "unused", "receipts-gone");
    let signer = Pkcs11ReceiptSigner::open(Pkcs11Token::open(&c).unwrap(), &c).unwrap();
    signer.check().unwrap();
    t.delete("receipts-gone");
    assert!(signer.check().is_err(), "readiness sees the key gone");
    assert!(signer.sign(receipt()).is_err());
}
