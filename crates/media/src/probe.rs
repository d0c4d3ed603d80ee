//! Header probes for PNG, GIF, WebP and TIFF: size and frame count (and, for TIFF, where the
//! image data lies) read from the container alone, so limits are enforced and damage is named
//! before a decoder allocates anything.

use crate::jpeg::check_dimensions;
use crate::{AnimatedPolicy, IngestError, Limits};

/// Size facts of a non-JPEG container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub width: u32,
    pub height: u32,
    pub frames: u64,
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn le16(b: &[u8], at: usize) -> u32 {
    u32::from(b[at]) | u32::from(b[at + 1]) << 8
}
fn le24(b: &[u8], at: usize) -> u32 {
    le16(b, at) | u32::from(b[at + 2]) << 16
}
fn le32(b: &[u8], at: usize) -> u32 {
    le24(b, at) | u32::from(b[at + 3]) << 24
}

fn enforce(h: Header, limits: &Limits) -> Result<Header, IngestError> {
    check_dimensions(h.width as u64, h.height as u64, h.frames, limits)?;
    if h.frames > 1 && limits.animated == AnimatedPolicy::Reject {
        return Err(IngestError::AnimatedNotSupported { frames: h.frames });
    }
    Ok(h)
}

/// PNG: IHDR must come first and be well formed; an `acTL` before the first IDAT announces frames.
pub fn png(b: &[u8], limits: &Limits) -> Result<Header, IngestError> {
    let mut pos = 8;
    let mut hdr: Option<Header> = None;
    loop {
        if pos + 8 > b.len() {
            return Err(IngestError::truncated("PNG"));
        }
        let len = be32(b, pos) as usize;
        let kind = &b[pos + 4..pos + 8];
        if len > 0x7FFF_FFFF {
            return Err(IngestError::corrupt("PNG chunk length over 2^31"));
        }
        let data = pos + 8;
        if data + len + 4 > b.len() {
            return Err(IngestError::truncated("PNG"));
        }
        let d = &b[data..data + len];
        match (kind, hdr.is_some()) {
            (b"IHDR", false) => {
                if len != 13 {
                    return Err(IngestError::corrupt("PNG IHDR has the wrong length"));
                }
                let (w, h, depth, ct, interlace) = (be32(d, 0), be32(d, 4), d[8], d[9], d[12]);
                let ok_depth = match ct {
                    0 => matches!(depth, 1 | 2 | 4 | 8 | 16),
                    3 => matches!(depth, 1 | 2 | 4 | 8),
                    2 | 4 | 6 => matches!(depth, 8 | 16),
                    _ => {
                        return Err(IngestError::corrupt(format!(
                            "PNG colour type {ct} is not defined"
                        )));
                    }
                };
                if !ok_depth || interlace > 1 || d[10] != 0 || d[11] != 0 {
                    return Err(IngestError::corrupt(
                        "PNG IHDR with an invalid bit depth, compression, filter or interlace",
                    ));
                }
                if w == 0 || h == 0 {
                    return Err(IngestError::corrupt(format!(
                        "PNG declares {w}x{h} (a side of 0)"
                    )));
                }
                hdr = Some(Header {
                    width: w,
                    height: h,
                    frames: 1,
                });
            }
            (_, false) => return Err(IngestError::corrupt("PNG does not start with IHDR")),
            (b"acTL", true) if len >= 8 => {
                let frames = be32(d, 0) as u64;
                if let Some(h) = hdr.as_mut() {
                    h.frames = frames.max(1);
                }
            }
            (b"IDAT", true) | (b"IEND", true) => break,
            _ => {}
        }
        pos = data + len + 4;
    }
    enforce(hdr.expect("IHDR seen"), limits)
}

