//! `pixseal license …`: on a server, issue, list, deactivate and revoke licences; on a device,
//! activate one, show its state, check in. `pixseal usage log` shows every transmission.

use std::path::PathBuf;

use pixseal_proof::ReceiptPublicKey;
use pixseal_service::Actor;
use serde_json::{Value, json};

use crate::Outcome;
use crate::config::Config;
use crate::license::{Device, Held, LicenseError};

#[derive(clap::Subcommand, Debug)]
pub enum Args {
    /// (server) Issue a licence to a tenant: prints the signed licence key once.
    Issue {
        #[arg(long)]
        tenant: String,
        /// Devices that may be active at once.
        #[arg(long)]
        seats: u32,
        /// Last day of validity, YYYY-MM-DD (valid through the end of that day, UTC).
        #[arg(long, value_name = "DATE")]
        expires: String,
    },
    /// (server) A tenant's licences with their seats.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// (server) A licence's devices: hashed id, times, images and bytes reported.
    Devices { license: String },
    /// (server) Deactivate a device: its seat is freed and its next check-in refused.
    Deactivate { license: String, device: String },
    /// (server) Revoke a licence: every device's next check-in is refused.
    Revoke { license: String },
    /// (device) Activate this device under a licence key.
    Activate {
        key: String,
        /// The pixseal server that issued the key.
        #[arg(long, value_name = "URL")]
        server: String,
        /// The server's public key (PEM) to trust, instead of the one it presents.
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
    },
    /// (device) This device's licence, checked offline.
    Status,
    /// (device) Check in with the licence server now for a fresh device token.
    Check,
}

#[derive(clap::Subcommand, Debug)]
pub enum UsageArgs {
    /// Every transmission to the licence server, as logged before it was sent.
    Log,
}

/// Print one line: the JSON object, or the human text.
fn say(json: bool, v: Value, human: String) {
    if json {
        println!("{v}");
    } else {
        println!("{human}");
    }
}

/// The end of day `date` (YYYY-MM-DD), UTC, in milliseconds.
fn end_of_day_ms(date: &str) -> anyhow::Result<i64> {
    let format = time::format_description::parse_borrowed::<2>("[year]-[month]-[day]")?;
    let d = time::Date::parse(date, &format)
        .map_err(|_| super::usage(&format!("--expires wants YYYY-MM-DD, not {date:?}")))?;
    let end = d.with_hms(23, 59, 59)?.assume_utc();
    Ok(end.unix_timestamp() * 1000)
}

fn human_bytes(b: u64) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

pub fn run(config: &Config, args: Args, json: bool) -> Outcome {
    let device = Device::new(config);
    let res = match args {
        Args::Activate {
            key,
            server,
            public_key,
        } => activate(&device, &key, &server, public_key.as_deref(), json),
        Args::Status => status(&device, json),
        Args::Check => check(&device, json),
        server_side => super::block_on(admin(config, server_side, json)),
    };
    res.map_or_else(|e| super::fail(&e, json), |()| Outcome::Ok)
}

async fn admin(config: &Config, args: Args, json: bool) -> anyhow::Result<()> {
    let s = super::services(config).await?;
    match args {
        Args::Issue {
            tenant,
            seats,
            expires,
        } => {
            let l = s
                .issue_license(&Actor::Cli, &tenant, seats, end_of_day_ms(&expires)?)
                .await?;
            let human = format!(
                "licence {} for tenant {} ({} seats, until {}):\n{}\n(shown once; give it to the customer)",
                l.id, l.tenant, l.seats, l.expires_at, l.key
            );
            say(json, serde_json::to_value(&l)?, human);
        }
        Args::List { tenant } => {
            for l in s.list_licenses(&tenant).await? {
                let human = format!(
                    "{} {:?} seats {}/{} until {}",
                    l.id, l.state, l.active_devices, l.seats, l.expires_at
                );
                say(json, serde_json::to_value(&l)?, human.to_lowercase());
            }
        }
        Args::Devices { license } => {
            for d in s.license_devices(&license, None).await? {
                let human = format!(
                    "{} {} since {} last seen {}: {} images, {} (pixseal {})",
                    d.device,
                    d.state,
                    d.activated_at,
                    d.last_seen_at,
                    d.images,
                    human_bytes(d.bytes.max(0) as u64),
                    d.version
                );
                say(json, serde_json::to_value(&d)?, human);
            }
        }
        Args::Deactivate { license, device } => {
            s.deactivate_device(&Actor::Cli, &license, &device, None)
                .await?;
            say(
                json,
                json!({"license": license, "device": device, "state": "deactivated"}),
                format!("device {device} deactivated under licence {license}"),
            );
        }
        Args::Revoke { license } => {
            s.revoke_license(&Actor::Cli, &license, None).await?;
            say(
                json,
                json!({"license": license, "state": "revoked"}),
                format!("licence {license} revoked"),
            );
        }
        Args::Activate { .. } | Args::Status | Args::Check => unreachable!("device commands"),
    }
    Ok(())
}

fn held_json(h: &Held, state: &str) -> Value {
    json!({
        "license": h.license,
        "state": state,
        "server": h.server,
        "device": h.device,
        "license_expires_at": h.license_expires_at,
        "token_valid_until": h.token.token.valid_until,
        "pending": h.pending,
        "refused": h.refused,
    })
}

