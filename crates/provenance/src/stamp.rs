//! The stamp stage shared by `pixseal stamp` and the upload path: decoded pixels → watermark
//! hook → perceptual hash → encode → signed C2PA manifest embedded in the output.

use pixseal_media::{Decoded, IngestError, Options, OutputFormat, Pipeline, Pixels};

use pixseal_proof::ProofId;
use pixseal_watermark::{Strength, visible};

use crate::manifest::{ProofAssertion, SoftBindings, StampActions, embed};
use crate::pdq::{self, Pdq};
use crate::{ClaimSigner, ProvenanceError};

/// What the caller asked of the watermark step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MarkOptions {
    /// Draw the visible mark (`--no-visible` / `?visible=false` turn it off).
    pub visible: bool,
    /// Text of the visible mark, if any (never written into the manifest: it may name a person).
    pub label: Option<String>,
}

/// Draws the visible mark (when asked) and then embeds the invisible watermark carrying `proof_id`
/// into the upright sRGB pixels before they are encoded. The visible mark goes first so that the
/// invisible one covers the final pixels, text included. `date` is the proof's issue day
/// (`YYYY-MM-DD`).
///
/// Each part reports what it really did: a picture too small for legible text gets no visible
/// mark, one under [`pixseal_watermark::MIN_SIDE`] no invisible watermark, and the manifest's
/// actions say so.
pub fn apply_watermarks(
    pixels: &mut Pixels,
    proof_id: u64,
    date: &str,
    opts: &MarkOptions,
) -> Applied {
    let id = ProofId(proof_id);
    let visible = if opts.visible {
        visible::draw(
            pixels,
            &visible::Mark {
                label: opts.label.as_deref(),
                proof_id: id,
                date,
            },
        )
    } else {
        None
    };
    let embedded = pixseal_watermark::embed(pixels, id, Strength::default()).ok();
    Applied {
        actions: StampActions {
            watermarked: embedded.is_some(),
            visible_mark: visible.is_some(),
        },
        visible,
        psnr_luma: embedded.map(|e| e.psnr_luma),
    }
}

/// What [`apply_watermarks`] did to the pixels.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub actions: StampActions,
    /// Where the visible mark went, its size, colour and measured contrast.
    pub visible: Option<visible::Drawn>,
    /// Luma PSNR of the invisible watermark alone, in dB.
    pub psnr_luma: Option<f64>,
}

/// Looks for the invisible watermark in a picture that has no manifest; `Some(proof id bits)`
/// turns `not_stamped` into `watermark_only`. Found only when the payload's integrity check
/// passes (false match rate in docs/watermark.md).
pub fn detect_watermark(pixels: &Pixels) -> Option<u64> {
    pixseal_watermark::detect(pixels).proof_id.map(|p| p.0)
}

/// Looks for the invisible watermark in frames of one video, read together: a mark too faint
/// in any one frame after a lossy re-encode adds up over many. Frames are added one at a
/// time (none is kept); the first sets the size, frames of another size are left out.
#[derive(Default)]
pub struct FrameWatermark(Option<pixseal_watermark::FrameDetector>);

impl FrameWatermark {
    pub fn add(&mut self, frame: &Pixels) {
        self.0
            .get_or_insert_with(|| pixseal_watermark::FrameDetector::new(frame.width, frame.height))
            .add(frame);
    }

    /// The proof id's bits, when the frames together carry a whole payload.
    pub fn detect(&self) -> Option<u64> {
        self.0.as_ref()?.detect().proof_id.map(|p| p.0)
    }
}

