//! `pixseal audit verify [--checkpoint FILE]`: recompute the audit log's hash chain and report
//! the first broken link, or a chain that no longer holds a kept checkpoint; `pixseal audit
//! checkpoint`: print the chain's head signed with the receipt key, to keep off the box.

use std::path::PathBuf;

use pixseal_proof::SignedCheckpoint;
use serde_json::json;

use crate::Outcome;
use crate::config::Config;

#[derive(clap::Subcommand, Debug)]
pub enum Args {
    /// Check the chain (exit 0 intact, 2 broken).
    Verify {
        /// A checkpoint printed earlier by `pixseal audit checkpoint`: the chain must still
        /// hold the entry it saw, with the same hash (a cut or rewritten tail is caught even
        /// when the head was rewritten too).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
    },
    /// Print the chain's head (sequence number and hash) signed with the receipt key, as one
    /// JSON line: keep it somewhere the database's administrators cannot write.
    Checkpoint,
}

pub fn run(config: &Config, args: Args, json: bool) -> Outcome {
    match args {
        Args::Checkpoint => checkpoint(config, json),
        Args::Verify {
            checkpoint: Some(file),
        } => against(config, &file, json),
        Args::Verify { checkpoint: None } => verify(config, json),
    }
}

fn checkpoint(config: &Config, json: bool) -> Outcome {
    let res = super::block_on(async {
        let services = super::services(config).await?;
        Ok::<_, anyhow::Error>(services.audit_checkpoint().await?)
    });
    match res {
        Ok(cp) => {
            // The checkpoint itself is the output, whatever --json says: it is what gets kept.
            let _ = json;
            println!("{}", serde_json::to_string(&cp).unwrap_or_default());
            Outcome::Ok
        }
        Err(e) => super::fail(&e, json),
    }
}

fn against(config: &Config, file: &std::path::Path, json: bool) -> Outcome {
    let cp: SignedCheckpoint = match std::fs::read_to_string(file)
        .map_err(anyhow::Error::from)
        .and_then(|t| Ok(serde_json::from_str(t.trim())?))
    {
        Ok(cp) => cp,
        Err(e) => {
            eprintln!(
                "error[invalid_request]: {}: not a checkpoint: {e}",
                file.display()
            );
            return Outcome::Rejected;
        }
    };
    let res = super::block_on(async {
        let services = super::services(config).await?;
        Ok::<_, anyhow::Error>(services.audit_check(&cp).await?)
    });
    match res {
        Ok(c) => match &c.broken {
            None => {
                if json {
                    println!(
                        "{}",
                        json!({"status": "ok", "verdict": "intact", "entries": c.entries, "checkpoint_seq": c.checkpoint_seq})
                    );
                } else {
                    println!(
                        "audit chain intact: {} entries, extending the checkpoint at entry {}",
                        c.entries, c.checkpoint_seq
                    );
                }
                Outcome::Ok
            }
            Some(why) => {
                if json {
                    println!(
                        "{}",
                        json!({"status": "error", "code": "tampered", "verdict": "broken", "entries": c.entries, "checkpoint_seq": c.checkpoint_seq, "message": why})
                    );
                }
                eprintln!("error[tampered]: audit chain broken: {why}");
                Outcome::Rejected
            }
        },
        Err(e) => super::fail(&e, json),
    }
}

fn verify(config: &Config, json: bool) -> Outcome {
    let res = super::block_on(async {
        let db = pixseal_store::Db::connect(config.database_url().expose()).await?;
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
