//! Content-bound verification codes: message codes, live call codes, revoke-all, verification
//! levels and level-4 device signatures. The rules are pixseal-codes'; this module wires them
//! to the database, the key provider, the clock and the audit log, for the HTTP routes and
//! the CLI alike.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
/// A verdict on a code, as [`CodeVerdict::verdict`] gives it.
pub use pixseal_codes::Verdict;
use pixseal_codes::{
    CodeKey, Level, MessageCode, SignedCode, StoredCode, live, message_sha256, parse_public_key,
    parse_sha256_hex, recipient_sha256,
};
use pixseal_seal::WrappedKey;
use pixseal_store::{
    CapReached, CodeAccount, DbError, LevelEvent, LiveSession, MessageCodeRow, MintCap, Tenant,
    meta,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::DAY_MS;
use crate::{Actor, Outcome, Result, ServiceError, Services};

/// Codes vouch for at most this level unless signed on the account's device.
const UNSIGNED_LEVEL_CAP: i64 = 3;

/// Unwrapped code secrets by region (each is unwrapped once per process).
#[derive(Default)]
pub struct CodeKeyCache(Mutex<HashMap<String, CodeKey>>);

impl CodeKeyCache {
    fn get(&self, region: &str) -> Option<CodeKey> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(region)
            .cloned()
    }

    fn insert(&self, region: &str, key: CodeKey) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(region.to_string(), key);
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn invalid(msg: impl Into<String>) -> ServiceError {
    ServiceError::request(msg)
}

fn outcome(verdict: Verdict) -> Outcome {
    if verdict == Verdict::Valid {
        Outcome::Ok
    } else {
        Outcome::Refused
    }
}

/// Exactly one of the message or its SHA-256 (hex) → the SHA-256, lowercase hex.
pub(crate) fn message_hash(message: &Option<String>, sha: &Option<String>) -> Result<String> {
    match (message, sha) {
        (Some(m), None) => Ok(message_sha256(m.as_bytes())),
        (None, Some(h)) => parse_sha256_hex(h)
            .ok_or_else(|| invalid("message_sha256 must be 64 hexadecimal digits")),
        _ => Err(invalid("give exactly one of message or message_sha256")),
    }
}

pub(crate) fn check_recipient(r: &str) -> Result<&str> {
    let t = r.trim();
    if t.is_empty() || t.len() > 320 || t.chars().any(char::is_control) {
        return Err(invalid(
            "recipient: 1–320 characters, no control characters",
        ));
    }
    Ok(t)
}

pub(crate) fn parse_code(s: &str) -> Result<MessageCode> {
    s.parse().map_err(|e: pixseal_codes::ParseCodeError| {
        ServiceError::invalid("invalid_code", e.to_string())
    })
}

fn level_of(account: &CodeAccount) -> Result<Level> {
    Level::new(account.level).map_err(|e| ServiceError::internal(e.to_string()))
}

fn level_name(level: i64) -> &'static str {
    Level::new(level).map(Level::name).unwrap_or("registered")
}

/// `POST /v1/codes` body: exactly one of `message` or `message_sha256`. Only the SHA-256 of
/// the message and a keyed hash of the recipient are stored. Level-4 accounts send `code`,
/// `expires_at` and the device signature (`pixseal codes sign`) instead of `ttl_days`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    #[schema(nullable = false)]
    pub message: Option<String>,
    #[schema(nullable = false, pattern = "^[0-9a-fA-F]{64}$")]
    pub message_sha256: Option<String>,
    /// E-mail address or phone number; compared trimmed and lowercased.
    #[schema(max_length = 320)]
    pub recipient: String,
    /// Shorter than the configured validity (`[codes].message_ttl_days`, default 30), never
    /// longer.
    #[schema(nullable = false, minimum = 1)]
    pub ttl_days: Option<i64>,
    /// Level 4 only: the code minted on the device, its expiry and the device's signature
    /// (base64 Ed25519, docs/codes.md).
    #[schema(nullable = false)]
    pub code: Option<String>,
    #[schema(nullable = false, format = DateTime)]
    pub expires_at: Option<String>,
    #[schema(nullable = false)]
    pub signature: Option<String>,
    /// A member's passkey assertion over this code (from `POST /v1/codes/presence`); required
    /// when the account's minting needs a person present.
    #[schema(nullable = false)]
    pub presence: Option<crate::passkeys::PresenceProof>,
}

/// An issued message code.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IssuedCode {
    pub id: String,
    /// Shown once; stored only as a keyed hash.
    #[schema(example = "7K3M-9QWX-R2TB-F")]
    pub code: String,
    pub region: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    #[schema(minimum = 0, maximum = 4)]
    pub level: i64,
    pub level_name: &'static str,
    pub device_signed: bool,
}

/// `POST /v1/codes/verify` body: the code, the message (or its SHA-256) and the recipient.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    pub code: String,
    #[schema(nullable = false)]
    pub message: Option<String>,
    #[schema(nullable = false)]
    pub message_sha256: Option<String>,
    pub recipient: String,
}

/// Which kind of code a verdict is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CodeKind {
    Message,
    Live,
}

/// How a verifier sees the issuing account.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IssuerView {
    pub name: String,
    pub display_name: String,
    #[schema(minimum = 0, maximum = 4)]
    pub level: i64,
    /// `registered`, `personal_verified`, `identity_verified`, `identity_employer` or
    /// `device_bound`.
    pub level_name: &'static str,
}

