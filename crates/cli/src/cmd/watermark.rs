//! `pixseal watermark embed|detect`: the invisible watermark on its own, for tests and benchmarks.

use std::path::{Path, PathBuf};
use std::time::Instant;

use pixseal_media::{OutputFormat, Pipeline};
use pixseal_proof::ProofId;
use pixseal_watermark::Strength;
use serde_json::json;

use crate::Outcome;
use crate::cmd::batch::{read_input, write_atomic};
use crate::config::Config;
use crate::report::Reporter;

#[derive(clap::Subcommand, Debug)]
pub enum Args {
    /// Embed a proof id into one picture; the output format follows OUT's extension (png, jpg, webp).
    Embed {
        #[arg(value_name = "IN")]
        input: PathBuf,
        #[arg(short = 'o', long = "out", value_name = "OUT")]
        out: PathBuf,
        /// The proof id to carry (px_ + 13 Crockford base32 characters).
        #[arg(long = "id", value_name = "PROOF_ID")]
        id: String,
        /// Encoder quality for jpg/webp outputs.
        #[arg(long, default_value_t = 92, value_parser = clap::value_parser!(u8).range(1..=100))]
        quality: u8,
    },
    /// Look for a watermark in each file.
    Detect {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

pub fn run(config: &Config, args: Args, json: bool) -> Outcome {
    let limits = config.limits;
    let mut pipeline = Pipeline::new(limits);
    let reporter = Reporter::new(json, None);
    match args {
        Args::Embed {
            input,
            out,
            id,
            quality,
        } => {
            let Ok(id) = id.parse::<ProofId>() else {
                eprintln!(
                    "error[usage]: --id {id:?} is not a proof id (px_ + 13 Crockford base32 characters)"
                );
                return Outcome::Usage;
            };
            let Some(format) = format_of(&out) else {
                eprintln!(
                    "error[usage]: cannot tell the output format from {} (use .png, .jpg or .webp)",
                    out.display()
                );
                return Outcome::Usage;
            };
            embed(&mut pipeline, &reporter, &input, &out, id, format, quality)
        }
        Args::Detect { files } => {
            let mut worst = Outcome::Ok;
            for f in files {
                worst = worst.max(detect(&mut pipeline, &reporter, &f));
            }
            worst
        }
    }
}

fn format_of(p: &Path) -> Option<OutputFormat> {
    match p.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "png" => Some(OutputFormat::Png),
        "jpg" | "jpeg" => Some(OutputFormat::Jpeg),
        "webp" => Some(OutputFormat::WebP),
        _ => None,
    }
}

/// The decoded picture of one input, or `None` once its refusal is reported.
fn read_decoded(
    pipeline: &mut Pipeline,
    reporter: &Reporter,
    file: &Path,
    shown: &str,
) -> Option<pixseal_media::Decoded> {
    let bytes = read_input(file, pipeline.limits().max_file_bytes)
        .map_err(|(code, msg)| reporter.error(shown, &code, &msg))
        .ok()?;
    pipeline
        .decode(&bytes, None)
        .map_err(|e| reporter.error(shown, e.code(), &e.to_string()))
        .ok()
}

fn embed(
    pipeline: &mut Pipeline,
    reporter: &Reporter,
    input: &Path,
    out: &Path,
    id: ProofId,
    format: OutputFormat,
    quality: u8,
) -> Outcome {
    let shown = input.display().to_string();
    let started = Instant::now();
    let Some(mut decoded) = read_decoded(pipeline, reporter, input, &shown) else {
        return Outcome::Rejected;
    };
    let report = match pixseal_watermark::embed(&mut decoded.pixels, id, Strength::default()) {
        Ok(r) => r,
        Err(e) => {
            reporter.error(&shown, e.code(), &e.to_string());
            return Outcome::Rejected;
        }
    };
    let encoded = match pipeline.encode(&mut decoded.pixels, Some(format), quality) {
        Ok((b, _)) => b,
        Err(e) => {
            reporter.error(&shown, e.code(), &e.to_string());
            return Outcome::Internal;
        }
    };
    if let Err(e) = write_atomic(out, &encoded) {
        reporter.error(
            &shown,
            "internal",
            &format!("cannot write {}: {e}", out.display()),
        );
        return Outcome::Internal;
    }
    let shown_out = out.display().to_string();
    let fields = json!({
        "proof_id": id.to_string(),
        "psnr_luma": (report.psnr_luma * 100.0).round() / 100.0,
        "ms": (started.elapsed().as_secs_f64() * 1e4).round() / 10.0,
    });
    let fields = crate::report::object(fields);
    let human = format!(
        "{shown} -> {shown_out} ({id}, luma PSNR {:.1} dB)",
        report.psnr_luma
    );
    reporter.ok(&shown, &shown_out, &human, fields);
    Outcome::Ok
}

fn detect(pipeline: &mut Pipeline, reporter: &Reporter, file: &Path) -> Outcome {
    let shown = file.display().to_string();
    let started = Instant::now();
    let Some(decoded) = read_decoded(pipeline, reporter, file, &shown) else {
        return Outcome::Rejected;
    };
    let d = pixseal_watermark::detect(&decoded.pixels);
    pipeline.recycle(decoded.pixels);
    let id = d.proof_id.map(|p| p.to_string());
    let human = match &id {
        Some(id) => format!("{shown}: watermark found, {id}"),
        None => format!("{shown}: no watermark found"),
    };
    let fields = json!({
        "found": d.found(),
        "proof_id": id,
        "sync_score": (d.sync_score * 100.0).round() / 100.0,
        "ms": (started.elapsed().as_secs_f64() * 1e4).round() / 10.0,
    });
    let fields = crate::report::object(fields);
    reporter.ok(&shown, "", &human, fields);
    Outcome::Ok
}
