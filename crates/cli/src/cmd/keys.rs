//! `pixseal keys init|list|rotate|rewrap|trust-anchor|wrapping-key`: the regions' master keys
//! in the configured key provider, the receipt-signing key and the C2PA signing identity.

use serde_json::json;

use crate::Outcome;
use crate::config::Config;

#[derive(clap::Subcommand, Debug)]
pub enum Args {
    /// Create the local key file (0600) with one master key per configured region (or check
    /// that the Transit keys are reachable), the receipt-signing key and, unless a production
    /// chain is configured, the development C2PA signing certificate.
    Init,
    /// Key versions per region.
    List,
    /// Add a new master key version (one region, or all); new objects use it, old ones still open.
    Rotate {
        #[arg(long)]
        region: Option<String>,
    },
    /// Re-wrap every stored artifact's data key under its region's latest master key version
    /// (the blobs are untouched), so older versions can then be retired. With `--tenant`,
    /// move what was sealed for that tenant before it had its current key onto that key.
    Rewrap {
        /// The tenant whose artifacts move onto its own current key (`tenant set-key`).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Print the PEM of the root certificate that verifiers should trust for this
    /// installation's manifests.
    TrustAnchor,
    /// Print the installation's Transit wrapping key (RSA, PEM): what a tenant wraps its own
    /// key under (`pixseal tenant wrap-key`) before it is imported.
    WrappingKey,
}

pub fn run(config: &Config, args: Args, json: bool) -> Outcome {
    match &args {
        Args::TrustAnchor => return trust_anchor(config),
        Args::WrappingKey => return wrapping_key(config, json),
        Args::Rewrap { tenant: Some(t) } => return move_to_tenant_key(config, t, json),
        Args::Rewrap { tenant: None } => return rewrap(config, json),
        Args::Init | Args::List | Args::Rotate { .. } => {}
    }
    let provider = match config.key_provider() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error[{}]: {e:#}", e.code());
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
        match config.receipt_signer() {
            Ok(s) if json => println!(
                "{}",
                json!({"key": "receipt-signing", "status": "ok", "alg": "Ed25519", "provider": s.provider(), "key_id": s.key_id()})
            ),
            Ok(s) => println!("receipts: {} Ed25519 key {}", s.provider(), s.key_id()),
            Err(e) => {
                eprintln!("error[key_unavailable]: receipt-signing key: {e:#}");
                worst = Outcome::Internal;
            }
        }
    }
    if matches!(args, Args::Init | Args::List) {
        worst = worst.max(c2pa_identity(config, json));
    }
    let mut rotated = Vec::new();
    for region in &regions {
        let res = match args {
            Args::Rotate { .. } => provider
                .rotate(region)
                .and_then(|_| provider.key_versions(region)),
            Args::Init
            | Args::List
            | Args::Rewrap { .. }
            | Args::TrustAnchor
            | Args::WrappingKey => provider.key_versions(region),
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
        let _ = super::block_on(async {
            let db = pixseal_store::Db::connect(url.expose()).await?;
            for (region, v) in &rotated {
                super::audit::record(&db, "key.rotate", region, "ok", &format!("v{v}")).await;
            }
            Ok(())
        });
    }
    worst
}

/// `keys wrapping-key`: Transit's RSA wrapping key, PEM.
fn wrapping_key(config: &Config, json: bool) -> Outcome {
    match config.keys.transit_wrapping_key() {
        Ok(pem) if json => {
            println!("{}", json!({"wrapping_key": pem}));
            Outcome::Ok
        }
        Ok(pem) => {
            println!("{}", pem.trim_end());
            Outcome::Ok
        }
        Err(e) => {
            eprintln!("error[{}]: {e}", e.code());
            if matches!(e, pixseal_seal::SealError::Config(_)) {
                Outcome::Usage
            } else {
                Outcome::Internal
            }
        }
    }
}

/// `keys rewrap`: every wrapped data key in the database, moved to the latest version.
fn rewrap(config: &Config, json: bool) -> Outcome {
    let res = super::block_on(async {
        let s = super::services(config).await?;
        Ok::<_, anyhow::Error>(s.rewrap_data_keys(&pixseal_service::Actor::Cli).await?)
    });
    match res {
        Ok(r) => {
            for f in &r.failed {
                eprintln!("error: {f}");
            }
            let failed = r.failed.len();
            if json {
                println!(
                    "{}",
                    json!({"status": if failed == 0 { "ok" } else { "error" }, "rewrapped": r.rewrapped,
                           "already_current": r.already_current, "failed": failed})
                );
            } else {
                println!(
                    "rewrapped {} data key(s); {} already on the latest version; {failed} failed",
                    r.rewrapped, r.already_current
                );
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

/// `keys rewrap --tenant T`: T's artifacts and evidence onto its current key.
fn move_to_tenant_key(config: &Config, tenant: &str, json: bool) -> Outcome {
    let res = super::block_on(async {
        let s = super::services(config).await?;
        Ok::<_, anyhow::Error>(
            s.move_to_tenant_key(&pixseal_service::Actor::Cli, tenant)
                .await?,
        )
    });
    match res {
        Ok(r) => {
            for f in &r.failed {
                eprintln!("error: {f}");
            }
            if json {
                println!(
                    "{}",
                    json!({"tenant": tenant, "status": if r.failed.is_empty() { "ok" } else { "error" },
                           "moved": r.moved, "already": r.already, "failed": r.failed.len()})
                );
            } else {
                println!(
                    "tenant {tenant}: moved {} item(s) onto its key; {} already there; {} failed",
                    r.moved,
                    r.already,
                    r.failed.len()
                );
            }
            if r.failed.is_empty() {
                Outcome::Ok
            } else {
                Outcome::Internal
            }
        }
        Err(e) => super::fail(&e, json),
    }
}

/// The C2PA signing identity: made when missing (development chain), then described.
fn c2pa_identity(config: &Config, json: bool) -> Outcome {
    let res = crate::config::signing_identity(config).map(|id| {
        (
            id.development,
            id.signer.cert_chain().len(),
            id.signer.alg(),
            id.signer.kind(),
        )
    });
    match res {
        Ok((development, certs, alg, signer)) => {
            let chain = if config.provenance.cert_chain.is_empty() {
                pixseal_provenance::DevPaths::in_dir(
                    &pixseal_provenance::ProvenanceConfig::dev_dir(&config.data_dir),
                )
                .chain
                .display()
                .to_string()
            } else {
                config.provenance.cert_chain.clone()
            };
            if json {
                println!(
                    "{}",
                    json!({"key": "c2pa-signing", "status": "ok", "alg": alg, "signer": signer,
                           "chain": chain, "certificates": certs, "development": development})
                );
            } else {
                println!(
                    "c2pa: {} signing certificate {chain}, key in {}{}",
                    if development {
                        "development"
                    } else {
                        "configured"
                    },
                    signer.as_str(),
                    if development {
                        " (trusted by nobody else; see `pixseal keys trust-anchor`)"
                    } else {
                        ""
                    }
                );
            }
            Outcome::Ok
        }
        Err(e) => {
            eprintln!("error[key_unavailable]: C2PA signing identity: {e:#}");
            Outcome::Internal
        }
    }
}

/// `keys trust-anchor`: the root PEM verifiers should trust.
fn trust_anchor(config: &Config) -> Outcome {
    // The development root is made with the signing identity (for the held key, when the
    // key is in Transit or on a token).
    if config.provenance.trust_anchors.is_empty()
        && let Err(e) = config.signing_identity()
    {
        eprintln!("error[key_unavailable]: {e}");
        return Outcome::Internal;
    }
    match config.provenance.anchors_pem(&config.data_dir) {
        Ok(pem) if pem.contains("-----BEGIN CERTIFICATE-----") => {
            print!("{pem}");
            Outcome::Ok
        }
        Ok(_) => {
            eprintln!(
                "error[not_found]: no trust anchor: set [provenance].trust_anchors to the root of the configured chain"
            );
            Outcome::Usage
        }
        Err(e) => {
            eprintln!("error[key_unavailable]: {e}");
            Outcome::Internal
        }
    }
}
