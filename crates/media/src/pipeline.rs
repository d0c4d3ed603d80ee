//! The whole ingest flow for one input held in memory: sniff → limits → decode → orient →
//! colour → resize → encode. Buffers are kept for the next input; no decoder state is (every
//! picture starts from a fresh decoder, and an encoder that failed is replaced).

use fast_image_resize::Resizer;

use crate::colour::{self, ColourOutcome};
use crate::decode::{self, RawDecode};
use crate::encode::{Encoder, OutputFormat};
use crate::{Format, IngestError, Limits, Pixels, heif, jpeg, jxl, orient, probe, resize, sniff};

/// Choices for one sanitize run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Output format; `None` picks JPEG, or PNG when the picture has real transparency.
    pub format: Option<OutputFormat>,
    /// Encoder quality 1–100 (JPEG, WebP).
    pub quality: u8,
    /// Downscale so the long edge is at most this many pixels.
    pub max_edge: Option<u32>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            format: None,
            quality: 85,
            max_edge: None,
        }
    }
}

/// An upright, sRGB, metadata-free picture and where it came from.
#[derive(Debug)]
pub struct Decoded {
    pub pixels: Pixels,
    pub input_format: Format,
    /// EXIF orientation that was applied (1 = none).
    pub orientation: u8,
    pub colour: ColourOutcome,
    /// Frames in the input (only the first is kept).
    pub frames: u64,
    /// What the decoder warned about and recovered from (a damaged region libjpeg filled in).
    pub warnings: Vec<String>,
}

/// A sanitized output.
#[derive(Debug)]
pub struct Sanitized {
    pub bytes: Vec<u8>,
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
    pub input_format: Format,
    pub orientation: u8,
    pub colour: ColourOutcome,
    pub frames: u64,
    /// What the decoder warned about and recovered from.
    pub warnings: Vec<String>,
}

/// One worker's pipeline. Not shared between threads: give each worker its own.
pub struct Pipeline {
    limits: Limits,
    encoder: Encoder,
    resizer: Resizer,
    spare: Vec<u8>,
    scratch: Vec<u8>,
}

