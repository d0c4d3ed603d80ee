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
            return Ok::<_, anyhow::Error>((services.count_due().await?, 0, 0, true));
        }
        let r = services.purge().await?;
        Ok((r.purged, r.failed, r.ips_forgotten, false))
    });
    match res {
        Ok((n, failed, ips, dry)) => {
            if json {
                println!(
                    "{}",
                    json!({"status": if failed == 0 { "ok" } else { "error" }, "dry_run": dry, "due": if dry { n } else { n + failed }, "purged": if dry { 0 } else { n }, "failed": failed, "ips_forgotten": ips})
                );
            } else if dry {
                println!("{n} artifact(s) due for purge (dry run: nothing deleted)");
            } else {
                println!("purged {n} artifact(s), {failed} failed, forgot {ips} client IP(s)");
            }
            if failed == 0 {
                Outcome::Ok
            } else {
                Outcome::Internal
            }
        }
        Err(e) => super::fail(&e, json),
    }
}
