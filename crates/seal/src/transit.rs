//! `transit` key provider: Vault / OpenBao Transit over HTTP (the master keys never leave
//! the service).
//!
//! Endpoints used (per region key `<k>`, mount `transit` by default):
//!
//! | operation | call | app-token capability |
//! |---|---|---|
//! | generate data key | `POST transit/datakey/plaintext/<k>` | update |
//! | unwrap data key | `POST transit/decrypt/<k>` | update |
//! | rewrap | `POST transit/rewrap/<k>` | update |
//! | wrap a data key moving to a tenant's key | `POST transit/encrypt/<k>` | update (tenant keys only) |
//! | rotate | `POST transit/keys/<k>/rotate` | update |
//! | key versions | `GET transit/keys/<k>` | read |
//! | min_decryption_version | `POST transit/keys/<k>/config` | **admin only** |
//!
//! The deletion-receipt signer ([`crate::TransitReceiptSigner`]) shares this module's HTTP
//! client and retry policy; its calls are listed in [`crate::transit_receipts`].
//!
//! Connection errors, timeouts, 429 and 5xx are retried with bounded exponential backoff (by
//! default 3 tries within about 2 s), then reported as [`SealError::KeyUnavailable`]; there is
//! never a fallback to another key. 403 is [`SealError::PermissionDenied`].
//!
//! The client is blocking (`reqwest::blocking`): from an async server call it through
//! `tokio::task::spawn_blocking`, never directly on a runtime thread.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::blocking::Client;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::{Result, SealError};
use crate::provider::{
    DataKey, KeyProvider, KeyVersions, ProviderId, WrappedKey, random_bytes, validate_key_name,
    validate_region,
};

/// Retry/backoff and timeouts for the key service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total tries (>= 1).
    pub attempts: u32,
    /// Wait before the second try; doubled for each further try (plus up to 25 % jitter).
    pub initial_backoff: Duration,
    /// Cap on one wait.
    pub max_backoff: Duration,
    /// TCP connect timeout of one try.
    pub connect_timeout: Duration,
    /// Whole-request timeout of one try.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(1),
            connect_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_secs(2),
        }
    }
}

/// Configuration of [`TransitKeyProvider`].
#[derive(Clone)]
pub struct TransitConfig {
    /// Base address, e.g. `https://bao.internal:8200` (no `/v1`).
    pub addr: String,
    /// Token (for the app: one whose policy allows exactly the paths in the module docs).
    pub token: Zeroizing<String>,
    /// Transit mount path (default `transit`).
    pub mount: String,
    /// Region → key name (e.g. `eu` → `pixseal-eu`). Regions not listed are refused.
    pub keys: BTreeMap<String, String>,
    /// Retries and timeouts.
    pub retry: RetryPolicy,
    /// A private CA (PEM) to trust for the service's TLS certificate, besides the public roots.
    pub ca_cert_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for TransitConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransitConfig")
            .field("addr", &self.addr)
            .field("token", &"<redacted>")
            .field("mount", &self.mount)
            .field("keys", &self.keys)
            .field("retry", &self.retry)
            .field("ca_cert_pem", &self.ca_cert_pem.is_some())
            .finish()
    }
}

impl TransitConfig {
    /// Config with mount `transit`, key `pixseal-<region>` for each region, default retries.
    pub fn new(addr: &str, token: &str, regions: &[&str]) -> Self {
        TransitConfig {
            addr: addr.to_owned(),
            token: Zeroizing::new(token.to_owned()),
            mount: "transit".into(),
            keys: regions
                .iter()
                .map(|r| ((*r).to_owned(), format!("pixseal-{r}")))
                .collect(),
            retry: RetryPolicy::default(),
            ca_cert_pem: None,
        }
    }
}

/// Whether a URL's host is this machine, where plain HTTP never leaves the host.
fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// Transit-backed key provider. See the module docs.
pub struct TransitKeyProvider {
    client: TransitClient,
    keys: BTreeMap<String, String>,
}

impl std::fmt::Debug for TransitKeyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransitKeyProvider")
            .field("base", &self.client.base)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

/// The HTTP side shared by everything that talks to Transit ([`TransitKeyProvider`] and
/// [`crate::TransitReceiptSigner`]): one blocking client carrying the token as a sensitive
/// header (never logged, never in an error), no redirects, no proxy, and the retry policy.
pub(crate) struct TransitClient {
    pub(crate) base: String,
    retry: RetryPolicy,
    client: Client,
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
}