impl IssuerView {
    /// `signed`: whether the code was signed on the account's device (only then can it vouch
    /// for level 4).
    fn of(a: &CodeAccount, signed: bool) -> IssuerView {
        let level = if signed {
            a.level
        } else {
            a.level.min(UNSIGNED_LEVEL_CAP)
        };
        IssuerView {
            name: a.tenant_name.clone(),
            display_name: a.display_name.clone(),
            level,
            level_name: level_name(level),
        }
    }
}

/// A verifier's answer: the verdict, and for a code that exists, who issued it. Always 200:
/// the verdict is the answer. A code is valid exactly once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CodeVerdict {
    pub verdict: Verdict,
    pub kind: CodeKind,
    /// Absent for `unknown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub account: Option<IssuerView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub issued_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub device_signed: Option<bool>,
    /// For a valid device-signed code: what signed it and what was checked; for a passkey,
    /// everything needed to check the signature again offline (docs/codes.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub signature: Option<CodeSignature>,
}

/// How a code was signed on a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignatureKind {
    /// A member's passkey (WebAuthn assertion with user verification).
    Passkey,
    /// The account's Ed25519 device key (`pixseal codes sign`).
    DeviceKey,
    /// A live call session started with a member's passkey (the codes themselves are the
    /// server's).
    SessionPasskey,
}

/// The signature behind `device_signed`, and why it holds.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CodeSignature {
    pub kind: SignatureKind,
    /// The checks that passed, in order.
    pub checked: Vec<&'static str>,
    /// Passkey: the credential ID (base64url); device key: its fingerprint.
    pub key_id: String,
    /// Passkey: `EdDSA`, `ES256` or `ES384`; device key: `Ed25519`.
    pub algorithm: &'static str,
    /// Passkey: the stored public key (`alg:base64url`), the relying party and the assertion.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub public_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub rp_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, value_type = Object)]
    pub assertion: Option<pixseal_codes::passkey::PasskeyAssertion>,
}

/// What a passkey-signed code's verification checks (pixseal-codes `PasskeyAssertion::check`).
const PASSKEY_CHECKS: [&str; 7] = [
    "signature",
    "type",
    "challenge",
    "origin",
    "rp_id",
    "user_present",
    "user_verified",
];

impl CodeVerdict {
    fn unknown(kind: CodeKind) -> Self {
        CodeVerdict {
            verdict: Verdict::Unknown,
            kind,
            account: None,
            issued_at: None,
            expires_at: None,
            device_signed: None,
            signature: None,
        }
    }
}

/// One outstanding message code as its owner sees it (the code itself is never stored).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OutstandingCode {
    pub id: String,
    pub region: String,
    /// SHA-256 (hex) of the message the code is bound to.
    pub message_sha256: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    pub device_signed: bool,
}

/// `GET /v1/codes`: the account's outstanding message codes, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OutstandingCodes {
    pub codes: Vec<OutstandingCode>,
    /// More are outstanding than listed (the newest `codes.len()` are).
    pub truncated: bool,
}

/// What revoking one code did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RevokedCode {
    pub id: String,
    #[schema(format = DateTime)]
    pub revoked_at: String,
}

/// An account that issues many codes few of which are ever verified (bulk minting, spam).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FlaggedAccount {
    pub tenant_id: String,
    pub tenant: String,
    /// Message codes issued in the window.
    pub issued: i64,
    /// Of those, verified (used) so far.
    pub verified: i64,
}

/// Outstanding codes listed at most.
const LIST_LIMIT: i64 = 1000;

/// What revoke-all did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RevokedCodes {
    pub revoked_message_codes: u64,
    pub revoked_live_sessions: u64,
    #[schema(format = DateTime)]
    pub revoked_at: String,
}

/// 429 `code_quota_exceeded`, naming the cap reached.
fn quota_exceeded(reached: CapReached, cap: MintCap) -> ServiceError {
    let (who, n) = match reached {
        CapReached::Account => ("this account", cap.account),
        CapReached::Member => ("this member", cap.member),
    };
    ServiceError::Quota {
        code: "code_quota_exceeded",
        message: format!("{who} issued {n} codes in the last hour, its limit; try again later"),
        retry_after_secs: 60,
    }
}

/// A new call session's id: `ls_` and 13 random Crockford characters.
pub(crate) fn new_live_session_id() -> Result<String> {
    let random = pixseal_proof::ProofId::random()
        .map_err(|e| ServiceError::internal(e.to_string()))?
        .to_string();
    Ok(format!("ls_{}", &random[3..]))
}

/// `POST /v1/codes/live` body: `presence` (or, where presence is not required, nothing) starts
/// a session; `session_id` gets a running session's current code.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LiveRequest {
    /// Omit to start a new call session.
    #[schema(nullable = false)]
    pub session_id: Option<String>,
    /// To start a session with a member present: the answered `POST /v1/codes/live/presence`
    /// challenge (required where the account's codes need presence, the default).
    #[schema(nullable = false)]
    pub presence: Option<crate::passkeys::LivePresenceProof>,
}

/// The current live code of a call session.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LiveCode {
    #[schema(example = "ls_0H8Z4K2M9QW3R")]
    pub session_id: String,
    #[schema(pattern = "^[0-9]{4}$")]
    pub code: String,
    pub window_secs: i64,
    #[schema(format = DateTime)]
    pub rotates_at: String,
    #[schema(format = DateTime)]
    pub accepted_until: String,
    #[schema(format = DateTime)]
    pub session_expires_at: String,
}

