//! `pixseal serve`: the HTTP service on the configured (or embedded default) parts.

use std::sync::Arc;

use anyhow::{Context, Result};
use pixseal_server::AppState;
use pixseal_store::{BlobStore, Db};

use crate::Outcome;
use crate::config::Config;

/// A purge claim older than this belongs to a worker that died.
pub const PURGE_STALE_MS: i64 = 10 * 60_000;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Listen address (overrides [server].listen).
    #[arg(long)]
    listen: Option<String>,
}

pub fn run(config: &Config, args: Args) -> Outcome {
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PIXSEAL_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error[internal]: cannot start the runtime: {e}");
            return Outcome::Internal;
        }
    };
    match rt.block_on(serve(config, args)) {
        Ok(()) => Outcome::Ok,
        Err(e) => {
            eprintln!("error[internal]: {e:#}");
            Outcome::Internal
        }
    }
}

/// Open the configured database, blob store and key provider.
pub async fn open_state(config: &Config) -> Result<AppState> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let db = Db::connect(&config.database_url())
        .await
        .context("database")?;
    let blobs = BlobStore::open(&config.storage, &config.data_dir).context("blob store")?;
    let keys: Arc<dyn pixseal_seal::KeyProvider> =
        Arc::from(config.key_provider().context("key provider")?);
    let limits = config.limits.to_limits()?;
    // The Transit receipt signer loads its public key over blocking HTTP: off the runtime.
    let receipts = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || config.receipt_signer())
            .await
            .context("receipt signer task")?
            .context("receipt signer")?
    };
    let limiter =
        std::sync::Arc::new(pixseal_server::ratelimit::Limiter::new(&config.server).await);
    Ok(AppState::new(
        config.server.clone(),
        limits,
        db,
        blobs,
        keys,
        receipts,
        limiter,
    )
    .with_codes(config.codes.clone()))
}

async fn serve(config: &Config, args: Args) -> Result<()> {
    let identity = config.signing_identity().context("C2PA signing identity")?;
    let anchors = config.trust_anchors(&[])?;
    let state = open_state(config)
        .await?
        .with_provenance(pixseal_server::Provenance::new(
            std::sync::Arc::new(identity.signer),
            &anchors,
            &config.provenance.issuer_name,
            config.provenance.pdq_threshold,
        ));
    // Uploads that died with a previous process are at least this old.
    let grace_ms = config.server.repair_grace_secs as i64 * 1000;
    let report = pixseal_server::repair(&state, grace_ms)
        .await
        .map_err(|e| anyhow::anyhow!("repair pass: {}", e.message))?;
    if report.unfinished_rows + report.orphan_blobs > 0 {
        eprintln!(
            "repair: removed {} unfinished artifact(s), {} orphan blob(s)",
            report.unfinished_rows, report.orphan_blobs
        );
    }
    let listen = args.listen.unwrap_or_else(|| config.server.listen.clone());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    eprintln!(
        "pixseal serving on http://{addr} (data in {})",
        config.data_dir.display()
    );
    eprintln!(
        "first API key:  pixseal tenant create demo --region {r} && pixseal apikey create --tenant demo --scope artifacts:write --scope artifacts:read --scope artifacts:delete",
        r = config.regions.first().map(String::as_str).unwrap_or("us")
    );
    let shutdown = async {
        let ctrl_c = tokio::signal::ctrl_c();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
        tracing::info!("shutting down: finishing in-flight requests");
    };
    if config.server.purge_interval_secs > 0 {
        let (st, every) = (
            state.clone(),
            std::time::Duration::from_secs(config.server.purge_interval_secs),
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let (_, now) = pixseal_store::meta::now();
                match pixseal_server::purge_due(&st, now, 500, PURGE_STALE_MS).await {
                    Ok(r) if r.purged + r.failed + r.ips_forgotten > 0 => {
                        tracing::info!(
                            purged = r.purged,
                            failed = r.failed,
                            ips_forgotten = r.ips_forgotten,
                            "purge pass"
                        )
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(code = e.code, "purge pass failed"),
                }
            }
        });
    }
    pixseal_server::serve(state, listener, shutdown).await?;
    Ok(())
}
