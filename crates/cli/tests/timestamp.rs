//! RFC 3161 time-stamps on what `pixseal stamp` signs, from a real authority (OpenSSL's
//! responder, scripts/tsa.sh): reported by `pixseal verify` and by the reference reader, trusted
//! only when the authority's root is, keeping a manifest valid after its certificate expires,
//! and stopping the stamp when the authority is down.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{fixtures, json_lines, pixseal_env};
use pixseal_provenance::DevChain;
use pixseal_testkit::{c2pa_ref, tsa};
use serde_json::Value;

/// A signing chain under `dir` whose certificate expires `validity` from now; its files.
struct Chain {
    chain: String,
    key: String,
    root: String,
}

fn chain(dir: &Path, validity: time::Duration) -> Chain {
    let c = DevChain::generate_valid_for("pixseal time-stamp test", validity).unwrap();
    c.write_to(dir).unwrap();
    let p = pixseal_provenance::DevPaths::in_dir(dir);
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();
    Chain {
        chain: s(&p.chain),
        key: s(&p.key),
        root: s(&p.root),
    }
}

/// `pixseal stamp` of a fixture into `out` with that chain and, when given, that TSA.
fn stamp(data: &Path, c: &Chain, tsa_url: Option<&str>, out: &Path) -> std::process::Output {
    let photo = fixtures().join("photos/garden.jpg");
    let mut env = vec![
        ("PIXSEAL_PROVENANCE_CERT_CHAIN", c.chain.as_str()),
        ("PIXSEAL_PROVENANCE_PRIVATE_KEY", c.key.as_str()),
    ];
    if let Some(u) = tsa_url {
        env.push(("PIXSEAL_PROVENANCE_TSA_URL", u));
    }
    pixseal_env(
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "--json",
            "stamp",
            photo.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--format",
            "jpeg",
        ],
        &env,
    )
}

