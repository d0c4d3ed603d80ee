//! Building, signing and embedding pixseal's C2PA manifest in a JPEG, PNG or WebP, or in an
//! MP4/MOV video.
//!
//! The manifest says what pixseal did and which proof it belongs to, and nothing about who
//! submitted the picture: no title or file name, no ingredient (the input's own provenance
//! and metadata were stripped on purpose), no thumbnail.

use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::ProvenanceError;
use crate::identity::{ClaimSigner, SignAlg};
use crate::pdq::Pdq;
use crate::stamp::StampError;

/// Label of pixseal's own assertion.
pub const PIXSEAL_ASSERTION: &str = "org.pixseal.proof";

/// The claim generator name; the version is this crate's (the workspace's).
pub const GENERATOR: &str = "pixseal";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// IPTC digital source type of the inception action (see `definition`).
pub const DIGITAL_SOURCE_TYPE: &str =
    "http://cv.iptc.org/newscodes/digitalsourcetype/algorithmicallyEnhanced";

/// The data of the `org.pixseal.proof` assertion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProofAssertion {
    /// `px_…` (SPEC §2).
    pub proof_id: String,
    /// RFC 3339 UTC.
    pub issued_at: String,
    /// Where anyone can look the proof up.
    pub verify_url: String,
}

/// The C2PA watermark action for a watermark bound to this manifest by a soft binding
/// (C2PA 2.2; it replaces `c2pa.watermarked`, which validators still read).
pub const WATERMARKED_ACTION: &str = "c2pa.watermarked.bound";

/// Soft-binding algorithm of pixseal's invisible watermark. Not in the C2PA soft-binding
/// algorithm list, so it lives in pixseal's namespace. Value: the 64-bit payload (the proof id's
/// bits), 8 bytes big-endian, base64.
pub const WATERMARK_BINDING_ALG: &str = "org.pixseal.watermark.1";

/// Soft-binding algorithm of the PDQ fingerprint (Meta's 256-bit perceptual hash) of the stamped
/// pixels. Value: the 32 hash bytes, base64. A fingerprint, not a watermark: it finds copies
/// that were re-encoded or resized, within a Hamming distance (docs/provenance.md).
pub const PDQ_BINDING_ALG: &str = "org.pixseal.pdq.1";

/// What went into the stamped picture, for the actions assertion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StampActions {
    /// The invisible watermark carrying the proof id was embedded.
    pub watermarked: bool,
    /// A visible mark was drawn.
    pub visible_mark: bool,
}

/// The manifest's soft bindings: what lets a copy that lost its manifest find it again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SoftBindings {
    /// The invisible watermark's payload, when one was embedded: required with the watermark
    /// action (a validator fails `assertion.action.softBindingMissing` without it).
    pub watermark: Option<u64>,
    /// PDQ of the stamped pixels, when the picture was large enough to hash.
    pub pdq: Option<Pdq>,
    /// PDQ of a video's keyframes, each over the time it stands for.
    pub keyframes: Vec<KeyframeHash>,
}

/// The PDQ hash of one keyframe of a video and the time span (ms from the start) it covers:
/// from its own time to the next keyframe hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyframeHash {
    pub start_ms: u64,
    pub end_ms: u64,
    pub pdq: Pdq,
}

/// Below this PDQ quality a frame is too flat for its hash to say anything (a black or
/// single-colour frame hashes alike in every video): it is neither signed nor looked up.
pub const MIN_KEYFRAME_QUALITY: u32 = 50;

/// The PDQ hashes of a sanitized video's keyframes, decoded as `opts` says, each hashed as it
/// comes (one frame in memory at a time); those too flat to hash are left out.
pub fn hash_keyframes<S: pixseal_media::video::Source + ?Sized + Sync>(
    src: &S,
    info: &pixseal_media::VideoInfo,
    opts: &pixseal_media::video::FrameOptions,
) -> Result<Vec<KeyframeHash>, pixseal_media::IngestError> {
    let mut out = Vec::new();
    pixseal_media::video::each_keyframe(src, info, opts, |f| out.extend(keyframe_hash(&f)))?;
    Ok(out)
}

