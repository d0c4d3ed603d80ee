//! `pixseal keys init|list|rotate`: the regions' master keys in the configured key provider.

use serde_json::json;

use crate::Outcome;
use crate::config::Config;

#[derive(clap::Subcommand, Debug)]
pub enum Args {
    /// Create the local key file (0600) with one master key per configured region, or check
    /// that the Transit keys are reachable.
    Init,
    /// Key versions per region.
    List,
    /// Add a new master key version (one region, or all); new objects use it, old ones still open.
    Rotate {
        #[arg(long)]
        region: Option<String>,
    },
}

pub fn run(config: &Config, args: Args, json: bool) -> Outcome {
    let provider = match config.key_provider() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error[{}]: {e:#}", key_error_code(&e));
            return Outcome::Internal;
        }
    };
    let regions: Vec<String> = match &args {
        Args::Rotate { region: Some(r) } => {
            if !config.regions.contains(r) {
                eprintln!(
                    "error[region_mismatch]: region {r:?} is not one of {:?}",
                    config.regions
                );
                return Outcome::Usage;
            }
            vec![r.clone()]
        }
        _ => config.regions.clone(),
    };
    let mut worst = Outcome::Ok;
    if matches!(args, Args::Init | Args::List) {
        match pixseal_proof::ReceiptSigner::open(&config.keys.receipt_key(&config.data_dir)) {
            Ok(s) if json => println!(
                "{}",
                json!({"key": "receipt-signing", "status": "ok", "alg": "Ed25519", "key_id": s.key_id()})
            ),
            Ok(s) => println!("receipts: Ed25519 key {}", s.key_id()),
            Err(e) => {
                eprintln!("error[key_unavailable]: receipt-signing key: {e}");
                worst = Outcome::Internal;
            }
        }
    }
    let mut rotated = Vec::new();
    for region in &regions {
        let res = match args {
            Args::Rotate { .. } => provider
                .rotate(region)
                .and_then(|_| provider.key_versions(region)),
            Args::Init | Args::List => provider.key_versions(region),
        };
        match res {
            Ok(v) => {
                if matches!(args, Args::Rotate { .. }) {
                    rotated.push((region.clone(), v.latest));
                }
                if json {
                    println!(
                        "{}",
                        json!({"region": region, "status": "ok", "provider": provider.id().as_str(),
                               "key_name": v.key_name, "latest": v.latest,
                               "min_decryption_version": v.min_decryption_version, "versions": v.versions})
                    );
                } else {
                    println!(
                        "{region}: {} key {} latest v{} (min decryption v{}, versions {:?})",
                        provider.id().as_str(),
                        v.key_name,
                        v.latest,
                        v.min_decryption_version,
                        v.versions
                    );
                }
            }
            Err(e) => {
                eprintln!("error[{}]: region {region}: {e}", e.code());
                worst = Outcome::Internal;
            }
        }
    }
    if !rotated.is_empty() {
        // Key rotation is audited in the installation's database (best effort: the keys CLI
        // also works on machines without one).
        let url = config.database_url();
        let _ = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| {
                rt.block_on(async {
                    if let Ok(db) = pixseal_store::Db::connect(&url).await {
                        for (region, v) in &rotated {
                            super::audit::record(&db, "key.rotate", region, "ok", &format!("v{v}"))
                                .await;
                        }
                    }
                })
            });
    }
    worst
}

fn key_error_code(e: &anyhow::Error) -> &'static str {
    e.downcast_ref::<pixseal_seal::SealError>()
        .map_or("config", |s| s.code())
}
