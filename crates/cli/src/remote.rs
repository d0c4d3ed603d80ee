//! `verify --server`: what a pixseal server knows of a file's proof, asked with the proof id and
//! the file's soft-binding values only (watermark payload, PDQ hash): the file never leaves
//! this machine. A purged proof's receipt is checked here, with the server's published key.

use std::time::Duration;

use pixseal_proof::{ProofId, SignedReceipt};
use pixseal_provenance::manifest::binding_value_of_watermark;
use pixseal_provenance::{PDQ_BINDING_ALG, Verdict, WATERMARK_BINDING_ALG};
use pixseal_service::Verification;
use serde::Serialize;
use serde_json::Value;

/// How the server's record was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LookupBy {
    /// The proof id in the file's manifest.
    Manifest,
    /// The invisible watermark's proof id, and the picture looks like the proof's.
    Watermark,
    /// The picture's PDQ hash alone (the verdict becomes `near_match`).
    Pdq,
}

/// What the server said about one file.
#[derive(Debug, Clone, Serialize)]
pub struct ServerAnswer {
    pub url: String,
    /// How the record was found; `None` when the server knows nothing of the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<LookupBy>,
    /// The public proof record (`GET /v1/proofs/{proof_id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<Value>,
    /// 0–100, from the Resolution API, for watermark and PDQ lookups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similarity: Option<u64>,
    /// A purged proof's receipt: whether its signature checks out with the server's key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt_signature_valid: Option<bool>,
    /// In words, when the server's answer needs one (unknown proof, copied watermark).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A pixseal server, asked over HTTP(S) with a bounded timeout.
pub struct Server {
    base: String,
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
    /// The server's receipt key (PEM), fetched on first need.
    receipt_key: Option<String>,
}

impl Server {
    pub fn new(url: &str) -> anyhow::Result<Server> {
        let base = url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            anyhow::bail!("--server wants an http:// or https:// URL, not {url:?}");
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("pixseal/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Server {
            base,
            client,
            rt,
            receipt_key: None,
        })
    }

    fn get(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<Option<Value>> {
        let url = format!("{}{path}", self.base);
        self.rt.block_on(async {
            let r = self.client.get(&url).query(query).send().await?;
            match r.status() {
                s if s.is_success() => Ok(Some(r.json().await?)),
                reqwest::StatusCode::NOT_FOUND => Ok(None),
                s => {
                    let body: Value = r.json().await.unwrap_or(Value::Null);
                    let msg = body["error"]["message"].as_str().unwrap_or("").to_string();
                    anyhow::bail!("{url}: {s} {msg}")
                }
            }
        })
    }

    /// The proof ids a binding value resolves to, with their similarity, best first.
    fn resolve(&self, alg: &str, value: &str) -> anyhow::Result<Vec<(String, u64)>> {
        let m = self
            .get(
                "/v1/matches/byBinding",
                &[("alg", alg), ("value", value), ("maxResults", "10")],
            )?
            .unwrap_or(Value::Null);
        Ok(m["matches"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| {
                Some((
                    x["proofId"].as_str()?.to_string(),
                    x["similarityScore"].as_u64()?,
                ))
            })
            .collect())
    }

    /// What the server knows of the file `v` describes.
    pub fn look_up(&mut self, v: &Verification) -> anyhow::Result<ServerAnswer> {
        let mut a = ServerAnswer {
            url: self.base.clone(),
            by: None,
            record: None,
            similarity: None,
            receipt_signature_valid: None,
            note: None,
        };
        // A picture's one hash, or a video's keyframes' (each distinct one looked up; a proof
        // keeps the best similarity any of them reaches).
        let mut hashes: Vec<String> = v
            .pdq
            .iter()
            .chain(v.keyframes.iter().flatten())
            .map(|h| {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode(h.0)
            })
            .collect();
        hashes.sort();
        hashes.dedup();
        let (what, unhashed) = if v.keyframes.is_some() {
            ("video", "its keyframes could not be hashed")
        } else {
            ("picture", "it is too small")
        };
        let likeness = |s: &Self, want: Option<&str>| -> anyhow::Result<Vec<(String, u64)>> {
            let mut best: Vec<(String, u64)> = Vec::new();
            for h in &hashes {
                for (id, score) in s.resolve(PDQ_BINDING_ALG, h)? {
                    match best.iter_mut().find(|(p, _)| *p == id) {
                        Some(b) => b.1 = b.1.max(score),
                        None => best.push((id, score)),
                    }
                }
                // The proof a watermark names is found: more lookups would not change that.
                if want.is_some_and(|w| best.iter().any(|(p, _)| p == w)) {
                    break;
                }
            }
            best.sort_by_key(|b| std::cmp::Reverse(b.1));
            Ok(best)
        };
        let found = match v.report.verdict {
            // A manifest's proof id: only one whose signature holds (an altered manifest may
            // name any proof).
            Verdict::Verified | Verdict::Untrusted => v
                .report
                .proof_id()
                .map(|id| (id.to_string(), LookupBy::Manifest, None)),
            Verdict::WatermarkOnly => match v.watermark {
                Some(bits) => {
                    let id = ProofId(bits).to_string();
                    let known = !self
                        .resolve(WATERMARK_BINDING_ALG, &binding_value_of_watermark(bits))?
                        .is_empty();
                    let like = likeness(self, Some(&id))?;
                    match like.iter().find(|(p, _)| *p == id) {
                        Some((_, score)) if known => Some((id, LookupBy::Watermark, Some(*score))),
                        _ if !known => {
                            a.note = Some(format!("the server does not know proof {id}"));
                            None
                        }
                        _ if hashes.is_empty() => {
                            a.note = Some(format!(
                                "the {what} carries the watermark of proof {id}, but {unhashed} to check that it is the {what} that proof was issued for"
                            ));
                            None
                        }
                        _ => {
                            a.note = Some(format!(
                                "the {what} carries the watermark of proof {id}, but the server finds it does not look like the {what} that proof was issued for: the watermark may have been copied onto it"
                            ));
                            None
                        }
                    }
                }
                None => None,
            },
            Verdict::NotStamped => likeness(self, None)?
                .into_iter()
                .next()
                .map(|(id, score)| (id, LookupBy::Pdq, Some(score))),
            _ => None,
        };
        let Some((proof_id, by, similarity)) = found else {
            return Ok(a);
        };
        let Some(record) = self.get(&format!("/v1/proofs/{proof_id}"), &[])? else {
            a.note = Some(format!("the server does not know proof {proof_id}"));
            return Ok(a);
        };
        if let Some(r) = record.get("receipt").filter(|r| !r.is_null()) {
            a.receipt_signature_valid = Some(self.check_receipt(r)?);
        }
        a.by = Some(by);
        a.similarity = similarity;
        a.record = Some(record);
        Ok(a)
    }

    /// A receipt's signature against the server's published receipt key.
    fn check_receipt(&mut self, receipt: &Value) -> anyhow::Result<bool> {
        if self.receipt_key.is_none() {
            let k = self
                .get("/v1/keys/receipts", &[])?
                .ok_or_else(|| anyhow::anyhow!("the server publishes no receipt key"))?;
            let pem = k["public_key_pem"]
                .as_str()
                .ok_or_else(|| anyhow::anyhow!("the server's receipt key has no PEM"))?;
            self.receipt_key = Some(pem.to_string());
        }
        let Ok(signed) = serde_json::from_value::<SignedReceipt>(receipt.clone()) else {
            return Ok(false);
        };
        Ok(signed
            .verify_pem(self.receipt_key.as_deref().unwrap_or_default())
            .is_ok())
    }
}
