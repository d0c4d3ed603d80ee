//! The batch driver shared by `sanitize` and `stamp`, so both treat inputs and failures alike.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Instant;

use pixseal_media::{IngestError, Limits, Options, OutputFormat, Pipeline, Sanitized};
use pixseal_provenance::stamp::{StampError, Stamped};
use rayon::prelude::*;
use serde_json::{Value, json};

use crate::Outcome;
use crate::config::Config;
use crate::license::{Counts, Device, Held};
use crate::report::Reporter;

/// Where a batch reads and writes.
#[derive(clap::Args, Debug)]
pub struct Files {
    /// Input files or directories (recursed).
    #[arg(required = true, value_name = "IN")]
    pub inputs: Vec<PathBuf>,
    /// Output directory (created if missing); outputs are DIR/<stem>.<ext>.
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    pub out: PathBuf,
    /// Send no usage counts to the licence server after this batch (nothing is ever sent
    /// while it runs).
    #[arg(long)]
    pub offline: bool,
}

// `--jobs` sits with the encoder settings only to keep the order of `--help` as it was.
/// How outputs are encoded, and by how many workers.
#[derive(clap::Args, Debug)]
pub struct Encoding {
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
    pub jobs: Option<u16>,
}

impl Encoding {
    pub fn options(&self) -> Options {
        Options {
            format: self
                .format
                .as_deref()
                .map(|f| f.parse::<OutputFormat>().expect("clap checked the value")),
            quality: self.quality,
            max_edge: self.max_edge,
        }
    }
}

/// One input to process, with the output stem reserved for it.
pub(crate) struct Job {
    pub(crate) shown: String,
    pub(crate) path: PathBuf,
    pub(crate) stem: String,
    /// Its size when the batch was collected (ordering, and the usage counts).
    pub(crate) size: u64,
}

/// A licensed device's batch: checked before it starts, counted while it runs, and reported
/// (counts only) after it ends.
pub(crate) struct Usage {
    device: Device,
    held: Held,
    /// Whether the counts are sent when the batch ends (`[license].usage_sync`, `--offline`).
    send: bool,
    images: AtomicU64,
    bytes: AtomicU64,
}

impl Usage {
    /// Check this device's licence offline before a batch; `Err` is the exit code, after the
    /// reason was printed. `Ok(None)`: unlicensed, and no licence required.
    pub(crate) fn start(config: &Config, offline: bool) -> Result<Option<Usage>, Outcome> {
        let device = Device::new(config);
        match device.gate(config.license.required) {
            Ok(None) => Ok(None),
            Ok(Some(held)) => Ok(Some(Usage {
                device,
                held,
                send: config.license.usage_sync && !offline,
                images: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
            })),
            Err(e) => {
                eprintln!("error[{}]: {e}", e.code);
                Err(super::license::licence_outcome(&e))
            }
        }
    }

    fn count(&self, size: u64) {
        self.images.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(size, Ordering::Relaxed);
    }

    /// After the batch: send its counts (logged first), and say so on stderr. A server that
    /// cannot be reached keeps them for the next batch; a refusal takes effect at the next one.
    fn report(self) {
        let counts = Counts {
            images: self.images.into_inner(),
            bytes: self.bytes.into_inner(),
        };
        if !self.send || (counts.images == 0 && self.held.pending.images == 0) {
            return;
        }
        let log = self.device.log_path();
        match self.device.check_in(self.held, Some(counts)) {
            Ok(h) => eprintln!(
                "[sync] sent usage update to {}: {} images processed (logged in {})",
                h.server,
                counts.images,
                log.display()
            ),
            Err(e) => eprintln!(
                "warning[{}]: usage update not delivered: {e} (logged in {})",
                e.code,
                log.display()
            ),
        }
    }
}

/// A batch under way: its jobs, the reporter every result goes through, and the worst outcome
/// so far, which becomes the exit code.
pub(crate) struct Batch {
    jobs: Vec<Job>,
    threads: usize,
    reporter: Reporter,
    worst: AtomicU8,
    usage: Option<Usage>,
}

