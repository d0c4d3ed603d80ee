//! The one typed configuration: defaults, then `pixseal.toml` (or `--config`), then `PIXSEAL_*`
//! environment variables (`PIXSEAL_<SECTION>_<KEY>`, e.g. `PIXSEAL_LIMITS_MAX_PIXELS`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pixseal_codes::CodesConfig;
use pixseal_media::{Limits, VideoLimits};
use pixseal_provenance::{
    HeldKey, Identity, ProvenanceConfig, ProvenanceError, SignerKind, TimeStamped,
};
use pixseal_seal::{KeysConfig, Pkcs11ClaimKey, Pkcs11Config, Pkcs11Token, SealError, Secret};
use pixseal_store::StorageConfig;

use crate::licenses::LicenseConfig;
use crate::stamp::StampConfig;
use serde::{Deserialize, Serialize};

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing config {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Every setting pixseal reads. `pixseal.example.toml` documents each key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the embedded defaults keep their files.
    pub data_dir: PathBuf,
    /// Regions this installation serves; each has its own master key and blob store.
    pub regions: Vec<String>,
    /// SPEC §4 limits.
    pub limits: Limits,
    /// Limits of MP4/MOV videos, read from their boxes.
    pub video: VideoLimits,
    pub keys: KeysConfig,
    pub storage: StorageConfig,
    pub server: ServerConfig,
    pub codes: CodesConfig,
    pub provenance: ProvenanceConfig,
    /// The PKCS#11 token holding the claim-signing and/or receipt-signing key.
    pub pkcs11: Pkcs11Config,
    pub stamp: StampConfig,
    pub license: LicenseConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("pixseal-data"),
            regions: vec!["us".into(), "eu".into(), "ca".into()],
            limits: Limits::default(),
            video: VideoLimits::default(),
            keys: KeysConfig::default(),
            storage: StorageConfig::default(),
            server: ServerConfig::default(),
            codes: CodesConfig::default(),
            provenance: ProvenanceConfig::default(),
            pkcs11: Pkcs11Config::default(),
            stamp: StampConfig::default(),
            license: LicenseConfig::default(),
        }
    }
}

/// Where rate-limit state lives (`[server].rate_limit_backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitBackend {
    /// Per instance, in process.
    #[default]
    Memory,
    /// Shared by every instance through Redis.
    Redis,
}

