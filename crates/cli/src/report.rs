//! Per-input results on stdout (human or `--json` lines) and `error[code]: message` on stderr,
//! written whole-line under a lock so parallel workers never interleave.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value, json};

/// A progress bar for a batch of `n` inputs: only on a terminal, and only for more than one input.
pub fn progress_bar(n: usize) -> Option<ProgressBar> {
    (std::io::stderr().is_terminal() && n > 1).then(|| {
        let p = ProgressBar::new(n as u64);
        p.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        p
    })
}

pub struct Reporter {
    json: bool,
    lock: Mutex<()>,
    progress: Option<ProgressBar>,
}

impl Reporter {
    pub fn new(json: bool, progress: Option<ProgressBar>) -> Self {
        Reporter {
            json,
            lock: Mutex::new(()),
            progress,
        }
    }

    /// One successful input: `fields` are added to the JSON object after input/status/output.
    pub fn ok(&self, input: &str, output: &str, human: &str, fields: Map<String, Value>) {
        let line = if self.json {
            let mut o = Map::new();
            o.insert("input".into(), json!(input));
            o.insert("status".into(), json!("ok"));
            o.insert("output".into(), json!(output));
            o.extend(fields);
            Value::Object(o).to_string()
        } else {
            human.to_string()
        };
        self.emit(Some(line), None);
    }

    /// One input checked (nothing written): `fields` follow input/status.
    pub fn checked(&self, input: &str, human: &str, fields: Map<String, Value>) {
        let line = if self.json {
            let mut o = Map::new();
            o.insert("input".into(), json!(input));
            o.insert("status".into(), json!("ok"));
            o.extend(fields);
            Value::Object(o).to_string()
        } else {
            human.to_string()
        };
        self.emit(Some(line), None);
    }

    /// One refused or failed input.
    pub fn error(&self, input: &str, code: &str, message: &str) {
        let out = self.json.then(|| {
            json!({"input": input, "status": "error", "code": code, "message": message}).to_string()
        });
        self.emit(out, Some(format!("error[{code}]: {input}: {message}")));
    }

    fn emit(&self, out: Option<String>, err: Option<String>) {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let write = || {
            if let Some(l) = &out {
                let mut s = std::io::stdout().lock();
                let _ = writeln!(s, "{l}");
                let _ = s.flush();
            }
            if let Some(l) = &err {
                let _ = writeln!(std::io::stderr().lock(), "{l}");
            }
        };
        match &self.progress {
            Some(p) => {
                p.suspend(write);
                p.inc(1);
            }
            None => write(),
        }
    }

    pub fn finish(&self) {
        if let Some(p) = &self.progress {
            p.finish_and_clear();
        }
    }
}

/// The fields of a `json!({...})` literal, for [`Reporter::ok`] and [`Reporter::checked`]; anything
/// that is not an object is kept whole under `value`.
pub fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => Map::from_iter([("value".to_string(), other)]),
    }
}
