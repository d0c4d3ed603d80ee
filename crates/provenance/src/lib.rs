//! pixseal-provenance: C2PA manifests (sign, embed, verify into SPEC §6 verdicts), the signing
//! identity behind a trait, and PDQ perceptual hashes. Bytes in, bytes out: no network I/O.

pub mod config;
mod guard;
pub mod held;
pub mod identity;
pub mod manifest;
pub mod pdq;
pub mod stamp;
pub mod timestamp;
pub mod verify;

pub use config::{Identity, ProvenanceConfig};
pub use held::{HeldKey, HeldKeySigner, SignerKind, TimeStamped};
pub use identity::{ClaimSigner, DevChain, DevPaths, LocalSigner, SignAlg};
pub use manifest::{
    Embedded, PDQ_BINDING_ALG, PIXSEAL_ASSERTION, ProofAssertion, SoftBindings, StampActions,
    WATERMARK_BINDING_ALG, embed,
};
pub use pdq::{Pdq, PdqResult};
pub use stamp::{MarkOptions, StampError, Stamped, apply_watermarks, detect_watermark};
pub use timestamp::{TimeStampStatus, TimeStamper};
pub use verify::{Report, Verdict, Verifier};

#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    /// The signing identity (certificate chain, key) is missing or unusable.
    #[error("signing identity: {0}")]
    Identity(String),
    /// The signer refused or failed (e.g. the key service was unreachable).
    #[error("signing failed: {0}")]
    Signing(String),
    /// The time-stamping authority did not answer, or its answer did not check out.
    #[error("time-stamp: {0}")]
    TimeStamp(String),
    /// The manifest could not be built or embedded.
    #[error("manifest: {0}")]
    Embed(String),
}

impl ProvenanceError {
    /// The stable error code (SPEC §3).
    pub fn code(&self) -> &'static str {
        match self {
            ProvenanceError::Identity(_) | ProvenanceError::Signing(_) => "key_unavailable",
            ProvenanceError::TimeStamp(_) => "tsa_unavailable",
            ProvenanceError::Embed(_) => "internal",
        }
    }
}
