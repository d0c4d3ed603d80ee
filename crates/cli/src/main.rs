//! `pixseal`: the command-line entry point (SPEC §3). Parses arguments, loads the configuration
//! and dispatches to one module per command.

mod cmd;
mod config;
mod license;
mod remote;
mod report;
mod stamper;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes of SPEC §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Ok = 0,
    Usage = 1,
    Rejected = 2,
    Internal = 3,
}

impl Outcome {
    /// The outcome for the highest code recorded by a batch (see `AtomicU8::fetch_max`).
    pub fn from_worst(code: u8) -> Outcome {
        match code {
            0 => Outcome::Ok,
            1 => Outcome::Usage,
            2 => Outcome::Rejected,
            _ => Outcome::Internal,
        }
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "pixseal",
    version,
    about = "Verify and stamp photos without keeping them."
)]
struct Cli {
    /// Configuration file (default: ./pixseal.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory for the embedded defaults (overrides data_dir / PIXSEAL_DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// One JSON object per input, one per line, on stdout.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Decode, orient, convert to sRGB, strip all metadata and re-encode images.
    Sanitize(cmd::sanitize::Args),
    /// Sanitize, then stamp: visible mark, invisible watermark and signed C2PA manifest; prints proof ids.
    Stamp(cmd::stamp::Args),
    /// Offline verdict per file: verified, untrusted, tampered, watermark_only or not_stamped.
    Verify(cmd::verify::Args),
    /// Encrypt a file into the sealed-object format (envelope encryption, region key).
    Seal(cmd::seal::Args),
    /// Decrypt a sealed file; any change to it, or the wrong object/tenant/region, is `tampered`.
    Unseal(cmd::seal::Args),
    /// Master keys of the configured key provider.
    #[command(subcommand)]
    Keys(cmd::keys::Args),
    /// The HTTP service (embedded defaults under --data-dir when nothing is configured).
    Serve(cmd::serve::Args),
    /// Tenants (each pinned to one region).
    #[command(subcommand)]
    Tenant(cmd::admin::TenantArgs),
    /// API keys (scoped, bound to one tenant, stored hashed).
    #[command(subcommand)]
    Apikey(cmd::admin::ApiKeyArgs),
    /// Deletion receipts.
    #[command(subcommand)]
    Receipt(cmd::receipt::Args),
    /// The audit log.
    #[command(subcommand)]
    Audit(cmd::audit::Args),
    /// One retention purge pass now.
    Purge(cmd::purge::Args),
    /// The invisible watermark alone (embed a proof id, detect it).
    #[command(subcommand)]
    Watermark(cmd::watermark::Args),
    /// Content-bound verification codes: message codes, live call codes, levels.
    #[command(subcommand)]
    Codes(cmd::codes::Args),
    /// Check this executable against the release's signed SHA256SUMS.
    SelfCheck(cmd::self_check::Args),
    /// Licences: issue and manage them on a server; activate one on a device.
    #[command(subcommand)]
    License(cmd::license::Args),
    /// What this device sent to its licence server.
    #[command(subcommand)]
    Usage(cmd::license::UsageArgs),
}

fn main() -> ExitCode {
    // Panics are caught per input and reported as `internal`; the default hook's message could
    // carry data, so it is replaced by a silent one.
    std::panic::set_hook(Box::new(|_| {}));
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                Outcome::Usage
            } else {
                Outcome::Ok
            };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    let mut config = match config::Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error[config]: {e:#}");
            return ExitCode::from(Outcome::Usage as u8);
        }
    };
    if let Some(d) = cli.data_dir {
        config.data_dir = d;
    }
    if !matches!(cli.command, Command::Serve(_)) {
        // What a workflow logs (an internal error's detail, a failed audit append) reaches the
        // operator on stderr; `serve` sets up its own JSON request log.
        // Errors only by default: libraries' warnings (c2pa's about thumbnails) are not the
        // operator's business.
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .without_time()
            .with_target(false)
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("PIXSEAL_LOG")
                    .unwrap_or_else(|_| "error".into()),
            )
            .init();
    }
    let outcome = match cli.command {
        Command::Sanitize(args) => cmd::sanitize::run(&config, args, cli.json),
        Command::Stamp(args) => cmd::stamp::run(&config, args, cli.json),
        Command::Verify(args) => cmd::verify::run(&config, args, cli.json),
        Command::Seal(args) => cmd::seal::run(&config, args, cli.json, false),
        Command::Unseal(args) => cmd::seal::run(&config, args, cli.json, true),
        Command::Keys(args) => cmd::keys::run(&config, args, cli.json),
        Command::Serve(args) => cmd::serve::run(&config, args),
        Command::Tenant(args) => cmd::admin::tenant(&config, args, cli.json),
        Command::Apikey(args) => cmd::admin::apikey(&config, args, cli.json),
        Command::Receipt(args) => cmd::receipt::run(&config, args, cli.json),
        Command::Audit(args) => cmd::audit::run(&config, args, cli.json),
        Command::Purge(args) => cmd::purge::run(&config, args, cli.json),
        Command::Watermark(args) => cmd::watermark::run(&config, args, cli.json),
        Command::Codes(args) => cmd::codes::run(&config, args, cli.json),
        Command::SelfCheck(args) => cmd::self_check::run(args, cli.json),
        Command::License(args) => cmd::license::run(&config, args, cli.json),
        Command::Usage(args) => cmd::license::usage(&config, args, cli.json),
    };
    ExitCode::from(outcome as u8)
}
