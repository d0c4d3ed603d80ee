//! `pixseal sanitize IN... -o DIR`: the ingest pipeline over files and directories, in parallel,
//! one bad file never stopping the batch.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

use pixseal_media::{Decoded, IngestError, Limits, Options, OutputFormat, Pipeline, Sanitized};
use rayon::prelude::*;
use serde_json::json;

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

/// One input to process, with the output stem reserved for it.
pub(crate) struct Job {
    pub(crate) shown: String,
    pub(crate) path: PathBuf,
    pub(crate) stem: String,
}

thread_local! {
    static PIPELINE: RefCell<Option<Pipeline>> = const { RefCell::new(None) };
}

pub fn run(config: &Config, args: Args, json: bool) -> Outcome {
    let Some(limits) = super::limits(config) else {
        return Outcome::Usage;
    };
    let format = args
        .format
        .as_deref()
        .map(|f| f.parse::<OutputFormat>().expect("clap checked the value"));
    let opts = Options {
        format,
        quality: args.quality,
        max_edge: args.max_edge,
    };
    if let Err(e) = fs::create_dir_all(&args.out) {
        eprintln!(
            "error[usage]: cannot create output directory {}: {e}",
            args.out.display()
        );
        return Outcome::Usage;
    }
    let (jobs, missing) = collect(&args.inputs, &args.out);
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
    let threads = args
        .jobs
        .map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 1 && jobs.len() > 1 {
        raise(overlapped(&jobs, &args.out, &limits, &opts, &reporter));
        reporter.finish();
        return Outcome::from_worst(worst.load(Ordering::Relaxed));
    }
    // Largest inputs first: with dynamic scheduling this keeps the last worker from finishing
    // alone on a big picture (longest-processing-time-first).
    let mut jobs = jobs;
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
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                process(job, &args.out, &limits, &opts, &reporter)
            }))
            .unwrap_or_else(|_| {
                reporter.error(
                    &job.shown,
                    "internal",
                    "unexpected failure while processing this input",
                );
                Outcome::Internal
            });
            raise(outcome);
        });
    });
    reporter.finish();
    Outcome::from_worst(worst.load(Ordering::Relaxed))
}

/// Expand directories (sorted, recursive, regular files only) and reserve a unique output stem
/// per input so that `a.jpg` and `a.png` never overwrite each other.
pub(crate) fn collect(inputs: &[PathBuf], out_dir: &Path) -> (Vec<Job>, Vec<(String, String)>) {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let mut missing = Vec::new();
    let out_canon = fs::canonicalize(out_dir).ok();
    for input in inputs {
        let shown = input.display().to_string();
        match fs::metadata(input) {
            Ok(m) if m.is_dir() => {
                let walker = walkdir::WalkDir::new(input)
                    .follow_links(false)
                    .sort_by_file_name();
                for entry in walker.into_iter().filter_map(Result::ok) {
                    if !entry.file_type().is_file() {
                        continue;
                    }
                    // Never feed our own outputs back in when -o lies inside an input directory.
                    if let (Some(oc), Some(parent)) = (&out_canon, entry.path().parent())
                        && fs::canonicalize(parent).ok().as_ref() == Some(oc)
                    {
                        continue;
                    }
                    files.push((
                        entry.path().display().to_string(),
                        entry.path().to_path_buf(),
                    ));
                }
            }
            Ok(_) => files.push((shown, input.clone())),
            Err(e) => missing.push((shown, format!("cannot read input: {}", io_reason(&e)))),
        }
    }
    let mut used: HashMap<String, u32> = HashMap::new();
    let jobs = files
        .into_iter()
        .map(|(shown, path)| {
            let base = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "image".into());
            let base = sanitize_stem(&base);
            let n = used.entry(base.to_lowercase()).or_insert(0);
            *n += 1;
            let stem = if *n == 1 { base } else { format!("{base}-{n}") };
            Job { shown, path, stem }
        })
        .collect();
    (jobs, missing)
}

/// Output names never start with a dot (hidden) and never contain path separators.
fn sanitize_stem(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim_start_matches('.');
    if trimmed.is_empty() {
        "image".into()
    } else {
        trimmed.to_string()
    }
}

pub(crate) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// Read an input into memory, refusing it by size before reading when possible.
pub(crate) fn read_input(path: &Path, limit: u64) -> Result<Vec<u8>, (String, String)> {
    let not_found = |e: std::io::Error| {
        (
            "not_found".to_string(),
            format!("cannot read input: {}", io_reason(&e)),
        )
    };
    let f = fs::File::open(path).map_err(not_found)?;
    let size = f.metadata().map_err(not_found)?.len();
    if size > limit {
        let e = IngestError::FileTooLarge { size, limit };
        return Err((e.code().into(), e.to_string()));
    }
    let mut buf = Vec::with_capacity(size as usize);
    f.take(limit + 1).read_to_end(&mut buf).map_err(not_found)?;
    if buf.len() as u64 > limit {
        let e = IngestError::FileTooLarge {
            size: buf.len() as u64,
            limit,
        };
        return Err((e.code().into(), e.to_string()));
    }
    Ok(buf)
}

