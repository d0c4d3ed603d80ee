//! `stamp --server`: pictures stamped by a pixseal server (`POST /v1/stamp`) for installations
//! whose signing key lives there. One picture per request; when the server asks for a solved
//! proof-of-work challenge, it is fetched, solved here with ALTCHA's Rust solver, and the
//! request is sent again once.

use std::time::Duration;

use base64::Engine;
use pixseal_media::{Options, OutputFormat};
use serde_json::Value;

use crate::Outcome;

/// A stamp the server handed back.
pub struct RemoteStamp {
    pub bytes: Vec<u8>,
    pub format: OutputFormat,
    pub proof_id: String,
    pub verify_url: String,
    pub sha256: String,
    /// Whether a challenge had to be solved for it.
    pub challenged: bool,
}

/// Why the server did not stamp a picture: its error code and message, and the exit code it
/// means (the picture refused: 2; the request itself, a key or an option: 1; else 3).
pub struct Refused {
    pub code: String,
    pub message: String,
    pub outcome: Outcome,
}

impl Refused {
    fn local(message: String) -> Refused {
        Refused {
            code: "internal".into(),
            message,
            outcome: Outcome::Internal,
        }
    }
}

/// A pixseal server stamping for this command, shared by the batch's workers.
pub struct Stamper {
    base: String,
    key: Option<String>,
    query: Vec<(&'static str, String)>,
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

impl Stamper {
    pub fn new(
        url: &str,
        key: Option<String>,
        opts: &Options,
        label: Option<&str>,
        visible: bool,
    ) -> anyhow::Result<Stamper> {
        let base = url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            anyhow::bail!("--server wants an http:// or https:// URL, not {url:?}");
        }
        let mut query = vec![("quality", opts.quality.to_string())];
        if let Some(f) = opts.format {
            query.push(("format", f.name().to_string()));
        }
        if let Some(e) = opts.max_edge {
            query.push(("max_edge", e.to_string()));
        }
        if let Some(l) = label {
            query.push(("label", l.to_string()));
        }
        if !visible {
            query.push(("visible", "false".into()));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("pixseal/", env!("CARGO_PKG_VERSION")))
            .build()?;
        // Workers block on it from their own threads.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        Ok(Stamper {
            base,
            key,
            query,
            client,
            rt,
        })
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// Stamp one picture (blocking).
    pub fn stamp(&self, bytes: Vec<u8>) -> Result<RemoteStamp, Refused> {
        self.rt.block_on(async {
            match self.send(&bytes, None).await? {
                Ok(s) => Ok(s),
                Err(r) if r.code == "challenge_required" => {
                    let solved = self.solve().await?;
                    match self.send(&bytes, Some(&solved)).await? {
                        Ok(mut s) => {
                            s.challenged = true;
                            Ok(s)
                        }
                        Err(r) => Err(r),
                    }
                }
                Err(r) => Err(r),
            }
        })
    }

    /// One request: the stamp, or the server's refusal (outer error: no answer at all).
    async fn send(
        &self,
        bytes: &[u8],
        challenge: Option<&str>,
    ) -> Result<Result<RemoteStamp, Refused>, Refused> {
        let mut req = self
            .client
            .post(format!("{}/v1/stamp", self.base))
            .query(&self.query)
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec());
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        if let Some(c) = challenge {
            req = req.header("pixseal-challenge", c);
        }
        let r = req
            .send()
            .await
            .map_err(|e| Refused::local(format!("{}: {e}", self.base)))?;
        let status = r.status();
        if !status.is_success() {
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let text = |k: &str| body["error"][k].as_str().unwrap_or_default().to_string();
            return Ok(Err(Refused {
                code: Some(text("code"))
                    .filter(|c| !c.is_empty())
                    .unwrap_or_else(|| "internal".into()),
                message: format!("{} answered {status}: {}", self.base, text("message")),
                outcome: match status.as_u16() {
                    413 | 415 | 422 => Outcome::Rejected,
                    400 | 401 | 403 | 404 => Outcome::Usage,
                    _ => Outcome::Internal,
                },
            }));
        }
        let header = |n: &str| {
            r.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .ok_or_else(|| Refused::local(format!("{}: the answer has no {n}", self.base)))
        };
        let format = match header("content-type")?.as_str() {
            "image/jpeg" => OutputFormat::Jpeg,
            "image/webp" => OutputFormat::WebP,
            "image/png" => OutputFormat::Png,
            other => {
                return Err(Refused::local(format!(
                    "{}: unexpected content type {other}",
                    self.base
                )));
            }
        };
        let (proof_id, verify_url, sha256) = (
            header("pixseal-proof-id")?,
            header("pixseal-verify-url")?,
            header("pixseal-sha256")?,
        );
        let body = r
            .bytes()
            .await
            .map_err(|e| Refused::local(format!("{}: {e}", self.base)))?
            .to_vec();
        let got = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body));
        if got != sha256 {
            return Err(Refused::local(format!(
                "{}: the stamped file arrived damaged (SHA-256 {got}, announced {sha256})",
                self.base
            )));
        }
        Ok(Ok(RemoteStamp {
            bytes: body,
            format,
            proof_id,
            verify_url,
            sha256,
            challenged: false,
        }))
    }

    /// A challenge for the stamp route, solved: the `Pixseal-Challenge` header value.
    async fn solve(&self) -> Result<String, Refused> {
        let fail = |e: String| Refused::local(format!("{}: challenge: {e}", self.base));
        let r = self
            .client
            .get(format!("{}/v1/challenge", self.base))
            .query(&[("route", "stamp")])
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if !r.status().is_success() {
            return Err(fail(format!("answered {}", r.status())));
        }
        let challenge: altcha::Challenge = r.json().await.map_err(|e| fail(e.to_string()))?;
        // The solver is CPU-bound: off the runtime's one worker.
        let solved = tokio::task::spawn_blocking(move || {
            altcha::solve_challenge(altcha::SolveChallengeOptions::new(&challenge))
                .map(|s| s.map(|s| (challenge, s)))
        })
        .await
        .map_err(|e| fail(e.to_string()))?
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| fail("not solved in time".into()))?;
        let payload = serde_json::json!({ "challenge": solved.0, "solution": solved.1 });
        Ok(base64::engine::general_purpose::STANDARD.encode(payload.to_string()))
    }
}
