//! `pixseal stamp IN... -o DIR`: sanitize, then stamp (watermark hook, signed C2PA manifest)
//! with the local signing identity; prints the proof id of every output. MP4/MOV videos get
//! their sanitized container and a signed manifest (`super::video`). With `--server URL`
//! the same stamping is done by that server (`crate::stamper`), and written the same way.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use pixseal_media::{Limits, Options, VideoLimits};
use pixseal_proof::ProofId;
use pixseal_provenance::stamp::{MarkOptions, stamp};
use pixseal_provenance::{ClaimSigner, ProofAssertion};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::batch::{self, Batch, Encoding, Files, Job};
use super::video;
use crate::Outcome;
use crate::config::Config;
use crate::report::Reporter;

// The stamp options sit between the shared groups so that `--help` lists them where it always did.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    files: Files,
    /// Text of the visible mark (never written into the manifest).
    #[arg(long, value_name = "TEXT")]
    label: Option<String>,
    /// No visible mark (the invisible watermark and the manifest are still added).
    #[arg(long)]
    no_visible: bool,
    /// Videos: decode the frames, put the invisible watermark in each and encode them again
    /// (H.264), so the proof id survives a re-encode; without it a video's frames are copied
    /// untouched and only its manifest and keyframe hashes bind it. Local only (a server never
    /// re-encodes: the encoder's files would hold the video in the clear).
    #[arg(long, conflicts_with = "server")]
    reencode: bool,
    #[command(flatten)]
    encoding: Encoding,
    /// Have this pixseal server stamp the files (POST /v1/stamp; its signing key, its proof
    /// records; nothing of the pictures kept there).
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// API key with the stamp scope, for --server (better in the environment than on the
    /// command line, where other users of this machine can read it).
    #[arg(
        long,
        value_name = "KEY",
        env = "PIXSEAL_API_KEY",
        hide_env_values = true,
        requires = "server"
    )]
    key: Option<String>,
}

struct Ctx<'a> {
    out_dir: &'a Path,
    limits: Limits,
    video: VideoLimits,
    opts: Options,
    marks: MarkOptions,
    signer: Arc<dyn ClaimSigner>,
    verify_base: String,
    reencode: bool,
}

pub fn run(config: &Config, args: Args, json: bool) -> Outcome {
    let limits = config.limits;
    if args.label.as_ref().is_some_and(|l| l.len() > 200) {
        eprintln!("error[usage]: --label is longer than 200 bytes");
        return Outcome::Usage;
    }
    if let Some(url) = &args.server {
        return run_remote(config, &args, url, json);
    }
    let identity = match crate::config::signing_identity(config) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error[key_unavailable]: {e:#}");
            return Outcome::Internal;
        }
    };
    let usage = match batch::Usage::start(config, args.files.offline) {
        Ok(u) => u,
        Err(o) => return o,
    };
    let opts = args.encoding.options();
    let batch = match Batch::open(
        &args.files.inputs,
        &args.files.out,
        args.encoding.jobs,
        json,
        usage,
    ) {
        Ok(b) => b,
        Err(o) => return o,
    };
    let ctx = Ctx {
        out_dir: &args.files.out,
        limits,
        video: config.video,
        opts,
        marks: MarkOptions {
            visible: !args.no_visible,
            label: args.label.clone(),
        },
        signer: identity.signer.clone(),
        verify_base: config.server.public_url.trim_end_matches('/').to_string(),
        reencode: args.reencode,
    };
    batch.run(
        "unexpected failure while stamping this input",
        |job, reporter| process(job, &ctx, reporter),
    )
}

