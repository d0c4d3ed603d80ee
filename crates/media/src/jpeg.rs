//! JPEG: a marker walk that reads the header facts and counts scans before any decode, and
//! libjpeg-turbo (via `turbojpeg`) for the pixels.

use std::ops::Range;

use crate::{IngestError, Limits};

/// What the marker walk learnt about a JPEG, without decoding entropy-coded data.
#[derive(Debug, Default, Clone)]
pub struct JpegHeader {
    pub width: u32,
    pub height: u32,
    pub components: u8,
    pub precision: u8,
    pub scans: u32,
    /// TIFF payload of the first APP1 Exif segment (after `Exif\0\0`).
    pub exif: Option<Range<usize>>,
    /// APP2 ICC_PROFILE chunks as (sequence number, payload).
    pub icc_chunks: Vec<(u8, Range<usize>)>,
    /// Adobe APP14 colour transform, if present.
    pub adobe_transform: Option<u8>,
    /// The stream the decoder is given: SOI, the coding segments (DQT, DHT, SOF, DRI, DAC, SOS
    /// and entropy data), JFIF/Adobe markers (they decide the colour transform), EOI. Metadata
    /// segments and stray bytes between segments are left out, so the decoder never parses them.
    pub clean: Vec<u8>,
}

impl JpegHeader {
    /// The embedded ICC profile, its chunks reassembled in sequence order.
    pub fn icc_profile(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        if self.icc_chunks.is_empty() {
            return None;
        }
        let mut chunks = self.icc_chunks.clone();
        chunks.sort_by_key(|(seq, _)| *seq);
        let mut out = Vec::with_capacity(chunks.iter().map(|(_, r)| r.len()).sum());
        for (_, r) in chunks {
            out.extend_from_slice(&bytes[r]);
        }
        Some(out)
    }
}

fn be16(b: &[u8], at: usize) -> usize {
    ((b[at] as usize) << 8) | b[at + 1] as usize
}

