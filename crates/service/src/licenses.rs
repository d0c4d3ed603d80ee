//! Licences for the offline tool: issued to a tenant with a number of seats, activated per
//! device (known only by a salted hash of its machine id), checked in with counts only, and
//! deactivated or revoked by the owner. Licence keys and device tokens are signed with the
//! receipt key, so a device checks them offline (docs/licenses.md).

use std::path::PathBuf;

use pixseal_proof::{DeviceToken, License, SignedDeviceToken};
use pixseal_store::{DeviceState, LicenseDevice, LicenseRow, SeatClaim, meta::at_ms};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::DAY_MS;
use crate::{Actor, Outcome, Result, ServiceError, Services};

/// Most seats one licence may have.
pub const MAX_SEATS: u32 = 10_000;
/// Longest version text a device may report.
const MAX_VERSION_LEN: usize = 40;
/// Most images or bytes one report may add (a report is one batch).
const MAX_REPORTED: u64 = 1 << 53;

/// `[license]` settings: `grace_days` is the server's; the others are the device's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LicenseConfig {
    /// How long an activated device may work offline after its last check-in (the lifetime
    /// of the device tokens this server signs; never past the licence's end).
    pub grace_days: u32,
    /// The file that identifies this machine; only a hash of it salted with the licence id
    /// leaves the machine.
    pub machine_id_file: PathBuf,
    /// Refuse `sanitize` and `stamp` unless this device holds a valid licence.
    pub required: bool,
    /// After each `sanitize` or `stamp` batch on a licensed device, send the counts to the
    /// licence's server (logged locally first). `--offline` turns it off for one run.
    pub usage_sync: bool,
}

impl Default for LicenseConfig {
    fn default() -> Self {
        LicenseConfig {
            grace_days: 14,
            machine_id_file: PathBuf::from("/etc/machine-id"),
            required: false,
            usage_sync: true,
        }
    }
}

impl LicenseConfig {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(1..=365).contains(&self.grace_days) {
            return Err("license.grace_days must be 1-365".into());
        }
        Ok(())
    }
}

/// Where a licence is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LicenseState {
    Valid,
    Expired,
    Revoked,
}

/// A licence just issued: its key is shown once.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedLicense {
    pub id: String,
    pub tenant: String,
    pub seats: u32,
    pub expires_at: String,
    /// The signed licence key, to give the customer (it is not stored).
    pub key: String,
}

/// A licence as its owner sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LicenseView {
    pub id: String,
    pub state: LicenseState,
    pub seats: i64,
    /// Devices holding a seat now.
    pub active_devices: usize,
    #[schema(format = DateTime)]
    pub issued_at: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// A device under a licence: counts and times only.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceView {
    /// Salted hash of the machine id.
    pub device: String,
    pub state: DeviceState,
    #[schema(format = DateTime)]
    pub activated_at: String,
    #[schema(format = DateTime)]
    pub last_seen_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deactivated_at: Option<String>,
    /// Images and bytes it reported processing, in total.
    pub images: i64,
    pub bytes: i64,
    pub version: String,
}

/// A licence and its devices.
#[derive(Debug, Clone, Serialize)]
pub struct Seats {
    pub license: LicenseView,
    pub devices: Vec<DeviceView>,
}

/// `POST /v1/licenses/activate`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    /// The licence key (`pixseal-license.…`).
    pub license_key: String,
    /// The device: 64 hex digits, HMAC-SHA-256 of the machine id keyed by it, over the
    /// licence id.
    pub device: String,
    /// The pixseal version of the device.
    pub version: String,
}

/// `POST /v1/licenses/check`: a device asks for a fresh token without reporting anything.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    pub license: String,
    pub device: String,
    pub version: String,
}

/// `POST /v1/licenses/usage`: the counts of one finished batch; nothing else is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageReport {
    pub license: String,
    pub device: String,
    /// Images processed in the batch.
    pub images: u64,
    /// Their total size in bytes, as read.
    pub bytes: u64,
    pub version: String,
}