impl Batch {
    /// Create the output directory, collect the jobs and report the inputs that cannot be read;
    /// `Err` is the exit code when the output directory cannot be created.
    pub(crate) fn open(
        inputs: &[PathBuf],
        out_dir: &Path,
        jobs: Option<u16>,
        json: bool,
        usage: Option<Usage>,
    ) -> Result<Batch, Outcome> {
        if let Err(e) = fs::create_dir_all(out_dir) {
            eprintln!(
                "error[usage]: cannot create output directory {}: {e}",
                out_dir.display()
            );
            return Err(Outcome::Usage);
        }
        let (found, missing) = collect(inputs, out_dir);
        let progress = crate::report::progress_bar(found.len());
        let batch = Batch {
            jobs: found,
            threads: jobs
                .map(usize::from)
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            reporter: Reporter::new(json, progress),
            worst: AtomicU8::new(Outcome::Ok as u8),
            usage,
        };
        for (shown, why) in missing {
            batch.reporter.error(&shown, "not_found", &why);
            batch.raise(Outcome::Rejected);
        }
        Ok(batch)
    }

    pub(crate) fn jobs(&self) -> &[Job] {
        &self.jobs
    }

    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    pub(crate) fn reporter(&self) -> &Reporter {
        &self.reporter
    }

    fn raise(&self, o: Outcome) {
        self.worst.fetch_max(o as u8, Ordering::Relaxed);
    }

    /// Record one input's outcome (and, when it succeeded, count it for the usage report);
    /// safe from any worker.
    pub(crate) fn settle(&self, job: &Job, o: Outcome) {
        if let (Outcome::Ok, Some(u)) = (o, &self.usage) {
            u.count(job.size);
        }
        self.raise(o);
    }

    /// Run `work` on every job on `threads()` workers and return the exit code. A panic costs
    /// only its own input, reported as `internal` with `on_panic`.
    pub(crate) fn run<F>(mut self, on_panic: &str, work: F) -> Outcome
    where
        F: Fn(&Job, &Reporter) -> Outcome + Sync,
    {
        // Largest inputs first: with dynamic scheduling this keeps the last worker from finishing
        // alone on a big picture (longest-processing-time-first).
        self.jobs.sort_by_key(|j| std::cmp::Reverse(j.size));
        let each = |job: &Job| {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                work(job, &self.reporter)
            }))
            .unwrap_or_else(|_| {
                self.reporter.error(&job.shown, "internal", on_panic);
                Outcome::Internal
            });
            self.settle(job, outcome);
        };
        if self.threads.min(self.jobs.len()) <= 1 {
            // One worker is this thread: no pool to start (its threads, stacks and code).
            self.jobs.iter().for_each(each);
            return self.finish();
        }
        let pool = match rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .build()
        {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error[internal]: cannot start worker threads: {e}");
                return Outcome::Internal;
            }
        };
        pool.install(|| self.jobs.par_iter().with_max_len(1).for_each(each));
        self.finish()
    }

    /// Close the progress bar and, on a licensed device, report the counts; the exit code is
    /// the worst outcome recorded.
    pub(crate) fn finish(self) -> Outcome {
        self.reporter.finish();
        if let Some(u) = self.usage {
            u.report();
        }
        Outcome::from_worst(self.worst.load(Ordering::Relaxed))
    }
}

thread_local! {
    static PIPELINE: RefCell<Option<Pipeline>> = const { RefCell::new(None) };
}

/// Run `f` on this worker's pipeline, so that its buffers are reused from one input to the next.
pub(crate) fn with_pipeline<R>(limits: Limits, f: impl FnOnce(&mut Pipeline) -> R) -> R {
    PIPELINE.with(|cell| {
        let mut slot = cell.borrow_mut();
        f(slot.get_or_insert_with(|| Pipeline::new(limits)))
    })
}

/// What a successful input leaves behind: the encoded output and its format.
pub(crate) trait Output {
    fn format(&self) -> OutputFormat;
    fn bytes(&self) -> &[u8];
}