/// Walk the markers from SOI to EOI. Refuses files with no frame header, a frame header that
/// is malformed, more scans than `limits.max_jpeg_scans`, or no EOI (truncated).
pub fn walk(b: &[u8], limits: &Limits) -> Result<JpegHeader, IngestError> {
    let n = b.len();
    let mut h = JpegHeader {
        clean: Vec::with_capacity(n),
        ..JpegHeader::default()
    };
    h.clean.extend_from_slice(&[0xFF, 0xD8]);
    let mut saw_frame = false;
    let mut pos = 2; // after SOI
    loop {
        // Find the next marker: 0xFF followed by a byte other than 0x00/0xFF. libjpeg skips
        // stray bytes between segments the same way.
        while pos < n && b[pos] != 0xFF {
            pos += 1;
        }
        while pos < n && b[pos] == 0xFF {
            pos += 1;
        }
        if pos >= n {
            return Err(IngestError::truncated("JPEG"));
        }
        let marker = b[pos];
        pos += 1;
        match marker {
            0xD9 => {
                h.clean.extend_from_slice(&[0xFF, 0xD9]);
                break;
            }
            0xD0..=0xD7 | 0x01 | 0x00 => continue, // standalone markers (RSTn, TEM) or a stray stuffed byte
            0xD8 => {
                return Err(IngestError::corrupt(
                    "JPEG has a second start-of-image marker before its end",
                ));
            }
            _ => {}
        }
        if pos + 2 > n {
            return Err(IngestError::truncated("JPEG"));
        }
        let len = be16(b, pos);
        if len < 2 {
            return Err(IngestError::corrupt("JPEG segment with a length below 2"));
        }
        if pos + len > n {
            return Err(IngestError::truncated("JPEG"));
        }
        let body = pos + 2..pos + len;
        let seg = &b[body.clone()];
        match marker {
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                if saw_frame {
                    // A second frame header (hierarchical JPEG) is refused rather than guessed at.
                    return Err(IngestError::corrupt("JPEG has more than one frame header"));
                }
                if seg.len() < 6 {
                    return Err(IngestError::corrupt("JPEG frame header too short"));
                }
                saw_frame = true;
                h.precision = seg[0];
                h.height = be16(seg, 1) as u32;
                h.width = be16(seg, 3) as u32;
                h.components = seg[5];
                if h.width == 0 || h.height == 0 {
                    return Err(IngestError::corrupt(format!(
                        "JPEG frame header declares {}x{} (a side of 0)",
                        h.width, h.height
                    )));
                }
                if !matches!(h.components, 1 | 3 | 4) || seg.len() < 6 + 3 * h.components as usize {
                    return Err(IngestError::corrupt(
                        "JPEG frame header with an unsupported component count",
                    ));
                }
                check_dimensions(h.width as u64, h.height as u64, 1, limits)?;
            }
            0xDA => {
                if !saw_frame {
                    return Err(IngestError::corrupt("JPEG scan before any frame header"));
                }
                h.scans += 1;
                if h.scans > limits.max_jpeg_scans {
                    return Err(IngestError::DecodeTooCostly(format!(
                        "JPEG has more than {} scans (max_jpeg_scans limit); refusing the decode work",
                        limits.max_jpeg_scans
                    )));
                }
                // Skip entropy-coded data up to the next real marker; keep it for the decoder.
                let seg_start = pos;
                pos = body.end;
                loop {
                    match b[pos..].iter().position(|&c| c == 0xFF) {
                        None => return Err(IngestError::truncated("JPEG")),
                        Some(k) => pos += k,
                    }
                    if pos + 1 >= n {
                        return Err(IngestError::truncated("JPEG"));
                    }
                    let next = b[pos + 1];
                    // Stuffed bytes, restart markers, fill bytes, and the reserved codes below
                    // SOF0 (never a real marker: damaged data) stay in the entropy-coded data,
                    // as libjpeg reads it: it warns at a damaged spot and resyncs at the next
                    // restart marker, which it could not do if the bytes were dropped here.
                    if next < 0xC0 || (0xD0..=0xD7).contains(&next) || next == 0xFF {
                        pos += if next == 0xFF { 1 } else { 2 };
                        continue;
                    }
                    break;
                }
                h.clean.extend_from_slice(&[0xFF, 0xDA]);
                h.clean.extend_from_slice(&b[seg_start..pos]);
                continue;
            }
            0xE1 if h.exif.is_none() && seg.starts_with(b"Exif\0\0") => {
                h.exif = Some(body.start + 6..body.end);
            }
            0xE2 if seg.len() > 14 && seg.starts_with(b"ICC_PROFILE\0") => {
                h.icc_chunks.push((seg[12], body.start + 14..body.end));
            }
            0xEE if seg.len() >= 12 && seg.starts_with(b"Adobe") => {
                h.adobe_transform = Some(seg[11]);
            }
            _ => {}
        }
        let keep = match marker {
            0xE0 => seg.starts_with(b"JFIF\0"),
            0xEE => seg.starts_with(b"Adobe"),
            0xE1..=0xED | 0xEF | 0xFE => false,
            _ => true,
        };
        if keep {
            h.clean.extend_from_slice(&[0xFF, marker]);
            h.clean.extend_from_slice(&b[pos..body.end]);
        }
        pos = body.end;
    }
    if !saw_frame {
        return Err(IngestError::corrupt("JPEG without a frame header"));
    }
    if h.scans == 0 {
        return Err(IngestError::truncated("JPEG"));
    }
    if h.precision != 8 {
        return Err(IngestError::UnsupportedFormat(format!(
            "JPEG with {}-bit samples; only 8-bit JPEG is supported",
            h.precision
        )));
    }
    Ok(h)
}

