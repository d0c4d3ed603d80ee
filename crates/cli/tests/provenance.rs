//! `pixseal keys init|trust-anchor`, `stamp` and `verify` through the real binary.

mod common;

use common::{fixtures, json_lines, pixseal};

#[test]
fn keys_stamp_and_verify_offline() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let data = data.to_str().unwrap();
    let out = pixseal(&["--data-dir", data, "keys", "init"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("c2pa: development signing certificate"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no one else trusts"), "{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(d.path().join("data/c2pa/signing-key.pem")).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
    }
    let ta = pixseal(&["--data-dir", data, "keys", "trust-anchor"]);
    assert!(ta.status.success());
    let root = String::from_utf8(ta.stdout).unwrap();
    assert!(root.starts_with("-----BEGIN CERTIFICATE-----"), "{root}");
    assert_eq!(root.matches("BEGIN CERTIFICATE").count(), 1);

    let outdir = d.path().join("out");
    let photos = fixtures().join("photos");
    let out = pixseal(&[
        "--data-dir",
        data,
        "--json",
        "stamp",
        photos.join("garden.jpg").to_str().unwrap(),
        photos.join("alpha.png").to_str().unwrap(),
        photos.join("garden-phone.heic").to_str().unwrap(),
        "-o",
        outdir.to_str().unwrap(),
        "--label",
        "Jane Doe PXCANARY",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3);
    let mut outputs = Vec::new();
    for l in &lines {
        assert_eq!(l["status"], "ok");
        let id = l["proof_id"].as_str().unwrap();
        assert!(id.starts_with("px_") && id.len() == 16, "{l}");
        assert_eq!(l["pdq"].as_str().unwrap().len(), 64);
        assert!(l["manifest_bytes"].as_u64().unwrap() > 1000);
        assert_eq!(l["watermarked"], true, "{l}");
        assert!(l["watermark_psnr"].as_f64().unwrap() > 38.0, "{l}");
        let mark = &l["visible_mark"];
        let input = l["input"].as_str().unwrap();
        if input.ends_with("garden.jpg") || input.ends_with("garden-phone.heic") {
            assert!(mark["contrast"].as_f64().unwrap() >= 3.0, "{l}");
            assert!(
                mark["text"]
                    .as_str()
                    .unwrap()
                    .starts_with("Jane Doe PXCANARY · px_"),
                "{l}"
            );
        } else {
            // 200×150: text that fits would be under 9 px, so no visible mark (and it says so).
            assert!(mark.is_null(), "{l}");
        }
        let bytes = std::fs::read(l["output"].as_str().unwrap()).unwrap();
        assert!(
            !bytes.windows(8).any(|w| w == b"PXCANARY")
                && !bytes.windows(8).any(|w| w == b"Jane Doe"),
            "the label never goes into the file's manifest"
        );
        outputs.push((l["output"].as_str().unwrap().to_string(), id.to_string()));
    }

    // Verified with the installation's own root (the default anchors).
    let mut args = vec!["--data-dir", data, "--json", "verify"];
    args.extend(outputs.iter().map(|(o, _)| o.as_str()));
    let v = pixseal(&args);
    assert_eq!(
        v.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&v.stderr)
    );
    for (l, (_, id)) in json_lines(&v).iter().zip(&outputs) {
        assert_eq!(l["verdict"], "verified", "{l}");
        assert_eq!(l["proof_id"], id.as_str());
        assert!(l["signer"]["issuer"].is_string());
        assert!(l["time"].is_string());
        assert!(
            l["assertions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "org.pixseal.proof")
        );
        assert!(
            l["validation_codes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["kind"] == "success")
        );
    }

    // Another installation does not trust it: untrusted (exit 2), never tampered; trusting the
    // root explicitly makes it verified again.
    let other = d.path().join("other");
    let other = other.to_str().unwrap();
    let v = pixseal(&["--data-dir", other, "--json", "verify", &outputs[0].0]);
    assert_eq!(v.status.code(), Some(2));
    assert_eq!(json_lines(&v)[0]["verdict"], "untrusted");
    let pem = d.path().join("root.pem");
    std::fs::write(&pem, &root).unwrap();
    let v = pixseal(&[
        "--data-dir",
        other,
        "verify",
        &outputs[0].0,
        "--trust",
        pem.to_str().unwrap(),
    ]);
    assert_eq!(v.status.code(), Some(0));
    let human = String::from_utf8_lossy(&v.stdout);
    assert!(
        human.contains(": verified — signed by") && human.contains(&outputs[0].1),
        "{human}"
    );

    // One changed byte of image data: tampered. A sanitized (never stamped) file: not_stamped.
    let mut bytes = std::fs::read(&outputs[0].0).unwrap();
    let n = bytes.len();
    bytes[n - 200] ^= 0x08;
    let bad = d.path().join("bad.jpg");
    std::fs::write(&bad, &bytes).unwrap();
    let clean = d.path().join("clean");
    let s = pixseal(&[
        "sanitize",
        photos.join("garden.jpg").to_str().unwrap(),
        "-o",
        clean.to_str().unwrap(),
    ]);
    assert!(s.status.success());
    let v = pixseal(&[
        "--data-dir",
        data,
        "--json",
        "verify",
        bad.to_str().unwrap(),
        clean.join("garden.jpg").to_str().unwrap(),
        d.path().join("missing.jpg").to_str().unwrap(),
    ]);
    assert_eq!(v.status.code(), Some(2));
    let lines = json_lines(&v);
    let verdict = |i: &str| {
        lines
            .iter()
            .find(|l| l["input"].as_str().unwrap().ends_with(i))
            .unwrap()
            .clone()
    };
    assert_eq!(verdict("bad.jpg")["verdict"], "tampered");
    assert_eq!(verdict("garden.jpg")["verdict"], "not_stamped");
    assert_eq!(verdict("missing.jpg")["status"], "error");

    // Metadata stripped (sanitize re-encodes the pixels and drops the manifest), even at JPEG
    // q75: the invisible watermark still names the proof.
    let (garden, garden_id) = outputs.iter().find(|(o, _)| o.contains("garden")).unwrap();
    let stripped = d.path().join("stripped");
    let s = pixseal(&[
        "sanitize",
        garden,
        "-o",
        stripped.to_str().unwrap(),
        "--quality",
        "75",
    ]);
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    let name = std::path::Path::new(garden).file_name().unwrap();
    let v = pixseal(&[
        "--data-dir",
        data,
        "--json",
        "verify",
        stripped.join(name).to_str().unwrap(),
    ]);
    let l = &json_lines(&v)[0];
    assert_eq!(l["verdict"], "watermark_only", "{l}");
    assert_eq!(l["proof_id"], garden_id.as_str(), "{l}");
}

/// The `verify` fuzz target's out-of-memory finding, kept as a test: a 10 KB stamped JPEG whose
/// assertion declares a 2.5 GB CBOR byte string. The C2PA reader would allocate that much
/// before reading; the manifest store is checked first, so `pixseal verify` says `tampered`,
/// names the malformed CBOR, and stays small (its peak RSS, measured by the kernel).
#[test]
fn a_declared_length_cannot_make_verify_allocate() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cbor-length-bomb.jpg");
    let d = tempfile::tempdir().unwrap();
    let script = r#"
import json, resource, subprocess, sys
out = subprocess.run(sys.argv[1:], capture_output=True, text=True)
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"code": out.returncode, "stdout": out.stdout, "peak_kib": peak_kib}))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(common::bin())
        .args(["--data-dir", d.path().to_str().unwrap(), "--json", "verify"])
        .arg(&file)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let line: serde_json::Value =
        serde_json::from_str(r["stdout"].as_str().unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(line["verdict"], "tampered", "{line:#}");
    let codes = line["validation_codes"].to_string();
    assert!(codes.contains("CBOR content box"), "{line:#}");
    assert_eq!(r["code"], 2);
    let peak_mib = r["peak_kib"].as_u64().unwrap() / 1024;
    assert!(
        peak_mib < 256,
        "verify peaked at {peak_mib} MiB on a 10 KB file"
    );
}