/// What an activation or a check-in gives the device.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeviceGrant {
    pub device_token: SignedDeviceToken,
    /// The installation's public key (PEM) the licence and token verify with.
    pub public_key: String,
    #[schema(format = DateTime)]
    pub license_expires_at: String,
}

fn refused(code: &'static str, message: impl Into<String>) -> ServiceError {
    ServiceError::Forbidden {
        code,
        message: message.into(),
    }
}

fn device_hash(device: &str) -> Result<()> {
    if device.len() == 64
        && device
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        Ok(())
    } else {
        Err(ServiceError::request(
            "device must be 64 lowercase hex digits",
        ))
    }
}

fn version_text(v: &str) -> Result<()> {
    if !v.is_empty()
        && v.len() <= MAX_VERSION_LEN
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
    {
        Ok(())
    } else {
        Err(ServiceError::request(format!(
            "version must be 1-{MAX_VERSION_LEN} characters of letters, digits and ._+-"
        )))
    }
}

fn license_id_text(id: &str) -> Result<()> {
    if id.starts_with("lic_")
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(())
    } else {
        Err(ServiceError::request("license is not a licence id"))
    }
}

fn time(ms: i64) -> String {
    at_ms(ms).0
}

fn view(l: &LicenseRow, devices: &[LicenseDevice], now_ms: i64) -> LicenseView {
    LicenseView {
        id: l.id.clone(),
        state: state_of(l, now_ms),
        seats: l.seats,
        active_devices: devices
            .iter()
            .filter(|d| d.state == DeviceState::Active)
            .count(),
        issued_at: time(l.issued_ms),
        expires_at: time(l.expires_ms),
        revoked_at: l.revoked_ms.map(time),
    }
}

fn state_of(l: &LicenseRow, now_ms: i64) -> LicenseState {
    if l.revoked_ms.is_some() {
        LicenseState::Revoked
    } else if l.expires_ms <= now_ms {
        LicenseState::Expired
    } else {
        LicenseState::Valid
    }
}

fn device_view(d: LicenseDevice) -> DeviceView {
    DeviceView {
        device: d.device,
        state: d.state,
        activated_at: time(d.activated_ms),
        last_seen_at: time(d.last_seen_ms),
        deactivated_at: d.deactivated_ms.map(time),
        images: d.images,
        bytes: d.bytes,
        version: d.version,
    }
}

impl Services {
    /// Issue a licence to tenant `tenant` (by name) for `seats` devices until `expires_ms`.
    pub async fn issue_license(
        &self,
        actor: &Actor,
        tenant: &str,
        seats: u32,
        expires_ms: i64,
    ) -> Result<IssuedLicense> {
        let t = self.tenant_by_name(tenant).await?;
        if !(1..=MAX_SEATS).contains(&seats) {
            return Err(ServiceError::request(format!(
                "seats must be 1-{MAX_SEATS}"
            )));
        }
        let (issued_at, now_ms) = self.clock.now();
        if expires_ms <= now_ms {
            return Err(ServiceError::request("the expiry date has passed"));
        }
        let row = LicenseRow {
            id: format!("lic_{}", uuid::Uuid::now_v7().simple()),
            tenant_id: t.id.clone(),
            seats: i64::from(seats),
            issued_ms: now_ms,
            expires_ms,
            revoked_ms: None,
        };
        let license = License {
            installation: self.installation.to_string(),
            id: row.id.clone(),
            tenant: t.id.clone(),
            seats,
            issued_at,
            expires_at: time(expires_ms),
            key_id: self.receipts.key_id().to_string(),
        };
        let signer = self.receipts.clone();
        let key = tokio::task::spawn_blocking(move || license.sign(signer.as_ref())).await??;
        self.db.insert_license(&row).await?;
        self.audit_detail(actor, "license.issue", &row.id, Outcome::Ok, &t.id)
            .await;
        Ok(IssuedLicense {
            id: row.id,
            tenant: t.name,
            seats,
            expires_at: time(expires_ms),
            key,
        })
    }

