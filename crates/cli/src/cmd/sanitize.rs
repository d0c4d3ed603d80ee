//! `pixseal sanitize IN... -o DIR`: the ingest pipeline over files and directories, in parallel,
//! one bad file never stopping the batch; MP4/MOV videos take the container rewrite instead.

use std::path::Path;
use std::time::Instant;

use pixseal_media::{Decoded, IngestError, Limits, Options, Pipeline, Sanitized, VideoLimits};
use pixseal_provenance::stamp::StampError;
use serde_json::json;

use super::batch::{self, Batch, Encoding, Files, Job};
use super::video;
use crate::Outcome;
use crate::config::Config;
use crate::report::Reporter;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    files: Files,
    #[command(flatten)]
    encoding: Encoding,
}

pub fn run(config: &Config, args: Args, json: bool) -> Outcome {
    let opts = args.encoding.options();
    let limits = config.limits;
    let video_limits = config.video;
    let out_dir = &args.files.out;
    let usage = match batch::Usage::start(config, args.files.offline) {
        Ok(u) => u,
        Err(o) => return o,
    };
    let batch = match Batch::open(&args.files.inputs, out_dir, args.encoding.jobs, json, usage) {
        Ok(b) => b,
        Err(o) => return o,
    };
    if batch.threads() == 1 && batch.jobs().len() > 1 {
        overlapped(&batch, out_dir, &limits, &video_limits, &opts);
        return batch.finish();
    }
    batch.run(
        "unexpected failure while processing this input",
        |job, reporter| match batch::peek_video(&job.path) {
            Some(format) => video::sanitize(job, format, out_dir, &video_limits, reporter),
            None => process(job, out_dir, &limits, &opts, reporter),
        },
    )
}

fn process(
    job: &Job,
    out_dir: &Path,
    limits: &Limits,
    opts: &Options,
    reporter: &Reporter,
) -> Outcome {
    let started = Instant::now();
    let Some(input) = batch::read_job(job, limits.max_file_bytes, reporter) else {
        return Outcome::Rejected;
    };
    let result = batch::with_pipeline(*limits, |p| p.sanitize(&input, opts));
    drop(input);
    finish(job, out_dir, result, started, reporter)
}

/// Report a result and write its output.
fn finish(
    job: &Job,
    out_dir: &Path,
    result: Result<Sanitized, IngestError>,
    started: Instant,
    reporter: &Reporter,
) -> Outcome {
    let result = result.map_err(StampError::Ingest);
    batch::deliver(job, out_dir, started, result, reporter, |s, shown_out| {
        let mut human = format!(
            "{} -> {} ({} {}x{})",
            job.shown,
            shown_out,
            s.format.name(),
            s.width,
            s.height
        );
        for w in &s.warnings {
            human.push_str(&format!("; recovered from: {w}"));
        }
        let fields = json!({
            "format": s.format.name(),
            "width": s.width,
            "height": s.height,
            "bytes": s.bytes.len(),
            "input_format": s.input_format.name(),
            "orientation": s.orientation,
            "frames": s.frames,
            "colour": s.colour.name(),
            "warnings": s.warnings,
        });
        (human, fields)
    })
}

/// `--jobs 1` on a batch: one image at a time, but the decode of the next image overlaps the
/// encode (and write) of the previous one on a second thread, as libvips does. Decoded buffers
/// travel back to the decoder for reuse, so memory stays at about two pictures.
fn overlapped(
    batch: &Batch,
    out_dir: &Path,
    limits: &Limits,
    video_limits: &VideoLimits,
    opts: &Options,
) {
    use std::sync::mpsc::sync_channel;
    /// A picture for the encoder: decoded, or already finished by the JPEG fast path (which
    /// `sanitize` takes too, so the output is the same as on its own).
    enum Stage {
        Decoded(Decoded),
        Done(Sanitized),
    }
    type Item<'a> = (&'a Job, Instant, Result<Stage, IngestError>);
    // A rendezvous channel: at most one picture being decoded and one being encoded.
    let (tx, rx) = sync_channel::<Item<'_>>(0);
    let (back_tx, back_rx) = sync_channel::<pixseal_media::Pixels>(1);
    let reporter = batch.reporter();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut p = Pipeline::new(*limits);
            for job in batch.jobs() {
                while let Ok(px) = back_rx.try_recv() {
                    p.recycle(px);
                }
                if let Some(format) = batch::peek_video(&job.path) {
                    let o = video::sanitize(job, format, out_dir, video_limits, reporter);
                    batch.settle(job, o);
                    continue;
                }
                let started = Instant::now();
                let Some(input) = batch::read_job(job, limits.max_file_bytes, reporter) else {
                    batch.settle(job, Outcome::Rejected);
                    continue;
                };
                let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    match p.sanitize_jpeg_yuv(&input, opts)? {
                        Some(done) => Ok(Stage::Done(done)),
                        None => p.decode(&input, opts.max_edge).map(Stage::Decoded),
                    }
                }))
                .unwrap_or_else(|_| {
                    Err(IngestError::Internal(
                        "unexpected failure while decoding".into(),
                    ))
                });
                drop(input);
                if tx.send((job, started, decoded)).is_err() {
                    break;
                }
            }
            drop(tx);
        });
        let mut enc = Pipeline::new(*limits);
        for (job, started, decoded) in rx {
            let result = decoded.and_then(|stage| {
                let d = match stage {
                    Stage::Done(done) => return Ok(done),
                    Stage::Decoded(d) => d,
                };
                let encoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    enc.encode_decoded(d, opts)
                }));
                match encoded {
                    Ok((out, pixels)) => {
                        let _ = back_tx.try_send(pixels);
                        out
                    }
                    Err(_) => Err(IngestError::Internal(
                        "unexpected failure while encoding".into(),
                    )),
                }
            });
            batch.settle(job, finish(job, out_dir, result, started, reporter));
        }
    });
}