fn stamped(data: &Path, c: &Chain, tsa_url: Option<&str>, out: &Path) -> PathBuf {
    let o = stamp(data, c, tsa_url, out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    PathBuf::from(json_lines(&o)[0]["output"].as_str().unwrap())
}

/// `pixseal verify --json FILE`, trusting exactly the roots in `trust` (the first as the
/// configured anchors, the others with `--trust`).
fn verify(data: &Path, file: &Path, trust: &[&str]) -> Value {
    let mut args = vec![
        "--data-dir",
        data.to_str().unwrap(),
        "--json",
        "verify",
        file.to_str().unwrap(),
    ];
    for t in &trust[1..] {
        args.extend(["--trust", t]);
    }
    json_lines(&pixseal_env(
        &args,
        &[("PIXSEAL_PROVENANCE_TRUST_ANCHORS", trust[0])],
    ))
    .remove(0)
}

/// A PEM bundle of both roots, for the reference reader.
fn bundle(dir: &Path, roots: &[&str]) -> String {
    let text: String = roots
        .iter()
        .map(|r| std::fs::read_to_string(r).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let p = dir.join("bundle.pem");
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

fn read_ref(file: &Path, trust: &str) -> Value {
    serde_json::from_str(&c2pa_ref(&["read", file.to_str().unwrap(), "--trust", trust])[0]).unwrap()
}

fn codes(r: &Value, kind: &str) -> Vec<String> {
    r[kind]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_time_stamp_is_reported_and_trusted_only_with_its_authority() {
    let tsa = tsa();
    let tsa_root = tsa.root_pem.to_str().unwrap();
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let c = chain(&d.path().join("chain"), time::Duration::days(30));
    let before = time::OffsetDateTime::now_utc() - time::Duration::seconds(2);
    let file = stamped(&data, &c, Some(&tsa.url), &d.path().join("out"));

    // Both roots trusted: verified, and the time-stamp is trusted, with the authority's time.
    let v = verify(&data, &file, &[&c.root, tsa_root]);
    assert_eq!(v["verdict"], "verified", "{v:#}");
    let ts = &v["timestamp"];
    assert_eq!(ts["trusted"], true, "{v:#}");
    assert_eq!(ts["code"], "timeStamp.trusted", "{v:#}");
    let at = time::OffsetDateTime::parse(
        ts["time"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let after = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    assert!(
        before <= at && at <= after,
        "time-stamp {at} outside {before}..{after}"
    );
    assert_eq!(
        v["time"], ts["time"],
        "the signing time is the time-stamp's: {v:#}"
    );

    // Only the signer's root: still verified (a time-stamp's trust is informational in C2PA),
    // and the time-stamp is said to come from an authority nobody chose to trust.
    let v = verify(&data, &file, &[&c.root]);
    assert_eq!(v["verdict"], "verified", "{v:#}");
    assert_eq!(v["timestamp"]["trusted"], false, "{v:#}");
    assert_eq!(v["timestamp"]["code"], "timeStamp.untrusted", "{v:#}");

    // The reference reader agrees on both.
    let r = read_ref(&file, &bundle(d.path(), &[&c.root, tsa_root]));
    assert_eq!(r["state"], "Trusted", "{r:#}");
    assert!(
        codes(&r, "success").contains(&"timeStamp.trusted".to_string()),
        "{r:#}"
    );
    let r = read_ref(&file, &c.root);
    assert_eq!(r["state"], "Trusted", "{r:#}");
    assert!(
        codes(&r, "informational").contains(&"timeStamp.untrusted".to_string()),
        "{r:#}"
    );

    // Without a TSA there is no time-stamp, and verify says none.
    let plain = stamped(&data, &c, None, &d.path().join("plain"));
    let v = verify(&data, &plain, &[&c.root, tsa_root]);
    assert_eq!(v["verdict"], "verified", "{v:#}");
    assert_eq!(v["timestamp"], Value::Null, "{v:#}");
}

#[test]
fn a_trusted_time_stamp_keeps_a_manifest_valid_after_its_certificate_expires() {
    let tsa = tsa();
    let tsa_root = tsa.root_pem.to_str().unwrap();
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let lifetime = Duration::from_secs(10);
    let made = Instant::now();
    let c = chain(
        &d.path().join("chain"),
        time::Duration::try_from(lifetime).unwrap(),
    );
    let with = stamped(&data, &c, Some(&tsa.url), &d.path().join("with"));
    let without = stamped(&data, &c, None, &d.path().join("without"));
    assert!(
        made.elapsed() < lifetime,
        "stamping took longer than the certificate lived; the test proves nothing"
    );
    // Before expiry both are verified.
    for f in [&with, &without] {
        let v = verify(&data, f, &[&c.root, tsa_root]);
        assert_eq!(v["verdict"], "verified", "{v:#}");
    }
    std::thread::sleep(lifetime.saturating_sub(made.elapsed()) + Duration::from_secs(2));
    let roots = bundle(d.path(), &[&c.root, tsa_root]);

    // Time-stamped while the certificate was valid: still verified, by us and the reference.
    let v = verify(&data, &with, &[&c.root, tsa_root]);
    assert_eq!(v["verdict"], "verified", "{v:#}");
    assert_eq!(v["timestamp"]["trusted"], true, "{v:#}");
    let r = read_ref(&with, &roots);
    assert_eq!(r["state"], "Trusted", "{r:#}");

    // No time-stamp: the certificate's expiry counts; the reference calls the file Invalid,
    // and so does pixseal (`tampered`, never the more lenient `untrusted`).
    let v = verify(&data, &without, &[&c.root, tsa_root]);
    assert_eq!(v["verdict"], "tampered", "{v:#}");
    let ours: Vec<&str> = v["validation_codes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "failure")
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert!(ours.contains(&"signingCredential.expired"), "{v:#}");
    let r = read_ref(&without, &roots);
    assert_eq!(r["state"], "Invalid", "{r:#}");
    assert!(
        codes(&r, "failure").contains(&"signingCredential.expired".to_string()),
        "{r:#}"
    );
}

#[test]
fn nothing_is_signed_when_the_authority_is_down() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let c = chain(&d.path().join("chain"), time::Duration::days(30));
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = d.path().join("out");
    let o = stamp(&data, &c, Some(&format!("http://127.0.0.1:{port}/")), &out);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("tsa_unavailable"), "{stderr}");
    let written = std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0);
    assert_eq!(written, 0, "a file was written without its time-stamp");
}
