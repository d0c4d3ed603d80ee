//! The one typed configuration: defaults, then `pixseal.toml` (or `--config`), then `PIXSEAL_*`
//! environment variables (`PIXSEAL_<SECTION>_<KEY>`, e.g. `PIXSEAL_LIMITS_MAX_PIXELS`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use pixseal_codes::CodesConfig;
use pixseal_media::{AnimatedPolicy, Limits};
use pixseal_provenance::ProvenanceConfig;
use pixseal_seal::KeysConfig;
use pixseal_server::ServerConfig;
use pixseal_store::StorageConfig;
use serde::{Deserialize, Serialize};

/// Every setting pixseal reads. `pixseal.example.toml` documents each key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the embedded defaults keep their files.
    pub data_dir: PathBuf,
    /// Regions this installation serves; each has its own master key and blob store.
    pub regions: Vec<String>,
    pub limits: LimitsConfig,
    pub keys: KeysConfig,
    pub storage: StorageConfig,
    pub server: ServerConfig,
    pub codes: CodesConfig,
    pub provenance: ProvenanceConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("pixseal-data"),
            regions: vec!["us".into(), "eu".into(), "ca".into()],
            limits: LimitsConfig::default(),
            keys: KeysConfig::default(),
            storage: StorageConfig::default(),
            server: ServerConfig::default(),
            codes: CodesConfig::default(),
            provenance: ProvenanceConfig::default(),
        }
    }
}

/// SPEC §4 limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_file_bytes: u64,
    pub max_pixels: u64,
    pub max_side: u32,
    pub max_jpeg_scans: u32,
    pub max_frames: u32,
    /// `first_frame` or `reject`.
    pub animated: String,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let l = Limits::default();
        LimitsConfig {
            max_file_bytes: l.max_file_bytes,
            max_pixels: l.max_pixels,
            max_side: l.max_side,
            max_jpeg_scans: l.max_jpeg_scans,
            max_frames: l.max_frames,
            animated: "first_frame".into(),
        }
    }
}

impl LimitsConfig {
    pub fn to_limits(&self) -> Result<Limits> {
        let animated = match self.animated.as_str() {
            "first_frame" => AnimatedPolicy::FirstFrame,
            "reject" => AnimatedPolicy::Reject,
            other => bail!("limits.animated must be \"first_frame\" or \"reject\", not {other:?}"),
        };
        Ok(Limits {
            max_file_bytes: self.max_file_bytes,
            max_pixels: self.max_pixels,
            max_side: self.max_side,
            max_jpeg_scans: self.max_jpeg_scans,
            max_frames: self.max_frames,
            animated,
        })
    }
}

impl Config {
    /// Load from an optional file and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Config> {
        Self::load_from(file, std::env::vars())
    }

    /// Load from an optional file and the given environment (testable without touching the
    /// process environment).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config> {
        let mut table = toml::Table::try_from(Config::default()).context("serialising defaults")?;
        let path = file.map(Path::to_path_buf).or_else(|| {
            let p = PathBuf::from("pixseal.toml");
            p.exists().then_some(p)
        });
        if let Some(path) = path {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading config {}", path.display()))?;
            let file: toml::Table = toml::from_str(&text)
                .with_context(|| format!("parsing config {}", path.display()))?;
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
        let cfg: Config = table.try_into().context("invalid configuration")?;
        cfg.limits.to_limits()?;
        cfg.codes.validate().map_err(anyhow::Error::msg)?;
        if cfg.regions.is_empty() {
            bail!("regions must name at least one region");
        }
        for r in &cfg.regions {
            pixseal_seal::provider::validate_region(r).with_context(|| format!("region {r:?}"))?;
        }
        Ok(cfg)
    }

    /// The database URL: `[server].database_url`, or the SQLite file under data_dir.
    pub fn database_url(&self) -> String {
        if self.server.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("pixseal.db").display())
        } else {
            self.server.database_url.clone()
        }
    }

    /// The C2PA signing identity; the development chain is made on first use (with a warning
    /// on stderr: nobody else trusts it).
    pub fn signing_identity(&self) -> Result<pixseal_provenance::Identity> {
        if self.provenance.ensure_dev_chain(&self.data_dir)? {
            eprintln!(
                "note: created a development C2PA signing certificate under {}",
                ProvenanceConfig::dev_dir(&self.data_dir).display()
            );
        }
        let id = self.provenance.identity(&self.data_dir)?;
        if id.development {
            eprintln!(
                "warning: manifests are signed with the development certificate, which no one else trusts; \
                 verifiers must be given its root (`pixseal keys trust-anchor`), or configure [provenance].cert_chain"
            );
        }
        Ok(id)
    }

    /// Trusted roots for verification: the configured anchors plus any `extra` PEM files.
    pub fn trust_anchors(&self, extra: &[PathBuf]) -> Result<String> {
        let mut pem = self.provenance.anchors_pem(&self.data_dir)?;
        for p in extra {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading trust anchors {}", p.display()))?;
            if !text.contains("-----BEGIN CERTIFICATE-----") {
                bail!("{} holds no PEM certificate", p.display());
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
    pub fn receipt_signer(&self) -> Result<std::sync::Arc<dyn pixseal_proof::ReceiptSigner>> {
        Ok(self
            .keys
            .open_receipt_signer(&self.data_dir, &self.region_names())?)
    }

    /// The configured key provider (local key file under data_dir, or Transit).
    pub fn key_provider(&self) -> Result<Box<dyn pixseal_seal::KeyProvider>> {
        Ok(self
            .keys
            .open_provider(&self.data_dir, &self.region_names())?)
    }
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
    fn example_file_is_exactly_the_defaults() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pixseal.example.toml");
        assert_eq!(
            Config::load_from(Some(&p), env(&[])).unwrap(),
            Config::default()
        );
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
    }
}
