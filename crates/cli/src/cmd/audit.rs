//! `pixseal audit verify`: recompute the audit log's hash chain and report the first broken link.

use serde_json::json;

use crate::Outcome;
use crate::config::Config;

#[derive(clap::Subcommand, Debug)]
pub enum Args {
    /// Check the chain (exit 0 intact, 2 broken).
    Verify,
}

pub fn run(config: &Config, _args: Args, json: bool) -> Outcome {
    let res = super::block_on(async {
        let db = pixseal_store::Db::connect(&config.database_url()).await?;
        Ok::<_, anyhow::Error>(db.audit_verify().await?)
    });
    match res {
        Ok((n, None)) => {
            if json {
                println!(
                    "{}",
                    json!({"status": "ok", "verdict": "intact", "entries": n})
                );
            } else {
                println!("audit chain intact: {n} entries");
            }
            Outcome::Ok
        }
        Ok((n, Some(b))) => {
            if json {
                println!(
                    "{}",
                    json!({"status": "error", "code": "tampered", "verdict": "broken", "entries": n, "seq": b.seq, "message": b.reason})
                );
            }
            eprintln!(
                "error[tampered]: audit chain broken at entry {}: {}",
                b.seq, b.reason
            );
            Outcome::Rejected
        }
        Err(e) => {
            eprintln!("error[internal]: {e:#}");
            Outcome::Internal
        }
    }
}

/// Best-effort audit entry for a CLI action (the action has happened; a failure is reported).
pub async fn record(
    db: &pixseal_store::Db,
    action: &str,
    object: &str,
    outcome: &str,
    detail: &str,
) {
    if let Err(e) = db.audit("cli", action, object, outcome, detail).await {
        eprintln!("warning: audit append failed: {e}");
    }
}
