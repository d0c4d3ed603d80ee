//! Licences and their devices: seats taken under a lock on the licence row, so that devices
//! activating at once on several instances never take more seats than the licence has.

use sqlx::Row;

use crate::meta::{Db, DbError, parse_text};
use crate::states::DeviceState;

/// One licence as stored (its signed key is not: it is handed out once and checked by
/// signature when it comes back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseRow {
    pub id: String,
    pub tenant_id: String,
    pub seats: i64,
    pub issued_ms: i64,
    pub expires_ms: i64,
    pub revoked_ms: Option<i64>,
}

/// One device under a licence, with the counts it reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseDevice {
    pub license_id: String,
    /// Salted hash of the machine id (hex).
    pub device: String,
    pub state: DeviceState,
    pub activated_ms: i64,
    pub last_seen_ms: i64,
    pub deactivated_ms: Option<i64>,
    pub images: i64,
    pub bytes: i64,
    /// The pixseal version it last reported.
    pub version: String,
}

/// What an activation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeatClaim {
    /// The device holds a seat now (newly, or it already did).
    Seated(LicenseDevice),
    /// Every seat is taken by other active devices.
    Full { seats: i64 },
    /// The device was deactivated under this licence and stays refused.
    Deactivated,
    /// No such licence.
    Unknown,
}

fn license_from(r: &sqlx::any::AnyRow) -> Result<LicenseRow, sqlx::Error> {
    Ok(LicenseRow {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        seats: r.try_get("seats")?,
        issued_ms: r.try_get("issued_ms")?,
        expires_ms: r.try_get("expires_ms")?,
        revoked_ms: r.try_get("revoked_ms")?,
    })
}

fn device_from(r: &sqlx::any::AnyRow) -> Result<LicenseDevice, sqlx::Error> {
    Ok(LicenseDevice {
        license_id: r.try_get("license_id")?,
        device: r.try_get("device")?,
        state: parse_text(r, "state")?,
        activated_ms: r.try_get("activated_ms")?,
        last_seen_ms: r.try_get("last_seen_ms")?,
        deactivated_ms: r.try_get("deactivated_ms")?,
        images: r.try_get("images")?,
        bytes: r.try_get("bytes")?,
        version: r.try_get("version")?,
    })
}

impl Db {
    pub async fn insert_license(&self, l: &LicenseRow) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO licenses (id, tenant_id, seats, issued_ms, expires_ms, revoked_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&l.id)
        .bind(&l.tenant_id)
        .bind(l.seats)
        .bind(l.issued_ms)
        .bind(l.expires_ms)
        .bind(l.revoked_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn license(&self, id: &str) -> Result<Option<LicenseRow>, DbError> {
        let r = sqlx::query(
            "SELECT id, tenant_id, seats, issued_ms, expires_ms, revoked_ms FROM licenses WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(r.as_ref().map(license_from).transpose()?)
    }

    /// A tenant's licences, oldest first.
    pub async fn licenses_of(&self, tenant_id: &str) -> Result<Vec<LicenseRow>, DbError> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, seats, issued_ms, expires_ms, revoked_ms FROM licenses WHERE tenant_id = $1 ORDER BY issued_ms, id",
        )
        .bind(tenant_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(license_from).collect::<Result<_, _>>()?)
    }

    /// Revoke a licence at `now_ms` (once: a second revocation keeps the first time).
    pub async fn revoke_license(&self, id: &str, now_ms: i64) -> Result<(), DbError> {
        let r =
            sqlx::query("UPDATE licenses SET revoked_ms = COALESCE(revoked_ms, $1) WHERE id = $2")
                .bind(now_ms)
                .bind(id)
                .execute(self.pool())
                .await?;
        if r.rows_affected() == 0 {
            return Err(DbError::NotFound);
        }
        Ok(())
    }

    /// A licence's devices, first activated first.
    pub async fn license_devices(&self, license_id: &str) -> Result<Vec<LicenseDevice>, DbError> {
        let rows = sqlx::query(
            "SELECT license_id, device, state, activated_ms, last_seen_ms, deactivated_ms, images, bytes, version \
             FROM license_devices WHERE license_id = $1 ORDER BY activated_ms, device",
        )
        .bind(license_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(device_from).collect::<Result<_, _>>()?)
    }

