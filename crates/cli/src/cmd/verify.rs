//! `pixseal verify FILE... [--trust PEM]`: offline SPEC §6 verdicts from the file alone.
//!
//! Exit code 0 only when every file is `verified`; 2 when any file is not (untrusted,
//! tampered, not stamped) or cannot be read, so `pixseal verify f && publish f` is safe.

use std::path::PathBuf;

use pixseal_media::Pipeline;
use pixseal_provenance::{Verdict, Verifier};
use pixseal_service::{Verification, examine};
use serde_json::{Map, Value, json};

use super::batch::read_input;
use crate::Outcome;
use crate::config::Config;
use crate::report::Reporter;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Files to verify.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Also trust the root certificate(s) in this PEM file (repeatable), besides the
    /// configured anchors ([provenance].trust_anchors, default this installation's root).
    #[arg(long, value_name = "PEM")]
    trust: Vec<PathBuf>,
}

pub fn run(config: &Config, args: Args, json: bool) -> Outcome {
    let limits = config.limits;
    let anchors = match config.trust_anchors(&args.trust) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error[config]: {e:#}");
            return Outcome::Usage;
        }
    };
    let verifier = Verifier::new(&anchors);
    let reporter = Reporter::new(json, None);
    let mut worst = Outcome::Ok;
    let mut pipeline = Pipeline::new(limits);
    for file in &args.files {
        let shown = file.display().to_string();
        let bytes = match read_input(file, limits.max_file_bytes) {
            Ok(b) => b,
            Err((code, msg)) => {
                reporter.error(&shown, &code, &msg);
                worst = worst.max(Outcome::Rejected);
                continue;
            }
        };
        let started = std::time::Instant::now();
        let v = match examine(&verifier, &mut pipeline, &bytes, false) {
            Ok(v) => v,
            Err(e) => {
                reporter.error(&shown, e.code(), &e.to_string());
                worst = worst.max(Outcome::Rejected);
                continue;
            }
        };
        if v.report.verdict != Verdict::Verified {
            worst = worst.max(Outcome::Rejected);
        }
        let (human, mut fields) = describe(&shown, &v);
        fields.insert(
            "ms".into(),
            json!((started.elapsed().as_secs_f64() * 1e4).round() / 10.0),
        );
        reporter.checked(&shown, &human, fields);
    }
    reporter.finish();
    worst
}

/// The one-line summary and the `--json` fields of a verification.
fn describe(shown: &str, v: &Verification) -> (String, Map<String, Value>) {
    let r = &v.report;
    let signer = r
        .signer
        .as_ref()
        .map(|s| match (&s.issuer, &s.common_name) {
            (Some(o), Some(cn)) if o != cn => format!("{cn} ({o})"),
            (Some(o), _) => o.clone(),
            (None, Some(cn)) => cn.clone(),
            (None, None) => "unknown signer".into(),
        });
    let proof_id = &v.proof_id;
    let mut human = format!("{shown}: {}", r.verdict.as_str());
    match r.verdict {
        Verdict::Verified | Verdict::Untrusted => {
            if let Some(s) = &signer {
                human.push_str(&format!(" — signed by {s}"));
            }
            if let Some(t) = &r.time {
                human.push_str(&format!(" at {t}"));
            }
            if let Some(p) = &proof_id {
                human.push_str(&format!(", proof {p}"));
            } else if let Some(g) = &r.claim_generator {
                human.push_str(&format!(", made by {g}"));
            }
            if r.verdict == Verdict::Untrusted {
                human.push_str(" — the signer is not one you trust (pass its root with --trust)");
            }
        }
        _ => human.push_str(&format!(" — {}", r.message)),
    }
    let fields = crate::report::object(serde_json::to_value(v).unwrap_or(Value::Null));
    (human, fields)
}
