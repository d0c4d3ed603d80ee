//! This device's licence: the state kept under `<data_dir>/license/`, the offline check made
//! before a batch, and the only network calls the offline tool makes on its own (activation,
//! check-in, usage counts after a batch), each appended to the local transmission log before
//! it is sent (docs/licenses.md).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hmac::{Hmac, Mac};
use pixseal_proof::{License, ReceiptPublicKey, SignedDeviceToken};
use pixseal_service::licenses::{ActivateRequest, CheckRequest, DeviceGrant, UsageReport};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::Config;

/// The version a device reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How long one call to the licence server may take.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Why this device may not process now, or a licence call failed: a stable code and a
/// message saying what to do.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct LicenseError {
    pub code: &'static str,
    pub message: String,
}

fn error(code: &'static str, message: impl Into<String>) -> LicenseError {
    LicenseError {
        code,
        message: message.into(),
    }
}

/// A refusal the server gave at a check-in; the device stays refused until it activates anew.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Refusal {
    pub code: String,
    pub message: String,
    pub at: String,
}

/// Counts of batches whose report did not reach the server yet (sent with the next one).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counts {
    pub images: u64,
    pub bytes: u64,
}

/// What `<data_dir>/license/license.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Held {
    /// The licence server, as given to `activate`.
    pub server: String,
    pub license: String,
    pub license_key: String,
    pub license_expires_at: String,
    /// The server's public key (PEM), pinned at activation.
    pub public_key: String,
    pub device: String,
    pub token: SignedDeviceToken,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refusal>,
    #[serde(default)]
    pub pending: Counts,
}

/// Where this device's licence state and transmission log live.
pub struct Device {
    dir: PathBuf,
    machine_id_file: PathBuf,
}

fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

fn now_text() -> String {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| OffsetDateTime::now_utc())
        .format(&Rfc3339)
        .unwrap_or_default()
}

impl Device {
    pub fn new(config: &Config) -> Device {
        Device {
            dir: config.data_dir.join("license"),
            machine_id_file: config.license.machine_id_file.clone(),
        }
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("license.json")
    }

