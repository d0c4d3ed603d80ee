//! `[server]` settings.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// Public base URL used in `verify_url` (e.g. https://pixseal.example).
    pub public_url: String,
    /// Database URL: `sqlite://…` or `postgres://…`; empty = SQLite file `<data_dir>/pixseal.db`.
    pub database_url: String,
    /// Largest request body (the file limit plus room for multipart framing).
    pub max_body_bytes: u64,
    /// Requests taking longer are answered 408.
    pub request_timeout_secs: u64,
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
    /// Rate limits (GCRA): `memory` (per instance) or `redis` (shared by every instance).
    pub rate_limit_backend: String,
    pub rate_limit_redis_url: String,
    /// Key prefix in Redis (several installations may share one Redis).
    pub rate_limit_prefix: String,
    /// Requests per period per API key (authenticated) and per client IP (anonymous); each
    /// is also the burst. 0 disables that limit.
    pub rate_limit_per_key: u32,
    pub rate_limit_per_ip: u32,
    /// Requests per period per client IP to the public code verification routes (a stricter
    /// class: whatever Authorization header they carry, they are counted by IP).
    pub rate_limit_verify_per_ip: u32,
    pub rate_limit_period_secs: u64,
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
            database_url: String::new(),
            max_body_bytes: 51 * 1024 * 1024,
            request_timeout_secs: 30,
            decode_concurrency: 0,
            retention_days_allowed: vec![7, 15, 30, 60, 90],
            default_retention_days: 30,
            repair_grace_secs: 120,
            tls_cert: String::new(),
            tls_key: String::new(),
            purge_interval_secs: 60,
            rate_limit_backend: "memory".into(),
            rate_limit_redis_url: "redis://127.0.0.1:6379".into(),
            rate_limit_prefix: "pixseal:rl:".into(),
            rate_limit_per_key: 600,
            rate_limit_per_ip: 120,
            rate_limit_verify_per_ip: 30,
            rate_limit_period_secs: 60,
        }
    }
}