    /// A tenant's licences (by tenant name).
    pub async fn list_licenses(&self, tenant: &str) -> Result<Vec<LicenseView>> {
        let t = self.tenant_by_name(tenant).await?;
        Ok(self
            .seats_of(&t.id)
            .await?
            .into_iter()
            .map(|s| s.license)
            .collect())
    }

    /// A tenant's licences with their devices (the dashboard's seats).
    pub async fn seats_of(&self, tenant_id: &str) -> Result<Vec<Seats>> {
        let now_ms = self.clock.now_ms();
        let mut out = Vec::new();
        for l in self.db.licenses_of(tenant_id).await? {
            let devices = self.db.license_devices(&l.id).await?;
            out.push(Seats {
                license: view(&l, &devices, now_ms),
                devices: devices.into_iter().map(device_view).collect(),
            });
        }
        Ok(out)
    }

    /// The devices of licence `id`; with `tenant_id`, only when the licence is that tenant's.
    pub async fn license_devices(
        &self,
        id: &str,
        tenant_id: Option<&str>,
    ) -> Result<Vec<DeviceView>> {
        self.owned_license(id, tenant_id).await?;
        Ok(self
            .db
            .license_devices(id)
            .await?
            .into_iter()
            .map(device_view)
            .collect())
    }

    /// Deactivate one device: its seat is free at once, and its next check-in is refused.
    pub async fn deactivate_device(
        &self,
        actor: &Actor,
        id: &str,
        device: &str,
        tenant_id: Option<&str>,
    ) -> Result<()> {
        self.owned_license(id, tenant_id).await?;
        device_hash(device)?;
        self.db
            .deactivate_device(id, device, self.clock.now_ms())
            .await?;
        self.audit_detail(actor, "license.deactivate_device", id, Outcome::Ok, device)
            .await;
        Ok(())
    }

    /// Revoke a licence: every device's next check-in is refused, and no device can activate.
    pub async fn revoke_license(
        &self,
        actor: &Actor,
        id: &str,
        tenant_id: Option<&str>,
    ) -> Result<()> {
        self.owned_license(id, tenant_id).await?;
        self.db.revoke_license(id, self.clock.now_ms()).await?;
        self.audit(actor, "license.revoke", id, Outcome::Ok).await;
        Ok(())
    }

    async fn owned_license(&self, id: &str, tenant_id: Option<&str>) -> Result<LicenseRow> {
        license_id_text(id).map_err(|_| ServiceError::NotFound)?;
        match self.db.license(id).await? {
            Some(l) if tenant_id.is_none_or(|t| t == l.tenant_id) => Ok(l),
            _ => Err(ServiceError::NotFound),
        }
    }

    /// A device activates with a licence key: the key's signature is checked, then a seat is
    /// taken (or the one it holds kept) and a device token signed.
    pub async fn activate_device(&self, req: ActivateRequest) -> Result<DeviceGrant> {
        device_hash(&req.device)?;
        version_text(&req.version)?;
        let license = License::open(&req.license_key, self.receipts.public_key()).map_err(|e| {
            refused(
                "license_invalid",
                format!("the licence key is not one this server issued ({e})"),
            )
        })?;
        let row = self.usable_license(&license.id).await?;
        let now_ms = self.clock.now_ms();
        let outcome = self
            .db
            .claim_seat(&row.id, &req.device, &req.version, now_ms)
            .await?;
        let result = match outcome {
            SeatClaim::Seated(_) => self.grant(&row, &req.device, now_ms).await,
            SeatClaim::Full { seats } => Err(ServiceError::conflict(
                "seats_exhausted",
                format!(
                    "all {seats} seats of licence {} are taken; deactivate a device first",
                    row.id
                ),
            )),
            SeatClaim::Deactivated => Err(deactivated(&row.id)),
            SeatClaim::Unknown => Err(ServiceError::NotFound),
        };
        let (outcome, detail) = match &result {
            Ok(_) => (Outcome::Ok, req.device.as_str()),
            Err(e) => (Outcome::Refused, e.code()),
        };
        self.audit_detail(
            &Actor::Anonymous,
            "license.activate",
            &row.id,
            outcome,
            detail,
        )
        .await;
        result
    }