fn process(
    job: &Job,
    out_dir: &Path,
    limits: &Limits,
    opts: &Options,
    reporter: &Reporter,
) -> Outcome {
    let started = Instant::now();
    let input = match read_input(&job.path, limits.max_file_bytes) {
        Ok(b) => b,
        Err((code, msg)) => {
            reporter.error(&job.shown, &code, &msg);
            return Outcome::Rejected;
        }
    };
    let result = PIPELINE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let p = slot.get_or_insert_with(|| Pipeline::new(*limits));
        p.sanitize(&input, opts)
    });
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
    let s = match result {
        Ok(s) => s,
        Err(e) => {
            reporter.error(&job.shown, e.code(), &e.to_string());
            return if e.is_input_error() {
                Outcome::Rejected
            } else {
                Outcome::Internal
            };
        }
    };
    let out_path = out_dir.join(format!("{}.{}", job.stem, s.format.extension()));
    if let Err(e) = write_atomic(&out_path, &s.bytes) {
        reporter.error(
            &job.shown,
            "internal",
            &format!("cannot write {}: {e}", out_path.display()),
        );
        return Outcome::Internal;
    }
    let shown_out = out_path.display().to_string();
    let human = format!(
        "{} -> {} ({} {}x{})",
        job.shown,
        shown_out,
        s.format.name(),
        s.width,
        s.height
    );
    let fields = json!({
        "format": s.format.name(),
        "width": s.width,
        "height": s.height,
        "bytes": s.bytes.len(),
        "input_format": s.input_format.name(),
        "orientation": s.orientation,
        "frames": s.frames,
        "colour": s.colour.name(),
        "ms": (started.elapsed().as_secs_f64() * 1e4).round() / 10.0,
    });
    let fields = crate::report::object(fields);
    reporter.ok(&job.shown, &shown_out, &human, fields);
    Outcome::Ok
}

/// `--jobs 1` on a batch: one image at a time, but the decode of the next image overlaps the
/// encode (and write) of the previous one on a second thread, as libvips does. Decoded buffers
/// travel back to the decoder for reuse, so memory stays at about two pictures.
fn overlapped(
    jobs: &[Job],
    out_dir: &Path,
    limits: &Limits,
    opts: &Options,
    reporter: &Reporter,
) -> Outcome {
    use std::sync::mpsc::sync_channel;
    type Item<'a> = (&'a Job, Instant, Result<Decoded, IngestError>);
    // A rendezvous channel: at most one picture being decoded and one being encoded.
    let (tx, rx) = sync_channel::<Item<'_>>(0);
    let (back_tx, back_rx) = sync_channel::<pixseal_media::Pixels>(1);
    let worst = AtomicU8::new(Outcome::Ok as u8);
    let raise = |o: Outcome| {
        worst.fetch_max(o as u8, Ordering::Relaxed);
    };
    let raise = &raise;
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut p = Pipeline::new(*limits);
            for job in jobs {
                while let Ok(px) = back_rx.try_recv() {
                    p.recycle(px);
                }
                let started = Instant::now();
                let input = match read_input(&job.path, limits.max_file_bytes) {
                    Ok(b) => b,
                    Err((code, msg)) => {
                        reporter.error(&job.shown, &code, &msg);
                        raise(Outcome::Rejected);
                        continue;
                    }
                };
                let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    p.decode(&input, opts.max_edge)
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
            let result = decoded.and_then(|d| {
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
            raise(finish(job, out_dir, result, started, reporter));
        }
    });
    Outcome::from_worst(worst.load(Ordering::Relaxed))
}

/// Write to a hidden temporary name in the same directory, then rename: readers never see a
/// half-written output, and a crash leaves no file under the final name.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.partial-{}", std::process::id()));
    let res = fs::write(&tmp, bytes).and_then(|_| fs::rename(&tmp, path));
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_are_unique_and_safe() {
        let d = tempfile::tempdir().unwrap();
        for n in ["a.jpg", "a.png", "A.gif", ".hidden.jpg"] {
            fs::write(d.path().join(n), b"x").unwrap();
        }
        let out = d.path().join("out");
        fs::create_dir(&out).unwrap();
        let (jobs, missing) = collect(&[d.path().to_path_buf(), d.path().join("nope.jpg")], &out);
        let mut stems: Vec<_> = jobs.iter().map(|j| j.stem.clone()).collect();
        stems.sort();
        assert_eq!(stems, vec!["A", "a-2", "a-3", "hidden"]);
        assert_eq!(missing.len(), 1);
    }
}
