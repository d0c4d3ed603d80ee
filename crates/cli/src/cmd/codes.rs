//! `pixseal codes issue|verify|revoke-all|live|sign|register-device|set-level|account|enroll|
//! members|revoke-passkey|presence`: the verification-code routes as commands against the
//! configured database (like the other admin commands), plus the level-4 device (`sign`), the
//! system's level changes (`set-level`) and the members' passkeys (`enroll`, `presence`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use pixseal_codes::{DeviceKey, MessageCode, SignedCode, message_sha256, recipient_sha256};
use pixseal_service::codes::{IssueRequest, LiveRequest, LiveVerifyRequest, VerifyRequest};
use pixseal_service::{Actor, DAY_MS, Services};
use serde_json::{Value, json};

use super::usage;
use crate::Outcome;
use crate::config::Config;

/// The message a code is bound to: its text, a file, or its SHA-256.
#[derive(clap::Args, Debug, Clone)]
#[group(multiple = false)]
pub struct MessageArgs {
    /// The message text.
    #[arg(long)]
    message: Option<String>,
    /// A file holding the exact message body.
    #[arg(long, value_name = "FILE")]
    message_file: Option<PathBuf>,
    /// The message's SHA-256 (hex), when the message itself stays elsewhere.
    #[arg(long, value_name = "HEX")]
    message_sha256: Option<String>,
}

impl MessageArgs {
    /// (message, message_sha256) as the requests take them; a file is hashed here, so a
    /// binary body works too.
    fn resolve(&self) -> Result<(Option<String>, Option<String>)> {
        match (&self.message, &self.message_file, &self.message_sha256) {
            (Some(m), None, None) => Ok((Some(m.clone()), None)),
            (None, Some(f), None) => {
                let b = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
                Ok((None, Some(message_sha256(&b))))
            }
            (None, None, Some(h)) => Ok((None, Some(h.clone()))),
            _ => Err(usage(
                "give one of --message, --message-file, --message-sha256",
            )),
        }
    }

