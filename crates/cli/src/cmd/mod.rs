//! One module per CLI command, and what they share: the runtime, the services, and the one
//! mapping of workflow errors to exit codes.

pub mod admin;
pub mod audit;
pub mod batch;
pub mod codes;
pub mod keys;
pub mod license;
pub mod purge;
pub mod receipt;
pub mod sanitize;
pub mod seal;
pub mod self_check;
pub mod serve;
pub mod stamp;
pub mod verify;
mod video;
pub mod watermark;

use pixseal_service::{ErrorKind, ServiceError, Services};

use crate::Outcome;
use crate::config::Config;

/// Run one async job to completion on a small runtime (the commands other than `serve`).
pub fn block_on<T>(f: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(f)
}

/// Open the configured services (the same constructor `pixseal serve` uses).
pub async fn services(config: &Config) -> anyhow::Result<Services> {
    Ok(Services::open(config).await?)
}

/// The exit code of a refused or failed workflow (SPEC §3): a tenant named on the command line
/// that does not exist is a usage error; any other refusal is a rejected input; a key service
/// that is down, or a bug, is internal.
pub fn outcome_of(e: &ServiceError) -> Outcome {
    match (e, e.kind()) {
        (ServiceError::UnknownTenant(_), _) => Outcome::Usage,
        (_, ErrorKind::Unavailable | ErrorKind::Internal) => Outcome::Internal,
        _ => Outcome::Rejected,
    }
}

/// Print a failed command as SPEC §3 says (`error[code]: message` on stderr and, with `--json`,
/// one object on stdout) and give its exit code.
pub fn fail(e: &anyhow::Error, json: bool) -> Outcome {
    let (code, outcome, message) = match e.downcast_ref::<ServiceError>() {
        Some(s) => (s.code(), outcome_of(s), s.to_string()),
        None if e.is::<Usage>() => ("usage", Outcome::Usage, format!("{e:#}")),
        None => match e.downcast_ref::<crate::license::LicenseError>() {
            Some(l) => (l.code, license::licence_outcome(l), l.message.clone()),
            None => ("internal", Outcome::Internal, format!("{e:#}")),
        },
    };
    if json {
        println!(
            "{}",
            serde_json::json!({"status": "error", "code": code, "message": message})
        );
    }
    eprintln!("error[{code}]: {message}");
    outcome
}

/// A usage error (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// A usage error as an `anyhow::Error`.
pub fn usage(m: &str) -> anyhow::Error {
    Usage(m.to_string()).into()
}