/// `POST /v1/codes/live/verify` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LiveVerifyRequest {
    pub session_id: String,
    #[schema(pattern = "^[0-9]{4}$")]
    pub code: String,
}

/// The account as its owner sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountView {
    pub name: String,
    pub display_name: String,
    pub region: String,
    #[schema(minimum = 0, maximum = 4)]
    pub level: i64,
    pub level_name: &'static str,
    pub device_key_fingerprint: Option<String>,
}

/// `PUT /v1/codes/device-key` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceKeyRequest {
    /// Ed25519 public key: base64 of 32 bytes, or PEM.
    pub public_key: String,
}

/// A registered device key.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceRegistered {
    pub device_key_fingerprint: String,
    #[schema(minimum = 0, maximum = 4)]
    pub level: i64,
    pub level_name: &'static str,
}

/// A level change made by the system.
#[derive(Debug, Clone, Serialize)]
pub struct LevelChanged {
    pub tenant: String,
    pub from_level: u8,
    pub level: u8,
    pub level_name: &'static str,
    pub event_id: String,
    pub device_key_fingerprint: Option<String>,
}

impl Services {
    /// The region's code secret: from the cache, else unwrapped from the database by the key
    /// provider, else (when `create`) freshly generated by the key provider and stored
    /// wrapped. `None` when the region has none and `create` is false (no code can exist
    /// there).
    async fn code_key(&self, region: &str, create: bool) -> Result<Option<CodeKey>> {
        if let Some(k) = self.code_keys.get(region) {
            return Ok(Some(k));
        }
        let stored = match self.db.code_key(region).await? {
            Some(w) => w,
            None if create => {
                let (keys, r) = (self.keys.clone(), region.to_string());
                let wrapped = tokio::task::spawn_blocking(move || keys.generate_data_key(&r))
                    .await??
                    .1;
                // Another instance may have stored one first: everyone uses the stored one.
                self.db
                    .insert_code_key(region, &b64().encode(wrapped.to_bytes()))
                    .await?
            }
            None => return Ok(None),
        };
        let wrapped = b64()
            .decode(stored)
            .ok()
            .and_then(|b| WrappedKey::from_bytes(&b).ok())
            .ok_or_else(|| ServiceError::internal("stored code key is malformed"))?;
        let (keys, r) = (self.keys.clone(), region.to_string());
        let dek = tokio::task::spawn_blocking(move || keys.unwrap_data_key(&wrapped, &r)).await??;
        let key = CodeKey::from_bytes(*dek);
        self.code_keys.insert(region, key.clone());
        Ok(Some(key))
    }

    /// The code key of a region this installation serves, made on first use.
    async fn issuing_key(&self, region: &str) -> Result<CodeKey> {
        self.code_key(region, true)
            .await?
            .ok_or_else(|| ServiceError::internal("no code key"))
    }

    /// Issue a message code for `tenant`.
    pub async fn issue_code(
        &self,
        tenant: &Tenant,
        actor: &Actor,
        req: IssueRequest,
    ) -> Result<IssuedCode> {
        let res = self.issue_inner(tenant, actor, req).await;
        match &res {
            Ok(v) => {
                let detail = format!("level={} device_signed={}", v.level, v.device_signed);
                self.audit_detail(actor, "code.issue", &v.id, Outcome::Ok, &detail)
                    .await
            }
            Err(e) => {
                self.audit_detail(actor, "code.issue", &tenant.id, Outcome::Refused, e.code())
                    .await
            }
        }
        res
    }

    async fn issue_inner(
        &self,
        tenant: &Tenant,
        actor: &Actor,
        req: IssueRequest,
    ) -> Result<IssuedCode> {
        let now = self.clock.now_ms();
        let msg = message_hash(&req.message, &req.message_sha256)?;
        let recipient = check_recipient(&req.recipient)?;
        self.serves(&tenant.region)?;
        let account = self.db.code_account(&tenant.id).await?;
        let level = level_of(&account)?;
        let mut by_passkey = None;
        let (code, expires_ms, signature) = if let Some(proof) = &req.presence {
            if req.code.is_some()
                || req.expires_at.is_some()
                || req.signature.is_some()
                || req.ttl_days.is_some()
            {
                return Err(invalid(
                    "with presence, the code and its expiry come from the presence challenge: send no code, expires_at, signature or ttl_days",
                ));
            }
            // A member signed in to the dashboard mints with their own passkeys only.
            let member = match actor {
                Actor::Member(id) => Some(id.as_str()),
                _ => None,
            };
            let m = self
                .check_presence(tenant, member, proof, &msg, recipient)
                .await?;
            let out = (m.code, m.expires_ms, None);
            by_passkey = Some(m);
            out
        } else if matches!(actor, Actor::Member(_)) || self.presence_required(account.presence) {
            // A member's session mints only with the member's passkey, whatever the account's
            // setting: it holds nothing else that could vouch for the code.
            return Err(ServiceError::Forbidden {
                code: "presence_required",
                message: "minting needs a member present: POST /v1/codes/presence, sign its challenge with a passkey, send the assertion as presence".into(),
            });
        } else if level == Level::DEVICE_BOUND {
            self.device_minted(&account, &req, &msg, recipient, now)?
        } else {
            self.minted_here(&req, now)?
        };
        let key = self.issuing_key(&tenant.region).await?;
        let (created_at, _) = meta::at_ms(now);
        let (expires_at, expires_ms) = meta::at_ms(expires_ms);
        let row = MessageCodeRow {
            id: uuid::Uuid::now_v7().to_string(),
            tenant_id: tenant.id.clone(),
            region: tenant.region.clone(),
            code_tag: key.code_tag(code),
            message_sha256: msg,
            recipient_tag: key.recipient_tag(recipient),
            signature: signature.clone(),
            created_at: created_at.clone(),
            expires_at: expires_at.clone(),
            expires_ms,
            used_ms: None,
            revoked_ms: None,
            member_id: by_passkey.as_ref().map(|m| m.member_id.clone()),
            passkey_id: by_passkey.as_ref().map(|m| m.passkey_id.clone()),
            assertion: by_passkey.map(|m| m.assertion),
        };
        let cap = self.mint_cap();
        let since = meta::at_ms(now - 3_600_000).0;
        let reached = self
            .db
            .insert_message_code(&row, &since, cap)
            .await
            .map_err(|e| match e {
                DbError::Conflict(_) => {
                    ServiceError::conflict("conflict", "this code already exists; mint another")
                }
                other => other.into(),
            })?;
        if let Some(reached) = reached {
            return Err(quota_exceeded(reached, cap));
        }
        let device_signed = row.signature.is_some() || row.assertion.is_some();
        Ok(IssuedCode {
            id: row.id,
            code: code.to_string(),
            region: row.region,
            created_at,
            expires_at,
            level: account.level,
            level_name: level.name(),
            device_signed,
        })
    }

