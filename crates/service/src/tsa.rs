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

/// `[provenance].tsa_url` parsed: an http(s) URL without credentials (they would end up in
/// logs; an authority that needs them is reached through a proxy that adds them).
pub fn check_url(url: &str) -> Result<reqwest::Url, String> {
    let bad = |why: &str| format!("provenance.tsa_url {why}");
    let url = reqwest::Url::parse(url).map_err(|_| bad("is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must be an http:// or https:// URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry credentials"));
    }
    Ok(url)
}

/// A time-stamping authority reached over HTTP(S).
pub struct HttpTimeStamper {
    url: reqwest::Url,
    /// Scheme, host and port only: what errors and logs name, since a path or query may carry
    /// an account's token.
    shown: String,
    client: Client,
}

impl HttpTimeStamper {
    /// `timeout` bounds each request as a whole; connecting gets at most half of it.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, ProvenanceError> {
        let url = check_url(url).map_err(ProvenanceError::TimeStamp)?;
        let shown = url.origin().ascii_serialization();
        let client = Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout / 2)
            .build()
            .map_err(|e| ProvenanceError::TimeStamp(format!("HTTP client: {e}")))?;
        Ok(HttpTimeStamper { url, shown, client })
    }
}

impl TimeStamper for HttpTimeStamper {
    fn time_stamp(&self, request: &[u8]) -> Result<Vec<u8>, ProvenanceError> {
        let fail = |what: String| ProvenanceError::TimeStamp(format!("{}: {what}", self.shown));
        let resp = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, QUERY)
            .body(request.to_vec())
            .send()
            .map_err(|e| fail(e.without_url().to_string()))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_urls_without_credentials() {
        let t = Duration::from_secs(1);
        assert!(HttpTimeStamper::new("http://127.0.0.1:3161/tsa", t).is_ok());
        for bad in [
            "ftp://tsa.example",
            "tsa.example",
            "https://user:secret@tsa.example/",
        ] {
            let e = HttpTimeStamper::new(bad, t).err().expect(bad).to_string();
            assert!(!e.contains("secret"), "{e}");
            assert!(check_url(bad).is_err());
        }
    }

    #[test]
    fn failures_name_the_origin_not_the_path() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/tsa?token=s3cret");
        let tsa = HttpTimeStamper::new(&url, Duration::from_secs(1)).unwrap();
        let e = tsa.time_stamp(b"request").unwrap_err().to_string();
        assert!(e.contains(&format!("http://127.0.0.1:{port}")), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
    }
}
