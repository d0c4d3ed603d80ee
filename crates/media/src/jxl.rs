//! JPEG XL decoding through jxl-oxide: the header is read and checked against the limits before
//! any frame is rendered, and every allocation is counted against `max_alloc`.

use jxl_oxide::{
    AllocTracker, EnumColourEncoding, InitializeResult, JxlImage, JxlThreadPool, RenderingIntent,
};

use crate::decode::RawDecode;
use crate::jpeg::check_dimensions;
use crate::{AnimatedPolicy, IngestError, Limits, Pixels};

/// Decode the first frame of a JPEG XL file, upright (the header's orientation is applied by
/// the renderer) and in sRGB (jxl-oxide converts from the image's colour encoding).
pub fn decode(input: &[u8], limits: &Limits) -> Result<RawDecode, IngestError> {
    let tracker = AllocTracker::with_limit(limits.max_alloc() as usize);
    let mut uninit = JxlImage::builder()
        .pool(JxlThreadPool::none())
        .alloc_tracker(tracker)
        .build_uninit();
    uninit.feed_bytes(input).map_err(map_error)?;
    let mut image = match uninit.try_init().map_err(map_error)? {
        InitializeResult::Initialized(image) => image,
        InitializeResult::NeedMoreData(_) => return Err(IngestError::truncated("JPEG XL header")),
    };
    let (w, h) = (image.width() as u64, image.height() as u64);
    check_dimensions(w, h, 1, limits)?;
    image.finalize().map_err(map_error)?;
    let frames = image.num_loaded_keyframes() as u64;
    if frames == 0 {
        return Err(IngestError::truncated("JPEG XL"));
    }
    check_dimensions(w, h, frames, limits)?;
    if frames > 1 && limits.animated == AnimatedPolicy::Reject {
        return Err(IngestError::AnimatedNotSupported { frames });
    }
    image.request_color_encoding(EnumColourEncoding::srgb(RenderingIntent::Relative));
    let render = image.render_frame(0).map_err(map_error)?;
    let mut stream = render.stream();
    let channels = stream.channels() as u8;
    let (sw, sh) = (stream.width(), stream.height());
    // Grey (1), grey + alpha (2), RGB (3), RGBA (4); black (CMYK) channels are refused.
    if !(1..=4).contains(&channels) {
        return Err(IngestError::UnsupportedFormat(format!(
            "JPEG XL with {channels} rendered channels (CMYK or extra channels) is not supported"
        )));
    }
    let mut samples = vec![0u8; sw as usize * sh as usize * channels as usize];
    let written = stream.write_to_buffer(&mut samples);
    if written != samples.len() {
        return Err(IngestError::Internal(
            "jxl-oxide rendered fewer samples than its size".into(),
        ));
    }
    let pixels = match channels {
        1 => expand(&samples, 1, |p| [p[0], p[0], p[0]]),
        2 => expand(&samples, 2, |p| [p[0], p[0], p[0], p[1]]),
        _ => samples,
    };
    let out_channels = if channels.is_multiple_of(2) { 4 } else { 3 };
    Ok(RawDecode {
        pixels: Pixels::new(sw, sh, out_channels, pixels),
        orientation: 1,
        applied_orientation: u8::try_from(image.image_header().metadata.orientation).unwrap_or(1),
        // Rendered to sRGB already: nothing left for the colour stage.
        icc: None,
        cicp: None,
        frames,
        warnings: Vec::new(),
    })
}

/// Grey samples (`step` per pixel, with or without alpha) spread to RGB or RGBA by `f`.
fn expand<const N: usize>(samples: &[u8], step: usize, f: impl Fn(&[u8]) -> [u8; N]) -> Vec<u8> {
    samples.chunks_exact(step).flat_map(f).collect()
}

fn map_error(e: Box<dyn std::error::Error + Send + Sync>) -> IngestError {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    if lower.contains("eof") || lower.contains("end of") || lower.contains("more data") {
        IngestError::truncated("JPEG XL")
    } else if lower.contains("alloc") || lower.contains("out of memory") {
        IngestError::DecodeTooCostly(format!(
            "JPEG XL: {text} (decoder memory capped from max_pixels)"
        ))
    } else {
        IngestError::corrupt(format!("JPEG XL: {text}"))
    }
}
