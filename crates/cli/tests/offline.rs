//! The processing commands open no network socket: `sanitize`, `stamp`, `verify` (without
//! `--server`), `watermark`, `seal` and `unseal`, each run under `strace -f` (every network
//! system call of every thread and child recorded) and again in a network namespace without
//! interfaces (`unshare -rn`), where they must do the same work. A command that does use the
//! network (`verify --server`) is caught by the same check, so the check can fail.
//!
//! Needs strace and unshare (util-linux); `scripts/setup.sh` installs strace. Where either is
//! missing or namespaces are not allowed, the test says so and stops, except under CI=true,
//! where it fails.

mod common;

use std::process::{Command, Output};

use common::*;

fn unshared(args: &[&str]) -> Output {
    Command::new("unshare")
        .args(["-rn", "--"])
        .arg(bin())
        .args(args)
        .output()
        .unwrap()
}

/// `seal` or `unseal` of `input` into `out`, for one object.
fn sealing(command: &str, input: &str, out: &str) -> Vec<String> {
    [command, input, "-o", out]
        .into_iter()
        .chain(["--object-id", "o1", "--tenant", "t1", "--region", "us"])
        .map(String::from)
        .collect()
}

#[test]
fn processing_opens_no_network_socket() {
    if !available("strace", &["-V"]) {
        return missing("strace not found");
    }
    if !available("unshare", &["-rn", "true"]) {
        return missing("unshare -rn not permitted here");
    }
    let work = tempfile::tempdir().unwrap();
    let w = |name: &str| work.path().join(name).to_str().unwrap().to_string();
    let photo = fixtures().join("photos/garden.jpg");
    let photo = photo.to_str().unwrap();
    let data = w("data");
    std::fs::create_dir_all(w("sanitized")).unwrap();
    // The key file and the development certificate are made first, outside the check: making
    // them is a one-time set-up, and also opens no socket, but this keeps the runs alike.
    assert!(
        pixseal(&["--data-dir", &data, "stamp", photo, "-o", &w("warm")])
            .status
            .success()
    );
    let stamped = w("stamped/garden.jpg");
    let runs: Vec<(&str, Vec<String>)> = vec![
        (
            "sanitize",
            vec!["sanitize".into(), photo.into(), "-o".into(), w("sanitized")],
        ),
        (
            "stamp",
            vec!["stamp".into(), photo.into(), "-o".into(), w("stamped")],
        ),
        ("verify", vec!["verify".into(), stamped.clone()]),
        (
            "watermark embed",
            vec![
                "watermark".into(),
                "embed".into(),
                photo.into(),
                "--id".into(),
                "px_8V8E5W89EK4Q0".into(),
                "--out".into(),
                w("marked.png"),
            ],
        ),
        (
            "watermark detect",
            vec!["watermark".into(), "detect".into(), w("marked.png")],
        ),
        ("seal", sealing("seal", photo, &w("g.sealed"))),
        ("unseal", sealing("unseal", &w("g.sealed"), &w("g.jpg"))),
    ];
    for (i, (name, args)) in runs.iter().enumerate() {
        let mut full = vec!["--data-dir", data.as_str()];
        full.extend(args.iter().map(String::as_str));
        let (out, foreign) = traced(&full, &work.path().join(format!("trace-{i}")));
        assert!(
            out.status.success(),
            "{name} failed under strace: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(foreign.is_empty(), "{name} used the network: {foreign:#?}");
        // Without any network at all it still does its work.
        let out = unshared(&full);
        assert!(
            out.status.success(),
            "{name} failed without a network: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        std::fs::read(w("g.jpg")).unwrap(),
        std::fs::read(photo).unwrap(),
        "unseal gave the file back"
    );
    let verdict = unshared(&["--data-dir", &data, "verify", &stamped]);
    assert!(String::from_utf8_lossy(&verdict.stdout).contains("verified"));

    // The check catches a command that does use the network.
    let (_, foreign) = traced(
        &[
            "--data-dir",
            &data,
            "verify",
            "--server",
            "http://127.0.0.1:9",
            &stamped,
        ],
        &work.path().join("trace-server"),
    );
    assert!(
        foreign.iter().any(|l| l.contains("AF_INET")),
        "verify --server opened no socket the check saw: {foreign:#?}"
    );
}
