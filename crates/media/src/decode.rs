//! Bounded decoding: JPEG through libjpeg-turbo, the other formats through the `image` crate
//! with allocation limits. Header limits are enforced before either is called.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError};

use crate::jpeg::{self, JpegHeader, check_dimensions};
use crate::{Format, IngestError, Limits, Pixels, orient};

/// The raw decode result: pixels as stored, and what must still be applied to them.
pub struct RawDecode {
    pub pixels: Pixels,
    /// EXIF orientation still to apply (1 = none).
    pub orientation: u8,
    /// Orientation the decoder applied itself (libheif's `irot`/`imir`), reported only.
    pub applied_orientation: u8,
    pub icc: Option<Vec<u8>>,
    /// The colour description by code points, when there is no ICC profile to say it.
    pub cicp: Option<crate::colour::Cicp>,
    pub frames: u64,
    /// Decoder warnings (the picture was decoded regardless).
    pub warnings: Vec<String>,
}

/// JPEG decode into `buf` (reused), optionally shrunk on load by a DCT scaling factor so the
/// long edge stays at or above `min_long_edge`.
pub fn jpeg(
    dec: &mut turbojpeg::Decompressor,
    input: &[u8],
    header: &JpegHeader,
    limits: &Limits,
    min_long_edge: Option<u32>,
    mut buf: Vec<u8>,
) -> Result<RawDecode, IngestError> {
    let orientation = header
        .exif
        .clone()
        .map(|r| orient::exif_orientation(&input[r]))
        .unwrap_or(1);
    let icc = header.icc_profile(input);
    dec.set_scan_limit(limits.max_jpeg_scans)
        .map_err(jpeg::map_turbo_error)?;
    let long = header.width.max(header.height) as usize;
    let mut factor = turbojpeg::ScalingFactor::ONE;
    if let Some(edge) = min_long_edge {
        for denom in [2usize, 4, 8] {
            if long.div_ceil(denom) >= edge as usize {
                factor = turbojpeg::ScalingFactor::new(1, denom);
            }
        }
    }
    dec.set_scaling_factor(factor)
        .map_err(jpeg::map_turbo_error)?;
    let th = dec
        .read_header(&header.clean)
        .map_err(jpeg::map_turbo_error)?;
    if th.width != header.width as usize || th.height != header.height as usize {
        return Err(IngestError::corrupt(
            "JPEG frame headers disagree about the size",
        ));
    }
    let (w, h) = (factor.scale(th.width), factor.scale(th.height));
    let cmyk = header.components == 4;
    let (fmt, ch) = if cmyk {
        (turbojpeg::PixelFormat::CMYK, 4)
    } else {
        (turbojpeg::PixelFormat::RGB, 3)
    };
    let len = w * h * ch;
    if buf.len() < len {
        buf.resize(len, 0);
    } else {
        buf.truncate(len);
    }
    let img = turbojpeg::Image {
        pixels: &mut buf[..],
        width: w,
        pitch: w * ch,
        height: h,
        format: fmt,
    };
    let warnings = match dec.decompress(&header.clean, img) {
        Ok(()) => Vec::new(),
        Err(e) if jpeg::is_benign_warning(&e) => vec![jpeg::warning_text(&e)],
        Err(e) => return Err(jpeg::map_turbo_error(e)),
    };
    // One MCU row (up to 16 source rows) at the scale decoded.
    let mcu_rows = (16 * h).div_ceil(th.height).max(1);
    if jpeg::lost_its_end(&warnings, &buf, w * ch, ch, mcu_rows) {
        return Err(jpeg::missing_end());
    }
    let mut pixels = Pixels {
        width: w as u32,
        height: h as u32,
        channels: ch as u8,
        data: buf,
    };
    if cmyk {
        cmyk_to_rgb(&mut pixels, header.adobe_transform.is_some());
    }
    Ok(RawDecode {
        pixels,
        orientation,
        applied_orientation: 1,
        icc,
        cicp: None,
        frames: 1,
        warnings,
    })
}

/// A JPEG decoded to its YUV planes (TurboJPEG layout, rows unpadded).
pub struct YuvFrame {
    pub data: Vec<u8>,
    pub width: usize,
    pub height: usize,
    pub subsamp: turbojpeg::Subsamp,
    /// Decoder warnings (the planes were decoded regardless).
    pub warnings: Vec<String>,
}

