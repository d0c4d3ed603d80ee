//! What `pixseal stamp` writes, read by the reference C2PA implementation (c2pa-python), and
//! `pixseal verify` never more lenient than it: the same files, both verdicts, side by side.

mod common;

use std::path::{Path, PathBuf};

use common::{fixtures, json_lines, pixseal};
use pixseal_testkit::c2pa_ref;
use serde_json::Value;

const FORMATS: [&str; 3] = ["jpeg", "png", "webp"];

/// An installation's data dir with its development chain (`keys init`), and that chain's root.
struct Installation {
    data: String,
    root: String,
    chain: String,
    key: String,
}

fn installation(dir: &Path, name: &str) -> Installation {
    let data = dir.join(name);
    let data_s = data.to_str().unwrap().to_string();
    let out = pixseal(&["--data-dir", &data_s, "keys", "init"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c2pa = data.join("c2pa");
    let path = |f: &str| c2pa.join(f).to_str().unwrap().to_string();
    Installation {
        data: data_s,
        root: path("root.pem"),
        chain: path("chain.pem"),
        key: path("signing-key.pem"),
    }
}

/// `pixseal stamp` of one fixture photo into `out`, in `format`, with or without the visible mark;
/// the output file and its proof id.
fn stamp(inst: &Installation, out: &Path, format: &str, visible: bool) -> (PathBuf, String) {
    let photo = fixtures().join("photos/garden.jpg");
    let mut args = vec![
        "--data-dir",
        &inst.data,
        "--json",
        "stamp",
        photo.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--format",
        format,
        "--label",
        "interop",
    ];
    if !visible {
        args.push("--no-visible");
    }
    let o = pixseal(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let l = &json_lines(&o)[0];
    assert_eq!(l["watermarked"], true, "{l}");
    assert_eq!(l["visible_mark"].is_object(), visible, "{l}");
    (
        PathBuf::from(l["output"].as_str().unwrap()),
        l["proof_id"].as_str().unwrap().to_string(),
    )
}

fn read_ref(file: &Path, trust: Option<&str>) -> Value {
    let mut args = vec!["read", file.to_str().unwrap()];
    if let Some(t) = trust {
        args.extend(["--trust", t]);
    }
    serde_json::from_str(&c2pa_ref(&args)[0]).unwrap()
}

fn verify(data: &str, file: &Path, trust: Option<&str>) -> Value {
    let mut args = vec![
        "--data-dir",
        data,
        "--json",
        "verify",
        file.to_str().unwrap(),
    ];
    if let Some(t) = trust {
        args.extend(["--trust", t]);
    }
    json_lines(&pixseal(&args)).remove(0)
}

fn action_names(r: &Value) -> Vec<String> {
    let a = &r["assertions"];
    a["c2pa.actions.v2"]["actions"]
        .as_array()
        .or(a["c2pa.actions"]["actions"].as_array())
        .unwrap_or_else(|| panic!("no actions: {r:#}"))
        .iter()
        .map(|x| x["action"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_reference_reader_trusts_what_stamp_writes() {
    let d = tempfile::tempdir().unwrap();
    let inst = installation(d.path(), "data");
    for format in FORMATS {
        for visible in [true, false] {
            let out = d.path().join(format!("{format}-{visible}"));
            let (file, proof_id) = stamp(&inst, &out, format, visible);
            let what = format!("{format}, visible mark {visible}");
            let r = read_ref(&file, Some(&inst.root));
            assert_eq!(r["state"], "Trusted", "{what}: {r:#}");
            assert_eq!(r["failure"], serde_json::json!([]), "{what}: {r:#}");
            let mut expected = vec!["c2pa.created", "c2pa.edited", "c2pa.watermarked.bound"];
            if visible {
                expected.push("c2pa.edited");
            }
            assert_eq!(action_names(&r), expected, "{what}");
            // The soft bindings as the reference decodes them: the watermark carries the proof id.
            let bindings: Vec<&Value> = r["assertion_list"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| {
                    a["label"]
                        .as_str()
                        .unwrap()
                        .starts_with("c2pa.soft-binding")
                })
                .map(|a| &a["data"])
                .collect();
            let algs: Vec<&str> = bindings
                .iter()
                .map(|b| b["alg"].as_str().unwrap())
                .collect();
            assert_eq!(
                algs,
                ["org.pixseal.watermark.1", "org.pixseal.pdq.1"],
                "{what}"
            );
            // Without our root: valid, and the signer's credential is the only complaint.
            let r = read_ref(&file, None);
            assert_eq!(r["state"], "Valid", "{what}: {r:#}");
            assert_eq!(
                r["failure"],
                serde_json::json!(["signingCredential.untrusted"]),
                "{what}"
            );
            // pixseal agrees, and reads the same soft bindings back.
            let v = verify(&inst.data, &file, None);
            assert_eq!(v["verdict"], "verified", "{what}: {v}");
            assert_eq!(v["proof_id"], proof_id.as_str());
            let wm = &v["soft_bindings"][0];
            assert_eq!(wm["alg"], "org.pixseal.watermark.1", "{v}");
            assert_eq!(bindings[0]["blocks"][0]["value"], wm["value"], "{v}");
        }
    }
}

/// The reference's state as a SPEC §6 verdict family: `Trusted` ↔ verified, `Valid` ↔
/// untrusted, `Invalid` ↔ tampered, no manifest ↔ not_stamped (or watermark_only, which is a
/// file without a manifest too).
fn ref_family(r: &Value) -> &'static str {
    match r["state"].as_str() {
        Some("Trusted") => "verified",
        Some("Valid") => "untrusted",
        Some("Invalid") => "tampered",
        None if r["error"]
            .as_str()
            .is_some_and(|e| e.contains("JumbfNotFound") || e.contains("ManifestNotFound")) =>
        {
            "not_stamped"
        }
        _ => "unreadable",
    }
}

fn our_family(v: &Value) -> &'static str {
    match v["verdict"].as_str().unwrap_or("") {
        "verified" => "verified",
        "untrusted" => "untrusted",
        "tampered" => "tampered",
        "not_stamped" | "watermark_only" | "near_match" => "not_stamped",
        _ => "error",
    }
}

/// Offset of the first byte of entropy-coded data after the last SOS of a JPEG.
fn jpeg_scan_start(b: &[u8]) -> usize {
    let mut i = 2;
    loop {
        let len = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
        if b[i + 1] == 0xDA {
            return i + 2 + len;
        }
        i += 2 + len;
    }
}

#[test]
fn pixseal_verify_agrees_with_the_reference_on_every_file() {
    let d = tempfile::tempdir().unwrap();
    let ours = installation(d.path(), "ours");
    let theirs = installation(d.path(), "theirs");
    // Trusts neither pixseal's root nor the third party's unless told (`--trust`).
    let bystander = installation(d.path(), "bystander");
    let files = d.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let at = |name: &str| files.join(name);
    let mut cases: Vec<(String, PathBuf)> = Vec::new();

    for format in FORMATS {
        let (a, _) = stamp(&ours, &d.path().join(format!("a-{format}")), format, true);
        let (b, _) = stamp(&ours, &d.path().join(format!("b-{format}")), format, false);
        let bytes = std::fs::read(&a).unwrap();
        cases.push((format!("{format} stamp"), a.clone()));
        cases.push((format!("{format} stamp, no visible mark"), b.clone()));

        // One byte of picture data changed.
        let mut m = bytes.clone();
        let i = match format {
            "jpeg" => jpeg_scan_start(&m) + 400,
            "png" => m.windows(4).position(|w| w == b"IDAT").unwrap() + 300,
            _ => {
                m.windows(4)
                    .position(|w| w == b"VP8 " || w == b"VP8L")
                    .unwrap()
                    + 300
            }
        };
        m[i] ^= 0x04;
        std::fs::write(at(&format!("byte-{format}")), &m).unwrap();
        cases.push((
            format!("{format} stamp, one byte changed"),
            at(&format!("byte-{format}")),
        ));

        // pixseal's assertion, then the watermark's soft binding, taken out of what the claim
        // names (the label rewritten in place: the assertion the claim hashes is gone).
        for (what, old, new) in [
            (
                "proof assertion removed",
                "org.pixseal.proof",
                "org.pixseal.proog",
            ),
            (
                "soft binding removed",
                "c2pa.soft-binding",
                "c2pa.soft-bindinq",
            ),
        ] {
            let out = at(&format!("{}-{format}", new));
            c2pa_ref(&[
                "rename-label",
                a.to_str().unwrap(),
                out.to_str().unwrap(),
                "--old",
                old,
                "--new",
                new,
            ]);
            cases.push((format!("{format} stamp, {what}"), out));
        }

        // The manifest store of one stamp in the other stamp's picture.
        let out = at(&format!("swapped-{format}"));
        c2pa_ref(&[
            "transplant",
            b.to_str().unwrap(),
            a.to_str().unwrap(),
            out.to_str().unwrap(),
        ]);
        cases.push((format!("{format} stamp, manifest swapped in"), out));

        // Metadata stripped by a re-encode.
        let out = at(&format!("stripped-{format}.png"));
        c2pa_ref(&[
            "derive",
            a.to_str().unwrap(),
            out.to_str().unwrap(),
            "--op",
            "strip",
        ]);
        cases.push((format!("{format} stamp, re-encoded without metadata"), out));

        // A third party's files, signed by the reference library with its own chain.
        let src = at(&format!("plain-{format}.png"));
        c2pa_ref(&[
            "derive",
            fixtures().join("photos/garden.jpg").to_str().unwrap(),
            src.to_str().unwrap(),
            "--op",
            "strip",
        ]);
        let plain = d.path().join(format!("plain-{format}"));
        let o = pixseal(&[
            "--json",
            "sanitize",
            src.to_str().unwrap(),
            "-o",
            plain.to_str().unwrap(),
            "--format",
            format,
            "--max-edge",
            "640",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let plain = PathBuf::from(json_lines(&o)[0]["output"].as_str().unwrap());
        let ext = plain.extension().unwrap().to_str().unwrap().to_string();
        for (what, extra) in [
            ("signed by a third party", &[][..]),
            (
                "third party, watermark action without soft binding",
                &["--watermark-action", "bound"][..],
            ),
            (
                "third party, legacy watermark action without soft binding",
                &["--watermark-action", "legacy"][..],
            ),
            (
                "third party, watermark action with a soft binding",
                &["--watermark-action", "bound", "--soft-binding"][..],
            ),
        ] {
            let out = at(&format!("third-{}-{format}.{ext}", cases.len()));
            let mut args = vec![
                "sign",
                plain.to_str().unwrap(),
                out.to_str().unwrap(),
                "--chain",
                &theirs.chain,
                "--key",
                &theirs.key,
            ];
            args.extend(extra);
            c2pa_ref(&args);
            cases.push((format!("{format} {what}"), out));
        }
    }

    // Each file under two trust settings, the same for both readers: pixseal's root only (the
    // reference is told it; pixseal verify uses its installation's default anchors), and the
    // third party's root only (a bystander installation told it with `--trust`).
    let mut table =
        vec!["| file | trust | reference | pixseal verify |\n|---|---|---|---|".to_string()];
    let mut disagreements = Vec::new();
    for (what, file) in &cases {
        for (trust_name, root, data, extra) in [
            ("pixseal root", &ours.root, &ours.data, None),
            (
                "third-party root",
                &theirs.root,
                &bystander.data,
                Some(theirs.root.as_str()),
            ),
        ] {
            let r = read_ref(file, Some(root));
            let v = verify(data, file, extra);
            let (rf, of) = (ref_family(&r), our_family(&v));
            table.push(format!(
                "| {what} | {trust_name} | {} {} | {} |",
                r["state"].as_str().unwrap_or("no manifest"),
                r["failure"]
                    .as_array()
                    .map(|f| f
                        .iter()
                        .filter_map(Value::as_str)
                        .filter(|c| *c != "signingCredential.untrusted")
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default(),
                v["verdict"].as_str().unwrap_or("error"),
            ));
            if rf != of {
                disagreements.push(format!("{what} / {trust_name}: reference {r}\npixseal {v}"));
            }
        }
    }
    eprintln!("{}", table.join("\n"));
    assert!(
        disagreements.is_empty(),
        "pixseal and the reference disagree:\n{}",
        disagreements.join("\n\n")
    );
    // The table covers every verdict family.
    for family in ["Trusted", "Valid", "Invalid", "no manifest"] {
        assert!(
            table.iter().any(|row| row.contains(&format!("| {family}"))),
            "no {family} row"
        );
    }
}
