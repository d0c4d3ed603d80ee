//! The one typed configuration (defaults, then `pixseal.toml` or `--config`, then `PIXSEAL_*`)
//! lives in `pixseal-service`, which every command and the server open it through; this
//! module adds what only a terminal needs: saying that a development identity is in use.

pub use pixseal_service::Config;

/// The C2PA signing identity, saying on stderr when the development chain was just made and
/// that nobody else trusts it.
pub fn signing_identity(
    config: &Config,
) -> Result<pixseal_provenance::Identity, pixseal_provenance::ProvenanceError> {
    let (id, created) = config.signing_identity()?;
    if created {
        eprintln!(
            "note: created a development C2PA signing certificate under {}",
            pixseal_provenance::ProvenanceConfig::dev_dir(&config.data_dir).display()
        );
    }
    if id.development {
        eprintln!(
            "warning: manifests are signed with the development certificate, which no one else trusts; \
             verifiers must be given its root (`pixseal keys trust-anchor`), or configure [provenance].cert_chain"
        );
    }
    Ok(id)
}