/// A stamped output.
#[derive(Debug)]
pub struct Stamped {
    pub bytes: Vec<u8>,
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
    /// PDQ of the stamped pixels (`None` under 5 px a side).
    pub pdq: Option<Pdq>,
    pub pdq_quality: u32,
    pub actions: StampActions,
    /// The visible mark, when one was drawn.
    pub visible: Option<visible::Drawn>,
    /// Luma PSNR of the invisible watermark alone, in dB.
    pub watermark_psnr: Option<f64>,
    /// The signed manifest store on its own (`application/c2pa`).
    pub manifest: Vec<u8>,
    /// Its label, `urn:c2pa:…`.
    pub manifest_id: String,
    /// Manifest bytes added to the encoded picture.
    pub manifest_bytes: usize,
    /// Time spent building, signing and embedding the manifest.
    pub embed_ms: f64,
    pub decoded: DecodedInfo,
}

/// Facts about the input, as sanitize reports them.
#[derive(Debug, Clone)]
pub struct DecodedInfo {
    pub input_format: pixseal_media::Format,
    pub orientation: u8,
    pub colour: pixseal_media::ColourOutcome,
    pub frames: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StampError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Provenance(#[from] ProvenanceError),
}

impl StampError {
    pub fn code(&self) -> &'static str {
        match self {
            StampError::Ingest(e) => e.code(),
            StampError::Provenance(e) => e.code(),
        }
    }
    /// True when the input itself was refused (not our failure).
    pub fn is_input_error(&self) -> bool {
        matches!(self, StampError::Ingest(e) if e.is_input_error())
    }
}

/// Stamp one decoded picture. CPU-bound and possibly blocking (the signer): keep it off async
/// threads. The pixel buffer is handed back for reuse.
pub fn stamp_decoded(
    pipeline: &mut Pipeline,
    mut decoded: Decoded,
    opts: &Options,
    proof_bits: u64,
    proof: &ProofAssertion,
    marks: &MarkOptions,
    signer: &dyn ClaimSigner,
) -> (Result<Stamped, StampError>, Pixels) {
    let date = proof.issued_at.get(..10).unwrap_or(&proof.issued_at);
    let px = &mut decoded.pixels;
    let applied = apply_watermarks(px, proof_bits, date, marks);
    let actions = applied.actions;
    let ph = pdq::hash_rgb(&px.data, px.width, px.height, px.channels);
    let (encoded, pixels) = pipeline.encode_decoded(decoded, opts);
    let s = match encoded {
        Ok(s) => s,
        Err(e) => return (Err(e.into()), pixels),
    };
    let t = std::time::Instant::now();
    let bindings = SoftBindings {
        watermark: actions.watermarked.then_some(proof_bits),
        pdq: ph.map(|p| p.hash),
        keyframes: Vec::new(),
    };
    let signed = match embed(&s.bytes, proof, &actions, &bindings, signer) {
        Ok(b) => b,
        Err(e) => return (Err(e.into()), pixels),
    };
    let out = Stamped {
        manifest_bytes: signed.bytes.len().saturating_sub(s.bytes.len()),
        embed_ms: t.elapsed().as_secs_f64() * 1e3,
        bytes: signed.bytes,
        manifest: signed.manifest,
        manifest_id: signed.manifest_id,
        format: s.format,
        width: s.width,
        height: s.height,
        pdq: ph.map(|p| p.hash),
        pdq_quality: ph.map_or(0, |p| p.quality),
        actions,
        visible: applied.visible,
        watermark_psnr: applied.psnr_luma,
        decoded: DecodedInfo {
            input_format: s.input_format,
            orientation: s.orientation,
            colour: s.colour,
            frames: s.frames,
        },
    };
    (Ok(out), pixels)
}

/// Decode and stamp one input held in memory.
pub fn stamp(
    pipeline: &mut Pipeline,
    input: &[u8],
    opts: &Options,
    proof_bits: u64,
    proof: &ProofAssertion,
    marks: &MarkOptions,
    signer: &dyn ClaimSigner,
) -> Result<Stamped, StampError> {
    let decoded = pipeline.decode(input, opts.max_edge)?;
    let (out, pixels) = stamp_decoded(pipeline, decoded, opts, proof_bits, proof, marks, signer);
    pipeline.recycle(pixels);
    out
}