fn activate(
    device: &Device,
    key: &str,
    server: &str,
    public_key: Option<&std::path::Path>,
    json: bool,
) -> anyhow::Result<()> {
    let pinned =
        match public_key {
            Some(p) => {
                let pem = std::fs::read_to_string(p)
                    .map_err(|e| super::usage(&format!("cannot read {}: {e}", p.display())))?;
                Some(ReceiptPublicKey::from_pem(&pem).map_err(|e| {
                    super::usage(&format!("{} is not a public key: {e}", p.display()))
                })?)
            }
            None => None,
        };
    let h = device.activate(key, server, pinned.as_ref())?;
    say(
        json,
        held_json(&h, "active"),
        format!(
            "activated under licence {} at {}; works offline until {} (licence ends {})",
            h.license, h.server, h.token.token.valid_until, h.license_expires_at
        ),
    );
    Ok(())
}

fn status(device: &Device, json: bool) -> anyhow::Result<()> {
    let Some(h) = device.held()? else {
        say(
            json,
            json!({"state": "unlicensed"}),
            "no licence on this device (`pixseal license activate KEY --server URL`)".into(),
        );
        return Ok(());
    };
    let verdict = device.valid(&h);
    let state = match &verdict {
        Ok(()) => "active",
        Err(e) => e.code,
    };
    let mut human = format!(
        "licence {} at {}: {state}; device token valid until {}, licence ends {}",
        h.license, h.server, h.token.token.valid_until, h.license_expires_at
    );
    if h.pending.images > 0 {
        human.push_str(&format!(
            "; not yet reported: {} images, {}",
            h.pending.images,
            human_bytes(h.pending.bytes)
        ));
    }
    say(json, held_json(&h, state), human);
    verdict.map_err(Into::into)
}

fn check(device: &Device, json: bool) -> anyhow::Result<()> {
    let Some(h) = device.held()? else {
        return Err(super::usage("no licence on this device to check"));
    };
    let h = device.check_in(h, None)?;
    say(
        json,
        held_json(&h, "active"),
        format!(
            "licence {}: checked in; works offline until {}",
            h.license, h.token.token.valid_until
        ),
    );
    Ok(())
}

pub fn usage(config: &Config, args: UsageArgs, json: bool) -> Outcome {
    let UsageArgs::Log = args;
    let device = Device::new(config);
    let text = match std::fs::read_to_string(device.log_path()) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !json {
                println!("nothing was ever sent from this device");
            }
            return Outcome::Ok;
        }
        Err(e) => {
            let e = anyhow::anyhow!("cannot read {}: {e}", device.log_path().display());
            return super::fail(&e, json);
        }
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|_| json!({"unreadable": line}));
        if json {
            println!("{v}");
        } else {
            println!("{}", describe(&v));
        }
    }
    Outcome::Ok
}

/// One log line in words: what was sent where, or how the server answered.
fn describe(v: &Value) -> String {
    let at = v["at"].as_str().unwrap_or("?");
    let to = v["to"].as_str().unwrap_or("?");
    if let Some(sent) = v.get("sent") {
        let what = match (sent["images"].as_u64(), sent["bytes"].as_u64()) {
            (Some(i), Some(b)) => format!("usage update: {i} images, {}", human_bytes(b)),
            _ if sent.get("license_key").is_some() => {
                "activation (licence key, device hash)".into()
            }
            _ => "check-in (licence id, device hash)".into(),
        };
        let fields: Vec<&str> = sent
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        format!(
            "[{at}] sent to {to}: {what} [fields: {}]",
            fields.join(", ")
        )
    } else if let Some(r) = v.get("reply") {
        let reply = match r {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        format!("[{at}] {to} answered: {reply}")
    } else {
        v.to_string()
    }
}

/// A licence error's exit code: the server refusing a key or a device just now is a rejected
/// input (2), no answer is internal (3), every state found on the device (none held but one
/// required, a token run out, a refusal recorded earlier) is the operator's to fix (1).
pub fn licence_outcome(e: &LicenseError) -> Outcome {
    match e.code {
        "license_invalid"
        | "license_revoked"
        | "license_expired"
        | "device_deactivated"
        | "device_not_activated"
        | "seats_exhausted" => Outcome::Rejected,
        "license_unreachable" => Outcome::Internal,
        _ => Outcome::Usage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::format_description::well_known::Rfc3339;

    #[test]
    fn an_expiry_date_ends_with_its_day() {
        let ms = end_of_day_ms("2027-01-31").unwrap();
        let t = time::OffsetDateTime::from_unix_timestamp(ms / 1000).unwrap();
        assert_eq!(t.format(&Rfc3339).unwrap(), "2027-01-31T23:59:59Z");
        assert!(end_of_day_ms("31.01.2027").is_err());
        assert!(end_of_day_ms("2027-02-30").is_err());
    }

    #[test]
    fn log_lines_read_in_words() {
        let sent = json!({"at": "t", "to": "u", "sent": {"license": "lic_1", "device": "d", "images": 15, "bytes": 2048, "version": "0.1.0"}});
        assert_eq!(
            describe(&sent),
            "[t] sent to u: usage update: 15 images, 2.0 KiB [fields: license, device, images, bytes, version]"
        );
        let reply = json!({"at": "t", "to": "u", "reply": "accepted"});
        assert_eq!(describe(&reply), "[t] u answered: accepted");
    }
}