/// Fast path for JPEG → JPEG with nothing to change in the pixels: decode to YUV planes (no
/// colour conversion, no chroma resampling). `Err(buf)` (buffer handed back) when the file is
/// not 4:2:0 YCbCr or grey; the caller then takes the RGB path.
pub fn jpeg_yuv(
    dec: &mut turbojpeg::Decompressor,
    header: &JpegHeader,
    limits: &Limits,
    mut buf: Vec<u8>,
) -> Result<Result<YuvFrame, Vec<u8>>, IngestError> {
    dec.set_scan_limit(limits.max_jpeg_scans)
        .map_err(jpeg::map_turbo_error)?;
    dec.set_scaling_factor(turbojpeg::ScalingFactor::ONE)
        .map_err(jpeg::map_turbo_error)?;
    let th = match dec.read_header(&header.clean) {
        Ok(h) => h,
        Err(_) => return Ok(Err(buf)),
    };
    // Only 4:2:0 and grey sources: they encode from their own planes with no conversion at all.
    // (Converting 4:2:2 / 4:4:4 chroma in Rust measured no faster than TurboJPEG's SIMD RGB path.)
    let plain = matches!(
        th.colorspace,
        turbojpeg::Colorspace::YCbCr | turbojpeg::Colorspace::Gray
    ) && matches!(
        th.subsamp,
        turbojpeg::Subsamp::Sub2x2 | turbojpeg::Subsamp::Gray
    );
    if !plain
        || th.is_lossless
        || th.width != header.width as usize
        || th.height != header.height as usize
    {
        return Ok(Err(buf));
    }
    let Ok(len) = turbojpeg::yuv_pixels_len(th.width, 1, th.height, th.subsamp) else {
        return Ok(Err(buf));
    };
    if buf.len() < len {
        buf.resize(len, 0);
    } else {
        buf.truncate(len);
    }
    let img = turbojpeg::YuvImage {
        pixels: &mut buf[..],
        width: th.width,
        align: 1,
        height: th.height,
        subsamp: th.subsamp,
    };
    let warnings = match dec.decompress_to_yuv(&header.clean, img) {
        Ok(()) => Vec::new(),
        Err(e) if jpeg::is_benign_warning(&e) => vec![jpeg::warning_text(&e)],
        Err(e) => return Err(jpeg::map_turbo_error(e)),
    };
    // The luma plane comes first: its last MCU row tells.
    let luma = th.width * th.height;
    if jpeg::lost_its_end(&warnings, &buf[..luma], th.width, 1, 16) {
        return Err(jpeg::missing_end());
    }
    Ok(Ok(YuvFrame {
        data: buf,
        width: th.width,
        height: th.height,
        subsamp: th.subsamp,
        warnings,
    }))
}

/// Naive CMYK → RGB (CMYK ICC profiles are not applied). Adobe files store inverted values.
fn cmyk_to_rgb(px: &mut Pixels, adobe_inverted: bool) {
    let n = px.width as usize * px.height as usize;
    for i in 0..n {
        let s = &px.data[4 * i..4 * i + 4];
        let (c, m, y, k) = if adobe_inverted {
            (s[0] as u32, s[1] as u32, s[2] as u32, s[3] as u32)
        } else {
            (
                255 - s[0] as u32,
                255 - s[1] as u32,
                255 - s[2] as u32,
                255 - s[3] as u32,
            )
        };
        // Here c/m/y/k are "amount of light", 255 = no ink.
        let (r, g, b) = (
            (c * k / 255) as u8,
            (m * k / 255) as u8,
            (y * k / 255) as u8,
        );
        px.data[3 * i] = r;
        px.data[3 * i + 1] = g;
        px.data[3 * i + 2] = b;
    }
    px.data.truncate(3 * n);
    px.channels = 3;
}

