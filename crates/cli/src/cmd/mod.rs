//! One module per CLI command.

pub mod admin;
pub mod audit;
pub mod batch;
pub mod codes;
pub mod keys;
pub mod purge;
pub mod receipt;
pub mod sanitize;
pub mod seal;
pub mod serve;
pub mod stamp;
pub mod verify;
pub mod watermark;

/// Run one async job to completion on a small runtime (the commands other than `serve`).
pub fn block_on<T>(f: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(f)
}

/// The configured decode limits, or a printed config error (the caller exits with `Usage`).
pub fn limits(config: &crate::config::Config) -> Option<pixseal_media::Limits> {
    match config.limits.to_limits() {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("error[config]: {e:#}");
            None
        }
    }
}
