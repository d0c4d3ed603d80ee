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
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::WebP => "webp",
            Format::Gif => "gif",
            Format::Tiff => "tiff",
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
    } else if b.is_empty() {
        return Err(IngestError::UnsupportedFormat(
            "empty file: no image data".into(),
        ));
    } else {
        return Err(IngestError::UnsupportedFormat(format!(
            "not a supported image: the first bytes match none of JPEG, PNG, WebP, GIF or TIFF ({})",
            describe(b)
        )));
    };
    Ok(format)
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
    } else if b.len() >= 12 && &b[4..8] == b"ftyp" {
        "looks like an ISO media file (HEIC/AVIF/MP4), not supported yet"
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
