//! The video path of a batch: an MP4/MOV input is read in place (never whole into memory), its
//! sanitized copy streamed to `DIR/<stem>.<mp4|mov>`, and for `stamp` a signed C2PA manifest
//! embedded in that copy, carrying the PDQ hashes of its keyframes as soft bindings.

use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::Path;
use std::time::Instant;

use pixseal_media::video::FrameOptions;
use pixseal_media::{IngestError, VideoFormat, VideoInfo, VideoLimits, video};
use pixseal_provenance::manifest::{SoftBindings, embed_video, keyframe_hashes};
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
    pub signer: &'a dyn ClaimSigner,
    /// `[server].public_url`, without a trailing slash.
    pub verify_base: &'a str,
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
    let Some((_, proof)) = super::stamp::new_proof(job, signing.verify_base, reporter) else {
        return Outcome::Internal;
    };
    let out = out_path(job, format, out_dir);
    // The sanitized copy waits in a hidden file beside the output while the manifest is
    // signed into the output: it holds nothing the output will not.
    let clean_path = out_dir.join(format!(".{}.sanitized-{}", job.stem, std::process::id()));
    let done = (|| -> Result<_, Failure> {
        let mut clean = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&clean_path)?;
        // Hashed after the sanitize, which refuses an input over the limits before reading it.
        let info = sanitize_into(&input, limits, &mut clean)?;
        let original_sha256 = sha256_of(&mut input)?;
        drop(input);
        let frames =
            video::keyframes(&clean, &info, &FrameOptions::default()).map_err(Failure::Ingest)?;
        let bindings = SoftBindings {
            keyframes: keyframe_hashes(&frames),
            ..SoftBindings::default()
        };
        drop(frames);
        clean.rewind()?;
        let (signed, sha256, bytes) = batch::write_atomic_with(&out, |dst| {
            let signed = embed_video(
                format.media_type(),
                &mut clean,
                dst,
                &proof,
                &bindings,
                signing.signer,
            )
            .map_err(Failure::Provenance)?;
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
        ))
    })();
    let _ = std::fs::remove_file(&clean_path);
    let (info, signed, original_sha256, sha256, bytes, hashed) = match done {
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
    ] {
        fields[k] = v;
    }
    batch::report_ok(job, &shown_out, started, human, fields, reporter);
    Outcome::Ok
}
