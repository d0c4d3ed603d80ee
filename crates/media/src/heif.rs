//! HEIC and AVIF decoding through libheif (libde265 for HEVC, dav1d for AV1): the primary image
//! only, after the container walk has checked it against the limits.

use std::sync::OnceLock;

use libheif_rs::{
    ColorProfile, ColorSpace, DecodingOptions, HeifContext, HeifError, HeifErrorCode,
    HeifErrorSubCode, LibHeif, RgbChroma, SecurityLimits, color_profile_types,
};

use crate::bmff::{self, HeifHeader};
use crate::colour::Cicp;
use crate::decode::RawDecode;
use crate::{Format, IngestError, Limits, Pixels};

/// libheif's global state, initialised once for the process.
fn libheif() -> &'static LibHeif {
    static LIB: OnceLock<LibHeif> = OnceLock::new();
    LIB.get_or_init(LibHeif::new)
}

/// libheif's own limits, set from ours: a second line behind the container walk.
fn security_limits(limits: &Limits) -> SecurityLimits {
    let mut s = SecurityLimits::new();
    s.set_max_image_size_pixels(limits.max_pixels);
    s.set_max_number_of_tiles(limits.max_heif_tiles as u64);
    s.set_max_items(limits.max_heif_items);
    s.set_max_total_memory(limits.max_alloc());
    s.set_max_memory_block_size(limits.max_alloc());
    s.set_max_color_profile_size(1 << 20);
    s
}

/// Decode the primary image of a HEIF/AVIF file: upright (libheif applies `irot`, `imir` and
/// `clap`), 8-bit RGB(A), with its colour description for the colour stage.
pub fn decode(input: &[u8], format: Format, limits: &Limits) -> Result<RawDecode, IngestError> {
    let header: HeifHeader = bmff::walk(input, format, limits)?;
    // The context borrows `input` (it is never copied): a shorter lifetime than `new`'s.
    let mut ctx: HeifContext<'_> = HeifContext::new().map_err(map_error)?;
    ctx.set_security_limits(&security_limits(limits))
        .map_err(map_error)?;
    ctx.read_bytes(input).map_err(map_error)?;
    let handle = ctx.primary_image_handle().map_err(map_error)?;
    // libheif's view of the size must agree with the walk's, or one of them was lied to.
    let ispe = (
        i64::from(handle.ispe_width()),
        i64::from(handle.ispe_height()),
    );
    if ispe != (i64::from(header.width), i64::from(header.height)) {
        return Err(IngestError::corrupt(
            "HEIF container: the primary image's size is stated twice, differently",
        ));
    }
    let alpha = handle.has_alpha_channel();
    let chroma = if alpha {
        RgbChroma::Rgba
    } else {
        RgbChroma::Rgb
    };
    let icc = match handle.color_profile_raw() {
        Some(p)
            if [color_profile_types::PROF, color_profile_types::R_ICC]
                .contains(&p.profile_type()) =>
        {
            Some(p.data)
        }
        _ => None,
    };
    let cicp = handle.color_profile_nclx().map(|n| Cicp {
        primaries: n.color_primaries() as u8,
        transfer: n.transfer_characteristics() as u8,
    });
    let mut options = DecodingOptions::new()
        .ok_or_else(|| IngestError::Internal("libheif: no decoding options".into()))?;
    options.set_ignore_transformations(false);
    options.set_convert_hdr_to_8bit(true);
    options.set_strict_decoding(false);
    let image = libheif()
        .decode(&handle, ColorSpace::Rgb(chroma), Some(options))
        .map_err(|e| match e.sub_code {
            // The sizes the header states passed the limits, so a limit hit while decoding
            // means the coded stream is bigger than its header says.
            HeifErrorSubCode::SecurityLimitExceeded => IngestError::corrupt(format!(
                "HEIF: the coded image is larger than its header states ({})",
                e.message
            )),
            _ => map_error(e),
        })?;
    let planes = image.planes();
    let plane = planes
        .interleaved
        .ok_or_else(|| IngestError::Internal("libheif returned no interleaved plane".into()))?;
    let channels: u8 = if alpha { 4 } else { 3 };
    let row = plane.width as usize * channels as usize;
    let short = || IngestError::Internal("libheif plane shorter than its size".into());
    let mut data = Vec::with_capacity(row * plane.height as usize);
    for line in plane.data.chunks(plane.stride).take(plane.height as usize) {
        data.extend_from_slice(line.get(..row).ok_or_else(short)?);
    }
    if data.len() != row * plane.height as usize {
        return Err(short());
    }
    Ok(RawDecode {
        pixels: Pixels::new(plane.width, plane.height, channels, data),
        // Already applied by libheif; reported through `applied_orientation`.
        orientation: 1,
        applied_orientation: header.orientation,
        icc,
        cicp,
        frames: 1,
        warnings: Vec::new(),
    })
}

/// Map a libheif failure to our codes: the container walk has already named the common lies,
/// so what is left is damage inside the coded data.
fn map_error(e: HeifError) -> IngestError {
    let text = format!("HEIF: {}", e.message);
    match (e.code, e.sub_code) {
        (_, HeifErrorSubCode::EndOfData) => IngestError::truncated("HEIF"),
        (HeifErrorCode::MemoryAllocationError, _) => IngestError::DecodeTooCostly(format!(
            "{text} (libheif's memory limit, set from max_pixels)"
        )),
        (_, HeifErrorSubCode::SecurityLimitExceeded) => IngestError::DecodeTooCostly(text),
        (HeifErrorCode::UnsupportedFileType | HeifErrorCode::UnsupportedFeature, _) => {
            IngestError::UnsupportedFormat(text)
        }
        (HeifErrorCode::UsageError | HeifErrorCode::ContextCreateFailed, _) => {
            IngestError::Internal(text)
        }
        _ => IngestError::corrupt(text),
    }
}
