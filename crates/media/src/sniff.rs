//! Format detection from magic bytes only; names and extensions are never trusted.

use crate::IngestError;

/// The input formats accepted today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Jpeg,
    Png,
    WebP,
    Gif,
    Tiff,
    /// HEIF still image coded with HEVC (HEIC: what phones save).
    Heif,
    /// HEIF still image coded with AV1.
    Avif,
    /// JPEG XL, bare codestream or ISO BMFF container.
    Jxl,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::WebP => "webp",
            Format::Gif => "gif",
            Format::Tiff => "tiff",
            Format::Heif => "heif",
            Format::Avif => "avif",
            Format::Jxl => "jxl",
        }
    }
}

/// Decide the format from the first bytes; anything unknown is `unsupported_format`.
pub fn sniff(bytes: &[u8]) -> Result<Format, IngestError> {
    let b = bytes;
    let format = if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Format::Jpeg
    } else if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        Format::Png
    } else if b.len() >= 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        Format::WebP
    } else if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        Format::Gif
    } else if b.starts_with(b"II*\0")
        || b.starts_with(b"MM\0*")
        || b.starts_with(b"II+\0")
        || b.starts_with(b"MM\0+")
    {
        Format::Tiff
    } else if b.starts_with(&[0xFF, 0x0A]) || b.starts_with(JXL_CONTAINER) {
        Format::Jxl
    } else if let Some(brands) = ftyp_brands(b) {
        heif_kind(brands).ok_or_else(|| {
            IngestError::UnsupportedFormat(
                "an ISO media file whose brands name no HEIF or AVIF still image \
                 (a video or another ISO format): not supported"
                    .into(),
            )
        })?
    } else if b.is_empty() {
        return Err(IngestError::UnsupportedFormat(
            "empty file: no image data".into(),
        ));
    } else {
        return Err(IngestError::UnsupportedFormat(format!(
            "not a supported image: the first bytes match none of JPEG, PNG, WebP, GIF, TIFF, HEIF, AVIF or JPEG XL ({})",
            describe(b)
        )));
    };
    Ok(format)
}

/// The signature box that opens a JPEG XL container.
const JXL_CONTAINER: &[u8] = b"\0\0\0\x0cJXL \r\n\x87\n";

/// Most brands read from an `ftyp` box; real files list a handful.
const MAX_BRANDS: usize = 64;

/// The major and compatible brands of a leading `ftyp` box, if the bytes start with one.
pub(crate) fn ftyp_brands(b: &[u8]) -> Option<impl Iterator<Item = &[u8]>> {
    if b.len() < 16 || &b[4..8] != b"ftyp" {
        return None;
    }
    let size = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let end = size.clamp(16, b.len());
    let major = &b[8..12];
    // Bytes 12..16 are the minor version; the compatible brands follow, four bytes each.
    let compatible = b[16..end].chunks_exact(4).take(MAX_BRANDS);
    Some(std::iter::once(major).chain(compatible))
}

/// Which HEIF still-image family the brands declare. The brands only pick the decoder: the
/// container walk checks the primary item's coding agrees with them.
pub(crate) fn heif_kind<'a>(brands: impl Iterator<Item = &'a [u8]>) -> Option<Format> {
    let mut kind = None;
    for brand in brands {
        match brand {
            b"avif" | b"avis" => return Some(Format::Avif),
            b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"mif1" | b"msf1" => {
                kind = Some(Format::Heif)
            }
            _ => {}
        }
    }
    kind
}

/// A short, content-free hint at what the bytes are, so the message helps without echoing data.
fn describe(b: &[u8]) -> &'static str {
    let starts = |m: &[u8]| b.starts_with(m);
    if starts(b"%PDF") {
        "looks like a PDF document"
    } else if starts(b"PK\x03\x04") {
        "looks like a ZIP archive"
    } else if starts(b"\x7fELF") {
        "looks like an ELF executable"
    } else if starts(b"\x1f\x8b") {
        "looks like gzip data"
    } else if b
        .iter()
        .take(512)
        .all(|&c| c == b'\n' || c == b'\r' || c == b'\t' || (0x20..0x7f).contains(&c))
    {
        "looks like text (HTML, SVG, XML or plain text)"
    } else {
        "unknown binary data"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_decides_not_content_after() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest").unwrap(), Format::Jpeg);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nxxxx").unwrap(), Format::Png);
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 ").unwrap(), Format::WebP);
        assert_eq!(sniff(b"GIF89a....").unwrap(), Format::Gif);
        assert_eq!(sniff(b"MM\0*\0\0\0\x08").unwrap(), Format::Tiff);
        assert_eq!(
            sniff(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic").unwrap(),
            Format::Heif
        );
        assert_eq!(
            sniff(b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf").unwrap(),
            Format::Avif
        );
        // A generic HEIF brand with AVIF among the compatible ones is AVIF.
        assert_eq!(
            sniff(b"\0\0\0\x18ftypmif1\0\0\0\0mif1avif").unwrap(),
            Format::Avif
        );
        assert_eq!(sniff(b"\xFF\x0A\xFA\x7F").unwrap(), Format::Jxl);
        assert_eq!(
            sniff(b"\0\0\0\x0cJXL \r\n\x87\n\0\0\0\x14ftypjxl ").unwrap(),
            Format::Jxl
        );
    }

    #[test]
    fn iso_media_that_is_not_a_still_image_is_refused() {
        for video in [
            &b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom"[..],
            b"\0\0\0\x14ftypqt  \0\0\0\0qt  ",
            // The box claims more brands than the file holds.
            b"\0\0\x10\0ftypisom\0\0\0\0iso2",
        ] {
            let e = sniff(video).unwrap_err();
            assert_eq!(e.code(), "unsupported_format");
            assert!(e.to_string().contains("ISO media"), "{e}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            &b""[..],
            b"%PDF-1.4",
            b"<svg xmlns=",
            b"PK\x03\x04",
            b"\x7fELF\x02",
            b"\0\0\0\0\xFF\xD8\xFF",
            b"RIFF\0\0\0\0WAVEfmt ",
            b"\x1f\x8b\x08\0",
        ] {
            let e = sniff(bad).unwrap_err();
            assert_eq!(e.code(), "unsupported_format", "{bad:?}");
        }
    }
}