/// The PDQ hash of one decoded keyframe; `None` when it is too flat to say anything.
pub fn keyframe_hash(f: &pixseal_media::video::Keyframe) -> Option<KeyframeHash> {
    let r = crate::pdq::hash_rgb(&f.rgb, f.width, f.height, 3)?;
    (r.quality >= MIN_KEYFRAME_QUALITY).then_some(KeyframeHash {
        start_ms: f.time_ms,
        end_ms: f.until_ms,
        pdq: r.hash,
    })
}

impl SoftBindings {
    /// The `c2pa.soft-binding` assertions' data, one per binding.
    fn assertions(&self) -> Vec<serde_json::Value> {
        let one = |alg: &str, name: &str, value: String| {
            json!({"label": "c2pa.soft-binding",
                   "data": {"alg": alg, "name": name, "blocks": [{"scope": {}, "value": value}]}})
        };
        let mut out = Vec::new();
        if let Some(bits) = self.watermark {
            out.push(one(
                WATERMARK_BINDING_ALG,
                "pixseal invisible watermark: the proof id",
                binding_value_of_watermark(bits),
            ));
        }
        if let Some(p) = &self.pdq {
            out.push(one(
                PDQ_BINDING_ALG,
                "PDQ perceptual hash of the stamped pixels",
                B64.encode(p.0),
            ));
        }
        if !self.keyframes.is_empty() {
            let blocks: Vec<_> = self
                .keyframes
                .iter()
                .map(|k| {
                    json!({"scope": {"timespan": {"start": k.start_ms, "end": k.end_ms}},
                           "value": B64.encode(k.pdq.0)})
                })
                .collect();
            out.push(json!({"label": "c2pa.soft-binding",
                            "data": {"alg": PDQ_BINDING_ALG,
                                     "name": "PDQ perceptual hashes of the video's keyframes, each over the time it stands for",
                                     "blocks": blocks}}));
        }
        out
    }
}

/// The soft-binding value of a watermark payload ([`WATERMARK_BINDING_ALG`]).
pub fn binding_value_of_watermark(bits: u64) -> String {
    B64.encode(bits.to_be_bytes())
}

/// The watermark payload a soft-binding value names, if it is one.
pub fn watermark_of_binding_value(value: &str) -> Option<u64> {
    let bytes: [u8; 8] = B64.decode(value.trim()).ok()?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// The PDQ hash a soft-binding value names, if it is one ([`PDQ_BINDING_ALG`]).
pub fn pdq_of_binding_value(value: &str) -> Option<Pdq> {
    let bytes: [u8; 32] = B64.decode(value.trim()).ok()?.try_into().ok()?;
    Some(Pdq(bytes))
}

/// What a manifest is about: the actions describe what pixseal did to each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asset {
    /// Decoded and re-encoded, metadata gone, marks drawn.
    Picture,
    /// Container rebuilt from an allow-list, the encoded samples copied untouched.
    Video,
    /// Frames decoded, watermarked and encoded again; the sound copied untouched.
    ReencodedVideo,
}

/// The manifest definition (JSON for the c2pa builder).
fn definition(
    format: &str,
    asset: Asset,
    proof: &ProofAssertion,
    acts: &StampActions,
    bindings: &SoftBindings,
) -> serde_json::Value {
    let agent = json!({"name": GENERATOR, "version": VERSION});
    // What pixseal writes is a new asset made from the submitted one; its input's provenance
    // is deliberately not carried over (no ingredient), so the inception is `created`. C2PA 2
    // requires a digitalSourceType there and IPTC has no "unknown": `algorithmicallyEnhanced`
    // (existing media, processed by software) is the closest; the description says that the
    // capture itself is not asserted.
    let (created, sanitised) = match asset {
        Asset::Picture => (
            "re-encoded by pixseal from the submitted picture's pixels; how they were captured is not asserted",
            "sanitised: every piece of the input's metadata removed (EXIF, GPS, XMP, IPTC, ICC, comments, thumbnails); orientation and colour applied to the pixels",
        ),
        Asset::Video => (
            "container rebuilt by pixseal from the submitted video; its encoded frames and sound copied untouched; how they were captured is not asserted",
            "sanitised: every piece of the input's metadata removed (location, device, software, dates, user data, metadata and timecode tracks); creation times zeroed",
        ),
        Asset::ReencodedVideo => (
            "re-encoded by pixseal from the submitted video's frames (H.264); its sound copied untouched; how they were captured is not asserted",
            "sanitised: every piece of the input's metadata removed (location, device, software, dates, user data, metadata and timecode tracks); creation times zeroed; display rotation applied to the frames",
        ),
    };
    let mut actions = vec![
        json!({"action": "c2pa.created", "softwareAgent": agent,
               "digitalSourceType": DIGITAL_SOURCE_TYPE, "description": created}),
        json!({"action": "c2pa.edited", "softwareAgent": agent, "description": sanitised}),
    ];
    if acts.watermarked {
        actions.push(json!({"action": WATERMARKED_ACTION, "softwareAgent": agent,
                            "description": "invisible watermark carrying the proof id"}));
    }
    if acts.visible_mark {
        actions.push(json!({"action": "c2pa.edited", "softwareAgent": agent,
                            "description": "visible pixseal mark drawn"}));
    }
    let mut assertions = vec![
        json!({"label": "c2pa.actions", "data": {"actions": actions}}),
        json!({"label": PIXSEAL_ASSERTION, "data": proof}),
    ];
    assertions.extend(bindings.assertions());
    json!({
        "claim_generator_info": [{"name": GENERATOR, "version": VERSION}],
        "format": format,
        "assertions": assertions,
    })
}

