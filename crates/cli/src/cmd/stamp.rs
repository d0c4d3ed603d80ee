//! `pixseal stamp IN... -o DIR`: sanitize, then stamp (watermark hook, signed C2PA manifest)
//! with the local signing identity; prints the proof id of every output.

use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

use pixseal_media::{Limits, Options, OutputFormat, Pipeline};
use pixseal_proof::ProofId;
use pixseal_provenance::stamp::{MarkOptions, stamp};
use pixseal_provenance::{ClaimSigner, ProofAssertion};
use rayon::prelude::*;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::sanitize::{Job, collect, read_input, write_atomic};
use crate::Outcome;
use crate::config::Config;
use crate::report::Reporter;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Input files or directories (recursed).
    #[arg(required = true, value_name = "IN")]
    inputs: Vec<PathBuf>,
    /// Output directory (created if missing); outputs are DIR/<stem>.<ext>.
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    out: PathBuf,
    /// Text of the visible mark (never written into the manifest).
    #[arg(long, value_name = "TEXT")]
    label: Option<String>,
    /// No visible mark (the invisible watermark and the manifest are still added).
    #[arg(long)]
    no_visible: bool,
    /// Output format; default: jpeg, or png for pictures with transparency.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(["jpeg", "webp", "png"]))]
    format: Option<String>,
    /// Encoder quality, 1–100 (jpeg, webp).
    #[arg(long, default_value_t = 85, value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: u8,
    /// Downscale so the long edge is at most PX pixels.
    #[arg(long, value_name = "PX", value_parser = clap::value_parser!(u32).range(1..))]
    max_edge: Option<u32>,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
}

thread_local! {
    static PIPELINE: RefCell<Option<Pipeline>> = const { RefCell::new(None) };
}

struct Ctx<'a> {
    out_dir: &'a Path,
    limits: Limits,
    opts: Options,
    marks: MarkOptions,
    signer: &'a dyn ClaimSigner,
    verify_base: String,
    reporter: &'a Reporter,
}

pub fn run(config: &Config, args: Args, json: bool) -> Outcome {
    let Some(limits) = super::limits(config) else {
        return Outcome::Usage;
    };
    if args.label.as_ref().is_some_and(|l| l.len() > 200) {
        eprintln!("error[usage]: --label is longer than 200 bytes");
        return Outcome::Usage;
    }
    let identity = match config.signing_identity() {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error[key_unavailable]: {e:#}");
            return Outcome::Internal;
        }
    };
    let format = args
        .format
        .as_deref()
        .map(|f| f.parse::<OutputFormat>().expect("clap checked the value"));
    if let Err(e) = fs::create_dir_all(&args.out) {
        eprintln!(
            "error[usage]: cannot create output directory {}: {e}",
            args.out.display()
        );
        return Outcome::Usage;
    }
    let (mut jobs, missing) = collect(&args.inputs, &args.out);
    let progress = crate::report::progress_bar(jobs.len());
    let reporter = Reporter::new(json, progress);
    let worst = AtomicU8::new(Outcome::Ok as u8);
    let raise = |o: Outcome| {
        worst.fetch_max(o as u8, Ordering::Relaxed);
    };
    for (shown, why) in missing {
        reporter.error(&shown, "not_found", &why);
        raise(Outcome::Rejected);
    }
    let ctx = Ctx {
        out_dir: &args.out,
        limits,
        opts: Options {
            format,
            quality: args.quality,
            max_edge: args.max_edge,
        },
        marks: MarkOptions {
            visible: !args.no_visible,
            label: args.label.clone(),
        },
        signer: &identity.signer,
        verify_base: config.server.public_url.trim_end_matches('/').to_string(),
        reporter: &reporter,
    };
    let threads = args
        .jobs
        .map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    jobs.sort_by_cached_key(|j| {
        std::cmp::Reverse(fs::metadata(&j.path).map(|m| m.len()).unwrap_or(0))
    });
    let pool = match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error[internal]: cannot start worker threads: {e}");
            return Outcome::Internal;
        }
    };
    pool.install(|| {
        jobs.par_iter().with_max_len(1).for_each(|job| {
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| process(job, &ctx)))
                    .unwrap_or_else(|_| {
                        reporter.error(
                            &job.shown,
                            "internal",
                            "unexpected failure while stamping this input",
                        );
                        Outcome::Internal
                    });
            raise(outcome);
        });
    });
    reporter.finish();
    Outcome::from_worst(worst.load(Ordering::Relaxed))
}

fn process(job: &Job, ctx: &Ctx<'_>) -> Outcome {
    let started = Instant::now();
    let input = match read_input(&job.path, ctx.limits.max_file_bytes) {
        Ok(b) => b,
        Err((code, msg)) => {
            ctx.reporter.error(&job.shown, &code, &msg);
            return Outcome::Rejected;
        }
    };
    let original_sha256 = hex::encode(Sha256::digest(&input));
    let id = match ProofId::random() {
        Ok(id) => id,
        Err(e) => {
            ctx.reporter
                .error(&job.shown, "internal", &format!("OS randomness: {e}"));
            return Outcome::Internal;
        }
    };
    let proof = ProofAssertion {
        proof_id: id.to_string(),
        issued_at: pixseal_store::meta::now().0,
        verify_url: format!("{}/v/{id}", ctx.verify_base),
    };
    let result = PIPELINE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let p = slot.get_or_insert_with(|| Pipeline::new(ctx.limits));
        stamp(p, &input, &ctx.opts, id.0, &proof, &ctx.marks, ctx.signer)
    });
    drop(input);
    let s = match result {
        Ok(s) => s,
        Err(e) => {
            ctx.reporter.error(&job.shown, e.code(), &e.to_string());
            return if e.is_input_error() {
                Outcome::Rejected
            } else {
                Outcome::Internal
            };
        }
    };
    let out_path = ctx
        .out_dir
        .join(format!("{}.{}", job.stem, s.format.extension()));
    if let Err(e) = write_atomic(&out_path, &s.bytes) {
        ctx.reporter.error(
            &job.shown,
            "internal",
            &format!("cannot write {}: {e}", out_path.display()),
        );
        return Outcome::Internal;
    }
    let shown_out = out_path.display().to_string();
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
        "ms": (started.elapsed().as_secs_f64() * 1e4).round() / 10.0,
    });
    let fields = crate::report::object(fields);
    ctx.reporter.ok(&job.shown, &shown_out, &human, fields);
    Outcome::Ok
}
