//! `pixseal seal` / `pixseal unseal`: the sealed-object format alone, file to file, streamed.

use std::fs;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use pixseal_seal::{KeyPlacement, ObjectRef, Sealer};
use serde_json::json;

use crate::Outcome;
use crate::config::Config;
use crate::report::Reporter;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Input file.
    input: PathBuf,
    /// Output file (written whole or not at all).
    #[arg(short = 'o', long = "out")]
    out: PathBuf,
    /// Object id bound into the sealed file.
    #[arg(long)]
    object_id: String,
    /// Tenant bound into the sealed file.
    #[arg(long)]
    tenant: String,
    /// Region: selects the master key, and is bound into the sealed file.
    #[arg(long)]
    region: String,
}

pub fn run(config: &Config, args: Args, json: bool, unseal: bool) -> Outcome {
    let reporter = Reporter::new(json, None);
    let shown = args.input.display().to_string();
    if !config.regions.contains(&args.region) {
        reporter.error(
            &shown,
            "region_mismatch",
            &format!(
                "region {:?} is not one of {:?}",
                args.region, config.regions
            ),
        );
        return Outcome::Rejected;
    }
    let provider = match config.key_provider() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error[key_unavailable]: {e:#}");
            return Outcome::Internal;
        }
    };
    let obj = ObjectRef {
        object_id: &args.object_id,
        tenant: &args.tenant,
        region: &args.region,
    };
    // A file on its own must carry its wrapped key: embedded placement.
    let sealer = Sealer::new(provider.as_ref(), KeyPlacement::Embedded);
    let input = match fs::File::open(&args.input) {
        Ok(f) => BufReader::with_capacity(1 << 20, f),
        Err(e) => {
            reporter.error(&shown, "not_found", &format!("cannot read input: {e}"));
            return Outcome::Rejected;
        }
    };
    let result = write_atomic(&args.out, |w| {
        if unseal {
            sealer
                .open(input, w, &obj, None)
                .map(|n| json!({"plaintext_bytes": n}))
        } else {
            sealer.seal(input, w, &obj).map(|r| {
                json!({"plaintext_bytes": r.plaintext_len, "sealed_bytes": r.sealed_len,
                       "key_name": r.wrapped_key.key_name, "key_version": r.wrapped_key.version})
            })
        }
    });
    match result {
        Ok(v) => {
            let serde_json::Value::Object(fields) = v else {
                unreachable!("object literal")
            };
            let out = args.out.display().to_string();
            let verb = if unseal { "unsealed" } else { "sealed" };
            reporter.ok(&shown, &out, &format!("{shown} -> {out} ({verb})"), fields);
            Outcome::Ok
        }
        Err(WriteError::Seal(e)) => {
            reporter.error(&shown, e.code(), &e.to_string());
            match e.code() {
                "tampered" | "key_version_refused" | "key_not_found" => Outcome::Rejected,
                _ => Outcome::Internal,
            }
        }
        Err(WriteError::Io(e)) => {
            reporter.error(
                &shown,
                "internal",
                &format!("cannot write {}: {e}", args.out.display()),
            );
            Outcome::Internal
        }
    }
}

enum WriteError {
    Seal(pixseal_seal::SealError),
    Io(std::io::Error),
}

/// Stream into a hidden temporary file next to `path`; rename only on success, so a failed
/// unseal (tampered input) never leaves partial plaintext under the final name.
fn write_atomic<T>(
    path: &Path,
    f: impl FnOnce(&mut BufWriter<fs::File>) -> Result<T, pixseal_seal::SealError>,
) -> Result<T, WriteError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.partial-{}", std::process::id()));
    let file = fs::File::create(&tmp).map_err(WriteError::Io)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let res = f(&mut w).map_err(WriteError::Seal).and_then(|v| {
        w.flush().map_err(WriteError::Io)?;
        drop(w);
        fs::rename(&tmp, path).map_err(WriteError::Io)?;
        Ok(v)
    });
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}