/// `[server]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// Public base URL used in `verify_url` (e.g. https://pixseal.example).
    pub public_url: String,
    /// Database URL: `sqlite://…` or `postgres://…`; empty = SQLite file `<data_dir>/pixseal.db`.
    /// A secret (it may carry a password).
    pub database_url: Secret,
    /// A file holding the database URL instead.
    pub database_url_file: String,
    /// Largest request body (the file limit plus room for multipart framing).
    pub max_body_bytes: u64,
    /// Picture bytes held by all requests at once (bodies being read or worked on); beyond
    /// it a new upload or verification is answered 503 `busy` with Retry-After before its
    /// body is read. At least `max_body_bytes`.
    pub max_inflight_bytes: u64,
    /// Requests taking longer are answered 408.
    pub request_timeout_secs: u64,
    /// A request head (and a TLS handshake) must arrive within this; an HTTP/1.1 connection
    /// waits no longer than this for its next request either.
    pub header_read_timeout_secs: u64,
    /// A connection with no request running that moves no byte for this long is closed.
    pub idle_timeout_secs: u64,
    /// Connections open at once (TLS included); more wait in the listen backlog.
    pub max_connections: usize,
    /// Decodes running at once (each on the blocking pool); 0 = number of cores.
    pub decode_concurrency: usize,
    /// Retention choices (days) an upload may ask for.
    pub retention_days_allowed: Vec<i64>,
    /// Retention of a new tenant when none is given.
    pub default_retention_days: i64,
    /// At start-up, `pending` uploads older than this are taken as dead and removed (uploads
    /// still running on another instance are younger).
    pub repair_grace_secs: u64,
    /// PEM certificate chain and private key: when both are set the service speaks TLS
    /// (rustls) and sends HSTS. Empty = plain HTTP (behind a TLS proxy, or on loopback).
    pub tls_cert: String,
    pub tls_key: String,
    /// Seconds between purge passes in `pixseal serve` (0 = no purge worker).
    pub purge_interval_secs: u64,
    /// Artifacts a purge pass claims at a time.
    pub purge_batch: u32,
    /// Seconds between signed audit checkpoints written to the log by `pixseal serve` (0 =
    /// none; `pixseal audit checkpoint` prints one on demand).
    pub audit_checkpoint_secs: u64,
    /// A purge claim older than this belongs to a worker that died and is taken over.
    pub purge_stale_claim_secs: u64,
    /// `/readyz` probes the key service and the held signing keys at most once per this many
    /// milliseconds (callers in between get the last result): it is public and unlimited, so
    /// it must not make Transit or an HSM sign on every call. 0 = probe on every call.
    pub readiness_interval_ms: u64,
    /// Rate limits (GCRA): per instance, or shared by every instance through Redis.
    pub rate_limit_backend: RateLimitBackend,
    /// A secret (it may carry a password).
    pub rate_limit_redis_url: Secret,
    /// A file holding the Redis URL instead.
    pub rate_limit_redis_url_file: String,
    /// Key prefix in Redis (several installations may share one Redis).
    pub rate_limit_prefix: String,
    /// Requests per period per API key (authenticated) and per client IP (anonymous); each
    /// is also the burst. 0 disables that limit.
    pub rate_limit_per_key: u32,
    pub rate_limit_per_ip: u32,
    /// Requests per period per client IP to the public code verification routes (a stricter
    /// class: whatever Authorization header they carry, they are counted by IP).
    pub rate_limit_verify_per_ip: u32,
    /// Failed authentications per period per client IP; beyond it, requests carrying a bearer
    /// token from that address are refused (429) without a database lookup.
    pub rate_limit_auth_failures_per_ip: u32,
    pub rate_limit_period_secs: u64,
    /// Proxies (CIDR blocks) whose `Forwarded` / `X-Forwarded-For` headers name the client;
    /// from any other peer those headers are ignored and the socket address is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How long a dashboard session lasts (minutes, at most 30 days); revoking the key it was
    /// opened with ends it at once.
    pub session_minutes: u64,
}

impl ServerConfig {
    pub fn tls(&self) -> bool {
        !self.tls_cert.is_empty() && !self.tls_key.is_empty()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            database_url: Secret::default(),
            database_url_file: String::new(),
            max_body_bytes: 51 * 1024 * 1024,
            max_inflight_bytes: 256 * 1024 * 1024,
            request_timeout_secs: 30,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            max_connections: 1024,
            decode_concurrency: 0,
            retention_days_allowed: vec![7, 15, 30, 60, 90],
            default_retention_days: 30,
            repair_grace_secs: 120,
            tls_cert: String::new(),
            tls_key: String::new(),
            purge_interval_secs: 60,
            purge_batch: 500,
            audit_checkpoint_secs: 3600,
            purge_stale_claim_secs: 600,
            readiness_interval_ms: 5000,
            rate_limit_backend: RateLimitBackend::Memory,
            rate_limit_redis_url: "redis://127.0.0.1:6379".into(),
            rate_limit_redis_url_file: String::new(),
            rate_limit_prefix: "pixseal:rl:".into(),
            rate_limit_per_key: 600,
            rate_limit_per_ip: 120,
            rate_limit_verify_per_ip: 30,
            rate_limit_auth_failures_per_ip: 10,
            rate_limit_period_secs: 60,
            trusted_proxies: Vec::new(),
            session_minutes: 480,
        }
    }
}