    /// A device asks for a fresh token (nothing reported).
    pub async fn check_device(&self, req: CheckRequest) -> Result<DeviceGrant> {
        self.check_in(&req.license, &req.device, 0, 0, &req.version)
            .await
    }

    /// A device reports one batch's counts, and gets a fresh token.
    pub async fn report_usage(&self, req: UsageReport) -> Result<DeviceGrant> {
        if req.images > MAX_REPORTED || req.bytes > MAX_REPORTED {
            return Err(ServiceError::request("images and bytes must be below 2^53"));
        }
        self.check_in(
            &req.license,
            &req.device,
            req.images as i64,
            req.bytes as i64,
            &req.version,
        )
        .await
    }

    async fn check_in(
        &self,
        license: &str,
        device: &str,
        images: i64,
        bytes: i64,
        version: &str,
    ) -> Result<DeviceGrant> {
        license_id_text(license)?;
        device_hash(device)?;
        version_text(version)?;
        let row = self.usable_license(license).await?;
        let now_ms = self.clock.now_ms();
        match self
            .db
            .device_checked_in(&row.id, device, images, bytes, version, now_ms)
            .await?
        {
            Some(_) => self.grant(&row, device, now_ms).await,
            None => match self.db.license_device(&row.id, device).await? {
                Some(d) if d.state == DeviceState::Deactivated => Err(deactivated(&row.id)),
                _ => Err(refused(
                    "device_not_activated",
                    format!("this device is not activated under licence {}", row.id),
                )),
            },
        }
    }

    /// The licence, when it exists and is neither revoked nor expired.
    async fn usable_license(&self, id: &str) -> Result<LicenseRow> {
        let Some(row) = self.db.license(id).await? else {
            return Err(refused(
                "license_invalid",
                format!("licence {id} is not one this server issued"),
            ));
        };
        match state_of(&row, self.clock.now_ms()) {
            LicenseState::Valid => Ok(row),
            LicenseState::Revoked => Err(refused(
                "license_revoked",
                format!("licence {id} was revoked by its owner"),
            )),
            LicenseState::Expired => Err(refused(
                "license_expired",
                format!("licence {id} expired at {}", time(row.expires_ms)),
            )),
        }
    }

    async fn grant(&self, row: &LicenseRow, device: &str, now_ms: i64) -> Result<DeviceGrant> {
        let grace_ms = i64::from(self.license.grace_days) * DAY_MS;
        let token = DeviceToken {
            installation: self.installation.to_string(),
            license: row.id.clone(),
            device: device.to_string(),
            issued_at: time(now_ms),
            valid_until: time((now_ms + grace_ms).min(row.expires_ms)),
        };
        let signer = self.receipts.clone();
        let device_token =
            tokio::task::spawn_blocking(move || token.sign(signer.as_ref())).await??;
        Ok(DeviceGrant {
            device_token,
            public_key: self.receipts.public_key_pem(),
            license_expires_at: time(row.expires_ms),
        })
    }
}

fn deactivated(id: &str) -> ServiceError {
    refused(
        "device_deactivated",
        format!("this device was deactivated under licence {id} by the licence's owner"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_and_version_texts_are_checked() {
        assert!(device_hash(&"a1".repeat(32)).is_ok());
        for bad in [
            "",
            "A1".repeat(32).as_str(),
            &"a1".repeat(31),
            &"g1".repeat(32),
        ] {
            assert!(device_hash(bad).is_err(), "{bad:?}");
        }
        assert!(version_text("0.1.0+dev").is_ok());
        for bad in ["", "0.1 0", "x".repeat(41).as_str(), "a/b"] {
            assert!(version_text(bad).is_err(), "{bad:?}");
        }
        assert!(license_id_text("lic_0193").is_ok());
        assert!(license_id_text("lic/../x").is_err());
        assert!(license_id_text("key_1").is_err());
    }

    #[test]
    fn grace_days_are_bounded() {
        let mut c = LicenseConfig::default();
        assert!(c.validate().is_ok());
        c.grace_days = 0;
        assert!(c.validate().is_err());
        c.grace_days = 366;
        assert!(c.validate().is_err());
    }
}
