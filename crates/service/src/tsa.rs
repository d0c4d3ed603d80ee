//! The HTTP transport of RFC 3161 time-stamps: POST the request to `[provenance].tsa_url`,
//! bounded in time and size, and hand the answer to the provenance crate to check.

use std::io::Read;
use std::time::Duration;

use pixseal_provenance::{ProvenanceError, TimeStamper};
use reqwest::blocking::Client;

/// RFC 3161 §3.4 media types.
const QUERY: &str = "application/timestamp-query";
const REPLY: &str = "application/timestamp-reply";
/// A response is a few KiB (a signature and the authority's certificates); anything past this
/// is not one.
const MAX_REPLY_BYTES: u64 = 256 * 1024;

/// A time-stamping authority reached over HTTP(S).
pub struct HttpTimeStamper {
    url: String,
    client: Client,
}

impl HttpTimeStamper {
    /// `timeout` bounds each request as a whole; connecting gets at most half of it.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, ProvenanceError> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ProvenanceError::TimeStamp(format!(
                "[provenance].tsa_url must be an http:// or https:// URL, not {url:?}"
            )));
        }
        let client = Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout / 2)
            .build()
            .map_err(|e| ProvenanceError::TimeStamp(format!("HTTP client: {e}")))?;
        Ok(HttpTimeStamper {
            url: url.to_owned(),
            client,
        })
    }
}

impl TimeStamper for HttpTimeStamper {
    fn time_stamp(&self, request: &[u8]) -> Result<Vec<u8>, ProvenanceError> {
        let fail = |what: String| ProvenanceError::TimeStamp(format!("{}: {what}", self.url));
        let resp = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, QUERY)
            .body(request.to_vec())
            .send()
            .map_err(|e| fail(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(fail(format!("answered {}", resp.status())));
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if !content_type.starts_with(REPLY) {
            return Err(fail(format!("answered {content_type:?}, not {REPLY}")));
        }
        let mut body = Vec::new();
        resp.take(MAX_REPLY_BYTES + 1)
            .read_to_end(&mut body)
            .map_err(|e| fail(e.to_string()))?;
        if body.len() as u64 > MAX_REPLY_BYTES {
            return Err(fail(format!("answer longer than {MAX_REPLY_BYTES} bytes")));
        }
        Ok(body)
    }
}
