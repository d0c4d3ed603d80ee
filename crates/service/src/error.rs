//! Typed errors of the workflows, with stable codes. The server maps them once to HTTP, the
//! CLI once to exit codes; neither looks inside beyond [`ServiceError::kind`] and `code`.

use pixseal_media::IngestError;
use pixseal_proof::ReceiptError;
use pixseal_provenance::stamp::StampError;
use pixseal_seal::SealError;
use pixseal_store::{BlobError, DbError};

/// What class of failure an error is: the HTTP status and the exit code follow from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or asks for something not allowed (400).
    Invalid,
    /// No valid credential (401).
    Unauthorized,
    /// The credential does not allow this (403).
    Forbidden,
    /// Nothing by that name for this caller (404).
    NotFound,
    /// The request contradicts the stored state (409).
    Conflict,
    /// It existed, and is gone for good (410).
    Gone,
    /// The input picture was refused (413/415/422 by its code).
    Rejected,
    /// A quota of the account is used up for now; retry later (429).
    Limited,
    /// A key service is down; retry later (503).
    Unavailable,
    /// A bug, or a dependency failing in an unexpected way (500). The detail is logged, never
    /// shown.
    Internal,
}

/// Everything a workflow can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Bad input of a request (`invalid_request`, `invalid_code`, `retention_not_allowed`,
    /// `level_not_allowed`, `invalid_signature`, `corrupt`, …).
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("{0}")]
    Unauthorized(&'static str),
    /// `forbidden` or a more precise code (`signature_required`).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("no such resource")]
    NotFound,
    /// A tenant named on the command line does not exist.
    #[error("no tenant named {0:?}")]
    UnknownTenant(String),
    /// `region_mismatch`, `conflict`.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// `revoked`, `expired`.
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    /// The picture itself was refused (its own SPEC §3 code).
    #[error(transparent)]
    Ingest(IngestError),
    /// The account used up a quota (`code_quota_exceeded`); it renews within
    /// `retry_after_secs`.
    #[error("{message}")]
    Quota {
        code: &'static str,
        message: String,
        retry_after_secs: u64,
    },
    /// The service is at capacity for this kind of request now (`busy`); retry shortly.
    #[error("{0}")]
    Busy(&'static str),
    /// A key service (data keys, signing, receipts) could not be reached.
    #[error("{0}, retry later")]
    KeyUnavailable(&'static str),
    /// The tenant's own master key cannot be used (disabled or deleted by its owner, or its key
    /// service unreachable): its artifacts stay sealed; other tenants are not affected.
    #[error("the master key of tenant {0:?} is unavailable (disabled, deleted or unreachable)")]
    TenantKeyUnavailable(String),
    /// The configured time-stamping authority did not answer, or answered with a token that
    /// does not check out (`tsa_unavailable`): nothing is signed without the time-stamp.
    #[error("time-stamping authority unavailable, retry later")]
    TsaUnavailable,
    /// A stored artifact failed authentication.
    #[error("stored artifact failed authentication")]
    Tampered,
    /// Logged in full where it happens; the caller sees only `internal error`.
    #[error("internal error")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            code,
            message: message.into(),
        }
    }

    /// `invalid_request`: a field of the request is wrong.
    pub fn request(message: impl Into<String>) -> Self {
        Self::invalid("invalid_request", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ServiceError::Forbidden {
            code: "forbidden",
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ServiceError::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn region_mismatch() -> Self {
        Self::conflict("region_mismatch", "the tenant's region is not served here")
    }

    /// An internal failure: the detail goes to the log here, never to the caller.
    pub fn internal(what: impl Into<String>) -> Self {
        let what = what.into();
        tracing::error!(what = %what, "internal error");
        ServiceError::Internal(what)
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::Invalid { code, .. }
            | ServiceError::Forbidden { code, .. }
            | ServiceError::Conflict { code, .. }
            | ServiceError::Gone { code, .. }
            | ServiceError::Quota { code, .. } => code,
            ServiceError::Unauthorized(_) => "unauthorized",
            ServiceError::NotFound | ServiceError::UnknownTenant(_) => "not_found",
            ServiceError::Ingest(e) => e.code(),
            ServiceError::Busy(_) => "busy",
            ServiceError::KeyUnavailable(_) | ServiceError::TenantKeyUnavailable(_) => {
                "key_unavailable"
            }
            ServiceError::TsaUnavailable => "tsa_unavailable",
            ServiceError::Tampered => "tampered",
            ServiceError::Internal(_) => "internal",
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            ServiceError::Invalid { .. } => ErrorKind::Invalid,
            ServiceError::Unauthorized(_) => ErrorKind::Unauthorized,
            ServiceError::Forbidden { .. } => ErrorKind::Forbidden,
            ServiceError::NotFound | ServiceError::UnknownTenant(_) => ErrorKind::NotFound,
            ServiceError::Conflict { .. } => ErrorKind::Conflict,
            ServiceError::Gone { .. } => ErrorKind::Gone,
            ServiceError::Quota { .. } => ErrorKind::Limited,
            ServiceError::Ingest(IngestError::Internal(_)) => ErrorKind::Internal,
            ServiceError::Ingest(_) => ErrorKind::Rejected,
            ServiceError::KeyUnavailable(_)
            | ServiceError::TenantKeyUnavailable(_)
            | ServiceError::TsaUnavailable
            | ServiceError::Busy(_) => ErrorKind::Unavailable,
            ServiceError::Tampered | ServiceError::Internal(_) => ErrorKind::Internal,
        }
    }
}

impl From<IngestError> for ServiceError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Internal(m) => Self::internal(m),
            e => ServiceError::Ingest(e),
        }
    }
}

impl From<StampError> for ServiceError {
    fn from(e: StampError) -> Self {
        match e {
            StampError::Ingest(e) => e.into(),
            StampError::Provenance(e) if e.code() == "key_unavailable" => {
                tracing::warn!(error = %e, "signing key unavailable");
                ServiceError::KeyUnavailable("signing key unavailable")
            }
            StampError::Provenance(e) if e.code() == "tsa_unavailable" => {
                tracing::warn!(error = %e, "time-stamping authority unavailable");
                ServiceError::TsaUnavailable
            }
            StampError::Provenance(e) => Self::internal(e.to_string()),
        }
    }
}

impl From<SealError> for ServiceError {
    fn from(e: SealError) -> Self {
        match e {
            SealError::KeyUnavailable(_) => {
                tracing::warn!(error = %e, "key service unavailable");
                ServiceError::KeyUnavailable("key service unavailable")
            }
            SealError::Tampered => {
                tracing::error!("a stored object failed authentication");
                ServiceError::Tampered
            }
            other => Self::internal(other.to_string()),
        }
    }
}

impl From<ReceiptError> for ServiceError {
    fn from(e: ReceiptError) -> Self {
        match e {
            ReceiptError::Unavailable(_) => {
                tracing::warn!(error = %e, "receipt signer unavailable");
                ServiceError::KeyUnavailable("key service unavailable")
            }
            other => Self::internal(other.to_string()),
        }
    }
}

impl From<DbError> for ServiceError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound => ServiceError::NotFound,
            other => Self::internal(other.to_string()),
        }
    }
}

impl From<BlobError> for ServiceError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::NotFound => ServiceError::NotFound,
            other => Self::internal(other.to_string()),
        }
    }
}

/// A blocking task that panicked or was cancelled.
impl From<tokio::task::JoinError> for ServiceError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::internal(format!("blocking task: {e}"))
    }
}

/// Result alias.
pub type Result<T, E = ServiceError> = std::result::Result<T, E>;
