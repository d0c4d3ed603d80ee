//! Output encoders. The output is always freshly encoded from pixels, so nothing of the input's
//! metadata or trailing bytes can survive; the encoders below write no metadata of their own
//! beyond a bare JFIF header (JPEG).

use std::str::FromStr;

use crate::{IngestError, Pixels};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    Jpeg,
    WebP,
    Png,
}

impl OutputFormat {
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            OutputFormat::WebP => "webp",
            OutputFormat::Png => "png",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::WebP => "webp",
            OutputFormat::Png => "png",
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::WebP => "image/webp",
            OutputFormat::Png => "image/png",
        }
    }

    /// The longest side this format's encoder takes, where it is below what the limits let in
    /// (WebP stores sides in 14 bits: 16 383 at most; JPEG takes 65 535).
    pub fn max_side(self) -> Option<u32> {
        match self {
            OutputFormat::WebP => Some(16_383),
            OutputFormat::Jpeg => Some(65_535),
            OutputFormat::Png => None,
        }
    }
}

impl FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "jpeg" | "jpg" => Ok(OutputFormat::Jpeg),
            "webp" => Ok(OutputFormat::WebP),
            "png" => Ok(OutputFormat::Png),
            other => Err(format!(
                "unknown output format {other:?} (expected jpeg, webp or png)"
            )),
        }
    }
}

/// Encoders with reusable state (the TurboJPEG handle).
pub struct Encoder {
    jpeg: Option<turbojpeg::Compressor>,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    pub fn new() -> Self {
        Encoder { jpeg: None }
    }

    /// Encode `px` as `format` at `quality` (1–100; PNG ignores it). JPEG flattens alpha over white.
    pub fn encode(
        &mut self,
        px: &mut Pixels,
        format: OutputFormat,
        quality: u8,
    ) -> Result<Vec<u8>, IngestError> {
        let quality = quality.clamp(1, 100);
        match format {
            OutputFormat::Jpeg => {
                px.flatten_to_rgb();
                let c = match &mut self.jpeg {
                    Some(c) => c,
                    slot => slot.insert(turbojpeg::Compressor::new().map_err(internal)?),
                };
                c.set_quality(quality as i32).map_err(internal)?;
                c.set_subsamp(turbojpeg::Subsamp::Sub2x2)
                    .map_err(internal)?;
                let img = turbojpeg::Image {
                    pixels: &px.data[..],
                    width: px.width as usize,
                    pitch: px.width as usize * 3,
                    height: px.height as usize,
                    format: turbojpeg::PixelFormat::RGB,
                };
                let out = c.compress_to_vec(img);
                self.forget_jpeg_on_error(out)
            }
            OutputFormat::WebP => {
                let enc = if px.channels == 4 {
                    webp::Encoder::from_rgba(&px.data, px.width, px.height)
                } else {
                    webp::Encoder::from_rgb(&px.data, px.width, px.height)
                };
                let mem = enc
                    .encode_simple(false, quality as f32)
                    .map_err(|e| internal(format!("{e:?}")))?;
                Ok(mem.to_vec())
            }
            OutputFormat::Png => {
                use image::ImageEncoder;
                use image::codecs::png::{CompressionType, FilterType, PngEncoder};
                let mut out = Vec::with_capacity(px.data.len() / 2);
                let colour = if px.channels == 4 {
                    image::ExtendedColorType::Rgba8
                } else {
                    image::ExtendedColorType::Rgb8
                };
                PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
                    .write_image(&px.data, px.width, px.height, colour)
                    .map_err(internal)?;
                Ok(out)
            }
        }
    }
}

impl Encoder {
    /// JPEG straight from YUV planes (the fast path's encoder; same quality setting).
    pub fn encode_yuv(
        &mut self,
        frame: &crate::decode::YuvFrame,
        quality: u8,
    ) -> Result<Vec<u8>, IngestError> {
        let c = match &mut self.jpeg {
            Some(c) => c,
            slot => slot.insert(turbojpeg::Compressor::new().map_err(internal)?),
        };
        c.set_quality(quality.clamp(1, 100) as i32)
            .map_err(internal)?;
        let img = turbojpeg::YuvImage {
            pixels: &frame.data[..],
            width: frame.width,
            align: 1,
            height: frame.height,
            subsamp: frame.subsamp,
        };
        let out = c.compress_yuv_to_vec(img);
        self.forget_jpeg_on_error(out)
    }

    /// A compressor that failed may be left mid-image: the next picture gets a new one. (Every
    /// setting a picture depends on is set again before each use, so a successful one is kept.)
    fn forget_jpeg_on_error(
        &mut self,
        out: Result<Vec<u8>, turbojpeg::Error>,
    ) -> Result<Vec<u8>, IngestError> {
        if out.is_err() {
            self.jpeg = None;
        }
        out.map_err(internal)
    }
}

fn internal(e: impl std::fmt::Display) -> IngestError {
    IngestError::Internal(format!("encoder: {e}"))
}