/// GIF: the logical screen, then every block is walked (without LZW decoding) to count frames.
pub fn gif(b: &[u8], limits: &Limits) -> Result<Header, IngestError> {
    if b.len() < 13 {
        return Err(IngestError::truncated("GIF"));
    }
    let (w, h) = (le16(b, 6), le16(b, 8));
    let mut pos = 13;
    if b[10] & 0x80 != 0 {
        pos += 3 << ((b[10] & 7) + 1);
    }
    let mut frames: u64 = 0;
    let mut summed: u64 = 0;
    let skip_sub_blocks = |mut p: usize| -> Option<usize> {
        loop {
            let n = *b.get(p)? as usize;
            p += 1;
            if n == 0 {
                return Some(p);
            }
            p += n;
        }
    };
    loop {
        let Some(&block) = b.get(pos) else {
            if frames == 0 {
                return Err(IngestError::truncated("GIF"));
            }
            break; // a missing trailer after whole frames is common and harmless
        };
        match block {
            0x3B => break,
            0x21 => {
                pos = match b.get(pos + 1).and_then(|_| skip_sub_blocks(pos + 2)) {
                    Some(p) => p,
                    None if frames > 0 => break,
                    None => return Err(IngestError::truncated("GIF")),
                };
            }
            0x2C => {
                if pos + 10 > b.len() {
                    return Err(IngestError::truncated("GIF"));
                }
                let (fw, fh) = (le16(b, pos + 5) as u64, le16(b, pos + 7) as u64);
                let flags = b[pos + 9];
                pos += 10;
                if flags & 0x80 != 0 {
                    pos += 3 << ((flags & 7) + 1);
                }
                let Some(&code_size) = b.get(pos) else {
                    return Err(IngestError::truncated("GIF"));
                };
                if !(1..=11).contains(&code_size) {
                    return Err(IngestError::corrupt(format!(
                        "GIF LZW minimum code size {code_size} is invalid"
                    )));
                }
                pos = match skip_sub_blocks(pos + 1) {
                    Some(p) => p,
                    None if frames > 0 => break,
                    None => return Err(IngestError::truncated("GIF")),
                };
                frames += 1;
                summed = summed.saturating_add(fw.max(1) * fh.max(1));
                if frames > limits.max_frames as u64 {
                    return Err(IngestError::DecodeTooCostly(format!(
                        "GIF has more than {} frames (max_frames limit)",
                        limits.max_frames
                    )));
                }
            }
            _ => {
                if frames == 0 {
                    return Err(IngestError::corrupt(
                        "GIF block of unknown type before the first frame",
                    ));
                }
                break;
            }
        }
    }
    let header = Header {
        width: w,
        height: h,
        frames,
    };
    check_dimensions(w as u64, h as u64, 1, limits)?;
    // Frames may be smaller than the screen: count what each one really covers, and never less
    // than the screen once (the first frame is composed onto it).
    let total = summed.max(w as u64 * h as u64);
    if total > limits.max_pixels {
        return Err(IngestError::TooManyPixels {
            pixels: total,
            frames,
            limit: limits.max_pixels,
        });
    }
    enforce(header, limits)
}

