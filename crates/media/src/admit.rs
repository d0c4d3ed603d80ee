//! The cheap gate before anything parses a file in depth: the size limit, the format sniffed
//! from its signature, and the container's own size facts checked against the limits, all
//! without decoding a pixel.

use crate::{Format, IngestError, Limits, bmff, jpeg, probe, sniff};

/// The file's format, once its size, signature and header pass the limits. Decoding may still
/// refuse it; a refusal here means nothing else needs to look at it.
pub fn admit(input: &[u8], limits: &Limits) -> Result<Format, IngestError> {
    if input.len() as u64 > limits.max_file_bytes {
        return Err(IngestError::FileTooLarge {
            size: input.len() as u64,
            limit: limits.max_file_bytes,
        });
    }
    let format = sniff(input)?;
    match format {
        Format::Jpeg => {
            jpeg::walk(input, limits)?;
        }
        Format::Png => {
            probe::png(input, limits)?;
        }
        Format::Gif => {
            probe::gif(input, limits)?;
        }
        Format::WebP => {
            probe::webp(input, limits)?;
        }
        Format::Tiff => probe::tiff(input)?,
        Format::Heif | Format::Avif => {
            bmff::walk(input, format, limits)?;
        }
        // jxl-oxide reads the header under the allocation cap at decode; the signature is all
        // that is checked here.
        Format::Jxl => {}
    }
    Ok(format)
}