    /// The hourly mint caps, per account and per member.
    fn mint_cap(&self) -> MintCap {
        MintCap {
            account: i64::from(self.codes.max_codes_per_hour),
            member: i64::from(self.codes.max_codes_per_member_hour),
        }
    }

    /// 429 now when `tenant` (or `member`) has reached its cap: asked before a member's
    /// gesture, so no presence is spent on a code that could not be minted.
    pub(crate) async fn mint_caps_allow(
        &self,
        tenant: &Tenant,
        member: Option<&str>,
    ) -> Result<()> {
        let cap = self.mint_cap();
        let since = meta::at_ms(self.clock.now_ms() - 3_600_000).0;
        match self
            .db
            .mint_cap_reached(&tenant.id, member, &since, cap)
            .await?
        {
            Some(reached) => Err(quota_exceeded(reached, cap)),
            None => Ok(()),
        }
    }

    /// A level-4 account's code: minted and signed on its device; checked here.
    fn device_minted(
        &self,
        account: &CodeAccount,
        req: &IssueRequest,
        msg: &str,
        recipient: &str,
        now: i64,
    ) -> Result<(MessageCode, i64, Option<String>)> {
        let max_days = self.codes.message_ttl_days;
        let (Some(code), Some(expires_at), Some(signature)) =
            (&req.code, &req.expires_at, &req.signature)
        else {
            return Err(ServiceError::Forbidden {
                code: "signature_required",
                message: "a level-4 account's codes must be minted and signed on its device (code, expires_at, signature)".into(),
            });
        };
        let code = parse_code(code)?;
        let expires_s =
            time::OffsetDateTime::parse(expires_at, &time::format_description::well_known::Rfc3339)
                .map_err(|_| invalid("expires_at must be RFC 3339"))?
                .unix_timestamp();
        let expires_ms = expires_s.saturating_mul(1000);
        if expires_ms <= now || expires_ms > now + max_days * DAY_MS {
            return Err(invalid(format!(
                "expires_at must be in the future and at most {max_days} days away"
            )));
        }
        if req.ttl_days.is_some() {
            return Err(invalid(
                "a device-minted code carries expires_at, not ttl_days",
            ));
        }
        let vk = account
            .device_key
            .as_deref()
            .and_then(|k| parse_public_key(k).ok())
            .ok_or_else(|| ServiceError::internal("level-4 account without a usable device key"))?;
        SignedCode {
            code,
            message_sha256: msg.to_string(),
            recipient_sha256: recipient_sha256(recipient),
            expires_s,
        }
        .verify(&vk, signature)
        .map_err(|e| ServiceError::invalid("invalid_signature", e.to_string()))?;
        Ok((code, expires_ms, Some(signature.trim().to_string())))
    }

    /// A code minted here (levels 0–3).
    fn minted_here(
        &self,
        req: &IssueRequest,
        now: i64,
    ) -> Result<(MessageCode, i64, Option<String>)> {
        let max_days = self.codes.message_ttl_days;
        if req.code.is_some() || req.expires_at.is_some() || req.signature.is_some() {
            return Err(invalid(
                "code, expires_at and signature are for level-4 accounts (device-minted codes)",
            ));
        }
        let days = req.ttl_days.unwrap_or(max_days);
        if !(1..=max_days).contains(&days) {
            return Err(invalid(format!("ttl_days must be 1 to {max_days}")));
        }
        let code = MessageCode::random().map_err(|e| ServiceError::internal(e.to_string()))?;
        Ok((code, now + days * DAY_MS, None))
    }