/// WebP: the RIFF chunks give the canvas (VP8X) or the frame size (VP8 / VP8L); animation
/// frames (ANMF) are counted.
pub fn webp(b: &[u8], limits: &Limits) -> Result<Header, IngestError> {
    if b.len() < 20 {
        return Err(IngestError::truncated("WebP"));
    }
    let riff_end = 8usize.saturating_add(le32(b, 4) as usize);
    if riff_end > b.len() {
        return Err(IngestError::truncated("WebP"));
    }
    let mut pos = 12;
    let mut hdr: Option<Header> = None;
    let mut anim_frames = 0u64;
    let mut saw_image = false;
    while pos + 8 <= riff_end {
        let kind = &b[pos..pos + 4];
        let len = le32(b, pos + 4) as usize;
        let data = pos + 8;
        if data.saturating_add(len) > riff_end {
            return Err(IngestError::truncated("WebP"));
        }
        let d = &b[data..data + len];
        match kind {
            b"VP8X" if hdr.is_none() => {
                if len < 10 {
                    return Err(IngestError::corrupt("WebP VP8X chunk too short"));
                }
                hdr = Some(Header {
                    width: le24(d, 4) + 1,
                    height: le24(d, 7) + 1,
                    frames: 1,
                });
            }
            b"VP8 " => {
                if len < 10 || d[3..6] != [0x9D, 0x01, 0x2A] {
                    return Err(IngestError::corrupt("WebP VP8 frame header is invalid"));
                }
                saw_image = true;
                if hdr.is_none() {
                    hdr = Some(Header {
                        width: le16(d, 6) & 0x3FFF,
                        height: le16(d, 8) & 0x3FFF,
                        frames: 1,
                    });
                }
            }
            b"VP8L" => {
                if len < 5 || d[0] != 0x2F {
                    return Err(IngestError::corrupt("WebP VP8L header is invalid"));
                }
                saw_image = true;
                if hdr.is_none() {
                    let bits = le32(d, 1);
                    hdr = Some(Header {
                        width: (bits & 0x3FFF) + 1,
                        height: ((bits >> 14) & 0x3FFF) + 1,
                        frames: 1,
                    });
                }
            }
            b"ANMF" => {
                saw_image = true;
                anim_frames += 1;
            }
            _ => {}
        }
        pos = data + len + (len & 1);
    }
    let Some(mut h) = hdr else {
        return Err(IngestError::truncated("WebP"));
    };
    if !saw_image {
        return Err(IngestError::truncated("WebP"));
    }
    if anim_frames > 0 {
        h.frames = anim_frames;
    }
    enforce(h, limits)
}