/// Adapts a [`ClaimSigner`] (borrowed, or shared when the c2pa context must own it) to the
/// c2pa crate's signer. A signing or time-stamping failure is kept aside, because the c2pa
/// crate reports it only as a string inside its own error (a key service that is down must
/// stay `key_unavailable`, not become `internal`).
struct Adapter<S> {
    signer: S,
    failure: Arc<Mutex<Option<ProvenanceError>>>,
}

impl<S> Adapter<S> {
    fn keep(&self, e: ProvenanceError) -> c2pa::Error {
        let text = e.to_string();
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        c2pa::Error::OtherError(text.into())
    }
}

impl<'a, S> c2pa::Signer for Adapter<S>
where
    S: Deref<Target = dyn ClaimSigner + 'a> + Send + Sync,
{
    fn sign(&self, data: &[u8]) -> c2pa::Result<Vec<u8>> {
        self.signer.sign(data).map_err(|e| self.keep(e))
    }
    fn alg(&self) -> c2pa::SigningAlg {
        self.signer.alg().c2pa()
    }
    fn certs(&self) -> c2pa::Result<Vec<Vec<u8>>> {
        Ok(self.signer.cert_chain().to_vec())
    }
    fn reserve_size(&self) -> usize {
        // Signature + certificates + COSE framing, with room to spare (no OCSP).
        let certs: usize = self.signer.cert_chain().iter().map(Vec::len).sum();
        let token = match self.signer.time_stamper() {
            Some(_) => crate::timestamp::TOKEN_RESERVE,
            None => 0,
        };
        match self.signer.alg() {
            SignAlg::Es256 | SignAlg::Es384 | SignAlg::Ed25519 => 2048 + certs + token,
        }
    }
    fn send_timestamp_request(&self, message: &[u8]) -> Option<c2pa::Result<Vec<u8>>> {
        let tsa = self.signer.time_stamper()?;
        Some(crate::timestamp::request(tsa, message).map_err(|e| self.keep(e)))
    }
}

/// Media types pixseal embeds manifests in (and reads them from).
pub fn media_type_for(bytes: &[u8]) -> Option<&'static str> {
    if let Some(v) = pixseal_media::sniff_video(bytes) {
        return Some(v.media_type());
    }
    match pixseal_media::sniff(bytes) {
        Ok(pixseal_media::Format::Jpeg) => Some("image/jpeg"),
        Ok(pixseal_media::Format::Png) => Some("image/png"),
        Ok(pixseal_media::Format::WebP) => Some("image/webp"),
        _ => None,
    }
}

/// A picture with its signed manifest embedded, and that manifest on its own.
#[derive(Debug, Clone)]
pub struct Embedded {
    /// The picture, manifest included.
    pub bytes: Vec<u8>,
    /// The signed manifest store alone (JUMBF, `application/c2pa`): what a proof record keeps.
    pub manifest: Vec<u8>,
    /// The manifest's label, `urn:c2pa:<uuid>`: its id for the Soft Binding Resolution API.
    pub manifest_id: String,
}