    /// Verify a message code; a `valid` verdict happens exactly once per code.
    pub async fn verify_code(&self, actor: &Actor, req: VerifyRequest) -> Result<CodeVerdict> {
        let now = self.clock.now_ms();
        let code = parse_code(&req.code)?;
        let msg = message_hash(&req.message, &req.message_sha256)?;
        let recipient = check_recipient(&req.recipient)?;
        // The code does not say its region: try each served region's secret (a keyed lookup each).
        let mut found = None;
        let regions: Vec<String> = self.blobs.regions().map(String::from).collect();
        for region in regions {
            if let Some(key) = self.code_key(&region, false).await?
                && let Some(row) = self.db.message_code_by_tag(&key.code_tag(code)).await?
            {
                found = Some((row, key));
                break;
            }
        }
        let Some((row, key)) = found else {
            self.audit_detail(actor, "code.verify", "-", Outcome::Refused, "unknown")
                .await;
            return Ok(CodeVerdict::unknown(CodeKind::Message));
        };
        let account = self.db.code_account(&row.tenant_id).await?;
        let rtag = key.recipient_tag(recipient);
        let judge = |r: &MessageCodeRow| {
            StoredCode {
                message_sha256: &r.message_sha256,
                recipient_tag: &r.recipient_tag,
                expires_ms: r.expires_ms,
                used: r.used_ms.is_some(),
                revoked: r.revoked_ms.is_some(),
            }
            .judge(&msg, &rtag, now)
        };
        let mut verdict = judge(&row);
        let mut signature = None;
        if verdict == Verdict::Valid && (row.signature.is_some() || row.assertion.is_some()) {
            // Checked again at every verification: a row edited in the database, or a key
            // replaced since, does not verify.
            let data = SignedCode {
                code,
                message_sha256: msg.clone(),
                recipient_sha256: recipient_sha256(recipient),
                expires_s: row.expires_ms.div_euclid(1000),
            };
            signature = self.signature_holds(&row, &account, &data).await?;
            if signature.is_none() {
                verdict = Verdict::InvalidSignature;
            }
        }
        // The one-time claim and its audit entry land together (one transaction), or neither.
        let claimed = verdict == Verdict::Valid
            && self
                .db
                .claim_message_code_audited(&row.id, now, &actor.to_string())
                .await?;
        if verdict == Verdict::Valid && !claimed {
            // Lost the one-time claim (a concurrent verify, or a revoke in between).
            let fresh = self.db.message_code(&row.id).await?;
            verdict = match judge(&fresh) {
                Verdict::Valid => Verdict::Used,
                v => v,
            };
        }
        if !claimed {
            self.audit_detail(
                actor,
                "code.verify",
                &row.id,
                outcome(verdict),
                verdict.as_str(),
            )
            .await;
        }
        let signed = signature.is_some() && verdict == Verdict::Valid;
        Ok(CodeVerdict {
            verdict,
            kind: CodeKind::Message,
            account: Some(IssuerView::of(&account, signed)),
            issued_at: Some(row.created_at),
            expires_at: Some(row.expires_at),
            device_signed: Some(signed),
            signature: signature.filter(|_| signed),
        })
    }

    /// The stored device signature of a code, checked again now: `Some` with what was checked
    /// when it holds.
    async fn signature_holds(
        &self,
        row: &MessageCodeRow,
        account: &CodeAccount,
        data: &SignedCode,
    ) -> Result<Option<CodeSignature>> {
        if let Some(a) = &row.assertion {
            let key_id = row.passkey_id.as_deref().unwrap_or_default();
            return self
                .passkey_signature_holds(&row.tenant_id, key_id, a, &data.passkey_challenge())
                .await;
        }
        let Some(sig) = &row.signature else {
            return Ok(None);
        };
        let Some(vk) = account
            .device_key
            .as_deref()
            .and_then(|k| parse_public_key(k).ok())
        else {
            return Ok(None);
        };
        Ok(data.verify(&vk, sig).is_ok().then(|| CodeSignature {
            kind: SignatureKind::DeviceKey,
            checked: vec!["signature"],
            key_id: pixseal_codes::fingerprint(&vk),
            algorithm: "Ed25519",
            public_key: None,
            rp_id: None,
            assertion: None,
        }))
    }

    /// A stored passkey assertion (with the RP ID it was made for) checked again now against
    /// `tenant`'s passkey `key_id` and `challenge`: `Some` with what was checked when it holds.
    async fn passkey_signature_holds(
        &self,
        tenant: &str,
        key_id: &str,
        assertion: &str,
        challenge: &[u8; 32],
    ) -> Result<Option<CodeSignature>> {
        let stored: serde_json::Value = serde_json::from_str(assertion).unwrap_or_default();
        let rp_id = stored["rp_id"].as_str().unwrap_or_default().to_string();
        let Ok(assertion) =
            serde_json::from_value::<pixseal_codes::passkey::PasskeyAssertion>(stored)
        else {
            return Ok(None);
        };
        let Some(key_row) = self
            .db
            .passkey(key_id)
            .await?
            .filter(|k| k.tenant_id == tenant)
        else {
            return Ok(None);
        };
        let Ok(key) = pixseal_codes::passkey::PasskeyKey::parse(&key_row.public_key) else {
            return Ok(None);
        };
        if assertion.recheck(&rp_id, &key, challenge).is_err()
            || assertion.credential_id().ok()
                != base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(&key_row.id)
                    .ok()
        {
            return Ok(None);
        }
        Ok(Some(CodeSignature {
            kind: SignatureKind::Passkey,
            checked: PASSKEY_CHECKS.to_vec(),
            key_id: key_row.id,
            algorithm: key.algorithm(),
            public_key: Some(key.to_text()),
            rp_id: Some(rp_id),
            assertion: Some(assertion),
        }))
    }