#[derive(Deserialize)]
struct DataKeyResp {
    ciphertext: String,
    plaintext: Zeroizing<String>,
    #[serde(default)]
    key_version: Option<u32>,
}

#[derive(Deserialize)]
struct DecryptResp {
    plaintext: Zeroizing<String>,
}

#[derive(Deserialize)]
struct EncryptResp {
    ciphertext: String,
    #[serde(default)]
    key_version: Option<u32>,
}

#[derive(Deserialize)]
struct RewrapResp {
    ciphertext: String,
}

#[derive(Deserialize)]
struct KeyResp {
    latest_version: u32,
    min_decryption_version: u32,
    #[serde(default)]
    min_available_version: u32,
    keys: BTreeMap<String, serde_json::Value>,
}

/// `GET transit/keys/<k>` of a signing key: its type, latest version and public keys.
#[derive(Deserialize)]
pub(crate) struct KeyInfo {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) latest_version: u32,
    pub(crate) keys: BTreeMap<String, serde_json::Value>,
}

/// `POST transit/sign/<k>`: `vault:v<version>:<base64 signature>`.
#[derive(Deserialize)]
pub(crate) struct SignResp {
    pub(crate) signature: String,
}

#[derive(Deserialize)]
struct ErrorsResp {
    #[serde(default)]
    errors: Vec<String>,
}

/// How a 4xx answer is interpreted.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    /// The request carried data from a blob (a 400 means the ciphertext is not authentic).
    Untrusted,
    /// The request carried only our own parameters.
    Trusted,
}

impl TransitKeyProvider {
    /// Builds the provider (no network I/O until the first call).
    pub fn new(config: TransitConfig) -> Result<Self> {
        let client = TransitClient::new(&config)?;
        if config.keys.is_empty() {
            return Err(SealError::Config(
                "transit: no region keys configured".into(),
            ));
        }
        for (region, key) in &config.keys {
            validate_region(region)?;
            validate_key_name(key)?;
        }
        Ok(TransitKeyProvider {
            client,
            keys: config.keys,
        })
    }

    fn key_for(&self, region: &str) -> Result<&str> {
        self.keys.get(region).map(String::as_str).ok_or_else(|| {
            SealError::KeyNotFound(format!("no transit key configured for region {region:?}"))
        })
    }

    fn call(
        &self,
        get: bool,
        path: &str,
        body: Option<&serde_json::Value>,
        input: Input,
    ) -> Result<Zeroizing<Vec<u8>>> {
        self.client.call(get, path, body, input)
    }

    fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T> {
        TransitClient::parse(body)
    }
}

