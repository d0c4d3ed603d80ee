//! `pixseal serve`: the HTTP service on the configured (or embedded default) parts.

use anyhow::{Context, Result};
use pixseal_server::AppState;

use crate::Outcome;
use crate::config::Config;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Listen address (overrides [server].listen).
    #[arg(long)]
    listen: Option<String>,
}

/// What the request log shows by default: pixseal's own lines at info (one per request), the
/// libraries' only from warn (their progress chatter is debug for pixseal). `PIXSEAL_LOG`
/// overrides it (an `EnvFilter` directive).
const DEFAULT_LOG: &str = "warn,pixseal_server=info,pixseal_service=info,pixseal_cli=info";

pub fn run(config: &Config, args: Args) -> Outcome {
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PIXSEAL_LOG")
                .unwrap_or_else(|_| DEFAULT_LOG.into()),
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

async fn serve(config: &Config, args: Args) -> Result<()> {
    // Says (on stderr) when the development chain is made or in use.
    crate::config::signing_identity(config).context("C2PA signing identity")?;
    let state = AppState::open(config).await?;
    let report = state.repair().await.context("repair pass")?;
    if report.unfinished_rows + report.orphan_blobs > 0 {
        eprintln!(
            "repair: removed {} unfinished artifact(s), {} orphan blob(s)",
            report.unfinished_rows, report.orphan_blobs
        );
    }
    if report.foreign_prefixes > 0 {
        eprintln!(
            "repair: {} region(s) store blobs under another installation's prefix; not swept",
            report.foreign_prefixes
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
    pixseal_server::spawn_purge_worker(&state);
    pixseal_server::spawn_audit_checkpoints(&state);
    pixseal_server::serve(state, listener, shutdown).await?;
    Ok(())
}
