//! `pixseal verify FILE... [--trust PEM] [--server URL]`: offline SPEC §6 verdicts from the file
//! alone; with `--server`, what that server knows of each file's proof (`crate::remote`).
//!
//! Exit code 0 only when every file is `verified` (and, with `--server`, the server answered);
//! 2 when any file is not (untrusted, tampered, not stamped) or cannot be read, so
//! `pixseal verify f && publish f` is safe.

use std::path::PathBuf;

use pixseal_media::Pipeline;
use pixseal_provenance::{Verdict, Verifier};
use pixseal_service::{Verification, examine, examine_video_file};
use serde_json::{Map, Value, json};

use super::batch::{io_reason, peek_video, read_input};
use crate::Outcome;
use crate::config::Config;
use crate::remote::{LookupBy, Server, ServerAnswer};
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
    /// Also ask this pixseal server what it knows of each file's proof: found by the manifest's
    /// proof id, the watermark, or the PDQ hash (only those are sent, never the file); a purged
    /// proof's receipt is checked with the server's published key.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
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
    let mut server = match args.server.as_deref().map(Server::new).transpose() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error[usage]: {e:#}");
            return Outcome::Usage;
        }
    };
    let reporter = Reporter::new(json, None);
    let mut worst = Outcome::Ok;
    let mut pipeline = Pipeline::new(limits);
    for file in &args.files {
        let shown = file.display().to_string();
        let started = std::time::Instant::now();
        // A video is read from its file where the reader needs it (up to 200 MiB by default);
        // a picture is read whole, within its limit.
        let examined = if peek_video(file).is_some() {
            std::fs::File::open(file)
                .map_err(|e| {
                    let why = io_reason(&e);
                    ("not_found".to_string(), format!("cannot read input: {why}"))
                })
                .and_then(|f| {
                    examine_video_file(
                        &verifier,
                        &config.video,
                        &f,
                        &std::env::temp_dir(),
                        server.is_some(),
                    )
                    .map_err(|e| (e.code().to_string(), e.to_string()))
                })
        } else {
            read_input(file, limits.max_file_bytes).and_then(|bytes| {
                examine(
                    &verifier,
                    &mut pipeline,
                    &config.video,
                    &bytes,
                    server.is_some(),
                )
                .map_err(|e| (e.code().to_string(), e.to_string()))
            })
        };
        let mut v = match examined {
            Ok(v) => v,
            Err((code, msg)) => {
                reporter.error(&shown, &code, &msg);
                worst = worst.max(Outcome::Rejected);
                continue;
            }
        };
        let answer = server.as_mut().map(|s| s.look_up(&v));
        if let Some(Ok(a)) = &answer
            && a.by == Some(LookupBy::Pdq)
            && let Some(id) = a.record.as_ref().and_then(|r| r["proof_id"].as_str())
        {
            v.report.verdict = Verdict::NearMatch;
            let what = if v.keyframes.is_some() {
                "video's keyframes look"
            } else {
                "picture looks"
            };
            v.report.message = format!(
                "no manifest or watermark, but the server finds the {what} like stamped proof {id}"
            );
            v.proof_id = Some(id.to_string());
        }
        let answered = match &answer {
            None => true,
            Some(Ok(a)) => a.receipt_signature_valid != Some(false),
            Some(Err(_)) => false,
        };
        if v.report.verdict != Verdict::Verified || !answered {
            worst = worst.max(Outcome::Rejected);
        }
        let (mut human, mut fields) = describe(&shown, &v);
        match &answer {
            Some(Ok(a)) => {
                human.push_str(&format!("\n  server {}: {}", a.url, server_summary(a)));
                fields.insert(
                    "server".into(),
                    serde_json::to_value(a).unwrap_or(Value::Null),
                );
            }
            Some(Err(e)) => {
                human.push_str(&format!("\n  server: no answer ({e:#})"));
                fields.insert("server".into(), json!({"error": format!("{e:#}")}));
            }
            None => {}
        }
        fields.insert(
            "ms".into(),
            json!((started.elapsed().as_secs_f64() * 1e4).round() / 10.0),
        );
        reporter.checked(&shown, &human, fields);
    }
    reporter.finish();
    worst
}

/// What the server said, in one line.
fn server_summary(a: &ServerAnswer) -> String {
    let Some(r) = &a.record else {
        return a
            .note
            .clone()
            .unwrap_or_else(|| "knows nothing of this file".into());
    };
    let field = |k: &str| r[k].as_str().unwrap_or("?").to_string();
    let by = match a.by {
        Some(LookupBy::Manifest) => "by the manifest's proof id",
        Some(LookupBy::Watermark) => "by the watermark, and the picture looks like the proof's",
        Some(LookupBy::Pdq) => "by likeness (PDQ)",
        None => "",
    };
    let mut s = format!(
        "proof {} found {by}: issued {} by {}, {}",
        field("proof_id"),
        field("issued_at"),
        field("issuer"),
        field("status")
    );
    if let Some(t) = r["purged_at"].as_str() {
        s.push_str(&format!(" at {t}"));
    }
    match a.receipt_signature_valid {
        Some(true) => s.push_str(", deletion receipt signature valid"),
        Some(false) => s.push_str(", deletion receipt signature INVALID"),
        None => {}
    }
    s
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
            if let Some(ts) = &r.timestamp {
                human.push_str(match (ts.trusted, ts.time.is_some()) {
                    (true, _) => " (time-stamped by a trusted authority)",
                    (false, true) => " (time-stamped by an authority you do not trust)",
                    (false, false) => " (its time-stamp does not check out)",
                });
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