impl TransitClient {
    /// Checks the address, mount and retry policy and builds the HTTP client (no network I/O).
    pub(crate) fn new(config: &TransitConfig) -> Result<Self> {
        let addr = config.addr.trim_end_matches('/');
        if !(addr.starts_with("http://") || addr.starts_with("https://")) {
            return Err(SealError::Config(format!(
                "transit address {addr:?} must start with http:// or https://"
            )));
        }
        let url = reqwest::Url::parse(addr)
            .map_err(|e| SealError::Config(format!("transit address {addr:?}: {e}")))?;
        // The token goes with every request: in clear only when it never leaves the machine.
        if url.scheme() == "http" && !is_loopback(&url) {
            return Err(SealError::Config(format!(
                "transit address {addr:?} is plain http:// to another host, so the token would \
                 travel in clear; use https:// (keys.transit_ca_cert trusts a private CA)"
            )));
        }
        if config.mount.is_empty()
            || !config
                .mount
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'/'))
        {
            return Err(SealError::Config(format!(
                "invalid transit mount {:?}",
                config.mount
            )));
        }
        if config.retry.attempts == 0 {
            return Err(SealError::Config(
                "transit: retry attempts must be >= 1".into(),
            ));
        }
        let mut token = HeaderValue::from_str(&config.token)
            .map_err(|_| SealError::Config("transit token is not a valid header value".into()))?;
        token.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("X-Vault-Token", token);
        headers.insert("X-Vault-Request", HeaderValue::from_static("true"));
        let mut builder = Client::builder();
        if let Some(pem) = &config.ca_cert_pem {
            let ca = reqwest::Certificate::from_pem(pem)
                .map_err(|e| SealError::Config(format!("keys.transit_ca_cert: {e}")))?;
            builder = builder.add_root_certificate(ca);
        }
        let client = builder
            .default_headers(headers)
            .connect_timeout(config.retry.connect_timeout)
            .timeout(config.retry.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| match config.ca_cert_pem {
                // rustls reads the PEM only here.
                Some(_) => SealError::Config(format!(
                    "keys.transit_ca_cert is not a usable CA certificate: {e}"
                )),
                None => SealError::Config(format!("transit HTTP client: {e}")),
            })?;
        Ok(TransitClient {
            base: format!("{addr}/v1/{}", config.mount.trim_matches('/')),
            retry: config.retry,
            client,
        })
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self
            .retry
            .initial_backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.retry.max_backoff);
        let mut j = [0u8; 1];
        let jitter = if random_bytes(&mut j).is_ok() {
            base.mul_f64(f64::from(j[0]) / 1024.0)
        } else {
            Duration::ZERO
        };
        base + jitter
    }

    /// One logical call with retries. Returns the 2xx body in zeroized memory.
    pub(crate) fn call(
        &self,
        get: bool,
        path: &str,
        body: Option<&serde_json::Value>,
        input: Input,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let url = format!("{}/{path}", self.base);
        let mut last = String::new();
        for attempt in 0..self.retry.attempts {
            if attempt > 0 {
                std::thread::sleep(self.backoff(attempt - 1));
            }
            let req = if get {
                self.client.get(&url)
            } else {
                let b = body.map_or_else(|| b"{}".to_vec(), |b| b.to_string().into_bytes());
                self.client
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(b)
            };
            let mut resp = match req.send() {
                Ok(r) => r,
                Err(e) => {
                    last = format!("{path}: {}", without_url(&e));
                    continue;
                }
            };
            let status = resp.status();
            let mut buf = Zeroizing::new(Vec::with_capacity(4096));
            if let Err(e) = resp.read_to_end(&mut buf) {
                last = format!("{path}: reading response: {e}");
                continue;
            }
            if status.is_success() {
                return Ok(buf);
            }
            let msg = serde_json::from_slice::<ErrorsResp>(&buf)
                .map(|e| e.errors.join("; "))
                .unwrap_or_default()
                .replace(['\n', '\t'], " ");
            let msg = format!("{path}: HTTP {}: {}", status.as_u16(), msg.trim());
            if status.is_server_error() || status.as_u16() == 429 {
                last = msg;
                continue;
            }
            return Err(classify(status.as_u16(), msg, input));
        }
        Err(SealError::KeyUnavailable(format!(
            "{} after {} tries: {last}",
            self.base, self.retry.attempts
        )))
    }

    pub(crate) fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T> {
        serde_json::from_slice::<Envelope<T>>(body)
            .map(|e| e.data)
            .map_err(|e| SealError::Internal(format!("unexpected transit response: {e}")))
    }
}

impl TransitKeyProvider {
    fn check_wrapped<'w>(&self, wrapped: &'w WrappedKey, region: &str) -> Result<(&str, &'w str)> {
        let key = self.key_for(region)?;
        if wrapped.provider != ProviderId::Transit || wrapped.key_name != key {
            return Err(SealError::Tampered);
        }
        let ct = std::str::from_utf8(&wrapped.ciphertext).map_err(|_| SealError::Tampered)?;
        if ciphertext_version(ct) != Some(wrapped.version) {
            return Err(SealError::Tampered);
        }
        Ok((key, ct))
    }

    fn wrapped_from(
        &self,
        key: &str,
        ciphertext: String,
        reported: Option<u32>,
    ) -> Result<WrappedKey> {
        let version = ciphertext_version(&ciphertext).ok_or_else(|| {
            SealError::Internal("transit returned a ciphertext without a version".into())
        })?;
        if reported.is_some_and(|v| v != version) {
            return Err(SealError::Internal(
                "transit key_version disagrees with ciphertext".into(),
            ));
        }
        let w = WrappedKey {
            provider: ProviderId::Transit,
            key_name: key.to_owned(),
            version,
            ciphertext: ciphertext.into_bytes(),
        };
        w.validate()?;
        Ok(w)
    }
}

fn decode_dek(b64: &str, bad: SealError) -> Result<DataKey> {
    let raw = Zeroizing::new(
        B64.decode(b64.as_bytes())
            .map_err(|_| SealError::Tampered)?,
    );
    if raw.len() != 32 {
        return Err(bad);
    }
    let mut dek = Zeroizing::new([0u8; 32]);
    dek.copy_from_slice(&raw);
    Ok(dek)
}