    /// The transmission log: one JSON object per line, appended before each call is made.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("usage.jsonl")
    }

    /// This machine under licence `license`: HMAC-SHA-256 keyed by the machine id over the
    /// licence id, so the id never leaves the machine and two licences (or installations)
    /// see unrelated values for one machine.
    pub fn device_hash(&self, license: &str) -> Result<String, LicenseError> {
        let raw = fs::read(&self.machine_id_file).map_err(|e| {
            error(
                "license_device",
                format!(
                    "cannot read the machine id from {} ({e}); set [license].machine_id_file",
                    self.machine_id_file.display()
                ),
            )
        })?;
        let id = raw.trim_ascii();
        if id.len() < 16 {
            return Err(error(
                "license_device",
                format!(
                    "{} holds no machine id (fewer than 16 characters)",
                    self.machine_id_file.display()
                ),
            ));
        }
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(id)
            .map_err(|_| error("license_device", "machine id unusable as a key"))?;
        mac.update(b"pixseal device v1\n");
        mac.update(license.as_bytes());
        Ok(hex::encode(mac.finalize().into_bytes()))
    }

    /// The held licence, if this device activated one.
    pub fn held(&self) -> Result<Option<Held>, LicenseError> {
        match fs::read(self.state_path()) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
                error(
                    "license_state",
                    format!("{} is unreadable ({e})", self.state_path().display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(error(
                "license_state",
                format!("cannot read {}: {e}", self.state_path().display()),
            )),
        }
    }

    fn save(&self, held: &Held) -> Result<(), LicenseError> {
        let io = |e: std::io::Error| {
            error(
                "license_state",
                format!("cannot write {}: {e}", self.state_path().display()),
            )
        };
        create_private_dir(&self.dir).map_err(io)?;
        let body = serde_json::to_vec_pretty(held).expect("the state serialises");
        crate::cmd::batch::write_atomic(&self.state_path(), &body).map_err(io)?;
        set_private(&self.state_path()).map_err(io)
    }

    /// What the held licence allows now, checked offline: the token's signature under the
    /// pinned key, that it is this machine's, not past its end, and not refused at the last
    /// check-in. `Ok(None)` when no licence is held and none is required.
    pub fn gate(&self, required: bool) -> Result<Option<Held>, LicenseError> {
        let Some(held) = self.held()? else {
            return if required {
                Err(error(
                    "license_required",
                    "this installation requires a licence: run `pixseal license activate KEY --server URL`",
                ))
            } else {
                Ok(None)
            };
        };
        self.valid(&held)?;
        Ok(Some(held))
    }

    /// Whether `held` lets this device work now (see [`Device::gate`]).
    pub fn valid(&self, held: &Held) -> Result<(), LicenseError> {
        if let Some(r) = &held.refused {
            return Err(error(
                "license_refused",
                format!(
                    "the licence server refused this device at {} ({}: {})",
                    r.at, r.code, r.message
                ),
            ));
        }
        let key = ReceiptPublicKey::from_pem(&held.public_key)
            .map_err(|e| error("license_state", format!("pinned public key: {e}")))?;
        held.token.verify(&key).map_err(|e| {
            error(
                "license_state",
                format!("the device token does not verify ({e}); activate again"),
            )
        })?;
        if held.token.token.device != self.device_hash(&held.license)?
            || held.token.token.license != held.license
        {
            return Err(error(
                "license_state",
                "the device token was issued to another machine; activate this one",
            ));
        }
        let until = parse_time(&held.token.token.valid_until)
            .ok_or_else(|| error("license_state", "the device token's end is not a time"))?;
        if OffsetDateTime::now_utc() >= until {
            return Err(error(
                "license_token_expired",
                format!(
                    "the device token ran out at {}: connect and run `pixseal license check`",
                    held.token.token.valid_until
                ),
            ));
        }
        Ok(())
    }

    /// Append one line to the transmission log (created private). A call is never made
    /// unless its line was written.
    fn log(&self, entry: Value) -> Result<(), LicenseError> {
        let io = |e: std::io::Error| {
            error(
                "license_log",
                format!(
                    "cannot append to {} ({e}); nothing was sent",
                    self.log_path().display()
                ),
            )
        };
        create_private_dir(&self.dir).map_err(io)?;
        let mut f = open_private_append(&self.log_path()).map_err(io)?;
        let mut line = entry.to_string();
        line.push('\n');
        f.write_all(line.as_bytes()).map_err(io)?;
        f.sync_data().map_err(io)
    }

    /// POST `body` to `server` + `path`, logged before and after. `Ok(Err(refusal))` is the
    /// server's refusal; `Err` is no answer.
    fn call<T: Serialize>(
        &self,
        server: &str,
        path: &str,
        body: &T,
    ) -> Result<Result<DeviceGrant, Refusal>, LicenseError> {
        let url = format!("{}{path}", server.trim_end_matches('/'));
        self.log(json!({"at": now_text(), "to": url, "sent": body}))?;
        let answer = post(&url, body);
        let reply = match &answer {
            Ok(Ok(_)) => json!("accepted"),
            Ok(Err(r)) => json!({"refused": r.code, "message": r.message}),
            Err(e) => json!({"unreachable": e.to_string()}),
        };
        self.log(json!({"at": now_text(), "to": url, "reply": reply}))?;
        answer.map_err(|e| error("license_unreachable", format!("{url}: {e}")))
    }

    /// Activate this device with `key` at `server`. The key's signature is checked with the
    /// key the server returns (or `pinned`, when given), and the token with the same key.
    pub fn activate(
        &self,
        key: &str,
        server: &str,
        pinned: Option<&ReceiptPublicKey>,
    ) -> Result<Held, LicenseError> {
        if !(server.starts_with("http://") || server.starts_with("https://")) {
            return Err(error(
                "usage",
                format!("--server wants an http:// or https:// URL, not {server:?}"),
            ));
        }
        let license = License::peek(key)
            .map_err(|e| error("license_invalid", format!("not a licence key: {e}")))?;
        if let Some(pk) = pinned {
            License::open(key, pk).map_err(|e| {
                error(
                    "license_invalid",
                    format!("the key is not signed by the given public key ({e})"),
                )
            })?;
        }
        let device = self.device_hash(&license.id)?;
        let req = ActivateRequest {
            license_key: key.trim().to_string(),
            device: device.clone(),
            version: VERSION.into(),
        };
        let grant = self
            .call(server, "/v1/licenses/activate", &req)?
            .map_err(|r| refused(&r))?;
        let server_key = ReceiptPublicKey::from_pem(&grant.public_key)
            .map_err(|e| error("license_invalid", format!("the server's public key: {e}")))?;
        if let Some(pk) = pinned
            && pk.key_id() != server_key.key_id()
        {
            return Err(error(
                "license_invalid",
                "the server signs with another key than the one given",
            ));
        }
        License::open(key, &server_key).map_err(|e| {
            error(
                "license_invalid",
                format!("the licence key is not signed by that server's key ({e})"),
            )
        })?;
        let held = Held {
            server: server.trim_end_matches('/').to_string(),
            license: license.id,
            license_key: key.trim().to_string(),
            license_expires_at: grant.license_expires_at.clone(),
            public_key: grant.public_key.clone(),
            device,
            token: grant.device_token,
            refused: None,
            pending: Counts::default(),
        };
        self.valid(&held)?;
        self.save(&held)?;
        Ok(held)
    }

    /// Check in with the held licence's server: a usage report when `counts` is given (added
    /// to what is pending), else a plain check. The state records a fresh token, or the
    /// server's refusal; counts not delivered stay pending.
    pub fn check_in(&self, mut held: Held, counts: Option<Counts>) -> Result<Held, LicenseError> {
        let answer = match counts {
            Some(c) => {
                held.pending.images += c.images;
                held.pending.bytes += c.bytes;
                let report = UsageReport {
                    license: held.license.clone(),
                    device: held.device.clone(),
                    images: held.pending.images,
                    bytes: held.pending.bytes,
                    version: VERSION.into(),
                };
                self.call(&held.server, "/v1/licenses/usage", &report)
            }
            None => {
                let req = CheckRequest {
                    license: held.license.clone(),
                    device: held.device.clone(),
                    version: VERSION.into(),
                };
                self.call(&held.server, "/v1/licenses/check", &req)
            }
        };
        let outcome = match answer {
            Ok(Ok(grant)) => {
                let key = ReceiptPublicKey::from_pem(&held.public_key)
                    .map_err(|e| error("license_state", format!("pinned public key: {e}")))?;
                grant.device_token.verify(&key).map_err(|e| {
                    error(
                        "license_invalid",
                        format!("the server's token does not verify with the pinned key ({e})"),
                    )
                })?;
                held.token = grant.device_token;
                held.license_expires_at = grant.license_expires_at;
                held.pending = Counts::default();
                Ok(())
            }
            Ok(Err(refusal)) => {
                let e = refused(&refusal);
                if is_final(&refusal.code) {
                    // Counts of a licence that ended have nowhere to go.
                    held.pending = Counts::default();
                    held.refused = Some(refusal);
                }
                Err(e)
            }
            Err(e) => Err(e),
        };
        if counts.is_some() || outcome.is_ok() || held.refused.is_some() {
            self.save(&held)?;
        }
        outcome.map(|()| held)
    }
}

