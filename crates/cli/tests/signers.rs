//! The C2PA claim-signing key off disk: `[provenance].signer = "transit"` (a real OpenBao dev
//! server) and `"pkcs11"` (Debian's SoftHSM2), with the receipt key on the same token. What
//! `pixseal stamp` writes with each is read by the reference implementation (c2pa-python),
//! which must say `Trusted`, and by `pixseal verify`. Set PIXSEAL_SKIP_TRANSIT=1 /
//! PIXSEAL_SKIP_PKCS11=1 to skip a half.

mod common;

use std::path::Path;

use common::{fixtures, json_lines, pixseal_env};
use pixseal_testkit::c2pa_ref;
use pixseal_testkit::softhsm::{KeyKind, softhsm};
use serde_json::Value;

/// `keys init`, then `stamp` in each format, then the reference reader and `pixseal verify`
/// on each output. Returns the `keys init` lines.
fn stamp_and_read(dir: &Path, env: &[(&str, &str)]) -> Vec<Value> {
    let data = dir.join("data");
    let data_s = data.to_str().unwrap();
    let init = pixseal_env(&["--data-dir", data_s, "--json", "keys", "init"], env);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let lines = json_lines(&init);
    let c2pa = data.join("c2pa");
    // A development chain for the held key: root and certificate, and no key file.
    assert!(c2pa.join("chain.pem").exists() && c2pa.join("root.pem").exists());
    assert!(
        !c2pa.join("signing-key.pem").exists(),
        "the key is held elsewhere"
    );
    let root = c2pa.join("root.pem");
    let photo = fixtures().join("photos/garden.jpg");
    for format in ["jpeg", "png", "webp"] {
        let out = dir.join(format);
        let o = pixseal_env(
            &[
                "--data-dir",
                data_s,
                "--json",
                "stamp",
                photo.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
                "--format",
                format,
            ],
            env,
        );
        assert!(
            o.status.success(),
            "{format}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let l = &json_lines(&o)[0];
        assert_eq!(l["watermarked"], true, "{l}");
        let file = l["output"].as_str().unwrap();

        let r: Value =
            serde_json::from_str(&c2pa_ref(&["read", file, "--trust", root.to_str().unwrap()])[0])
                .unwrap();
        assert_eq!(r["state"], "Trusted", "{format}: {r:#}");
        assert_eq!(r["failure"], serde_json::json!([]), "{format}: {r:#}");

        let v = pixseal_env(
            &["--data-dir", data_s, "--json", "verify", file, "--trust"]
                .into_iter()
                .chain([root.to_str().unwrap()])
                .collect::<Vec<_>>(),
            env,
        );
        let v = &json_lines(&v)[0];
        assert_eq!(v["verdict"], "verified", "{format}: {v}");
    }
    lines
}

fn c2pa_line(lines: &[Value]) -> &Value {
    lines
        .iter()
        .find(|l| l["key"] == "c2pa-signing")
        .expect("a c2pa-signing line")
}

#[test]
fn a_claim_key_in_transit_signs_what_the_reference_reader_trusts() {
    let Some(bao) = pixseal_testkit::openbao("us eu rot shred") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let env = [
        ("PIXSEAL_REGIONS", "[\"us\"]"),
        ("PIXSEAL_PROVENANCE_SIGNER", "transit"),
        ("PIXSEAL_KEYS_TRANSIT_ADDR", bao.addr.as_str()),
        ("PIXSEAL_KEYS_TRANSIT_TOKEN", bao.token.as_str()),
    ];
    let lines = stamp_and_read(d.path(), &env);
    let c = c2pa_line(&lines);
    assert_eq!(
        (c["signer"].as_str(), c["alg"].as_str()),
        (Some("transit"), Some("es256")),
        "{c}"
    );
    assert_eq!(c["development"], true, "{c}");

    // A token that may not sign: no identity, a clear error, exit 3, nothing written.
    let data = d.path().join("data");
    let out = d.path().join("refused");
    let o = pixseal_env(
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "stamp",
            fixtures().join("photos/garden.jpg").to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        &[
            ("PIXSEAL_REGIONS", "[\"us\"]"),
            ("PIXSEAL_PROVENANCE_SIGNER", "transit"),
            ("PIXSEAL_KEYS_TRANSIT_ADDR", bao.addr.as_str()),
            ("PIXSEAL_KEYS_TRANSIT_TOKEN", "s.not-a-token"),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("error[key_unavailable]") && err.contains("transit"),
        "{err}"
    );
    assert!(!err.contains("s.not-a-token"), "{err}");
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none());
}

#[test]
fn keys_on_a_pkcs11_token_sign_claims_and_receipts() {
    let Some(t) = softhsm() else { return };
    let _token = t.lock();
    t.generate("cli-c2pa", KeyKind::P256);
    t.generate("cli-receipts", KeyKind::Ed25519);
    let d = tempfile::tempdir().unwrap();
    let pin_file = d.path().join("pin");
    std::fs::write(&pin_file, format!("{}\n", t.pin)).unwrap();
    let env = [
        ("PIXSEAL_REGIONS", "[\"us\"]"),
        ("PIXSEAL_PROVENANCE_SIGNER", "pkcs11"),
        ("PIXSEAL_KEYS_RECEIPT_PROVIDER", "pkcs11"),
        ("PIXSEAL_PKCS11_MODULE", t.module.as_str()),
        ("PIXSEAL_PKCS11_TOKEN_LABEL", t.token_label.as_str()),
        ("PIXSEAL_PKCS11_PIN_FILE", pin_file.to_str().unwrap()),
        ("PIXSEAL_PKCS11_CLAIM_KEY_LABEL", "cli-c2pa"),
        ("PIXSEAL_PKCS11_RECEIPT_KEY_LABEL", "cli-receipts"),
    ];
    let lines = stamp_and_read(d.path(), &env);
    let c = c2pa_line(&lines);
    assert_eq!(
        (c["signer"].as_str(), c["alg"].as_str()),
        (Some("pkcs11"), Some("es256")),
        "{c}"
    );
    let r = lines
        .iter()
        .find(|l| l["key"] == "receipt-signing")
        .expect("a receipt-signing line");
    assert_eq!(r["provider"], "pkcs11", "{r}");
    // The receipt key's id is derived from the token's public key, as for every signer.
    let exported = t.exported_public_key("cli-receipts");
    assert_eq!(exported.len(), 44, "an Ed25519 SubjectPublicKeyInfo");
    let public = pixseal_proof::ReceiptPublicKey::from_raw(&exported[12..]).unwrap();
    assert_eq!(r["key_id"], public.key_id(), "{r}");
    assert!(!d.path().join("data/receipt-signing.pem").exists());

    // The claim key replaced on the token: the certificate no longer certifies it, and the
    // next start says so rather than signing something nobody can verify.
    t.delete("cli-c2pa");
    t.generate("cli-c2pa", KeyKind::P256);
    let o = pixseal_env(
        &[
            "--data-dir",
            d.path().join("data").to_str().unwrap(),
            "keys",
            "list",
        ],
        &env,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("does not certify"), "{err}");
    assert!(!err.contains(&t.pin), "{err}");
}