impl Config {
    /// Load from an optional file and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// Load from an optional file and the given environment (testable without touching the
    /// process environment).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let path = file.map(Path::to_path_buf).or_else(|| {
            let p = PathBuf::from("pixseal.toml");
            p.exists().then_some(p)
        });
        let mut env = env
            .into_iter()
            .filter(|(name, _)| name.starts_with("PIXSEAL_"))
            .peekable();
        // Nothing to merge: the defaults as they are, without a round trip through TOML.
        let mut cfg = if path.is_none() && env.peek().is_none() {
            Config::default()
        } else {
            Self::merged(path, env)?
        };
        cfg.read_secret_files()?;
        cfg.codes.validate().map_err(ConfigError::Invalid)?;
        if cfg.regions.is_empty() {
            return Err(ConfigError::Invalid(
                "regions must name at least one region".into(),
            ));
        }
        for r in &cfg.regions {
            pixseal_seal::provider::validate_region(r)
                .map_err(|e| ConfigError::Invalid(format!("region {r:?}: {e}")))?;
        }
        if cfg.server.max_inflight_bytes < cfg.server.max_body_bytes {
            return Err(ConfigError::Invalid(
                "server.max_inflight_bytes must be at least server.max_body_bytes".into(),
            ));
        }
        cfg.stamp.validate().map_err(ConfigError::Invalid)?;
        cfg.video.validate().map_err(ConfigError::Invalid)?;
        cfg.license.validate().map_err(ConfigError::Invalid)?;
        if cfg.server.purge_batch == 0 {
            return Err(ConfigError::Invalid(
                "server.purge_batch must be at least 1".into(),
            ));
        }
        let tsa = &cfg.provenance.tsa_url;
        if !tsa.is_empty() {
            crate::tsa::check_url(tsa).map_err(ConfigError::Invalid)?;
        }
        if !(1..=120).contains(&cfg.provenance.tsa_timeout_secs) {
            return Err(ConfigError::Invalid(
                "provenance.tsa_timeout_secs must be between 1 and 120".into(),
            ));
        }
        Ok(cfg)
    }

    /// The defaults, with the file's settings over them, then the `PIXSEAL_*` variables'.
    fn merged(
        path: Option<PathBuf>,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = toml::Table::try_from(Config::default())
            .map_err(|e| ConfigError::Invalid(format!("serialising defaults: {e}")))?;
        if let Some(path) = path {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            let file: toml::Table =
                toml::from_str(&text).map_err(|source| ConfigError::Parse { path, source })?;
            merge(&mut table, file);
        }
        let sections: Vec<String> = table
            .iter()
            .filter(|(_, v)| v.is_table())
            .map(|(k, _)| k.clone())
            .collect();
        for (name, raw) in env {
            let Some(key) = name.strip_prefix("PIXSEAL_") else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            let value = parse_env_value(&raw);
            if let Some(section) = sections.iter().find(|s| key.starts_with(&format!("{s}_"))) {
                let field = &key[section.len() + 1..];
                if let Some(toml::Value::Table(t)) = table.get_mut(section.as_str())
                    && t.contains_key(field)
                {
                    t.insert(field.to_string(), coerce(t.get(field), value));
                }
            } else if table.get(&key).is_some_and(|v| !v.is_table()) {
                let old = table.get(&key).cloned();
                table.insert(key, coerce(old.as_ref(), value));
            }
            // Other PIXSEAL_* variables (e.g. PIXSEAL_BIN used by scripts) are not settings.
        }
        typed(table)
    }

    /// The database URL: `[server].database_url`, or the SQLite file under data_dir.
    pub fn database_url(&self) -> Secret {
        if self.server.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("pixseal.db").display()).into()
        } else {
            self.server.database_url.clone()
        }
    }

    /// Fill each secret from its `*_file` setting, when one is given. Setting both is an
    /// error (which one wins would be a guess); an error names the setting and the file,
    /// never what it holds.
    fn read_secret_files(&mut self) -> Result<(), ConfigError> {
        let slots: [(&str, &mut Secret, &str); 5] = [
            (
                "keys.transit_token",
                &mut self.keys.transit_token,
                &self.keys.transit_token_file,
            ),
            (
                "storage.secret_access_key",
                &mut self.storage.secret_access_key,
                &self.storage.secret_access_key_file,
            ),
            (
                "server.database_url",
                &mut self.server.database_url,
                &self.server.database_url_file,
            ),
            (
                "server.rate_limit_redis_url",
                &mut self.server.rate_limit_redis_url,
                &self.server.rate_limit_redis_url_file,
            ),
            ("pkcs11.pin", &mut self.pkcs11.pin, &self.pkcs11.pin_file),
        ];
        for (key, secret, file) in slots {
            if file.is_empty() {
                continue;
            }
            // The Redis URL has a default: a file replaces it without contradicting anyone.
            let default_redis = key == "server.rate_limit_redis_url"
                && *secret == ServerConfig::default().rate_limit_redis_url;
            if !secret.is_empty() && !default_redis {
                return Err(ConfigError::Invalid(format!(
                    "{key} and {key}_file are both set; keep one"
                )));
            }
            let text = std::fs::read_to_string(file).map_err(|e| {
                ConfigError::Invalid(format!(
                    "{key}_file {file:?}: cannot read it ({})",
                    e.kind()
                ))
            })?;
            let text = zeroize::Zeroizing::new(text);
            let value = text.trim_end();
            if value.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "{key}_file {file:?} is empty"
                )));
            }
            *secret = Secret::new(value);
        }
        Ok(())
    }

    /// The C2PA signing identity, and whether the development chain was made just now (on
    /// first use). A development identity is trusted by nobody else: callers say so.
    /// With `[provenance].tsa_url` set, every signature is countersigned by that authority.
    /// With `signer = "transit"` or `"pkcs11"` this talks to the key service or token
    /// (blocking: from async code, call it on the blocking pool).
    pub fn signing_identity(&self) -> Result<(Identity, bool), ProvenanceError> {
        let p = &self.provenance;
        let held = |e: SealError| {
            ProvenanceError::Identity(format!("{} claim-signing key: {e}", p.signer.as_str()))
        };
        let (mut identity, created) = match p.signer {
            SignerKind::File => {
                let created = p.ensure_dev_chain(&self.data_dir)?;
                (p.identity(&self.data_dir)?, created)
            }
            SignerKind::Transit => {
                let chain = p.held_chain(&self.data_dir)?;
                let certified = match &chain {
                    Some(c) => Some(pixseal_provenance::held::certified_key(&c[0])?),
                    None => None,
                };
                let key = self
                    .keys
                    .open_claim_key(&self.region_names(), certified.as_deref())
                    .map_err(held)?;
                p.held_identity(&self.data_dir, Arc::new(key) as Arc<dyn HeldKey>, chain)?
            }
            SignerKind::Pkcs11 => {
                let chain = p.held_chain(&self.data_dir)?;
                let token = Pkcs11Token::open(&self.pkcs11).map_err(held)?;
                let key = Pkcs11ClaimKey::open(token, &self.pkcs11).map_err(held)?;
                p.held_identity(&self.data_dir, Arc::new(key) as Arc<dyn HeldKey>, chain)?
            }
        };
        if !p.tsa_url.is_empty() {
            let tsa = crate::tsa::HttpTimeStamper::new(
                &p.tsa_url,
                std::time::Duration::from_secs(p.tsa_timeout_secs),
            )?;
            identity.signer = Arc::new(TimeStamped::new(identity.signer, Arc::new(tsa)));
        }
        Ok((identity, created))
    }

    /// Trusted roots for verification: the configured anchors plus any `extra` PEM files.
    pub fn trust_anchors(&self, extra: &[PathBuf]) -> Result<String, ProvenanceError> {
        let mut pem = self.provenance.anchors_pem(&self.data_dir)?;
        for p in extra {
            let text = std::fs::read_to_string(p).map_err(|e| {
                ProvenanceError::Identity(format!("reading trust anchors {}: {e}", p.display()))
            })?;
            if !text.contains("-----BEGIN CERTIFICATE-----") {
                return Err(ProvenanceError::Identity(format!(
                    "{} holds no PEM certificate",
                    p.display()
                )));
            }
            pem.push('\n');
            pem.push_str(&text);
        }
        Ok(pem)
    }

    pub fn region_names(&self) -> Vec<&str> {
        self.regions.iter().map(String::as_str).collect()
    }

    /// The configured receipt signer (local key file under data_dir, or Transit; blocking).
    pub fn receipt_signer(&self) -> Result<Arc<dyn pixseal_proof::ReceiptSigner>, SealError> {
        self.keys
            .open_receipt_signer(&self.data_dir, &self.region_names(), &self.pkcs11)
    }

    /// The configured key provider (local key file under data_dir, or Transit).
    pub fn key_provider(&self) -> Result<Box<dyn pixseal_seal::KeyProvider>, SealError> {
        self.keys
            .open_provider(&self.data_dir, &self.region_names())
    }
}