    fn sha256(&self) -> Result<String> {
        match self.resolve()? {
            (Some(m), _) => Ok(message_sha256(m.as_bytes())),
            (_, Some(h)) => pixseal_codes::parse_sha256_hex(&h)
                .ok_or_else(|| usage("--message-sha256 must be 64 hex digits")),
            _ => unreachable!("resolve gives one of the two"),
        }
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum Args {
    /// Issue a message code bound to a message and a recipient (level 4: pass --signed).
    Issue {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        message: MessageArgs,
        #[arg(long)]
        recipient: String,
        /// Fewer days than [codes].message_ttl_days.
        #[arg(long)]
        ttl_days: Option<i64>,
        /// The JSON printed by `pixseal codes sign` (device-minted, signed code).
        #[arg(long, value_name = "FILE")]
        signed: Option<PathBuf>,
    },
    /// Verify a message code (with --message… and --recipient) or a live code (with --session).
    Verify {
        #[arg(long)]
        code: String,
        /// A live call session id: verify a 4-digit live code.
        #[arg(long)]
        session: Option<String>,
        #[command(flatten)]
        message: MessageArgs,
        #[arg(long)]
        recipient: Option<String>,
    },
    /// Revoke every outstanding code of a tenant (message codes and live sessions).
    RevokeAll {
        #[arg(long)]
        tenant: String,
    },
    /// A tenant's outstanding message codes, newest first (ids and message hashes; the codes
    /// themselves are not stored).
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Revoke one outstanding message code of a tenant by its id.
    Revoke {
        #[arg(long)]
        tenant: String,
        id: String,
    },
    /// Accounts issuing many codes that are seldom verified (bulk minting): at least
    /// --min-issued in the last --hours, at most --max-verified-percent of them verified.
    Flagged {
        #[arg(long, default_value_t = 24)]
        hours: i64,
        #[arg(long, default_value_t = 100)]
        min_issued: i64,
        #[arg(long, default_value_t = 10)]
        max_verified_percent: u8,
    },
    /// The current 4-digit live call code (a new session unless --session is given; a new
    /// session needs a member's passkey where presence is required, so start it over HTTP).
    Live {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        session: Option<String>,
    },
    /// Play the level-4 device: mint a code and sign it with the device key (created 0600 on
    /// first use). Prints the JSON that `codes issue --signed` and POST /v1/codes take.
    Sign {
        #[arg(long, value_name = "FILE")]
        device_key: PathBuf,
        /// Only print the device's public key (to register it).
        #[arg(long)]
        public_key: bool,
        #[command(flatten)]
        message: MessageArgs,
        #[arg(long)]
        recipient: Option<String>,
        #[arg(long, default_value_t = 30)]
        ttl_days: i64,
    },
    /// Register a tenant's device public key (base64 or PEM); level 4 drops to 3 until vetted.
    RegisterDevice {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        public_key: String,
    },
    /// The system raises (one step) or lowers a tenant's verification level, with evidence.
    SetLevel {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        level: i64,
        /// What was checked and by whom (kept sealed; required).
        #[arg(long)]
        evidence: String,
        /// The name verifiers are shown.
        #[arg(long)]
        display_name: Option<String>,
    },
    /// A tenant's level, display name and device key fingerprint.
    Account {
        #[arg(long)]
        tenant: String,
    },
    /// Add a member to a tenant (or re-enroll one for another passkey): prints a one-time
    /// enrollment token, good for a day, to register a passkey with (POST /v1/passkeys/registrations).
    Enroll {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        member: String,
    },
    /// A tenant's members and their passkeys.
    Members {
        #[arg(long)]
        tenant: String,
    },
    /// Revoke one of a tenant's passkeys (by credential ID).
    RevokePasskey {
        #[arg(long)]
        tenant: String,
        id: String,
    },
    /// Whether a tenant's minting needs a member present (a passkey assertion): required,
    /// optional, or default ([codes].require_presence).
    Presence {
        #[arg(long)]
        tenant: String,
        #[arg(value_enum)]
        presence: PresenceChoice,
    },
}

/// `pixseal codes presence`'s choice.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum PresenceChoice {
    Required,
    Optional,
    Default,
}

/// What a command printed and how it ended.
enum Done {
    Ok(Value, String),
    /// A verdict other than `valid` (exit 2).
    Refused(Value, String),
}

pub fn run(config: &Config, args: Args, json: bool) -> Outcome {
    let res = super::block_on(async {
        if let Args::Sign {
            device_key,
            public_key,
            message,
            recipient,
            ttl_days,
        } = &args
        {
            return sign(
                device_key,
                *public_key,
                message,
                recipient.as_deref(),
                *ttl_days,
            );
        }
        let services = super::services(config).await?;
        dispatch(&services, args).await
    });
    match res {
        Ok(Done::Ok(v, human)) => {
            print(json, "ok", v, &human);
            Outcome::Ok
        }
        Ok(Done::Refused(v, human)) => {
            print(json, "error", v, &human);
            Outcome::Rejected
        }
        Err(e) => super::fail(&e, json),
    }
}

fn print(json: bool, status: &str, mut v: Value, human: &str) {
    if json {
        let mut o = serde_json::Map::new();
        o.insert("status".into(), json!(status));
        if let Value::Object(m) = v.take() {
            o.extend(m);
        }
        println!("{}", Value::Object(o));
    } else {
        println!("{human}");
    }
}

async fn dispatch(s: &Services, args: Args) -> Result<Done> {
    let tenant = |name: String| async move { s.tenant_by_name(&name).await };
    Ok(match args {
        Args::Issue {
            tenant: t,
            message,
            recipient,
            ttl_days,
            signed,
        } => {
            let t = tenant(t).await?;
            let (message, message_sha256) = message.resolve()?;
            let mut req = IssueRequest {
                message,
                message_sha256,
                recipient,
                ttl_days,
                ..IssueRequest::default()
            };
            if let Some(f) = signed {
                let text = std::fs::read_to_string(&f)
                    .with_context(|| format!("reading {}", f.display()))?;
                let s: Value = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not the JSON of codes sign", f.display()))?;
                let field = |k: &str| {
                    s[k].as_str()
                        .map(String::from)
                        .ok_or_else(|| usage(&format!("{} has no {k}", f.display())))
                };
                req.code = Some(field("code")?);
                req.expires_at = Some(field("expires_at")?);
                req.signature = Some(field("signature")?);
            }
            let v = s.issue_code(&t, &Actor::Cli, req).await?;
            let human = format!(
                "code {} (valid until {}, level {}{})",
                v.code,
                v.expires_at,
                v.level,
                if v.device_signed {
                    ", device-signed"
                } else {
                    ""
                }
            );
            Done::Ok(serde_json::to_value(v)?, human)
        }
        Args::Verify {
            code,
            session,
            message,
            recipient,
        } => {
            let v = match session {
                Some(session_id) => {
                    s.verify_live_code(&Actor::Cli, LiveVerifyRequest { session_id, code })
                        .await?
                }
                None => {
                    let (message, message_sha256) = message.resolve()?;
                    let recipient = recipient
                        .ok_or_else(|| usage("--recipient is required for a message code"))?;
                    let req = VerifyRequest {
                        code,
                        message,
                        message_sha256,
                        recipient,
                    };
                    s.verify_code(&Actor::Cli, req).await?
                }
            };
            let who = v
                .account
                .as_ref()
                .map(|a| format!(" — {}, level {}", a.display_name, a.level))
                .unwrap_or_default();
            let human = format!("{}{who}", v.verdict.as_str());
            let valid = v.verdict == pixseal_codes::Verdict::Valid;
            let v = serde_json::to_value(v)?;
            if valid {
                Done::Ok(v, human)
            } else {
                Done::Refused(v, human)
            }
        }
        Args::RevokeAll { tenant: t } => {
            let t = tenant(t).await?;
            let v = s.revoke_all_codes(&t, &Actor::Cli).await?;
            let human = format!(
                "revoked {} message code(s) and {} live session(s)",
                v.revoked_message_codes, v.revoked_live_sessions
            );
            Done::Ok(serde_json::to_value(v)?, human)
        }
        Args::List { tenant: t } => {
            let t = tenant(t).await?;
            let v = s.list_codes(&t).await?;
            let lines: Vec<String> = v
                .codes
                .iter()
                .map(|c| {
                    format!(
                        "{}  message sha256 {}  expires {}{}",
                        c.id,
                        c.message_sha256,
                        c.expires_at,
                        if c.device_signed {
                            "  device-signed"
                        } else {
                            ""
                        }
                    )
                })
                .collect();
            let human = if lines.is_empty() {
                "no outstanding codes".to_string()
            } else {
                lines.join("\n")
            };
            Done::Ok(serde_json::to_value(v)?, human)
        }
        Args::Flagged {
            hours,
            min_issued,
            max_verified_percent,
        } => {
            let v = s
                .flagged_code_accounts(hours, min_issued, max_verified_percent)
                .await?;
            let human = if v.is_empty() {
                "no account flagged".to_string()
            } else {
                v.iter()
                    .map(|a| format!("{}: {} issued, {} verified", a.tenant, a.issued, a.verified))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            Done::Ok(json!({ "flagged": v }), human)
        }
        Args::Revoke { tenant: t, id } => {
            let t = tenant(t).await?;
            let v = s.revoke_code(&t, &id, &Actor::Cli).await?;
            let human = format!("code {} revoked", v.id);
            Done::Ok(serde_json::to_value(v)?, human)
        }
        Args::Live { tenant: t, session } => {
            let t = tenant(t).await?;
            // A passkey is a browser's: with presence required, start sessions over HTTP.
            let req = LiveRequest {
                session_id: session,
                presence: None,
            };
            let v = s.live_code(&t, &Actor::Cli, req).await?;
            let human = format!(
                "{} (session {}, rotates at {})",
                v.code, v.session_id, v.rotates_at
            );
            Done::Ok(serde_json::to_value(v)?, human)
        }
        Args::RegisterDevice {
            tenant: t,
            public_key,
        } => {
            let t = tenant(t).await?;
            let v = s.register_device(&t, &Actor::Cli, &public_key).await?;
            let human = format!(
                "device key {} registered; level {}",
                v.device_key_fingerprint, v.level
            );
            Done::Ok(serde_json::to_value(v)?, human)
        }
        Args::SetLevel {
            tenant: t,
            level,
            evidence,
            display_name,
        } => {
            let t = tenant(t).await?;
            let v = s
                .set_code_level(&t, level, &evidence, display_name.as_deref(), &Actor::Cli)
                .await?;
            let human = format!(
                "{}: level {} → {} ({})",
                t.name, v.from_level, v.level, v.level_name
            );
            Done::Ok(serde_json::to_value(v)?, human)
        }
        Args::Account { tenant: t } => {
            let t = tenant(t).await?;
            let v = s.code_account(&t).await?;
            let human = format!(
                "{} ({}): level {} ({}), device key {}",
                v.display_name,
                v.name,
                v.level,
                v.level_name,
                v.device_key_fingerprint.as_deref().unwrap_or("none")
            );
            Done::Ok(serde_json::to_value(v)?, human)
        }
        Args::Enroll { tenant: t, member } => {
            let t = tenant(t).await?;
            let v = s.enroll_member(&t, &member, &Actor::Cli).await?;
            let human = format!(
                "member {} of {}: enrollment token (once, until {}):\n{}",
                v.member, v.tenant, v.expires_at, v.enrollment_token
            );
            Done::Ok(serde_json::to_value(v)?, human)
        }
        Args::Members { tenant: t } => {
            let t = tenant(t).await?;
            let v = s.members(&t).await?;
            let mut lines = vec![format!(
                "presence {}",
                if v.presence_required {
                    "required"
                } else {
                    "optional"
                }
            )];
            for m in &v.members {
                lines.push(format!("{} ({} passkey(s))", m.name, m.passkeys.len()));
                for k in &m.passkeys {
                    lines.push(format!(
                        "  {} {} {}{}",
                        k.id,
                        k.algorithm,
                        k.aaguid,
                        if k.revoked_at.is_some() {
                            "  revoked"
                        } else {
                            ""
                        }
                    ));
                }
            }
            Done::Ok(serde_json::to_value(v)?, lines.join("\n"))
        }
        Args::RevokePasskey { tenant: t, id } => {
            let t = tenant(t).await?;
            let v = s.revoke_passkey(&t, &id, &Actor::Cli).await?;
            let human = format!("passkey {} revoked", v.id);
            Done::Ok(serde_json::to_value(v)?, human)
        }
        Args::Presence {
            tenant: t,
            presence,
        } => {
            let t = tenant(t).await?;
            let p = match presence {
                PresenceChoice::Required => Some(pixseal_store::Presence::Required),
                PresenceChoice::Optional => Some(pixseal_store::Presence::Optional),
                PresenceChoice::Default => None,
            };
            let v = s.set_presence(&t, p, &Actor::Cli).await?;
            let human = format!(
                "{}: minting {} a member present",
                t.name,
                if v.presence_required {
                    "needs"
                } else {
                    "does not need"
                }
            );
            Done::Ok(serde_json::to_value(v)?, human)
        }
        Args::Sign { .. } => unreachable!("handled before the state is opened"),
    })
}

/// Load the device key, creating it (0600, never overwritten) on first use.
fn device_key(path: &Path) -> Result<DeviceKey> {
    match std::fs::read_to_string(path) {
        Ok(pem) => Ok(DeviceKey::from_pkcs8_pem(&pem)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let key = DeviceKey::generate()?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("creating {}", path.display()))?;
            f.write_all(key.to_pkcs8_pem()?.as_bytes())?;
            Ok(key)
        }
        Err(e) => Err(anyhow!("{}: {e}", path.display())),
    }
}

fn sign(
    path: &Path,
    public_only: bool,
    message: &MessageArgs,
    recipient: Option<&str>,
    ttl_days: i64,
) -> Result<Done> {
    let key = device_key(path)?;
    let vk = key.public_key();
    let public = pixseal_codes::public_key_text(&vk);
    let fp = pixseal_codes::fingerprint(&vk);
    if public_only {
        return Ok(Done::Ok(
            json!({"public_key": public, "device_key_fingerprint": fp}),
            public,
        ));
    }
    let recipient = recipient.ok_or_else(|| usage("--recipient is required to sign a code"))?;
    if !(1..=pixseal_codes::config::MAX_MESSAGE_TTL_DAYS).contains(&ttl_days) {
        return Err(usage("--ttl-days must be 1 to 30"));
    }
    let (_, now_ms) = pixseal_store::meta::now();
    let (expires_at, expires_ms) = pixseal_store::meta::at_ms(now_ms + ttl_days * DAY_MS);
    let signed = SignedCode {
        code: MessageCode::random().map_err(|e| anyhow!("OS randomness: {e}"))?,
        message_sha256: message.sha256()?,
        recipient_sha256: recipient_sha256(recipient),
        expires_s: expires_ms / 1000,
    };
    let signature = key.sign(&signed);
    let code = signed.code.to_string();
    Ok(Done::Ok(
        json!({"code": code, "expires_at": expires_at, "message_sha256": signed.message_sha256,
               "recipient_sha256": signed.recipient_sha256, "signature": signature,
               "public_key": public, "device_key_fingerprint": fp}),
        format!("code {code} signed by device {fp} (valid until {expires_at})"),
    ))
}
