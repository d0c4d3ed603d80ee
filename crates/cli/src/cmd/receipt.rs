//! `pixseal receipt verify RECEIPT.json [--pubkey FILE]`: check a deletion receipt offline, in
//! either view (docs/receipts.md).

use std::path::PathBuf;

use pixseal_proof::SignedReceipt;
use serde_json::json;

use crate::Outcome;
use crate::config::Config;

#[derive(clap::Subcommand, Debug)]
pub enum Args {
    /// Verify a receipt's Ed25519 signature and, in the tenant's view, that its opening opens
    /// the signed subject (exit 0 valid, 2 invalid).
    Verify {
        receipt: PathBuf,
        /// Public key PEM (as served at /v1/keys/receipts); default: this installation's key
        /// (the local key file, or the Transit key when keys.receipt_provider = "transit").
        #[arg(long)]
        pubkey: Option<PathBuf>,
    },
}

pub fn run(config: &Config, args: Args, json: bool) -> Outcome {
    let Args::Verify { receipt, pubkey } = args;
    let shown = receipt.display().to_string();
    let fail = |code: &str, msg: String| {
        if json {
            println!(
                "{}",
                json!({"input": shown, "status": "error", "code": code, "message": msg})
            );
        }
        eprintln!("error[{code}]: {shown}: {msg}");
    };
    let text = match std::fs::read_to_string(&receipt) {
        Ok(t) => t,
        Err(e) => {
            fail("not_found", format!("cannot read: {e}"));
            return Outcome::Rejected;
        }
    };
    // The public view (the signed receipt alone) or the tenant's view (with `opening`, which
    // is then checked against the signed subject).
    let parsed: Result<SignedReceipt, _> = serde_json::from_str(&text);
    let signed = match parsed {
        Ok(s) => s,
        Err(e) => {
            fail("corrupt", format!("not a pixseal deletion receipt: {e}"));
            return Outcome::Rejected;
        }
    };
    let pem = match pubkey {
        Some(p) => match std::fs::read_to_string(&p) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error[usage]: cannot read {}: {e}", p.display());
                return Outcome::Usage;
            }
        },
        None => match config.receipt_signer() {
            Ok(s) => s.public_key_pem(),
            Err(e) => {
                eprintln!("error[key_unavailable]: {e:#}");
                return Outcome::Internal;
            }
        },
    };
    match signed.verify_pem(&pem) {
        Ok(()) => {
            let r = &signed.receipt;
            // Version 1 names the artifact itself; version 2 only through its opening, which
            // the tenant's view carries and the public view does not.
            let named = r.named(signed.opening.as_ref());
            if json {
                let mut out = json!({"input": shown, "status": "ok", "verdict": "valid", "key_id": signed.key_id,
                       "version": r.version(), "receipt_id": r.receipt_id(), "proof_id": r.proof_id(),
                       "deleted_at": r.deleted_at(), "reason": r.reason()});
                if let Some((artifact_id, original_sha256)) = named {
                    out["artifact_id"] = json!(artifact_id);
                    out["original_sha256"] = json!(original_sha256);
                }
                println!("{out}");
            } else {
                let artifact = match named {
                    Some((id, _)) => format!("artifact {id}"),
                    None => "an artifact (named only by the receipt's subject)".to_string(),
                };
                println!(
                    "{shown}: valid deletion receipt {} (v{}) — {artifact} (proof {}, sha256 {}) deleted {} ({}), signed by key {}",
                    r.receipt_id(),
                    r.version(),
                    r.proof_id(),
                    r.sha256(),
                    r.deleted_at(),
                    r.reason(),
                    signed.key_id
                );
            }
            Outcome::Ok
        }
        Err(e) => {
            fail(e.code(), e.to_string());
            Outcome::Rejected
        }
    }
}
