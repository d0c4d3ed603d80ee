//! `pixseal keys init|list|rotate|rewrap|trust-anchor`: the regions' master keys in the
//! configured key provider, the receipt-signing key and the C2PA signing identity.

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
    /// (the blobs are untouched), so older versions can then be retired.
    Rewrap,
    /// Print the PEM of the root certificate that verifiers should trust for this
    /// installation's manifests.
    TrustAnchor,
}

pub fn run(config: &Config, args: Args, json: bool) -> Outcome {
    if matches!(args, Args::TrustAnchor) {
        return trust_anchor(config);
    }
    let provider = match config.key_provider() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error[{}]: {e:#}", e.code());
            return Outcome::Internal;
        }
    };
    if matches!(args, Args::Rewrap) {
        return rewrap(config, provider.as_ref(), json);
    }
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
            Args::Init | Args::List | Args::Rewrap | Args::TrustAnchor => {
                provider.key_versions(region)
            }
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

/// A wrapped key `keys rewrap` moves, and where it is stored.
enum Wrapped {
    Artifact(String),
    CodeKey,
    InstallationSecret(String),
}

/// `keys rewrap`: every wrapped data key in the artifact database, moved to the latest version.
fn rewrap(config: &Config, provider: &dyn pixseal_seal::KeyProvider, json: bool) -> Outcome {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let res = super::block_on(async {
        let db = pixseal_store::Db::connect(config.database_url().expose()).await?;
        let (mut moved, mut current, mut failed) = (0u64, 0u64, 0u64);
        // Artifacts' data keys, each region's code secret (verification codes), then the
        // installation secrets (proof-of-work challenges).
        let mut all: Vec<(Wrapped, String, String)> = db
            .wrapped_keys()
            .await?
            .into_iter()
            .map(|(id, region, stored)| (Wrapped::Artifact(id), region, stored))
            .collect();
        all.extend(
            db.code_keys()
                .await?
                .into_iter()
                .map(|(region, stored)| (Wrapped::CodeKey, region, stored)),
        );
        all.extend(db.installation_secrets().await?.into_iter().map(
            |(purpose, region, stored)| (Wrapped::InstallationSecret(purpose), region, stored),
        ));
        // Artifacts of a tenant with a key of its own move to that key's latest version.
        let mut tenant_providers: std::collections::HashMap<
            String,
            pixseal_seal::TransitKeyProvider,
        > = Default::default();
        for (id, region, stored) in all {
            let old = pixseal_seal::WrappedKey::from_bytes(&b64.decode(&stored)?)?;
            let provider: &dyn pixseal_seal::KeyProvider =
                if old.key_name == provider.key_name(&region)? {
                    provider
                } else {
                    let slot = format!("{region}/{}", old.key_name);
                    if !tenant_providers.contains_key(&slot) {
                        let p = config.keys.open_tenant_provider(&region, &old.key_name)?;
                        tenant_providers.insert(slot.clone(), p);
                    }
                    &tenant_providers[&slot]
                };
            // One tenant's key gone (crypto-shredded) fails its artifacts, not the others'.
            let latest = match provider.key_versions(&region) {
                Ok(v) => v.latest,
                Err(e) => {
                    eprintln!("error[{}]: key {:?}: {e}", e.code(), old.key_name);
                    failed += 1;
                    continue;
                }
            };
            if old.version >= latest {
                current += 1;
                continue;
            }
            match provider.rewrap(&old, &region) {
                Ok(new) => {
                    let new = b64.encode(new.to_bytes());
                    let replaced = match &id {
                        Wrapped::Artifact(id) => db.replace_wrapped_key(id, &stored, &new).await?,
                        Wrapped::CodeKey => db.replace_code_key(&region, &stored, &new).await?,
                        Wrapped::InstallationSecret(p) => {
                            db.replace_installation_secret(p, &stored, &new).await?
                        }
                    };
                    if replaced {
                        moved += 1;
                    }
                }
                Err(e) => {
                    let what = match id {
                        Wrapped::Artifact(i) => format!("artifact {i}"),
                        Wrapped::CodeKey => format!("code key of {region}"),
                        Wrapped::InstallationSecret(p) => format!("installation secret {p}"),
                    };
                    eprintln!("error[{}]: {what}: {e}", e.code());
                    failed += 1;
                }
            }
        }
        super::audit::record(
            &db,
            "key.rewrap",
            "artifacts",
            if failed == 0 { "ok" } else { "partial" },
            &format!("moved {moved}, failed {failed}"),
        )
        .await;
        Ok::<_, anyhow::Error>((moved, current, failed))
    });
    match res {
        Ok((moved, current, failed)) => {
            if json {
                println!(
                    "{}",
                    json!({"status": if failed == 0 { "ok" } else { "error" }, "rewrapped": moved, "already_current": current, "failed": failed})
                );
            } else {
                println!(
                    "rewrapped {moved} data key(s); {current} already on the latest version; {failed} failed"
                );
            }
            if failed == 0 {
                Outcome::Ok
            } else {
                Outcome::Internal
            }
        }
        Err(e) => {
            eprintln!("error[internal]: {e:#}");
            Outcome::Internal
        }
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