    /// The outstanding message codes of `tenant` (unused, unrevoked, unexpired), newest first.
    pub async fn list_codes(&self, tenant: &Tenant) -> Result<OutstandingCodes> {
        let now = self.clock.now_ms();
        let mut rows = self
            .db
            .outstanding_message_codes(&tenant.id, now, LIST_LIMIT + 1)
            .await?;
        let truncated = rows.len() as i64 > LIST_LIMIT;
        rows.truncate(LIST_LIMIT as usize);
        Ok(OutstandingCodes {
            codes: rows
                .into_iter()
                .map(|r| OutstandingCode {
                    device_signed: r.signature.is_some() || r.assertion.is_some(),
                    id: r.id,
                    region: r.region,
                    message_sha256: r.message_sha256,
                    created_at: r.created_at,
                    expires_at: r.expires_at,
                })
                .collect(),
            truncated,
        })
    }

    /// `pixseal codes flagged`: accounts that issued at least `min_issued` message codes in the
    /// last `hours`, of which at most `max_verified_percent` % were verified — high volume, low
    /// engagement — most issued first, for an administrator to look at.
    pub async fn flagged_code_accounts(
        &self,
        hours: i64,
        min_issued: i64,
        max_verified_percent: u8,
    ) -> Result<Vec<FlaggedAccount>> {
        if !(1..=24 * 30).contains(&hours) || min_issued < 1 || max_verified_percent > 100 {
            return Err(ServiceError::invalid(
                "invalid_request",
                "hours 1..=720, min issued >= 1, max verified percent 0..=100",
            ));
        }
        let since = meta::at_ms(self.clock.now_ms() - hours * 3_600_000).0;
        Ok(self
            .db
            .code_volume_since(&since, min_issued)
            .await?
            .into_iter()
            .filter(|(_, _, issued, verified)| {
                verified * 100 <= issued * i64::from(max_verified_percent)
            })
            .map(|(tenant_id, tenant, issued, verified)| FlaggedAccount {
                tenant_id,
                tenant,
                issued,
                verified,
            })
            .collect())
    }

    /// Revoke one outstanding message code of `tenant`: from now on it verifies as `revoked`.
    /// Anyone else's code, or one already used, revoked or expired, is `NotFound`.
    pub async fn revoke_code(
        &self,
        tenant: &Tenant,
        id: &str,
        actor: &Actor,
    ) -> Result<RevokedCode> {
        let now = self.clock.now_ms();
        if !self.db.revoke_message_code(&tenant.id, id, now).await? {
            return Err(ServiceError::NotFound);
        }
        self.audit(actor, "code.revoke", id, Outcome::Ok).await;
        Ok(RevokedCode {
            id: id.to_owned(),
            revoked_at: meta::at_ms(now).0,
        })
    }

    /// Revoke every outstanding code of `tenant` (message codes and live sessions) at once.
    pub async fn revoke_all_codes(&self, tenant: &Tenant, actor: &Actor) -> Result<RevokedCodes> {
        let now = self.clock.now_ms();
        let (m, l) = self.db.revoke_all_codes(&tenant.id, now).await?;
        let detail = format!("message={m} live={l}");
        self.audit_detail(actor, "code.revoke_all", &tenant.id, Outcome::Ok, &detail)
            .await;
        Ok(RevokedCodes {
            revoked_message_codes: m,
            revoked_live_sessions: l,
            revoked_at: meta::at_ms(now).0,
        })
    }

    /// The current live code of a call session (a new session when none is named).
    pub async fn live_code(
        &self,
        tenant: &Tenant,
        actor: &Actor,
        req: LiveRequest,
    ) -> Result<LiveCode> {
        let now = self.clock.now_ms();
        self.serves(&tenant.region)?;
        let session = match req.session_id {
            None => match self
                .start_live(tenant, actor, req.presence.as_ref(), now)
                .await
            {
                Ok(s) => s,
                Err(e) => {
                    self.audit_detail(
                        actor,
                        "code.live.start",
                        &tenant.id,
                        Outcome::Refused,
                        e.code(),
                    )
                    .await;
                    return Err(e);
                }
            },
            Some(_) if req.presence.is_some() => {
                return Err(invalid(
                    "presence starts a session: send it without session_id",
                ));
            }
            Some(id) => {
                let s = self
                    .db
                    .live_session(id.trim())
                    .await?
                    .filter(|s| s.tenant_id == tenant.id)
                    .ok_or(ServiceError::NotFound)?;
                if s.revoked_ms.is_some() {
                    return Err(ServiceError::Gone {
                        code: "revoked",
                        message: "this call session was revoked".into(),
                    });
                }
                if s.expires_ms <= now {
                    return Err(ServiceError::Gone {
                        code: "expired",
                        message: "this call session has ended".into(),
                    });
                }
                s
            }
        };
        let key = self.issuing_key(&tenant.region).await?;
        let c = live::counter(now);
        let code = live::code(&key, &tenant.id, &session.id, c);
        self.audit(actor, "code.live.issue", &session.id, Outcome::Ok)
            .await;
        Ok(LiveCode {
            session_id: session.id,
            code,
            window_secs: live::WINDOW_MS / 1000,
            rotates_at: meta::at_ms(live::window_end_ms(c)).0,
            accepted_until: meta::at_ms(live::window_end_ms(c + 1)).0,
            session_expires_at: meta::at_ms(session.expires_ms).0,
        })
    }

