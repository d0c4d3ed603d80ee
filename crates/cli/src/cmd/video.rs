//! The video path of a batch: an MP4/MOV input is read in place (never whole into memory), its
//! sanitized copy streamed to `DIR/<stem>.<mp4|mov>`, and for `stamp` a signed C2PA manifest
//! embedded in that copy, carrying the PDQ hashes of its keyframes as soft bindings.

use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use pixseal_media::video::{FrameOptions, FrameShape, ReencodeOptions};
use pixseal_media::{IngestError, VideoFormat, VideoInfo, VideoLimits, video};
use pixseal_provenance::manifest::{
    SoftBindings, StampActions, VideoClaim, hash_keyframes, sign_video,
};
use pixseal_provenance::stamp::{MarkOptions, StampError, apply_watermarks};
use pixseal_provenance::{ClaimSigner, ProvenanceError};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::batch::{self, Job};
use crate::Outcome;
use crate::report::Reporter;

/// Why a video produced no output.
enum Failure {
    Ingest(IngestError),
    Provenance(ProvenanceError),
    Io(std::io::Error),
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Io(e)
    }
}

impl From<StampError> for Failure {
    fn from(e: StampError) -> Self {
        match e {
            StampError::Ingest(e) => Failure::Ingest(e),
            StampError::Provenance(e) => Failure::Provenance(e),
        }
    }
}

impl Failure {
    /// Report it; the job's outcome.
    fn report(self, job: &Job, out_path: &Path, reporter: &Reporter) -> Outcome {
        let (code, message, input_fault) = match self {
            Failure::Ingest(e) => (e.code(), e.to_string(), e.is_input_error()),
            Failure::Provenance(e) => (e.code(), e.to_string(), false),
            Failure::Io(e) => (
                "internal",
                format!("cannot write {}: {e}", out_path.display()),
                false,
            ),
        };
        reporter.error(&job.shown, code, &message);
        if input_fault {
            Outcome::Rejected
        } else {
            Outcome::Internal
        }
    }
}

fn open(job: &Job, reporter: &Reporter) -> Option<File> {
    File::open(&job.path)
        .map_err(|e| {
            let why = format!("cannot read input: {}", batch::io_reason(&e));
            reporter.error(&job.shown, "not_found", &why);
        })
        .ok()
}

/// Stream the sanitized copy of `input` into `f`.
fn sanitize_into(input: &File, limits: &VideoLimits, f: &mut File) -> Result<VideoInfo, Failure> {
    let mut w = BufWriter::new(f);
    let info = video::sanitize(input, limits, &mut w).map_err(Failure::Ingest)?;
    w.flush()?;
    Ok(info)
}

/// The human line and the JSON fields every video output reports.
fn describe(job: &Job, shown_out: &str, info: &VideoInfo) -> (String, Value) {
    let codecs: Vec<&str> = info.tracks.iter().map(|t| t.codec.as_str()).collect();
    let mut human = format!(
        "{} -> {} ({} {}x{} {:.1}s {})",
        job.shown,
        shown_out,
        info.format.name(),
        info.width,
        info.height,
        info.duration_ms as f64 / 1000.0,
        codecs.join("+"),
    );
    if !info.removed.is_empty() {
        human.push_str(&format!("; removed: {}", info.removed.join(", ")));
    }
    let fields = json!({
        "format": info.format.name(),
        "width": info.width,
        "height": info.height,
        "duration_ms": info.duration_ms,
        "tracks": info.tracks,
        "removed": info.removed,
    });
    (human, fields)
}

fn out_path(job: &Job, format: VideoFormat, out_dir: &Path) -> std::path::PathBuf {
    out_dir.join(format!("{}.{}", job.stem, format.extension()))
}

/// `sanitize` of one video job.
pub(crate) fn sanitize(
    job: &Job,
    format: VideoFormat,
    out_dir: &Path,
    limits: &VideoLimits,
    reporter: &Reporter,
) -> Outcome {
    let started = Instant::now();
    let Some(input) = open(job, reporter) else {
        return Outcome::Rejected;
    };
    let out = out_path(job, format, out_dir);
    let info = match batch::write_atomic_with(&out, |f| sanitize_into(&input, limits, f)) {
        Ok(info) => info,
        Err(e) => return e.report(job, &out, reporter),
    };
    let shown_out = out.display().to_string();
    let (human, mut fields) = describe(job, &shown_out, &info);
    fields["bytes"] = json!(info.bytes);
    batch::report_ok(job, &shown_out, started, human, fields, reporter);
    Outcome::Ok
}

/// What `stamp` signs a video with.
pub(crate) struct Signing<'a> {
    pub signer: Arc<dyn ClaimSigner>,
    /// `[server].public_url`, without a trailing slash.
    pub verify_base: &'a str,
    /// Decode, watermark and encode the frames again (`--reencode`).
    pub reencode: bool,
}

fn create_new(path: &Path) -> std::io::Result<File> {
    File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
}

