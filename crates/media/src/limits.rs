//! Resource limits checked from the header before any pixel is allocated (SPEC §4).

/// What to do with an animated GIF, APNG or WebP (`limits.animated`: `first_frame` or `reject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnimatedPolicy {
    /// Keep the first frame (the pixel cap still counts every frame).
    #[default]
    FirstFrame,
    /// Refuse with `animated_not_supported`.
    Reject,
}

/// Caps on input size and decode work; defaults are SPEC §4's. Also the `[limits]` section of
/// the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest accepted input, in bytes.
    pub max_file_bytes: u64,
    /// Largest accepted pixel count, summed over all frames.
    pub max_pixels: u64,
    /// Largest accepted width or height.
    pub max_side: u32,
    /// Most JPEG scans accepted (progressive files use about 10; a scan bomb uses thousands).
    pub max_jpeg_scans: u32,
    /// Most frames walked in an animated file before it is refused as too costly.
    pub max_frames: u32,
    /// Most items a HEIF/AVIF file may declare (images, tiles, metadata, thumbnails).
    pub max_heif_items: u32,
    /// Most tiles a HEIF/AVIF grid image may be assembled from (each is a separate decode).
    pub max_heif_tiles: u32,
    pub animated: AnimatedPolicy,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 50 * 1024 * 1024,
            max_pixels: 50_000_000,
            max_side: 16_384,
            max_jpeg_scans: 100,
            max_frames: 10_000,
            max_heif_items: 4_096,
            max_heif_tiles: 1_024,
            animated: AnimatedPolicy::FirstFrame,
        }
    }
}

impl Limits {
    /// Bytes a decoder may allocate: one RGBA frame at the pixel cap, plus working room.
    pub fn max_alloc(&self) -> u64 {
        self.max_pixels.saturating_mul(4).saturating_add(64 << 20)
    }
}