impl Output for Sanitized {
    fn format(&self) -> OutputFormat {
        self.format
    }
    fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl Output for Stamped {
    fn format(&self) -> OutputFormat {
        self.format
    }
    fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Read a job's input, reporting it when it cannot be read or is too large (the caller's
/// outcome is then `Rejected`).
pub(crate) fn read_job(job: &Job, limit: u64, reporter: &Reporter) -> Option<Vec<u8>> {
    read_input(&job.path, limit)
        .map_err(|(code, msg)| reporter.error(&job.shown, &code, &msg))
        .ok()
}

/// Conclude one job. A failure (a sanitize error arrives as `StampError::Ingest`, the stamp
/// stage's own wrapper of it) is reported as `Rejected` when the input is at fault, else
/// `Internal`. An output is written as DIR/<stem>.<ext> before it is reported, so that an `ok`
/// line always names a complete file; `describe` gives the human line and the JSON fields from
/// the output and its shown path, and `ms` (the time since `started`) ends the fields.
pub(crate) fn deliver<T: Output>(
    job: &Job,
    out_dir: &Path,
    started: Instant,
    result: Result<T, StampError>,
    reporter: &Reporter,
    describe: impl FnOnce(&T, &str) -> (String, Value),
) -> Outcome {
    let out = match result {
        Ok(out) => out,
        Err(e) => {
            reporter.error(&job.shown, e.code(), &e.to_string());
            return if e.is_input_error() {
                Outcome::Rejected
            } else {
                Outcome::Internal
            };
        }
    };
    let out_path = out_dir.join(format!("{}.{}", job.stem, out.format().extension()));
    if let Err(e) = write_atomic(&out_path, out.bytes()) {
        reporter.error(
            &job.shown,
            "internal",
            &format!("cannot write {}: {e}", out_path.display()),
        );
        return Outcome::Internal;
    }
    let shown_out = out_path.display().to_string();
    let (human, fields) = describe(&out, &shown_out);
    report_ok(job, &shown_out, started, human, fields, reporter);
    Outcome::Ok
}

/// Report a job's output (written, complete) with its fields and, last, `ms` since `started`.
pub(crate) fn report_ok(
    job: &Job,
    shown_out: &str,
    started: Instant,
    human: String,
    fields: Value,
    reporter: &Reporter,
) {
    let mut fields = crate::report::object(fields);
    let ms = (started.elapsed().as_secs_f64() * 1e4).round() / 10.0;
    fields.insert("ms".into(), json!(ms));
    reporter.ok(&job.shown, shown_out, &human, fields);
}

/// Expand directories (sorted, recursive, regular files only) and reserve a unique output stem
/// per input so that `a.jpg` and `a.png` never overwrite each other.
pub(crate) fn collect(inputs: &[PathBuf], out_dir: &Path) -> (Vec<Job>, Vec<(String, String)>) {
    let mut files: Vec<(String, PathBuf, u64)> = Vec::new();
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
                        entry.metadata().map_or(0, |m| m.len()),
                    ));
                }
            }
            Ok(m) => files.push((shown, input.clone(), m.len())),
            Err(e) => missing.push((shown, format!("cannot read input: {}", io_reason(&e)))),
        }
    }
    let mut used: HashMap<String, u32> = HashMap::new();
    let jobs = files
        .into_iter()
        .map(|(shown, path, size)| {
            let base = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "image".into());
            let base = sanitize_stem(&base);
            let n = used.entry(base.to_lowercase()).or_insert(0);
            *n += 1;
            let stem = if *n == 1 { base } else { format!("{base}-{n}") };
            Job {
                shown,
                path,
                stem,
                size,
            }
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

/// Write to a hidden temporary name in the same directory, then rename: readers never see a
/// half-written output, and a crash leaves no file under the final name.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |f| std::io::Write::write_all(f, bytes))
}

/// `write_atomic` for an output produced piece by piece into the (readable, seekable)
/// temporary file; when `produce` fails nothing is left behind, under either name.
pub(crate) fn write_atomic_with<T, E: From<std::io::Error>>(
    path: &Path,
    produce: impl FnOnce(&mut fs::File) -> Result<T, E>,
) -> Result<T, E> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.partial-{}", std::process::id()));
    let res = (|| {
        let mut f = fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        let t = produce(&mut f)?;
        drop(f);
        fs::rename(&tmp, path)?;
        Ok(t)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// The video container an input starts like, read from its first bytes.
pub(crate) fn peek_video(path: &Path) -> Option<pixseal_media::VideoFormat> {
    let mut head = [0u8; 64];
    let mut f = fs::File::open(path).ok()?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    pixseal_media::sniff_video(&head[..n])
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
