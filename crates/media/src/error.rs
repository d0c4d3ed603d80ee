//! The ways an input can be refused, each with the stable code of SPEC §3.

/// Why an input was refused or could not be processed.
///
/// Messages never quote the input's bytes (they may carry personal data): they say what was wrong
/// and, for limits, the limit's name and value.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum IngestError {
    #[error("{0}")]
    UnsupportedFormat(String),
    #[error("file is {size} bytes, over the max_file_bytes limit of {limit}")]
    FileTooLarge { size: u64, limit: u64 },
    #[error(
        "image has {pixels} pixels (summed over {frames} frame(s)), over the max_pixels limit of {limit}"
    )]
    TooManyPixels {
        pixels: u64,
        frames: u64,
        limit: u64,
    },
    #[error("image is {width}x{height}, a side is 0 or over the max_side limit of {limit} px")]
    DimensionsTooLarge { width: u64, height: u64, limit: u32 },
    #[error("{0}")]
    Truncated(String),
    #[error("{0}")]
    Corrupt(String),
    #[error("{0}")]
    DecodeTooCostly(String),
    #[error(
        "animated image with {frames} frames; animation is not accepted (animated = \"reject\")"
    )]
    AnimatedNotSupported { frames: u64 },
    #[error("video lasts {millis} ms by its own boxes, over the max_seconds limit of {limit} s")]
    VideoTooLong { millis: u64, limit: u32 },
    #[error(
        "video is {width}x{height}, over the limit of {max_width}x{max_height} (max_width is the long side, max_height the short one)"
    )]
    VideoTooLarge {
        width: u32,
        height: u32,
        max_width: u32,
        max_height: u32,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

impl IngestError {
    /// The stable error code (SPEC §3) shared by the CLI and the HTTP API.
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::UnsupportedFormat(_) => "unsupported_format",
            IngestError::FileTooLarge { .. } => "file_too_large",
            IngestError::TooManyPixels { .. } => "too_many_pixels",
            IngestError::DimensionsTooLarge { .. } => "dimensions_too_large",
            IngestError::Truncated(_) => "truncated",
            IngestError::Corrupt(_) => "corrupt",
            IngestError::DecodeTooCostly(_) => "decode_too_costly",
            IngestError::AnimatedNotSupported { .. } => "animated_not_supported",
            IngestError::VideoTooLong { .. } => "video_too_long",
            IngestError::VideoTooLarge { .. } => "dimensions_too_large",
            IngestError::Internal(_) => "internal",
        }
    }

    /// True when the fault lies with the input, false for our own failures.
    pub fn is_input_error(&self) -> bool {
        !matches!(self, IngestError::Internal(_))
    }

    pub(crate) fn truncated(what: &str) -> Self {
        IngestError::Truncated(format!("{what} data ends early (truncated file)"))
    }

    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        IngestError::Corrupt(format!("corrupt image data: {what}"))
    }
}