/// Refusals that end this device's use of the licence (rather than a bad request).
const FINAL: &[&str] = &[
    "license_invalid",
    "license_revoked",
    "license_expired",
    "device_deactivated",
    "device_not_activated",
];

fn is_final(code: &str) -> bool {
    FINAL.contains(&code)
}

/// The server's refusal as this device's error: its own code when it is one the licence
/// routes give, else `license_refused`.
fn refused(r: &Refusal) -> LicenseError {
    let code = FINAL
        .iter()
        .chain(&["seats_exhausted"])
        .find(|c| **c == r.code)
        .copied()
        .unwrap_or("license_refused");
    error(
        code,
        format!("the licence server refused: {} ({})", r.message, r.code),
    )
}

/// One JSON POST with a bounded time; a 4xx/5xx answer with the service's error body is a
/// refusal, anything else that is not a grant an error.
fn post<T: Serialize>(url: &str, body: &T) -> anyhow::Result<Result<DeviceGrant, Refusal>> {
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .user_agent(concat!("pixseal/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let r = client.post(url).json(body).send().await?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(Ok(serde_json::from_value(v)?));
        }
        match (v["error"]["code"].as_str(), status.is_client_error()) {
            (Some(code), true) => Ok(Err(Refusal {
                code: code.to_string(),
                message: v["error"]["message"].as_str().unwrap_or("").to_string(),
                at: now_text(),
            })),
            _ => anyhow::bail!("answered {status}"),
        }
    })
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    set_private(dir)
}

#[cfg(unix)]
fn set_private(p: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if p.is_dir() { 0o700 } else { 0o600 };
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_private(_: &Path) -> std::io::Result<()> {
    Ok(())
}

fn open_private_append(p: &Path) -> std::io::Result<fs::File> {
    let mut o = fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(dir: &Path, id: &str) -> Device {
        let f = dir.join("machine-id");
        fs::write(&f, id).unwrap();
        Device {
            dir: dir.join("license"),
            machine_id_file: f,
        }
    }

    #[test]
    fn the_device_hash_hides_the_machine_id_and_differs_per_licence() {
        let d = tempfile::tempdir().unwrap();
        let id = "0123456789abcdef0123456789abcdef\n";
        let dev = device(d.path(), id);
        let a = dev.device_hash("lic_a").unwrap();
        assert_eq!(a.len(), 64);
        assert_eq!(a, dev.device_hash("lic_a").unwrap());
        assert_ne!(a, dev.device_hash("lic_b").unwrap());
        assert!(!a.contains("0123456789abcdef"));
        let other = device(d.path(), "fedcba9876543210fedcba9876543210");
        assert_ne!(a, other.device_hash("lic_a").unwrap());
        let empty = device(d.path(), "\n");
        assert_eq!(
            empty.device_hash("lic_a").unwrap_err().code,
            "license_device"
        );
    }

    #[test]
    fn no_licence_passes_unless_one_is_required() {
        let d = tempfile::tempdir().unwrap();
        let dev = device(d.path(), "0123456789abcdef0123456789abcdef");
        assert!(dev.gate(false).unwrap().is_none());
        assert_eq!(dev.gate(true).unwrap_err().code, "license_required");
        fs::create_dir_all(d.path().join("license")).unwrap();
        fs::write(d.path().join("license/license.json"), b"{").unwrap();
        assert_eq!(dev.gate(false).unwrap_err().code, "license_state");
    }

    #[test]
    fn the_log_is_appended_and_private() {
        let d = tempfile::tempdir().unwrap();
        let dev = device(d.path(), "0123456789abcdef0123456789abcdef");
        dev.log(json!({"n": 1})).unwrap();
        dev.log(json!({"n": 2})).unwrap();
        let text = fs::read_to_string(dev.log_path()).unwrap();
        assert_eq!(text, "{\"n\":1}\n{\"n\":2}\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dev.log_path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0);
        }
    }
}
