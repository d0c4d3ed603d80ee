//! `pixseal receipt verify RECEIPT.json [--pubkey FILE]`: check a deletion receipt offline.

use std::path::PathBuf;

use pixseal_proof::SignedReceipt;
use serde_json::json;

use crate::Outcome;
use crate::config::Config;

#[derive(clap::Subcommand, Debug)]
pub enum Args {
    /// Verify a receipt's Ed25519 signature (exit 0 valid, 2 invalid).
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
    // Accept the bare signed receipt, or a JSON file holding it under "receipt" as served.
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
            if json {
                println!(
                    "{}",
                    json!({"input": shown, "status": "ok", "verdict": "valid", "key_id": signed.key_id,
                           "artifact_id": r.artifact_id, "proof_id": r.proof_id, "deleted_at": r.deleted_at, "reason": r.reason})
                );
            } else {
                println!(
                    "{shown}: valid deletion receipt {} — artifact {} (proof {}, sha256 {}) deleted {} ({}), signed by key {}",
                    r.receipt_id,
                    r.artifact_id,
                    r.proof_id,
                    r.sha256,
                    r.deleted_at,
                    r.reason,
                    signed.key_id
                );
            }
            Outcome::Ok
        }
        Err(e) => {
            fail("tampered", e.to_string());
            Outcome::Rejected
        }
    }
}