    /// A new call session: signed by a member's passkey when `presence` is given, which it must
    /// be where the account's codes need presence, and always for a member.
    async fn start_live(
        &self,
        tenant: &Tenant,
        actor: &Actor,
        presence: Option<&crate::passkeys::LivePresenceProof>,
        now: i64,
    ) -> Result<LiveSession> {
        let account = self.db.code_account(&tenant.id).await?;
        let member = match actor {
            Actor::Member(id) => Some(id.as_str()),
            _ => None,
        };
        let (id, expires_ms, presented) = match presence {
            Some(p) => {
                let (id, expires_ms, presented) =
                    self.check_live_presence(tenant, member, p).await?;
                (id, expires_ms, Some(presented))
            }
            None if member.is_some() || self.presence_required(account.presence) => {
                return Err(ServiceError::Forbidden {
                    code: "presence_required",
                    message: "a call session needs a member present: POST /v1/codes/live/presence, sign its challenge with a passkey, send the assertion as presence".into(),
                });
            }
            None => (
                new_live_session_id()?,
                now + self.codes.live_session_minutes * 60_000,
                None,
            ),
        };
        let s = LiveSession {
            id,
            tenant_id: tenant.id.clone(),
            region: tenant.region.clone(),
            created_at: meta::at_ms(now).0,
            created_ms: now,
            expires_ms,
            revoked_ms: None,
            attempts: 0,
            lock_level: 0,
            locked_until_ms: 0,
            last_ok_counter: -1,
            member_id: presented.as_ref().map(|p| p.member_id.clone()),
            passkey_id: presented.as_ref().map(|p| p.passkey_id.clone()),
            assertion: presented.map(|p| p.assertion),
        };
        self.db.insert_live_session(&s).await?;
        let detail = match &s.member_id {
            Some(m) => format!("presence member={m}"),
            None => "presence none".to_string(),
        };
        self.audit_detail(actor, "code.live.start", &s.id, Outcome::Ok, &detail)
            .await;
        Ok(s)
    }