/// Refuse sizes over the limits (or of zero) before any allocation.
pub(crate) fn check_dimensions(
    w: u64,
    h: u64,
    frames: u64,
    limits: &Limits,
) -> Result<(), IngestError> {
    if w == 0 || h == 0 {
        return Err(IngestError::corrupt(format!(
            "image declares {w}x{h} (a side of 0)"
        )));
    }
    if w > limits.max_side as u64 || h > limits.max_side as u64 {
        return Err(IngestError::DimensionsTooLarge {
            width: w,
            height: h,
            limit: limits.max_side,
        });
    }
    let pixels = w.saturating_mul(h).saturating_mul(frames.max(1));
    if pixels > limits.max_pixels {
        return Err(IngestError::TooManyPixels {
            pixels,
            frames: frames.max(1),
            limit: limits.max_pixels,
        });
    }
    Ok(())
}

/// A decompressor for one picture. libjpeg keeps tables and source state in its decompress
/// object from one image to the next (abbreviated streams rely on it) and can be left mid-read by
/// an error, so a reused one lets one picture change how the next decodes: every picture gets a
/// fresh one (creating it costs microseconds).
pub(crate) fn decompressor() -> Result<turbojpeg::Decompressor, IngestError> {
    turbojpeg::Decompressor::new().map_err(|e| IngestError::Internal(e.to_string()))
}

/// Map a libjpeg-turbo failure to our codes. libjpeg reports truncation as a warning that
/// TurboJPEG turns into an error; both kinds are refusals here.
pub(crate) fn map_turbo_error(e: turbojpeg::Error) -> IngestError {
    let msg = e.to_string();
    let lower = msg.to_ascii_lowercase();
    if lower.contains("premature end") {
        IngestError::Truncated("JPEG entropy-coded data ends early (truncated file)".into())
    } else if lower.contains("scan") && lower.contains("limit") {
        IngestError::DecodeTooCostly("JPEG scan count over the limit".into())
    } else if lower.contains("unsupported") || lower.contains("not supported") {
        IngestError::UnsupportedFormat(format!(
            "JPEG variant not supported: {}",
            strip_prefix(&msg)
        ))
    } else {
        IngestError::corrupt(format!("JPEG: {}", strip_prefix(&msg)))
    }
}

/// A libjpeg warning as reported to the user.
pub(crate) fn warning_text(e: &turbojpeg::Error) -> String {
    format!("JPEG: {}", strip_prefix(&e.to_string()))
}

fn strip_prefix(m: &str) -> &str {
    m.trim_start_matches("TurboJPEG error: ")
}

/// Whether libjpeg's warning says the entropy data stopped (it hit a marker, e.g. an EOI written
/// after a cut) before every block was decoded: from there on libjpeg fills blocks itself.
fn ran_out_of_data(warnings: &[String]) -> bool {
    warnings.iter().any(|w| {
        w.to_ascii_lowercase()
            .contains("premature end of data segment")
    })
}

/// How many rows at the bottom of a picture (`stride` bytes each, `px` bytes a pixel) are one
/// flat colour: what libjpeg writes for every block after the data ran out. Damage in the middle
/// is recovered at the next restart marker and leaves the bottom decoded.
fn trailing_fill_rows(data: &[u8], stride: usize, px: usize) -> usize {
    if stride == 0 || px == 0 || data.len() < stride {
        return 0;
    }
    let used = stride - stride % px;
    let last = &data[data.len() - stride..];
    let colour = &last[..px];
    data.chunks_exact(stride)
        .rev()
        .take_while(|row| row[..used].chunks_exact(px).all(|p| p == colour))
        .count()
}

/// Whether a decode that warned of running out of data lost more than libjpeg's recovery
/// should be trusted with: a flat bottom of at least one MCU row and 5 % of the height is a
/// picture whose end was never in the file. Less (a damaged last restart interval, as in a
/// camera file that Pillow also shows whole) is kept, with the warning reported.
pub(crate) fn lost_its_end(
    warnings: &[String],
    data: &[u8],
    stride: usize,
    px: usize,
    mcu_rows: usize,
) -> bool {
    if !ran_out_of_data(warnings) {
        return false;
    }
    let height = data.len() / stride.max(1);
    trailing_fill_rows(data, stride, px) >= mcu_rows.max(height / 20)
}