/// Sign a manifest for `proof` and embed it in `image` (JPEG, PNG or WebP, as pixseal's
/// encoder wrote it). Blocking and CPU-bound: run it off async threads.
pub fn embed(
    image: &[u8],
    proof: &ProofAssertion,
    acts: &StampActions,
    bindings: &SoftBindings,
    signer: &dyn ClaimSigner,
) -> Result<Embedded, ProvenanceError> {
    let format = media_type_for(image).ok_or_else(|| {
        ProvenanceError::Embed("only JPEG, PNG and WebP outputs carry a manifest".into())
    })?;
    if acts.watermarked && bindings.watermark.is_none() {
        // C2PA requires a soft binding with the watermark action; signing without one would
        // issue a manifest every validator calls invalid.
        return Err(ProvenanceError::Embed(
            "the watermark action needs the watermark's soft binding".into(),
        ));
    }
    let mut src = Cursor::new(image);
    let mut dst = Cursor::new(Vec::with_capacity(image.len() + 32 * 1024));
    let def = definition(format, Asset::Picture, proof, acts, bindings);
    let (manifest, manifest_id) = sign_into(def, format, &mut src, &mut dst, signer)?;
    Ok(Embedded {
        bytes: dst.into_inner(),
        manifest,
        manifest_id,
    })
}

/// A signed manifest on its own, once embedded in a file.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The signed manifest store alone (JUMBF, `application/c2pa`).
    pub manifest: Vec<u8>,
    /// `urn:c2pa:<uuid>`.
    pub manifest_id: String,
}

/// What a video's manifest says.
#[derive(Debug, Clone, Copy)]
pub struct VideoClaim<'a> {
    pub proof: &'a ProofAssertion,
    /// The frames were decoded and encoded again (else the samples are the input's).
    pub reencoded: bool,
    /// `watermarked` when the re-encoded frames carry the watermark (`bindings.watermark`).
    pub acts: &'a StampActions,
    pub bindings: &'a SoftBindings,
}

/// Sign a manifest for `claim` into a copy of the sanitized video `clean` (a `format` movie),
/// written to `out` (empty, at its start) in one pass and never held in memory: the copy is
/// written with a placeholder manifest box right after `ftyp` (its size counted in the chunk offsets), hashed
/// as it lies in `out` (BMFF hash), and the signed manifest is written over the placeholder,
/// in place. Returns what the copy's sanitize said and the manifest. Blocking: run it off
/// async threads.
pub fn sign_video<S, F>(
    clean: &S,
    format: pixseal_media::VideoFormat,
    limits: &pixseal_media::VideoLimits,
    out: &mut F,
    claim: &VideoClaim<'_>,
    signer: Arc<dyn ClaimSigner>,
) -> Result<(pixseal_media::VideoInfo, Signed), StampError>
where
    S: pixseal_media::video::Source + ?Sized,
    F: Read + Write + Seek + Send,
{
    let VideoClaim {
        proof,
        reencoded,
        acts,
        bindings,
    } = *claim;
    let media_type = format.media_type();
    if acts.watermarked && bindings.watermark.is_none() {
        return Err(ProvenanceError::Embed(
            "the watermark action needs the watermark's soft binding".into(),
        )
        .into());
    }
    if acts.watermarked && !reencoded {
        return Err(ProvenanceError::Embed(
            "copied samples carry no watermark: only re-encoded frames do".into(),
        )
        .into());
    }
    let asset = if reencoded {
        Asset::ReencodedVideo
    } else {
        Asset::Video
    };
    let def = definition(media_type, asset, proof, acts, bindings);
    let failure = Arc::new(Mutex::new(None));
    let adapter = Adapter {
        signer,
        failure: failure.clone(),
    };
    let kept = |e: c2pa::Error| c2pa_failure(&failure, e);
    let ctx = context()?.with_signer(adapter);
    let (mut builder, manifest_id) = builder(ctx, def)?;
    let placeholder = builder.placeholder(media_type).map_err(&kept)?;
    let (info, at) = pixseal_media::video::sanitize_with(clean, limits, &placeholder, out)?;
    if info.format != format {
        return Err(ProvenanceError::Embed(format!(
            "a {} was signed as a {}",
            info.format.name(),
            format.name()
        ))
        .into());
    }
    let io = |e: std::io::Error| ProvenanceError::Embed(format!("the signed video: {e}"));
    out.rewind().map_err(io)?;
    builder
        .update_hash_from_stream(media_type, out)
        .map_err(&kept)?;
    let composed = builder.sign_embeddable(media_type).map_err(&kept)?;
    if composed.len() != placeholder.len() {
        return Err(ProvenanceError::Embed(format!(
            "the signed manifest ({} bytes) does not fit its placeholder ({} bytes)",
            composed.len(),
            placeholder.len()
        ))
        .into());
    }
    out.seek(SeekFrom::Start(at)).map_err(io)?;
    out.write_all(&composed).map_err(io)?;
    out.flush().map_err(io)?;
    let manifest = manifest_store_of(&composed)?.to_vec();
    Ok((
        info,
        Signed {
            manifest,
            manifest_id,
        },
    ))
}