    /// Verify a live call code against its session, under the failure cap.
    pub async fn verify_live_code(
        &self,
        actor: &Actor,
        req: LiveVerifyRequest,
    ) -> Result<CodeVerdict> {
        let now = self.clock.now_ms();
        let typed = req.code.trim();
        if typed.len() != live::DIGITS as usize || !typed.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ServiceError::invalid(
                "invalid_code",
                "a live code is 4 digits",
            ));
        }
        let sid = req.session_id.trim();
        let session = if sid.len() <= 64 {
            self.db.live_session(sid).await?
        } else {
            None
        };
        let Some(session) = session else {
            self.audit_detail(actor, "code.live.verify", "-", Outcome::Refused, "unknown")
                .await;
            return Ok(CodeVerdict::unknown(CodeKind::Live));
        };
        // A session started with a passkey: its signature checked again first, so a session
        // whose stored assertion no longer holds spends no try and claims no window.
        let mut signature = None;
        let mut broken = false;
        if let (Some(a), Some(k)) = (&session.assertion, &session.passkey_id) {
            let challenge = live::passkey_challenge(&session.id, session.expires_ms / 1000);
            signature = self
                .passkey_signature_holds(&session.tenant_id, k, a, &challenge)
                .await?
                .map(|s| CodeSignature {
                    kind: SignatureKind::SessionPasskey,
                    ..s
                });
            broken = signature.is_none();
        }
        let verdict = if broken {
            Verdict::InvalidSignature
        } else {
            self.judge_live(actor, &session, typed, now).await?
        };
        let account = self.db.code_account(&session.tenant_id).await?;
        self.audit_detail(
            actor,
            "code.live.verify",
            &session.id,
            outcome(verdict),
            verdict.as_str(),
        )
        .await;
        // Live codes are the server's, whoever started the session: never device-signed, at
        // most level 3; the session's signature says who started it.
        Ok(CodeVerdict {
            verdict,
            account: Some(IssuerView::of(&account, false)),
            device_signed: Some(false),
            signature: signature.filter(|_| verdict == Verdict::Valid),
            ..CodeVerdict::unknown(CodeKind::Live)
        })
    }

    /// One attempt at a live session: reserved under the cap, then checked; a miss that
    /// reaches the cap locks the session.
    async fn judge_live(
        &self,
        actor: &Actor,
        session: &LiveSession,
        typed: &str,
        now: i64,
    ) -> Result<Verdict> {
        let max = i64::from(self.codes.live_max_failures);
        let Some((attempts, lock_level)) =
            self.db.reserve_live_attempt(&session.id, now, max).await?
        else {
            let fresh = self
                .db
                .live_session(&session.id)
                .await?
                .unwrap_or(session.clone());
            return Ok(if fresh.revoked_ms.is_some() {
                Verdict::Revoked
            } else if fresh.expires_ms <= now {
                Verdict::Expired
            } else {
                Verdict::Locked
            });
        };
        let key = self
            .code_key(&session.region, false)
            .await?
            .ok_or_else(|| ServiceError::internal("live session without a code key"))?;
        let first = live::counter(session.created_ms);
        match live::check(&key, &session.tenant_id, &session.id, now, first, typed) {
            Some(counter) => {
                if self.db.live_success(&session.id, counter).await? {
                    Ok(Verdict::Valid)
                } else {
                    self.db.release_live_attempt(&session.id).await?;
                    Ok(Verdict::Used)
                }
            }
            None => {
                if attempts >= max {
                    let level = u32::try_from(lock_level).unwrap_or(u32::MAX);
                    let until = live::locked_until_ms(now, level);
                    self.db
                        .lock_live_session(&session.id, lock_level, until)
                        .await?;
                    let detail = format!("level={lock_level}");
                    self.audit_detail(actor, "code.live.lock", &session.id, Outcome::Ok, &detail)
                        .await;
                }
                Ok(Verdict::Mismatch)
            }
        }
    }

    /// The account as its owner sees it.
    pub async fn code_account(&self, tenant: &Tenant) -> Result<AccountView> {
        let a = self.db.code_account(&tenant.id).await?;
        let fp = a
            .device_key
            .as_deref()
            .and_then(|k| parse_public_key(k).ok())
            .map(|vk| pixseal_codes::fingerprint(&vk));
        Ok(AccountView {
            level_name: level_of(&a)?.name(),
            name: a.tenant_name,
            display_name: a.display_name,
            region: a.region,
            level: a.level,
            device_key_fingerprint: fp,
        })
    }

    /// Register the account's device key (base64 or PEM). A level-4 account drops to level 3:
    /// a new key is not vetted, so a stolen API key can at worst lower the level, never mint
    /// level-4 codes.
    pub async fn register_device(
        &self,
        tenant: &Tenant,
        actor: &Actor,
        public_key: &str,
    ) -> Result<DeviceRegistered> {
        let vk = parse_public_key(public_key).map_err(|e| invalid(e.to_string()))?;
        let before = self.db.code_account(&tenant.id).await?.level;
        let level = self
            .db
            .set_device_key(&tenant.id, &pixseal_codes::public_key_text(&vk))
            .await?;
        let fp = pixseal_codes::fingerprint(&vk);
        let detail = format!("fingerprint={fp} level={before}->{level}");
        self.audit_detail(actor, "code.device_key", &tenant.id, Outcome::Ok, &detail)
            .await;
        Ok(DeviceRegistered {
            device_key_fingerprint: fp,
            level,
            level_name: level_name(level),
        })
    }

    /// The system (an administrator, through the CLI) changes an account's level: up one step
    /// or down any, with evidence that is sealed and kept, and an audit entry. No HTTP route
    /// calls this: an account cannot raise its own level.
    pub async fn set_code_level(
        &self,
        tenant: &Tenant,
        to: i64,
        evidence: &str,
        display_name: Option<&str>,
        actor: &Actor,
    ) -> Result<LevelChanged> {
        let a = self.db.code_account(&tenant.id).await?;
        let from = level_of(&a)?;
        let to = Level::new(to).map_err(|e| invalid(e.to_string()))?;
        if let Some(d) = display_name
            && (d.trim().is_empty() || d.len() > 100 || d.chars().any(char::is_control))
        {
            return Err(invalid(
                "display name: 1–100 characters, no control characters",
            ));
        }
        let vk = a
            .device_key
            .as_deref()
            .and_then(|k| parse_public_key(k).ok());
        // Level 4 vouches for codes signed on a device: the device key, or a member's passkey.
        let has_passkey = self
            .db
            .passkeys(&tenant.id)
            .await?
            .iter()
            .any(|k| k.revoked_at.is_none());
        from.change_to(to, vk.is_some() || has_passkey, evidence)
            .map_err(|e| ServiceError::invalid("level_not_allowed", e.to_string()))?;
        let id = uuid::Uuid::now_v7().to_string();
        // The account's evidence is its data: under its own master key when it has one.
        let keys = self.sealing_keys(&tenant.id, &tenant.region).await?;
        let (region, ctx, ev) = (
            tenant.region.clone(),
            format!("code_level_events.evidence.{id}"),
            evidence.trim().to_string(),
        );
        let sealed = self
            .with_keys(&tenant.id, keys, move |k| {
                pixseal_seal::seal_field(k, &region, &ctx, ev.as_bytes())
            })
            .await?;
        let fp = (to == Level::DEVICE_BOUND)
            .then(|| vk.map(|v| pixseal_codes::fingerprint(&v)))
            .flatten();
        let event = LevelEvent {
            id: id.clone(),
            tenant_id: tenant.id.clone(),
            from_level: i64::from(from.get()),
            to_level: i64::from(to.get()),
            evidence_sealed: sealed,
            device_key_fingerprint: fp.clone(),
            at: meta::at_ms(self.clock.now_ms()).0,
        };
        self.db
            .change_code_level(&event, display_name.map(str::trim))
            .await
            .map_err(|e| match e {
                DbError::Conflict(m) => ServiceError::conflict("conflict", m),
                other => other.into(),
            })?;
        let device = fp
            .as_ref()
            .map(|f| format!(" device={f}"))
            .unwrap_or_default();
        let detail = format!("{}->{} event={id}{device}", from.get(), to.get());
        self.audit_detail(actor, "code.level", &tenant.id, Outcome::Ok, &detail)
            .await;
        Ok(LevelChanged {
            tenant: tenant.name.clone(),
            from_level: from.get(),
            level: to.get(),
            level_name: to.name(),
            event_id: id,
            device_key_fingerprint: fp,
        })
    }
}
