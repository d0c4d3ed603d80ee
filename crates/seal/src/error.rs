//! Typed errors with stable codes.

/// Everything that can go wrong while sealing, opening or managing keys.
///
/// `Tampered` deliberately carries no detail: a blob that fails to parse, fails authentication,
/// is truncated, reordered, or bound to another object/tenant/region all look the same to the
/// caller, so the error is not an oracle.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The sealed object (or field, or wrapped key) is not authentic: modified, truncated,
    /// reordered, garbage, or presented for another object id / tenant / region.
    #[error("sealed data failed authentication (tampered, truncated or bound to another object)")]
    Tampered,
    /// The key service could not be reached (after bounded retries). Never followed by a
    /// fallback to another key.
    #[error("key service unavailable: {0}")]
    KeyUnavailable(String),
    /// The key (region, key name, or the object's wrapped data key) does not exist.
    #[error("key not found: {0}")]
    KeyNotFound(String),
    /// The key version is older than the key's `min_decryption_version`.
    #[error("key version refused: {0}")]
    KeyVersionRefused(String),
    /// The key service refused the operation for this credential.
    #[error("permission denied by key service: {0}")]
    PermissionDenied(String),
    /// Reading the input or writing the output failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// Invalid configuration or arguments (bad region, unsafe key file mode, …).
    #[error("configuration error: {0}")]
    Config(String),
    /// A bug or an unexpected answer from a dependency.
    #[error("internal error: {0}")]
    Internal(String),
}

impl SealError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            SealError::Tampered => "tampered",
            SealError::KeyUnavailable(_) => "key_unavailable",
            SealError::KeyNotFound(_) => "key_not_found",
            SealError::KeyVersionRefused(_) => "key_version_refused",
            SealError::PermissionDenied(_) => "permission_denied",
            SealError::Io(_) => "io_error",
            SealError::Config(_) => "config",
            SealError::Internal(_) => "internal",
        }
    }
}

/// Result alias.
pub type Result<T, E = SealError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(SealError::Tampered.code(), "tampered");
        assert_eq!(
            SealError::KeyUnavailable("x".into()).code(),
            "key_unavailable"
        );
        assert_eq!(SealError::KeyNotFound("x".into()).code(), "key_not_found");
        assert_eq!(
            SealError::KeyVersionRefused("x".into()).code(),
            "key_version_refused"
        );
        assert_eq!(
            SealError::PermissionDenied("x".into()).code(),
            "permission_denied"
        );
        assert_eq!(SealError::Io(std::io::Error::other("x")).code(), "io_error");
        assert_eq!(SealError::Config("x".into()).code(), "config");
        assert_eq!(SealError::Internal("x".into()).code(), "internal");
        assert!(!SealError::Tampered.to_string().is_empty());
    }
}