/// `vault:v7:…` → 7.
pub(crate) fn ciphertext_version(ct: &str) -> Option<u32> {
    let rest = ct.strip_prefix("vault:v")?;
    let (v, tail) = rest.split_once(':')?;
    if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) || tail.is_empty() {
        return None;
    }
    if v.starts_with('0') {
        return None;
    }
    v.parse().ok().filter(|v| *v > 0)
}

fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut s = format!("{kind}: {e}");
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(&format!(": {c}"));
        src = c.source();
    }
    s
}

fn classify(status: u16, msg: String, input: Input) -> SealError {
    let lower = msg.to_ascii_lowercase();
    match status {
        401 | 403 => SealError::PermissionDenied(msg),
        404 => SealError::KeyNotFound(msg),
        _ if lower.contains("disallowed by policy") || lower.contains("too old") => {
            SealError::KeyVersionRefused(msg)
        }
        _ if lower.contains("key not found") => SealError::KeyNotFound(msg),
        400 if input == Input::Untrusted => SealError::Tampered,
        _ => SealError::Internal(msg),
    }
}

impl KeyProvider for TransitKeyProvider {
    fn id(&self) -> ProviderId {
        ProviderId::Transit
    }

    fn key_name(&self, region: &str) -> Result<String> {
        self.key_for(region).map(str::to_owned)
    }

    fn generate_data_key(&self, region: &str) -> Result<(DataKey, WrappedKey)> {
        let key = self.key_for(region)?;
        let body = self.call(
            false,
            &format!("datakey/plaintext/{key}"),
            Some(&serde_json::json!({"bits": 256})),
            Input::Trusted,
        )?;
        let r: DataKeyResp = Self::parse(&body)?;
        let dek = decode_dek(
            &r.plaintext,
            SealError::Internal("transit returned a data key that is not 32 bytes".into()),
        )
        .map_err(|e| match e {
            SealError::Tampered => SealError::Internal("transit returned bad base64".into()),
            e => e,
        })?;
        let wrapped = self.wrapped_from(key, r.ciphertext, r.key_version)?;
        Ok((dek, wrapped))
    }

    fn unwrap_data_key(&self, wrapped: &WrappedKey, region: &str) -> Result<DataKey> {
        let (key, ct) = self.check_wrapped(wrapped, region)?;
        let body = self.call(
            false,
            &format!("decrypt/{key}"),
            Some(&serde_json::json!({ "ciphertext": ct })),
            Input::Untrusted,
        )?;
        let r: DecryptResp = Self::parse(&body)?;
        decode_dek(&r.plaintext, SealError::Tampered)
    }

    fn wrap_data_key(&self, dek: &DataKey, region: &str) -> Result<WrappedKey> {
        let key = self.key_for(region)?;
        let plaintext = Zeroizing::new(B64.encode(&dek[..]));
        let body = self.call(
            false,
            &format!("encrypt/{key}"),
            Some(&serde_json::json!({ "plaintext": plaintext.as_str() })),
            Input::Trusted,
        )?;
        let r: EncryptResp = Self::parse(&body)?;
        self.wrapped_from(key, r.ciphertext, r.key_version)
    }

    fn rotate(&self, region: &str) -> Result<u32> {
        let key = self.key_for(region)?;
        self.call(false, &format!("keys/{key}/rotate"), None, Input::Trusted)?;
        Ok(self.key_versions(region)?.latest)
    }

    fn rewrap(&self, wrapped: &WrappedKey, region: &str) -> Result<WrappedKey> {
        let (key, ct) = self.check_wrapped(wrapped, region)?;
        let body = self.call(
            false,
            &format!("rewrap/{key}"),
            Some(&serde_json::json!({ "ciphertext": ct })),
            Input::Untrusted,
        )?;
        let r: RewrapResp = Self::parse(&body)?;
        self.wrapped_from(key, r.ciphertext, None)
    }

    fn key_versions(&self, region: &str) -> Result<KeyVersions> {
        let key = self.key_for(region)?;
        let body = self.call(true, &format!("keys/{key}"), None, Input::Trusted)?;
        let r: KeyResp = Self::parse(&body)?;
        let mut versions: Vec<u32> = r
            .keys
            .keys()
            .filter_map(|k| k.parse().ok())
            .filter(|v| *v >= r.min_available_version)
            .collect();
        versions.sort_unstable();
        Ok(KeyVersions {
            key_name: key.to_owned(),
            latest: r.latest_version,
            min_decryption_version: r.min_decryption_version,
            versions,
        })
    }