/// The manifest store (JUMBF) inside a composed C2PA `uuid` box: after the box header, the
/// C2PA UUID, version and flags, the `manifest` purpose and the 8-byte Merkle offset; the
/// store says its own length (the rest is zero padding up to the placeholder's size).
fn manifest_store_of(composed: &[u8]) -> Result<&[u8], ProvenanceError> {
    const HEAD: usize = 8 + 16 + 4 + b"manifest\0".len() + 8;
    let bad = || ProvenanceError::Embed("the signed manifest box is not a C2PA box".into());
    let store = composed.get(HEAD..).ok_or_else(bad)?;
    let len = store
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or_else(bad)?;
    if composed.get(4..8) != Some(b"uuid") || store.get(4..8) != Some(b"jumb") || len < 8 {
        return Err(bad());
    }
    store.get(..len).ok_or_else(bad)
}

/// The c2pa context pixseal signs in.
fn context() -> Result<c2pa::Context, ProvenanceError> {
    c2pa::Context::new()
        .with_settings(json!({
            // Nothing is fetched and no thumbnail of the picture goes into the manifest.
            "builder": {"thumbnail": {"enabled": false}},
        }))
        .map_err(|e| ProvenanceError::Embed(format!("settings: {e}")))
}

/// A builder for `def` and the manifest's label.
fn builder(
    ctx: c2pa::Context,
    mut def: serde_json::Value,
) -> Result<(c2pa::Builder, String), ProvenanceError> {
    // The label is chosen here rather than by the builder so that it is known without parsing
    // the result back; C2PA wants a random (v4) UUID in it, as the builder would pick.
    let manifest_id = format!("urn:c2pa:{}", uuid::Uuid::new_v4());
    def["label"] = json!(manifest_id);
    let builder = c2pa::Builder::from_context(ctx)
        .with_definition(def)
        .map_err(|e| ProvenanceError::Embed(format!("manifest definition: {e}")))?;
    Ok((builder, manifest_id))
}

/// The error of a failed c2pa call: the signer's own failure when it had one.
fn c2pa_failure(failure: &Mutex<Option<ProvenanceError>>, e: c2pa::Error) -> ProvenanceError {
    let kept = failure.lock().unwrap_or_else(|p| p.into_inner()).take();
    match (kept, e) {
        (Some(kept), _) => kept,
        (None, c2pa::Error::OtherError(inner)) => ProvenanceError::Signing(inner.to_string()),
        (None, other) => ProvenanceError::Embed(other.to_string()),
    }
}

/// Build the manifest from `def` and sign it into `dst` (a copy of `src` with the manifest
/// embedded); the manifest store and its label.
fn sign_into<R, W>(
    def: serde_json::Value,
    format: &str,
    src: &mut R,
    dst: &mut W,
    signer: &dyn ClaimSigner,
) -> Result<(Vec<u8>, String), ProvenanceError>
where
    R: std::io::Read + std::io::Seek + Send,
    W: std::io::Read + std::io::Write + std::io::Seek + Send,
{
    let (mut builder, manifest_id) = builder(context()?, def)?;
    let adapter = Adapter {
        signer,
        failure: Arc::new(Mutex::new(None)),
    };
    let manifest = builder
        .sign(&adapter, format, src, dst)
        .map_err(|e| c2pa_failure(&adapter.failure, e))?;
    Ok((manifest, manifest_id))
}
