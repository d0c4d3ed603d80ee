//! `pixseal purge [--dry-run]`: one retention purge pass now (the server also runs it on a timer).

use serde_json::json;

use crate::Outcome;
use crate::config::Config;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only count what is due; delete nothing.
    #[arg(long)]
    dry_run: bool,
}

pub fn run(config: &Config, args: Args, json: bool) -> Outcome {
    let res = super::block_on(async {
        let services = super::services(config).await?;
        if args.dry_run {
            return Ok::<_, anyhow::Error>(Pass::Dry(services.count_due().await?));
        }
        Ok(Pass::Done(services.purge().await?))
    });
    match res {
        Ok(Pass::Dry(n)) => {
            if json {
                println!(
                    "{}",
                    json!({"status": "ok", "dry_run": true, "due": n, "purged": 0, "failed": 0})
                );
            } else {
                println!("{n} artifact(s) due for purge (dry run: nothing deleted)");
            }
            Outcome::Ok
        }
        Ok(Pass::Done(r)) => {
            if json {
                // Every count of the pass: artifacts, and what was forgotten on the way.
                let mut v = serde_json::to_value(&r).unwrap_or_default();
                v["status"] = json!(if r.failed == 0 { "ok" } else { "error" });
                v["dry_run"] = json!(false);
                v["due"] = json!(r.purged + r.failed);
                println!("{v}");
            } else {
                println!(
                    "purged {} artifact(s), {} failed; forgot {} client IP(s), {} code(s), {} \
                     session(s), {} challenge(s), {} pickup link(s)",
                    r.purged,
                    r.failed,
                    r.ips_forgotten,
                    r.codes_forgotten,
                    r.sessions_ended,
                    r.challenges_forgotten,
                    r.pickups_forgotten
                );
            }
            if r.failed == 0 {
                Outcome::Ok
            } else {
                Outcome::Internal
            }
        }
        Err(e) => super::fail(&e, json),
    }
}

/// What `purge` did: counted only, or a pass.
enum Pass {
    Dry(u64),
    Done(pixseal_service::PurgeReport),
}