/// Decode PNG, GIF (first frame), WebP (first frame) or TIFF (first page) with the `image` crate.
pub fn generic(
    input: &[u8],
    format: Format,
    limits: &Limits,
    frames: u64,
) -> Result<RawDecode, IngestError> {
    let image_format = match format {
        Format::Png => image::ImageFormat::Png,
        Format::Gif => image::ImageFormat::Gif,
        Format::WebP => image::ImageFormat::WebP,
        Format::Tiff => image::ImageFormat::Tiff,
        Format::Jpeg => image::ImageFormat::Jpeg,
        Format::Heif | Format::Avif | Format::Jxl => {
            return Err(IngestError::Internal(format!(
                "{} is not decoded by the image crate",
                format.name()
            )));
        }
    };
    let mut reader = image::ImageReader::with_format(Cursor::new(input), image_format);
    let mut l = image::Limits::default();
    l.max_image_width = Some(limits.max_side);
    l.max_image_height = Some(limits.max_side);
    l.max_alloc = Some(limits.max_alloc());
    reader.limits(l);
    let mut decoder = reader.into_decoder().map_err(map_image_error)?;
    let (w, h) = decoder.dimensions();
    check_dimensions(w as u64, h as u64, frames, limits)?;
    // From the EXIF the container carries (WebP EXIF chunk, PNG eXIf, TIFF's own tags), read
    // by our parser, which also takes a payload behind an `Exif\0\0` header; else what the
    // decoder knows.
    let exif = decoder.exif_metadata().ok().flatten();
    let orientation = match exif.as_deref().map(orient::exif_orientation) {
        Some(o) if o != 1 => o,
        _ => decoder
            .orientation()
            .map(orient::orientation_to_u8)
            .unwrap_or(1),
    };
    let icc = decoder.icc_profile().ok().flatten();
    let img = DynamicImage::from_decoder(decoder).map_err(map_image_error)?;
    let pixels = if img.color().has_alpha() {
        let b = img.into_rgba8();
        Pixels {
            width: b.width(),
            height: b.height(),
            channels: 4,
            data: b.into_raw(),
        }
    } else {
        let b = img.into_rgb8();
        Pixels {
            width: b.width(),
            height: b.height(),
            channels: 3,
            data: b.into_raw(),
        }
    };
    Ok(RawDecode {
        pixels,
        orientation,
        applied_orientation: 1,
        icc,
        cicp: None,
        frames,
        warnings: Vec::new(),
    })
}

fn map_image_error(e: ImageError) -> IngestError {
    match e {
        ImageError::Limits(l) => match l.kind() {
            image::error::LimitErrorKind::DimensionError => {
                IngestError::corrupt("image dimensions rejected by the decoder limits")
            }
            _ => IngestError::DecodeTooCostly(format!("decoder memory limit reached: {l}")),
        },
        ImageError::Unsupported(u) => {
            IngestError::UnsupportedFormat(format!("image variant not supported: {u}"))
        }
        ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            IngestError::truncated("image")
        }
        other => {
            let msg = other.to_string();
            let lower = msg.to_ascii_lowercase();
            if lower.contains("eof")
                || lower.contains("end of file")
                || lower.contains("unexpected end")
                || lower.contains("not enough")
                || lower.contains("truncat")
                || lower.contains("no more data")
            {
                IngestError::truncated("image")
            } else {
                IngestError::corrupt(msg)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The YUV fast path takes 4:2:0 only, and its output decodes to the same picture.
    #[test]
    fn yuv_fast_path_takes_420_only_and_round_trips() {
        let (w, h) = (37usize, 21usize);
        let rgb: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let (x, y) = (i % w, i / w);
                [(x * 7) as u8, (y * 11) as u8, ((x + y) * 5) as u8]
            })
            .collect();
        let img = turbojpeg::Image {
            pixels: &rgb[..],
            width: w,
            pitch: 3 * w,
            height: h,
            format: turbojpeg::PixelFormat::RGB,
        };
        let mut dec = turbojpeg::Decompressor::new().unwrap();
        let j444 = turbojpeg::compress(img, 95, turbojpeg::Subsamp::None)
            .unwrap()
            .to_vec();
        let h444 = crate::jpeg::walk(&j444, &Limits::default()).unwrap();
        assert!(
            jpeg_yuv(&mut dec, &h444, &Limits::default(), Vec::new())
                .unwrap()
                .is_err()
        );
        let j420 = turbojpeg::compress(img, 95, turbojpeg::Subsamp::Sub2x2)
            .unwrap()
            .to_vec();
        let h420 = crate::jpeg::walk(&j420, &Limits::default()).unwrap();
        let frame = jpeg_yuv(&mut dec, &h420, &Limits::default(), Vec::new())
            .unwrap()
            .ok()
            .unwrap();
        let yuv = turbojpeg::YuvImage {
            pixels: &frame.data[..],
            width: w,
            align: 1,
            height: h,
            subsamp: frame.subsamp,
        };
        let out = turbojpeg::compress_yuv(yuv, 95).unwrap().to_vec();
        let back = turbojpeg::decompress(&out, turbojpeg::PixelFormat::RGB).unwrap();
        let orig = turbojpeg::decompress(&j420, turbojpeg::PixelFormat::RGB).unwrap();
        let diff: f64 = back
            .pixels
            .iter()
            .zip(&orig.pixels)
            .map(|(a, b)| (*a as f64 - *b as f64).abs())
            .sum::<f64>()
            / orig.pixels.len() as f64;
        assert!(diff < 3.0, "mean abs diff {diff}");
    }
}
