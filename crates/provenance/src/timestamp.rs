//! RFC 3161 time-stamps on manifest signatures: the request pixseal sends, the check of the
//! token that comes back, and what verification says about one. The transport (HTTP to a time
//! stamping authority) sits behind [`TimeStamper`], wired above this crate.
//!
//! A trusted time-stamp proves the claim was signed while the signing certificate was valid,
//! so the manifest stays valid after that certificate expires.

use serde::Serialize;

use crate::ProvenanceError;

/// Whatever sends an RFC 3161 request to a time-stamping authority. May block (a network
/// call); callers sign on blocking threads.
pub trait TimeStamper: Send + Sync {
    /// Send `request` (a DER `TimeStampReq`) and return the authority's DER `TimeStampResp`.
    fn time_stamp(&self, request: &[u8]) -> Result<Vec<u8>, ProvenanceError>;
}

/// Ask `tsa` for a time-stamp over `message` (the claim signature) and check the answer before
/// it goes into the manifest: a well-formed, granted response whose imprint is the SHA-256 of
/// `message` and whose signature checks out against the certificate it carries. Whether that
/// authority is trusted is the verifier's question, not the signer's.
pub(crate) fn request(tsa: &dyn TimeStamper, message: &[u8]) -> Result<Vec<u8>, ProvenanceError> {
    use c2pa::crypto::cose::CertificateTrustPolicy;
    use c2pa::crypto::time_stamp::{default_rfc3161_message, verify_time_stamp};
    use c2pa::status_tracker::StatusTracker;

    let body = default_rfc3161_message(message)
        .map_err(|e| ProvenanceError::TimeStamp(format!("request: {e}")))?;
    let token = tsa.time_stamp(&body)?;
    // The imprint is over this signature, fresh for every claim, so an old or foreign token
    // cannot pass this check.
    verify_time_stamp(
        &token,
        message,
        &CertificateTrustPolicy::passthrough(),
        &mut StatusTracker::default(),
        false,
    )
    .map_err(|e| ProvenanceError::TimeStamp(format!("the authority's answer: {e}")))?;
    Ok(token)
}

/// Room a time-stamp token takes in the signature: the authority's certificates, its
/// signature and the token structure. Generous: signing fails when the reserve is too small.
pub(crate) const TOKEN_RESERVE: usize = 12 * 1024;

/// What a manifest's time-stamp says, as verification found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimeStampStatus {
    /// The time the authority vouches for (RFC 3339), when its token checked out.
    pub time: Option<String>,
    /// The authority's certificate chains to one of the verifier's trust anchors.
    pub trusted: bool,
    /// The C2PA code that decided it: `timeStamp.trusted`, `timeStamp.validated`,
    /// `timeStamp.untrusted`, `timeStamp.mismatch`, `timeStamp.malformed` or
    /// `timeStamp.outsideValidity`.
    pub code: String,
}