    fn set_min_decryption_version(&self, region: &str, version: u32) -> Result<()> {
        let key = self.key_for(region)?;
        self.call(
            false,
            &format!("keys/{key}/config"),
            Some(&serde_json::json!({ "min_decryption_version": version })),
            Input::Trusted,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ciphertext_versions() {
        assert_eq!(ciphertext_version("vault:v1:abc"), Some(1));
        assert_eq!(ciphertext_version("vault:v12:abc"), Some(12));
        assert_eq!(ciphertext_version("vault:v0:abc"), None);
        assert_eq!(ciphertext_version("vault:v01:abc"), None);
        assert_eq!(ciphertext_version("vault:v1:"), None);
        assert_eq!(ciphertext_version("vault:vx:abc"), None);
        assert_eq!(ciphertext_version("vault:v99999999999:abc"), None);
        assert_eq!(ciphertext_version("garbage"), None);
    }

    #[test]
    fn classify_errors() {
        let t = |s, m: &str, i| classify(s, m.into(), i).code();
        assert_eq!(
            t(403, "permission denied", Input::Trusted),
            "permission_denied"
        );
        assert_eq!(
            t(
                400,
                "cipher: message authentication failed",
                Input::Untrusted
            ),
            "tampered"
        );
        assert_eq!(
            t(400, "cipher: message authentication failed", Input::Trusted),
            "internal"
        );
        assert_eq!(
            t(
                400,
                "ciphertext or signature version is disallowed by policy (too old)",
                Input::Untrusted
            ),
            "key_version_refused"
        );
        assert_eq!(
            t(400, "encryption key not found", Input::Trusted),
            "key_not_found"
        );
    }

    #[test]
    fn refuses_bad_config_and_unknown_region() {
        assert!(matches!(
            TransitKeyProvider::new(TransitConfig::new("ftp://x", "t", &["us"])),
            Err(SealError::Config(_))
        ));
        let p = TransitKeyProvider::new(TransitConfig::new("http://127.0.0.1:1", "t", &["us"]))
            .unwrap();
        assert!(matches!(
            p.generate_data_key("eu"),
            Err(SealError::KeyNotFound(_))
        ));
        assert!(
            !format!(
                "{:?}",
                TransitConfig::new("http://x", "secret-token", &["us"])
            )
            .contains("secret-token")
        );
    }

    #[test]
    fn plain_http_only_to_this_machine() {
        for local in [
            "http://127.0.0.1:8200",
            "http://127.8.9.10:8200",
            "http://localhost:8200",
            "http://[::1]:8200",
            "https://bao.internal:8200",
        ] {
            let p = TransitKeyProvider::new(TransitConfig::new(local, "t", &["us"]));
            assert!(p.is_ok(), "{local}: {p:?}");
        }
        for remote in [
            "http://bao.internal:8200",
            "http://10.0.0.5:8200",
            "http://[2001:db8::1]:8200",
            "http://localhost.example.com",
        ] {
            let e = TransitKeyProvider::new(TransitConfig::new(remote, "t", &["us"])).unwrap_err();
            assert!(e.to_string().contains("https://"), "{remote}: {e}");
        }
    }

    #[test]
    fn a_private_ca_must_be_a_certificate() {
        let mut cfg = TransitConfig::new("https://bao.internal:8200", "t", &["us"]);
        cfg.ca_cert_pem =
            Some(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".to_vec());
        let e = TransitKeyProvider::new(cfg.clone()).unwrap_err();
        assert!(e.to_string().contains("transit_ca_cert"), "{e}");
        let ca = rcgen::generate_simple_self_signed(vec!["bao.internal".into()]).unwrap();
        cfg.ca_cert_pem = Some(ca.cert.pem().into_bytes());
        assert!(TransitKeyProvider::new(cfg).is_ok());
    }

    #[test]
    fn unreachable_service_is_key_unavailable_after_bounded_retries() {
        // Port 1 on loopback: connection refused, immediately.
        let mut cfg = TransitConfig::new("http://127.0.0.1:1", "t", &["us"]);
        cfg.retry.initial_backoff = Duration::from_millis(50);
        let p = TransitKeyProvider::new(cfg).unwrap();
        let t0 = std::time::Instant::now();
        let e = p.generate_data_key("us").unwrap_err();
        let took = t0.elapsed();
        assert_eq!(e.code(), "key_unavailable", "{e}");
        assert!(e.to_string().contains("3 tries"), "{e}");
        // Two backoffs (50 + 100 ms, + jitter) were waited, and the whole thing was bounded.
        assert!(took >= Duration::from_millis(150), "{took:?}");
        assert!(took < Duration::from_secs(3), "{took:?}");
    }
}
