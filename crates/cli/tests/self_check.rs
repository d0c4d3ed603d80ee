//! `pixseal self-check` on a release laid out as scripts/release.sh lays it out: the
//! executable, `SHA256SUMS`, and its minisign signature made by the minisign tool. One flipped
//! byte in the executable, sums signed by another key, or sums changed after signing: each
//! fails with exit code 2.
//!
//! Needs the minisign tool (`scripts/setup.sh` installs it); without it the test says so and
//! stops, except under CI=true, where it fails.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use sha2::{Digest, Sha256};

fn minisign(args: &[&str], dir: &Path) {
    let out = Command::new("minisign")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "minisign {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn release(dir: &Path, exe: &[u8], key: &str) {
    std::fs::write(dir.join("pixseal"), exe).unwrap();
    let mut perms = std::fs::metadata(dir.join("pixseal"))
        .unwrap()
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(dir.join("pixseal"), perms).unwrap();
    let sums = format!("{}  pixseal\n", hex::encode(Sha256::digest(exe)));
    std::fs::write(dir.join("SHA256SUMS"), sums).unwrap();
    minisign(&["-S", "-s", key, "-m", "SHA256SUMS"], dir);
}

fn self_check(dir: &Path, public: &Path) -> Output {
    Command::new(dir.join("pixseal"))
        .args(["self-check", "--public-key"])
        .arg(public)
        .output()
        .unwrap()
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_release_checks_itself_and_one_flipped_byte_fails() {
    if Command::new("minisign").arg("-v").output().is_err() {
        let msg = "self-check test not run: the minisign tool is not installed";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("{msg}");
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    minisign(
        &["-G", "-W", "-p", "release.pub", "-s", "release.key"],
        keys.path(),
    );
    minisign(
        &["-G", "-W", "-p", "other.pub", "-s", "other.key"],
        keys.path(),
    );
    let key = |n: &str| keys.path().join(n).to_str().unwrap().to_string();
    let exe = std::fs::read(bin()).unwrap();

    let good = tempfile::tempdir().unwrap();
    release(good.path(), &exe, &key("release.key"));
    let out = self_check(good.path(), &keys.path().join("release.pub"));
    assert!(out.status.success(), "{}", said(&out));
    let line = said(&out);
    assert!(line.starts_with("self-check ok:"), "{line}");
    assert_eq!(line.lines().count(), 1, "one line: {line}");

    // One byte of a help text changed: the program still runs, its hash no longer matches.
    let needle = b"Content-bound verification codes";
    let at = exe
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the help text is in the executable");
    let mut flipped = exe.clone();
    flipped[at] ^= 0x20;
    let bad = tempfile::tempdir().unwrap();
    release(bad.path(), &exe, &key("release.key"));
    std::fs::write(bad.path().join("pixseal"), &flipped).unwrap();
    let out = self_check(bad.path(), &keys.path().join("release.pub"));
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(said(&out).contains("self-check FAILED"), "{}", said(&out));

    // Sums signed by a key that is not the release's.
    let other = tempfile::tempdir().unwrap();
    release(other.path(), &exe, &key("other.key"));
    let out = self_check(other.path(), &keys.path().join("release.pub"));
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(
        said(&out).contains("not signed by the release key"),
        "{}",
        said(&out)
    );

    // The sums changed after signing (to match a changed executable).
    std::fs::write(good.path().join("pixseal"), &flipped).unwrap();
    let sums = format!("{}  pixseal\n", hex::encode(Sha256::digest(&flipped)));
    std::fs::write(good.path().join("SHA256SUMS"), sums).unwrap();
    let out = self_check(good.path(), &keys.path().join("release.pub"));
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));

    // A test build carries no release key: it says so rather than passing.
    let out = pixseal(&["self-check"]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(
        said(&out).contains("no release public key"),
        "{}",
        said(&out)
    );
}