impl Pipeline {
    pub fn new(limits: Limits) -> Self {
        Pipeline {
            limits,
            encoder: Encoder::new(),
            resizer: Resizer::new(),
            spare: Vec::new(),
            scratch: Vec::new(),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Sniff, check limits, decode, orient, convert to sRGB and fit `max_edge`.
    pub fn decode(&mut self, input: &[u8], max_edge: Option<u32>) -> Result<Decoded, IngestError> {
        let limits = self.limits;
        if input.len() as u64 > limits.max_file_bytes {
            return Err(IngestError::FileTooLarge {
                size: input.len() as u64,
                limit: limits.max_file_bytes,
            });
        }
        let format = sniff(input)?;
        let raw: RawDecode = match format {
            Format::Jpeg => {
                let header = jpeg::walk(input, &limits)?;
                let mut dec = jpeg::decompressor()?;
                let buf = std::mem::take(&mut self.spare);
                decode::jpeg(&mut dec, input, &header, &limits, max_edge, buf)?
            }
            Format::Png => {
                let h = probe::png(input, &limits)?;
                decode::generic(input, format, &limits, h.frames)?
            }
            Format::Gif => {
                let h = probe::gif(input, &limits)?;
                decode::generic(input, format, &limits, h.frames)?
            }
            Format::WebP => {
                let h = probe::webp(input, &limits)?;
                decode::generic(input, format, &limits, h.frames)?
            }
            Format::Tiff => {
                probe::tiff(input)?;
                decode::generic(input, format, &limits, 1)?
            }
            Format::Heif | Format::Avif => heif::decode(input, format, &limits)?,
            Format::Jxl => jxl::decode(input, &limits)?,
        };
        let RawDecode {
            mut pixels,
            orientation,
            applied_orientation,
            icc,
            cicp,
            frames,
            warnings,
        } = raw;
        let colour = match (icc, cicp) {
            (Some(icc), _) => colour::to_srgb(&mut pixels, Some(&icc), &mut self.scratch),
            (None, Some(cicp)) => colour::cicp_to_srgb(&mut pixels, cicp, &mut self.scratch),
            (None, None) => ColourOutcome::NoProfile,
        };
        orient::apply(&mut pixels, orientation, &mut self.scratch);
        let orientation = if orientation == 1 {
            applied_orientation
        } else {
            orientation
        };
        if let Some(edge) = max_edge {
            resize::fit(&mut self.resizer, &mut pixels, edge, &mut self.scratch)?;
        }
        Ok(Decoded {
            pixels,
            input_format: format,
            orientation,
            colour,
            frames,
            warnings,
        })
    }

    /// Encode pixels (alpha is dropped when fully opaque, flattened for JPEG).
    pub fn encode(
        &mut self,
        pixels: &mut Pixels,
        format: Option<OutputFormat>,
        quality: u8,
    ) -> Result<(Vec<u8>, OutputFormat), IngestError> {
        pixels.drop_opaque_alpha();
        let format = format.unwrap_or(if pixels.has_alpha() {
            OutputFormat::Png
        } else {
            OutputFormat::Jpeg
        });
        if let Some(side) = format.max_side() {
            // Every accepted picture must encode: one over the encoder's side limit is fitted to it.
            resize::fit(&mut self.resizer, pixels, side, &mut self.scratch)?;
        }
        let bytes = self.encoder.encode(pixels, format, quality)?;
        Ok((bytes, format))
    }

    /// Zero the buffers kept for the next picture, over their whole capacity (a buffer's length
    /// may have shrunk below what an earlier picture wrote): what one picture leaves in a
    /// worker's memory is not there for whatever reads that memory next. Call it after every
    /// picture, also after an error.
    pub fn scrub(&mut self) {
        for buf in [&mut self.spare, &mut self.scratch] {
            let cap = buf.capacity();
            buf.fill(0);
            buf.resize(cap, 0);
        }
    }

    /// Whether a kept buffer still holds a nonzero byte.
    pub fn holds_picture_bytes(&self) -> bool {
        [&self.spare, &self.scratch]
            .iter()
            .any(|buf| buf.iter().any(|b| *b != 0))
    }

    /// Give a finished picture's buffer back for the next decode.
    pub fn recycle(&mut self, pixels: Pixels) {
        if pixels.data.capacity() > self.spare.capacity() {
            self.spare = pixels.data;
        }
    }

    /// JPEG in, JPEG out, pixels untouched (upright, sRGB, no resize): decode to YUV planes and
    /// encode from them, skipping two colour conversions and the chroma resampling. The output
    /// is still a fresh encode from decoded samples. `None` when the fast path does not apply.
    /// [`Pipeline::sanitize`] tries it first; a caller that splits decode and encode across
    /// threads must too, or its output would differ from `sanitize`'s.
    pub fn sanitize_jpeg_yuv(
        &mut self,
        input: &[u8],
        opts: &Options,
    ) -> Result<Option<Sanitized>, IngestError> {
        if opts.max_edge.is_some()
            || !matches!(opts.format, None | Some(OutputFormat::Jpeg))
            || input.len() as u64 > self.limits.max_file_bytes
            || !input.starts_with(&[0xFF, 0xD8, 0xFF])
        {
            return Ok(None);
        }
        let header = jpeg::walk(input, &self.limits)?;
        let orientation = header
            .exif
            .clone()
            .map(|r| orient::exif_orientation(&input[r]))
            .unwrap_or(1);
        let icc = header.icc_profile(input);
        if orientation != 1
            || header.components == 4
            || icc.as_deref().is_some_and(|p| !colour::is_srgb(p))
        {
            return Ok(None);
        }
        let mut dec = jpeg::decompressor()?;
        let buf = std::mem::take(&mut self.spare);
        let frame = match decode::jpeg_yuv(&mut dec, &header, &self.limits, buf)? {
            Ok(f) => f,
            Err(buf) => {
                self.spare = buf;
                return Ok(None);
            }
        };
        let bytes = self.encoder.encode_yuv(&frame, opts.quality)?;
        let (width, height) = (frame.width as u32, frame.height as u32);
        self.spare = frame.data;
        Ok(Some(Sanitized {
            bytes,
            format: OutputFormat::Jpeg,
            width,
            height,
            input_format: Format::Jpeg,
            orientation,
            colour: if icc.is_some() {
                ColourOutcome::AlreadySrgb
            } else {
                ColourOutcome::NoProfile
            },
            frames: 1,
            warnings: frame.warnings,
        }))
    }

    /// Encode a decoded picture into a [`Sanitized`]; the pixel buffer is handed back (whatever
    /// the outcome) so the caller can reuse it, here or on another thread's pipeline.
    pub fn encode_decoded(
        &mut self,
        d: Decoded,
        opts: &Options,
    ) -> (Result<Sanitized, IngestError>, Pixels) {
        let Decoded {
            mut pixels,
            input_format,
            orientation,
            colour,
            frames,
            warnings,
        } = d;
        let encoded = self.encode(&mut pixels, opts.format, opts.quality);
        let (width, height) = (pixels.width, pixels.height);
        let out = encoded.map(|(bytes, format)| Sanitized {
            bytes,
            format,
            width,
            height,
            input_format,
            orientation,
            colour,
            frames,
            warnings,
        });
        (out, pixels)
    }

    /// The whole job: input bytes in, clean output bytes out.
    pub fn sanitize(&mut self, input: &[u8], opts: &Options) -> Result<Sanitized, IngestError> {
        if let Some(out) = self.sanitize_jpeg_yuv(input, opts)? {
            return Ok(out);
        }
        let d = self.decode(input, opts.max_edge)?;
        let (out, pixels) = self.encode_decoded(d, opts);
        self.recycle(pixels);
        out
    }
}