fn process(job: &Job, ctx: &Ctx<'_>, reporter: &Reporter) -> Outcome {
    if let Some(format) = batch::peek_video(&job.path) {
        let signing = video::Signing {
            signer: ctx.signer.clone(),
            verify_base: &ctx.verify_base,
            reencode: ctx.reencode,
        };
        return video::stamp(job, format, ctx.out_dir, &ctx.video, &signing, reporter);
    }
    let started = Instant::now();
    let Some(input) = batch::read_job(job, ctx.limits.max_file_bytes, reporter) else {
        return Outcome::Rejected;
    };
    let original_sha256 = hex::encode(Sha256::digest(&input));
    let Some((id, proof)) = new_proof(job, &ctx.verify_base, reporter) else {
        return Outcome::Internal;
    };
    let result = batch::with_pipeline(ctx.limits, |p| {
        stamp(
            p,
            &input,
            &ctx.opts,
            id.0,
            &proof,
            &ctx.marks,
            ctx.signer.as_ref(),
        )
    });
    drop(input);
    batch::deliver(
        job,
        ctx.out_dir,
        started,
        result,
        reporter,
        |s, shown_out| {
            let human = format!("{} -> {} {}", job.shown, shown_out, proof.proof_id);
            let fields = json!({
                "proof_id": proof.proof_id,
                "issued_at": proof.issued_at,
                "verify_url": proof.verify_url,
                "sha256": hex::encode(Sha256::digest(&s.bytes)),
                "original_sha256": original_sha256,
                "pdq": s.pdq.map(|p| p.to_string()),
                "format": s.format.name(),
                "width": s.width,
                "height": s.height,
                "bytes": s.bytes.len(),
                "manifest_bytes": s.manifest_bytes,
                "manifest_id": s.manifest_id,
                "watermarked": s.actions.watermarked,
                "watermark_psnr": s.watermark_psnr.map(|p| (p * 100.0).round() / 100.0),
                "visible_mark": s.visible.as_ref().map(|v| json!({
                    "text": v.text,
                    "x": v.x, "y": v.y, "width": v.width, "height": v.height,
                    "text_px": (v.text_px * 10.0).round() / 10.0,
                    "light": v.light,
                    "alpha": (v.alpha as f64 * 100.0).round() / 100.0,
                    "background_sd": (v.background_sd * 10.0).round() / 10.0,
                    "contrast": (v.contrast * 100.0).round() / 100.0,
                })),
                "embed_ms": (s.embed_ms * 10.0).round() / 10.0,
            });
            (human, fields)
        },
    )
}

/// A new proof id and the assertion naming it; `None` (reported as internal) when the OS has no
/// randomness to give.
pub(crate) fn new_proof(
    job: &Job,
    verify_base: &str,
    reporter: &Reporter,
) -> Option<(ProofId, ProofAssertion)> {
    let id = match ProofId::random() {
        Ok(id) => id,
        Err(e) => {
            reporter.error(&job.shown, "internal", &format!("OS randomness: {e}"));
            return None;
        }
    };
    let proof = ProofAssertion {
        proof_id: id.to_string(),
        issued_at: pixseal_store::meta::now().0,
        verify_url: format!("{verify_base}/v/{id}"),
    };
    Some((id, proof))
}

/// `stamp --server`: each input sent to the server on its own, the answer written like a local
/// stamp's.
fn run_remote(config: &Config, args: &Args, url: &str, json: bool) -> Outcome {
    let opts = args.encoding.options();
    let stamper = match crate::stamper::Stamper::new(
        url,
        args.key.clone(),
        &opts,
        args.label.as_deref(),
        !args.no_visible,
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error[usage]: {e:#}");
            return Outcome::Usage;
        }
    };
    let batch = match Batch::open(
        &args.files.inputs,
        &args.files.out,
        args.encoding.jobs,
        json,
        None,
    ) {
        Ok(b) => b,
        Err(o) => return o,
    };
    let limit = config.limits.max_file_bytes;
    let out_dir = &args.files.out;
    batch.run(
        "unexpected failure while stamping this input",
        |job, reporter| {
            let started = Instant::now();
            let Some(input) = batch::read_job(job, limit, reporter) else {
                return Outcome::Rejected;
            };
            let original_sha256 = hex::encode(Sha256::digest(&input));
            let s = match stamper.stamp(input) {
                Ok(s) => s,
                Err(r) => {
                    reporter.error(&job.shown, &r.code, &r.message);
                    return r.outcome;
                }
            };
            let out_path = out_dir.join(format!("{}.{}", job.stem, s.format.extension()));
            if let Err(e) = batch::write_atomic(&out_path, &s.bytes) {
                let why = format!("cannot write {}: {e}", out_path.display());
                reporter.error(&job.shown, "internal", &why);
                return Outcome::Internal;
            }
            let shown_out = out_path.display().to_string();
            let human = format!("{} -> {} {}", job.shown, shown_out, s.proof_id);
            let ms = (started.elapsed().as_secs_f64() * 1e4).round() / 10.0;
            let fields = json!({
                "proof_id": s.proof_id,
                "verify_url": s.verify_url,
                "sha256": s.sha256,
                "original_sha256": original_sha256,
                "format": s.format.name(),
                "bytes": s.bytes.len(),
                "server": stamper.url(),
                "challenge_solved": s.challenged,
                "ms": ms,
            });
            reporter.ok(
                &job.shown,
                &shown_out,
                &human,
                crate::report::object(fields),
            );
            Outcome::Ok
        },
    )
}