/// The refusal for a picture whose entropy data ends before its last blocks.
pub(crate) fn missing_end() -> IngestError {
    IngestError::Truncated(
        "JPEG scan data ends before the picture does (the bottom was never in the file)".into(),
    )
}

/// Whether TurboJPEG's failure was only a libjpeg *warning* (the JWRN_* messages of jerror.h):
/// the picture was fully decoded, possibly with a damaged region filled by libjpeg. The marker
/// walk has already refused files that end before their EOI, so what remains are complete files
/// with damaged entropy data, which Pillow and libvips also accept. Fatal errors (JERR_*) leave
/// no picture and are refused.
pub(crate) fn is_benign_warning(e: &turbojpeg::Error) -> bool {
    const WARNINGS: [&str; 7] = [
        "corrupt jpeg data",
        "premature end of jpeg file",
        "warning:",
        "inconsistent progression sequence",
        "invalid sos parameters for sequential jpeg",
        "unknown adobe color transform",
        "application transferred too many scanlines",
    ];
    let m = e.to_string().to_ascii_lowercase();
    WARNINGS.iter().any(|w| m.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_jpeg() -> Vec<u8> {
        let img = turbojpeg::Image {
            pixels: vec![128u8; 16 * 8 * 3],
            width: 16,
            pitch: 48,
            height: 8,
            format: turbojpeg::PixelFormat::RGB,
        };
        turbojpeg::compress(img.as_deref(), 90, turbojpeg::Subsamp::Sub2x2)
            .unwrap()
            .to_vec()
    }

    #[test]
    fn walks_a_real_jpeg() {
        let j = tiny_jpeg();
        let h = walk(&j, &Limits::default()).unwrap();
        assert_eq!((h.width, h.height, h.components, h.scans), (16, 8, 3, 1));
    }

    #[test]
    fn every_truncation_is_refused_without_panic() {
        let j = tiny_jpeg();
        for cut in 0..j.len() - 1 {
            let mut b = j[..cut].to_vec();
            if b.len() < 3 {
                b = vec![0xFF, 0xD8, 0xFF];
            }
            let r = walk(&b, &Limits::default());
            assert!(r.is_err(), "cut at {cut} accepted");
        }
    }

    #[test]
    fn clean_stream_drops_metadata_and_stray_bytes_and_still_decodes() {
        let j = tiny_jpeg();
        // Insert a COM segment, an APP1 and three stray bytes after SOI.
        let mut dirty = j[..2].to_vec();
        dirty.extend_from_slice(&[0xFF, 0xFE, 0x00, 0x08]);
        dirty.extend_from_slice(b"SECRET");
        dirty.extend_from_slice(&[0xFF, 0xE1, 0x00, 0x0A]);
        dirty.extend_from_slice(b"Exif\0\0MM");
        dirty.extend_from_slice(&[1, 2, 3]);
        dirty.extend_from_slice(&j[2..]);
        let h = walk(&dirty, &Limits::default()).unwrap();
        assert!(!h.clean.windows(6).any(|w| w == b"SECRET"));
        assert!(
            h.clean.len() < j.len() + 1,
            "clean {} vs original {}",
            h.clean.len(),
            j.len()
        );
        let img = turbojpeg::decompress(&h.clean, turbojpeg::PixelFormat::RGB).unwrap();
        assert_eq!((img.width, img.height), (16, 8));
    }

    #[test]
    fn scan_limit_counts_scans() {
        let j = tiny_jpeg();
        let lim = Limits {
            max_jpeg_scans: 0,
            ..Limits::default()
        };
        assert_eq!(walk(&j, &lim).unwrap_err().code(), "decode_too_costly");
    }

    #[test]
    fn header_dimensions_are_checked_before_decode() {
        let mut j = tiny_jpeg();
        let sof = j.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        j[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xDC, 0xFF, 0xDC]); // 65500 x 65500
        assert_eq!(
            walk(&j, &Limits::default()).unwrap_err().code(),
            "dimensions_too_large"
        );
    }
}