/// The merged table as the typed struct. serde names the bad value and the allowed ones; the
/// key it belongs to is found by deserialising each section on its own.
fn typed(table: toml::Table) -> Result<Config, ConfigError> {
    table.clone().try_into().map_err(|e: toml::de::Error| {
        let key = table.iter().find_map(|(section, v)| match v {
            toml::Value::Table(t) => t.iter().find_map(|(field, value)| {
                let mut one = toml::Table::new();
                let mut inner = toml::Table::new();
                inner.insert(field.clone(), value.clone());
                one.insert(section.clone(), toml::Value::Table(inner));
                one.try_into::<Config>()
                    .is_err()
                    .then(|| format!("{section}.{field}"))
            }),
            _ => None,
        });
        match key {
            Some(k) => ConfigError::Invalid(format!("{k}: {}", e.message())),
            None => ConfigError::Invalid(e.message().to_string()),
        }
    })
}

fn merge(into: &mut toml::Table, from: toml::Table) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

fn parse_env_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

/// Keep strings strings when the default is a string (so PIXSEAL_DATA_DIR=123 stays a path).
fn coerce(default: Option<&toml::Value>, v: toml::Value) -> toml::Value {
    match (default, &v) {
        (Some(toml::Value::String(_)), toml::Value::String(_)) => v,
        (Some(toml::Value::String(_)), other) => toml::Value::String(other.to_string()),
        _ => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn env_overrides_file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.toml");
        std::fs::write(&f, "[limits]\nmax_pixels = 1000\nmax_side = 50\n").unwrap();
        let c = Config::load_from(
            Some(&f),
            env(&[("PIXSEAL_LIMITS_MAX_SIDE", "64"), ("PIXSEAL_BIN", "/x")]),
        )
        .unwrap();
        assert_eq!(c.limits.max_pixels, 1000);
        assert_eq!(c.limits.max_side, 64);
        assert_eq!(c.limits.max_file_bytes, Limits::default().max_file_bytes);
        let c = Config::load_from(None, env(&[("PIXSEAL_DATA_DIR", "123")])).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("123"));
    }

    #[test]
    fn nothing_to_merge_gives_the_defaults_the_merge_would() {
        // `load_from` skips the TOML round trip when there is no file and no variable.
        let merged = Config::merged(None, std::iter::empty()).unwrap();
        assert_eq!(merged, Config::default());
        let unrelated = env(&[("HOME", "/root")]);
        assert_eq!(Config::load_from(None, unrelated).unwrap(), merged);
    }

    #[test]
    fn example_file_is_exactly_the_defaults() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pixseal.example.toml");
        assert_eq!(
            Config::load_from(Some(&p), env(&[])).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn secrets_come_from_files_and_debug_never_shows_them() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "hvs.PXCANARY-token\n").unwrap();
        let db = dir.path().join("db");
        std::fs::write(&db, "postgres://app:PXCANARY-pw@127.0.0.1/app").unwrap();
        let pin = dir.path().join("pin");
        std::fs::write(&pin, "PXCANARY-pin\n").unwrap();
        let (t, d) = (token.to_str().unwrap(), db.to_str().unwrap());
        let c = Config::load_from(
            None,
            env(&[
                ("PIXSEAL_KEYS_TRANSIT_TOKEN_FILE", t),
                ("PIXSEAL_SERVER_DATABASE_URL_FILE", d),
                ("PIXSEAL_STORAGE_SECRET_ACCESS_KEY", "PXCANARY-s3"),
                ("PIXSEAL_PKCS11_PIN_FILE", pin.to_str().unwrap()),
            ]),
        )
        .unwrap();
        assert_eq!(c.keys.transit_token.expose(), "hvs.PXCANARY-token");
        assert_eq!(c.pkcs11.pin.expose(), "PXCANARY-pin");
        assert_eq!(
            c.database_url().expose(),
            "postgres://app:PXCANARY-pw@127.0.0.1/app"
        );
        assert!(!format!("{c:?}").contains("PXCANARY"), "{c:?}");
        // Both a value and a file: refused, naming the key and not the value.
        let e = Config::load_from(
            None,
            env(&[
                ("PIXSEAL_KEYS_TRANSIT_TOKEN", "hvs.PXCANARY-other"),
                ("PIXSEAL_KEYS_TRANSIT_TOKEN_FILE", t),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("keys.transit_token") && !e.contains("PXCANARY"),
            "{e}"
        );
        // A file that is not there, or empty: refused, naming the file.
        let missing = dir.path().join("nope");
        let e = Config::load_from(
            None,
            env(&[(
                "PIXSEAL_SERVER_DATABASE_URL_FILE",
                missing.to_str().unwrap(),
            )]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("server.database_url_file") && e.contains("nope"),
            "{e}"
        );
        std::fs::write(&db, "\n").unwrap();
        assert!(Config::load_from(None, env(&[("PIXSEAL_SERVER_DATABASE_URL_FILE", d)])).is_err());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.toml");
        std::fs::write(&f, "[limits]\nmax_pixel = 1000\n").unwrap();
        assert!(Config::load_from(Some(&f), env(&[])).is_err());
        assert!(Config::load_from(None, env(&[("PIXSEAL_LIMITS_ANIMATED", "sometimes")])).is_err());
        assert!(Config::load_from(None, env(&[("PIXSEAL_LIMITS_MAX_SIDE", "-3")])).is_err());
        // Message codes are never valid longer than 30 days, whatever the configuration says.
        assert!(Config::load_from(None, env(&[("PIXSEAL_CODES_MESSAGE_TTL_DAYS", "31")])).is_err());
        let c = Config::load_from(None, env(&[("PIXSEAL_CODES_MESSAGE_TTL_DAYS", "7")])).unwrap();
        assert_eq!(c.codes.message_ttl_days, 7);
        assert!(Config::load_from(None, env(&[("PIXSEAL_SERVER_PURGE_BATCH", "0")])).is_err());
        assert!(
            Config::load_from(None, env(&[("PIXSEAL_PROVENANCE_TSA_URL", "ftp://tsa")])).is_err()
        );
        assert!(
            Config::load_from(
                None,
                env(&[("PIXSEAL_PROVENANCE_TSA_URL", "https://u:p@tsa.example/")])
            )
            .is_err()
        );
        assert!(
            Config::load_from(None, env(&[("PIXSEAL_PROVENANCE_TSA_TIMEOUT_SECS", "0")])).is_err()
        );
        let c = Config::load_from(
            None,
            env(&[("PIXSEAL_PROVENANCE_TSA_URL", "http://127.0.0.1:3161/tsa")]),
        )
        .unwrap();
        assert_eq!(c.provenance.tsa_url, "http://127.0.0.1:3161/tsa");
        assert!(
            Config::load_from(None, env(&[("PIXSEAL_SERVER_MAX_INFLIGHT_BYTES", "1000")])).is_err()
        );
    }

    #[test]
    fn an_unknown_choice_names_its_key_and_the_allowed_values() {
        for (var, key, allowed) in [
            (
                "PIXSEAL_SERVER_RATE_LIMIT_BACKEND",
                "server.rate_limit_backend",
                ["memory", "redis"],
            ),
            (
                "PIXSEAL_LIMITS_ANIMATED",
                "limits.animated",
                ["first_frame", "reject"],
            ),
        ] {
            let e = Config::load_from(None, env(&[(var, "Redis")]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{e}");
            for a in allowed {
                assert!(e.contains(a), "{e}");
            }
        }
        let c = Config::load_from(None, env(&[("PIXSEAL_SERVER_RATE_LIMIT_BACKEND", "redis")]))
            .unwrap();
        assert_eq!(c.server.rate_limit_backend, RateLimitBackend::Redis);
    }

    #[test]
    fn trusted_proxies_are_cidr_blocks() {
        let c = Config::load_from(
            None,
            env(&[(
                "PIXSEAL_SERVER_TRUSTED_PROXIES",
                r#"["127.0.0.1/32", "fd00::/8"]"#,
            )]),
        )
        .unwrap();
        assert_eq!(c.server.trusted_proxies.len(), 2);
        assert!(
            c.server.trusted_proxies[1].contains(&"fd00::1".parse::<std::net::IpAddr>().unwrap())
        );
        for bad in [r#"["10.0.0.0/33"]"#, r#"["proxy.example"]"#] {
            let e = Config::load_from(None, env(&[("PIXSEAL_SERVER_TRUSTED_PROXIES", bad)]))
                .unwrap_err()
                .to_string();
            assert!(e.contains("server.trusted_proxies"), "{e}");
        }
    }
}