/// SHA-256 of a whole file, read in pieces.
fn sha256_of(f: &mut File) -> std::io::Result<String> {
    f.rewind()?;
    let mut h = Sha256::new();
    std::io::copy(f, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

/// `stamp` of one video job: the sanitized copy, with a signed manifest for a new proof id.
pub(crate) fn stamp(
    job: &Job,
    format: VideoFormat,
    out_dir: &Path,
    limits: &VideoLimits,
    signing: &Signing<'_>,
    reporter: &Reporter,
) -> Outcome {
    let started = Instant::now();
    let Some(mut input) = open(job, reporter) else {
        return Outcome::Rejected;
    };
    let Some((id, proof)) = super::stamp::new_proof(job, signing.verify_base, reporter) else {
        return Outcome::Internal;
    };
    let out = out_path(job, format, out_dir);
    // The sanitized copy (and, with --reencode, the encoder's output) waits in a hidden file
    // beside the output while the manifest is signed into the output: it holds nothing the
    // output will not.
    let hidden = |what: &str| out_dir.join(format!(".{}.{what}-{}", job.stem, std::process::id()));
    let (clean_path, encoded_path) = (hidden("sanitized"), hidden("reencoded"));
    let done = (|| -> Result<_, Failure> {
        let mut clean = create_new(&clean_path)?;
        // Hashed after the sanitize, which refuses an input over the limits before reading it.
        let mut info = sanitize_into(&input, limits, &mut clean)?;
        let original_sha256 = sha256_of(&mut input)?;
        drop(input);
        let mut acts = StampActions::default();
        let mut watermark = None;
        // Frames too small to hold the watermark are copied, not re-encoded for nothing (as a
        // picture that small gets no watermark): the report says `watermarked: false`.
        let (w, h) = FrameShape::Upright {
            max_short: u32::MAX,
        }
        .size(&info);
        let reencode = signing.reencode && w.min(h) >= pixseal_watermark::MIN_SIDE;
        let sign_limits = VideoLimits {
            max_file_bytes: if reencode {
                u64::MAX
            } else {
                limits.max_file_bytes
            },
            ..*limits
        };
        if reencode {
            let date = proof.issued_at.get(..10).unwrap_or(&proof.issued_at);
            let marks = MarkOptions::default();
            let mut every_frame = true;
            video::reencode(
                &clean_path,
                &info,
                &encoded_path,
                &ReencodeOptions::default(),
                &mut |px| {
                    every_frame &= apply_watermarks(px, id.0, date, &marks).actions.watermarked;
                },
            )
            .map_err(Failure::Ingest)?;
            // The encoder's file is sanitized like any input; it may be larger than the input
            // (CRF 18 over a frugal source), which the input's size limit is not about.
            let encoded = File::open(&encoded_path)?;
            clean.set_len(0)?;
            clean.rewind()?;
            info = sanitize_into(&encoded, &sign_limits, &mut clean)?;
            drop(encoded);
            let _ = std::fs::remove_file(&encoded_path);
            acts.watermarked = every_frame;
            watermark = every_frame.then_some(id.0);
        }
        let keyframes =
            hash_keyframes(&clean, &info, &FrameOptions::default()).map_err(Failure::Ingest)?;
        let bindings = SoftBindings {
            watermark,
            keyframes,
            ..SoftBindings::default()
        };
        let (signed, sha256, bytes) = batch::write_atomic_with(&out, |dst| {
            let (_, signed) = sign_video(
                &clean,
                info.format,
                &sign_limits,
                dst,
                &VideoClaim {
                    proof: &proof,
                    reencoded: reencode,
                    acts: &acts,
                    bindings: &bindings,
                },
                signing.signer.clone(),
            )
            .map_err(Failure::from)?;
            let bytes = dst.metadata()?.len();
            Ok::<_, Failure>((signed, sha256_of(dst)?, bytes))
        })?;
        Ok((
            info,
            signed,
            original_sha256,
            sha256,
            bytes,
            bindings.keyframes.len(),
            acts.watermarked,
        ))
    })();
    let _ = std::fs::remove_file(&encoded_path);
    let _ = std::fs::remove_file(&clean_path);
    let (info, signed, original_sha256, sha256, bytes, hashed, watermarked) = match done {
        Ok(d) => d,
        Err(e) => return e.report(job, &out, reporter),
    };
    let shown_out = out.display().to_string();
    let (_, mut fields) = describe(job, &shown_out, &info);
    let human = format!("{} -> {} {}", job.shown, shown_out, proof.proof_id);
    for (k, v) in [
        ("proof_id", json!(proof.proof_id)),
        ("issued_at", json!(proof.issued_at)),
        ("verify_url", json!(proof.verify_url)),
        ("sha256", json!(sha256)),
        ("original_sha256", json!(original_sha256)),
        ("bytes", json!(bytes)),
        ("manifest_bytes", json!(bytes.saturating_sub(info.bytes))),
        ("manifest_id", json!(signed.manifest_id)),
        ("keyframes_hashed", json!(hashed)),
        ("watermarked", json!(watermarked)),
    ] {
        fields[k] = v;
    }
    batch::report_ok(job, &shown_out, started, human, fields, reporter);
    Outcome::Ok
}