    pub async fn license_device(
        &self,
        license_id: &str,
        device: &str,
    ) -> Result<Option<LicenseDevice>, DbError> {
        let r = sqlx::query(
            "SELECT license_id, device, state, activated_ms, last_seen_ms, deactivated_ms, images, bytes, version \
             FROM license_devices WHERE license_id = $1 AND device = $2",
        )
        .bind(license_id)
        .bind(device)
        .fetch_optional(self.pool())
        .await?;
        Ok(r.as_ref().map(device_from).transpose()?)
    }

    /// Give `device` a seat under `license_id` if it has one already or one is free. The
    /// licence row is written first in the transaction, which locks it: concurrent
    /// activations of one licence are taken one after the other, and the count they see is
    /// the count they change.
    pub async fn claim_seat(
        &self,
        license_id: &str,
        device: &str,
        version: &str,
        now_ms: i64,
    ) -> Result<SeatClaim, DbError> {
        let mut tx = self.pool().begin().await?;
        let Some(lic) =
            sqlx::query("UPDATE licenses SET seats = seats WHERE id = $1 RETURNING seats")
                .bind(license_id)
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Ok(SeatClaim::Unknown);
        };
        let seats: i64 = lic.try_get("seats")?;
        let existing =
            sqlx::query("SELECT state FROM license_devices WHERE license_id = $1 AND device = $2")
                .bind(license_id)
                .bind(device)
                .fetch_optional(&mut *tx)
                .await?;
        match existing
            .as_ref()
            .map(|r| parse_text::<DeviceState>(r, "state"))
            .transpose()?
        {
            Some(DeviceState::Deactivated) => return Ok(SeatClaim::Deactivated),
            Some(DeviceState::Active) => {
                sqlx::query(
                    "UPDATE license_devices SET last_seen_ms = $1, version = $2 WHERE license_id = $3 AND device = $4",
                )
                .bind(now_ms)
                .bind(version)
                .bind(license_id)
                .bind(device)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                let taken: i64 = sqlx::query(
                    "SELECT COUNT(*) AS n FROM license_devices WHERE license_id = $1 AND state = $2",
                )
                .bind(license_id)
                .bind(DeviceState::Active.as_str())
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
                if taken >= seats {
                    return Ok(SeatClaim::Full { seats });
                }
                sqlx::query(
                    "INSERT INTO license_devices (license_id, device, state, activated_ms, last_seen_ms, deactivated_ms, images, bytes, version) \
                     VALUES ($1, $2, $3, $4, $4, NULL, 0, 0, $5)",
                )
                .bind(license_id)
                .bind(device)
                .bind(DeviceState::Active.as_str())
                .bind(now_ms)
                .bind(version)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        let seated = self
            .license_device(license_id, device)
            .await?
            .ok_or(DbError::NotFound)?;
        Ok(SeatClaim::Seated(seated))
    }

    /// An active device checked in at `now_ms`, adding `images` and `bytes` to its counts;
    /// `None` when it holds no active seat (never activated, or deactivated).
    pub async fn device_checked_in(
        &self,
        license_id: &str,
        device: &str,
        images: i64,
        bytes: i64,
        version: &str,
        now_ms: i64,
    ) -> Result<Option<LicenseDevice>, DbError> {
        let r = sqlx::query(
            "UPDATE license_devices SET last_seen_ms = $1, images = images + $2, bytes = bytes + $3, version = $4 \
             WHERE license_id = $5 AND device = $6 AND state = $7",
        )
        .bind(now_ms)
        .bind(images)
        .bind(bytes)
        .bind(version)
        .bind(license_id)
        .bind(device)
        .bind(DeviceState::Active.as_str())
        .execute(self.pool())
        .await?;
        if r.rows_affected() == 0 {
            return Ok(None);
        }
        self.license_device(license_id, device).await
    }

    /// Deactivate a device (its seat is free from now on); `NotFound` when the licence has no
    /// such device.
    pub async fn deactivate_device(
        &self,
        license_id: &str,
        device: &str,
        now_ms: i64,
    ) -> Result<(), DbError> {
        let r = sqlx::query(
            "UPDATE license_devices SET state = $1, deactivated_ms = COALESCE(deactivated_ms, $2) WHERE license_id = $3 AND device = $4",
        )
        .bind(DeviceState::Deactivated.as_str())
        .bind(now_ms)
        .bind(license_id)
        .bind(device)
        .execute(self.pool())
        .await?;
        if r.rows_affected() == 0 {
            return Err(DbError::NotFound);
        }
        Ok(())
    }
}
