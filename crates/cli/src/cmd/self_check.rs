//! `pixseal self-check`: this executable against the release's signed `SHA256SUMS`. The sums'
//! minisign signature is checked with the release public key compiled in at build time (the
//! release script sets it) or the one given; then the running file's SHA-256 against its line.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::Outcome;

/// The release public key compiled in (minisign base64), if the build was a release build.
const RELEASE_PUBLIC_KEY: Option<&str> = option_env!("PIXSEAL_RELEASE_PUBLIC_KEY");

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The signed sums file (default: SHA256SUMS beside the executable); its signature is
    /// FILE.minisig.
    #[arg(long, value_name = "FILE")]
    sums: Option<PathBuf>,
    /// A minisign public key (base64, or a minisign.pub file) instead of the compiled-in one.
    #[arg(long, value_name = "KEY")]
    public_key: Option<String>,
}

/// Why a self-check did not pass: the files are wrong (`Mismatch`, exit 2) or missing.
enum Failure {
    Mismatch(String),
    Missing(anyhow::Error),
}

fn public_key(given: Option<&str>) -> anyhow::Result<minisign_verify::PublicKey> {
    let text = match given.or(RELEASE_PUBLIC_KEY) {
        Some(k) => k,
        None => bail!("this build carries no release public key; pass --public-key"),
    };
    let key = if Path::new(text).is_file() {
        minisign_verify::PublicKey::from_file(text)
    } else {
        minisign_verify::PublicKey::from_base64(text.trim())
    };
    key.map_err(|e| anyhow!("not a minisign public key: {e}"))
}

fn check(args: &Args) -> Result<(PathBuf, String), Failure> {
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .context("locating this executable")
        .map_err(Failure::Missing)?;
    let sums_path = match &args.sums {
        Some(p) => p.clone(),
        None => exe.with_file_name("SHA256SUMS"),
    };
    let key = public_key(args.public_key.as_deref()).map_err(Failure::Missing)?;
    let sums = std::fs::read(&sums_path)
        .with_context(|| format!("reading {}", sums_path.display()))
        .map_err(Failure::Missing)?;
    let sig_path = PathBuf::from(format!("{}.minisig", sums_path.display()));
    let sig = std::fs::read_to_string(&sig_path)
        .with_context(|| format!("reading {}", sig_path.display()))
        .map_err(Failure::Missing)?;
    let sig = minisign_verify::Signature::decode(&sig).map_err(|e| {
        Failure::Mismatch(format!(
            "{} is not a minisign signature ({e})",
            sig_path.display()
        ))
    })?;
    key.verify(&sums, &sig, false).map_err(|e| {
        Failure::Mismatch(format!(
            "{} is not signed by the release key ({e})",
            sums_path.display()
        ))
    })?;
    let name = exe
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Failure::Missing(anyhow!("the executable's name is not UTF-8")))?;
    let want = String::from_utf8_lossy(&sums)
        .lines()
        .filter_map(|l| l.split_once("  "))
        .find(|(_, file)| file.trim_start_matches('*') == name)
        .map(|(hash, _)| hash.to_ascii_lowercase())
        .ok_or_else(|| {
            Failure::Mismatch(format!("{} has no line for {name}", sums_path.display()))
        })?;
    let bytes = std::fs::read(&exe)
        .with_context(|| format!("reading {}", exe.display()))
        .map_err(Failure::Missing)?;
    let got = hex::encode(Sha256::digest(&bytes));
    if got != want {
        return Err(Failure::Mismatch(format!(
            "{} has SHA-256 {got}, the signed sums say {want}",
            exe.display()
        )));
    }
    Ok((exe, got))
}

pub fn run(args: Args, json: bool) -> Outcome {
    let (status, line, outcome) = match check(&args) {
        Ok((exe, sha)) => (
            "ok",
            format!(
                "self-check ok: {} matches the signed release sums (SHA-256 {sha})",
                exe.display()
            ),
            Outcome::Ok,
        ),
        Err(Failure::Mismatch(why)) => (
            "mismatch",
            format!("self-check FAILED: {why}"),
            Outcome::Rejected,
        ),
        Err(Failure::Missing(e)) => (
            "error",
            format!("self-check not possible: {e:#}"),
            Outcome::Usage,
        ),
    };
    if json {
        println!("{}", json!({"status": status, "message": line}));
    } else if outcome == Outcome::Ok {
        println!("{line}");
    } else {
        eprintln!("{line}");
    }
    outcome
}