/// TIFF (classic, either byte order): the first image's data (strips or tiles) must lie inside
/// the file. A file whose data runs past its end is `truncated`, whatever a decoder would make
/// of it (one asked to allocate the claimed bytes gives up as if the picture were too costly).
/// BigTIFF is left to the decoder.
pub fn tiff(b: &[u8]) -> Result<(), IngestError> {
    const STRIP_OFFSETS: u16 = 273;
    const STRIP_BYTE_COUNTS: u16 = 279;
    const TILE_OFFSETS: u16 = 324;
    const TILE_BYTE_COUNTS: u16 = 325;
    let short = || IngestError::truncated("TIFF");
    let le = match b.get(..2) {
        Some(b"II") => true,
        Some(b"MM") => false,
        _ => return Err(IngestError::corrupt("TIFF without a byte-order mark")),
    };
    let u16_at = |at: usize| -> Option<u32> {
        let s: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(u32::from(if le {
            u16::from_le_bytes(s)
        } else {
            u16::from_be_bytes(s)
        }))
    };
    let u32_at = |at: usize| -> Option<u32> {
        let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(s)
        } else {
            u32::from_be_bytes(s)
        })
    };
    match u16_at(2).ok_or_else(short)? {
        42 => {}
        43 => return Ok(()),
        _ => return Err(IngestError::corrupt("TIFF with an unknown version")),
    }
    let ifd = u32_at(4).ok_or_else(short)? as usize;
    let entries = u16_at(ifd).ok_or_else(short)? as usize;
    // (offsets, byte counts) of strips, then of tiles.
    let mut data: [[Vec<u64>; 2]; 2] = Default::default();
    for i in 0..entries {
        let e = ifd + 2 + 12 * i;
        let (tag, kind, count) = (
            u16_at(e).ok_or_else(short)? as u16,
            u16_at(e + 2).ok_or_else(short)?,
            u32_at(e + 4).ok_or_else(short)? as usize,
        );
        let slot = match tag {
            STRIP_OFFSETS => &mut data[0][0],
            STRIP_BYTE_COUNTS => &mut data[0][1],
            TILE_OFFSETS => &mut data[1][0],
            TILE_BYTE_COUNTS => &mut data[1][1],
            _ => continue,
        };
        let size = match kind {
            3 => 2,
            4 => 4,
            _ => {
                return Err(IngestError::corrupt(
                    "TIFF image data table of an unknown type",
                ));
            }
        };
        // A count the file cannot hold is caught by the bounds check below, before any
        // allocation follows it.
        let at = if count * size <= 4 {
            e + 8
        } else {
            u32_at(e + 8).ok_or_else(short)? as usize
        };
        if at.saturating_add(count.saturating_mul(size)) > b.len() {
            return Err(short());
        }
        *slot = (0..count)
            .map(|k| {
                let v = if size == 2 {
                    u16_at(at + 2 * k)
                } else {
                    u32_at(at + 4 * k)
                };
                v.map(u64::from).ok_or_else(short)
            })
            .collect::<Result<_, _>>()?;
    }
    for [offsets, counts] in &data {
        if offsets.len() != counts.len() {
            return Err(IngestError::corrupt(
                "TIFF has a different number of image data offsets and byte counts",
            ));
        }
        if offsets
            .iter()
            .zip(counts)
            .any(|(o, c)| o.saturating_add(*c) > b.len() as u64)
        {
            return Err(IngestError::Truncated(
                "TIFF image data runs past the end of the file".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
        let mut v = (data.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(data);
        v.extend_from_slice(&[0, 0, 0, 0]); // CRC is not checked by the probe
        v
    }

    fn png_with(w: u32, h: u32, ct: u8, extra: &[Vec<u8>]) -> Vec<u8> {
        let mut ihdr = w.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, ct, 0, 0, 0]);
        let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
        b.extend(chunk(b"IHDR", &ihdr));
        for e in extra {
            b.extend_from_slice(e);
        }
        b.extend(chunk(b"IDAT", &[0; 4]));
        b.extend(chunk(b"IEND", &[]));
        b
    }

    #[test]
    fn png_limits_from_ihdr() {
        let l = Limits::default();
        assert_eq!(
            png(&png_with(100, 50, 2, &[]), &l).unwrap(),
            Header {
                width: 100,
                height: 50,
                frames: 1
            }
        );
        assert_eq!(
            png(&png_with(100_000, 100_000, 2, &[]), &l)
                .unwrap_err()
                .code(),
            "dimensions_too_large"
        );
        assert_eq!(
            png(&png_with(10_000, 10_000, 2, &[]), &l)
                .unwrap_err()
                .code(),
            "too_many_pixels"
        );
        assert_eq!(
            png(&png_with(0, 16, 2, &[]), &l).unwrap_err().code(),
            "corrupt"
        );
        assert_eq!(
            png(&png_with(16, 16, 7, &[]), &l).unwrap_err().code(),
            "corrupt"
        );
    }

    #[test]
    fn apng_frames_count_against_the_pixel_cap() {
        let mut actl = 3000u32.to_be_bytes().to_vec();
        actl.extend_from_slice(&0u32.to_be_bytes());
        let b = png_with(200, 100, 2, &[chunk(b"acTL", &actl)]);
        assert_eq!(
            png(&b, &Limits::default()).unwrap_err().code(),
            "too_many_pixels"
        );
        let reject = Limits {
            animated: AnimatedPolicy::Reject,
            ..Limits::default()
        };
        let mut actl2 = 2u32.to_be_bytes().to_vec();
        actl2.extend_from_slice(&0u32.to_be_bytes());
        let b2 = png_with(20, 10, 2, &[chunk(b"acTL", &actl2)]);
        assert_eq!(
            png(&b2, &reject).unwrap_err().code(),
            "animated_not_supported"
        );
        assert_eq!(png(&b2, &Limits::default()).unwrap().frames, 2);
    }

    #[test]
    fn gif_truncation_and_code_size() {
        let mut g = b"GIF89a\x0a\x00\x0a\x00\x00\x00\x00".to_vec();
        g.extend_from_slice(&[0x2C, 0, 0, 0, 0, 10, 0, 10, 0, 0, 2, 2, 0x4C, 0x01]);
        assert_eq!(gif(&g, &Limits::default()).unwrap_err().code(), "truncated");
        g.extend_from_slice(&[0x00, 0x3B]);
        assert_eq!(gif(&g, &Limits::default()).unwrap().frames, 1);
        let mut bad = g.clone();
        bad[23] = 15;
        assert_eq!(gif(&bad, &Limits::default()).unwrap_err().code(), "corrupt");
    }
}
