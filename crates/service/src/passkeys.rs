//! Members and their passkeys: enrollment by an administrator's one-time token, WebAuthn
//! registration, listing and revocation, and the presence challenge a code is minted with
//! (`POST /v1/codes/presence`, then `POST /v1/codes` with the assertion). The checks are
//! pixseal-codes'; this module keeps the ceremonies in the database so any instance can finish
//! what another started.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use pixseal_codes::passkey::{
    self, PasskeyAssertion, PasskeyError, PasskeyKey, PasskeyPolicy, aaguid_text, parse_aaguid,
};
use pixseal_codes::{MessageCode, SignedCode, recipient_sha256};
use pixseal_store::{Ceremony, CeremonyKind, DbError, Member, PasskeyRow, Presence, Tenant, meta};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::DAY_MS;
use crate::dashboard::{Session, SessionKind};
use crate::pickup::{new_token, token_hash};
use crate::{Actor, Caller, Outcome, Result, ServiceError, Services};

/// How long an enrollment token is good for.
const ENROLLMENT_MS: i64 = DAY_MS;
/// How long a ceremony waits for the authenticator (WebAuthn's usual 5 minutes).
const CEREMONY_MS: i64 = 300_000;
/// Passkey sign-ins under way at once, over every address: each is a row for five minutes.
pub const MAX_SIGN_INS: i64 = 10_000;

/// A member enrolled (or re-enrolled) by an administrator.
#[derive(Debug, Clone, Serialize)]
pub struct Enrollment {
    pub member_id: String,
    pub member: String,
    pub tenant: String,
    /// One-time, shown once: the member registers a passkey with it.
    pub enrollment_token: String,
    pub expires_at: String,
}

/// `POST /v1/passkeys/registrations` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationRequest {
    /// The one-time token from `pixseal codes enroll`.
    pub enrollment_token: String,
}

/// Options for `navigator.credentials.create({ publicKey })`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegistrationOptions {
    pub member: String,
    /// `PublicKeyCredentialCreationOptionsJSON` (W3C WebAuthn level 3).
    #[schema(value_type = Object)]
    pub public_key: serde_json::Value,
}

/// A registered passkey as its account sees it (nothing secret, nothing biometric).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PasskeyView {
    /// The credential ID (base64url).
    pub id: String,
    pub member: String,
    /// `EdDSA`, `ES256` or `ES384`.
    pub algorithm: &'static str,
    /// The authenticator model the passkey reported.
    pub aaguid: String,
    pub fingerprint: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(nullable = false, format = DateTime)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    #[schema(nullable = false, format = DateTime)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// A member and their passkeys.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MemberView {
    pub id: String,
    pub name: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub passkeys: Vec<PasskeyView>,
}

/// `GET /v1/members`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Members {
    /// Whether this account's codes need a passkey assertion to be minted.
    pub presence_required: bool,
    pub members: Vec<MemberView>,
}

/// `POST /v1/codes/presence` body: the code to be minted.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresenceRequest {
    #[schema(nullable = false)]
    pub message: Option<String>,
    #[schema(nullable = false, pattern = "^[0-9a-fA-F]{64}$")]
    pub message_sha256: Option<String>,
    #[schema(max_length = 320)]
    pub recipient: String,
    #[schema(nullable = false, minimum = 1)]
    pub ttl_days: Option<i64>,
}

/// What a member's authenticator is asked to sign: the challenge is the SHA-256 of the code
/// data (docs/codes.md, "Passkeys"), so the assertion is the code's signature.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PresenceChallenge {
    /// Send back as `presence.id` with the assertion.
    pub presence_id: String,
    /// The code to be minted; it becomes valid only with the assertion.
    #[schema(example = "7K3M-9QWX-R2TB-F")]
    pub code: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// `PublicKeyCredentialRequestOptionsJSON` for `navigator.credentials.get({ publicKey })`.
    #[schema(value_type = Object)]
    pub public_key: serde_json::Value,
}

/// `presence` in `POST /v1/codes`: the challenge answered.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresenceProof {
    pub id: String,
    #[schema(example = "7K3M-9QWX-R2TB-F")]
    pub code: String,
    /// The `PublicKeyCredential` (`toJSON()`) the authenticator returned.
    #[schema(value_type = Object)]
    pub credential: PasskeyAssertion,
}

/// Options for a dashboard sign-in with a passkey (`navigator.credentials.get`): any of this
/// site's discoverable passkeys may answer; the one chosen says whose account it is.
#[derive(Debug, Clone, Serialize)]
pub struct SignInChallenge {
    /// Send back with the assertion.
    pub sign_in_id: String,
    /// `PublicKeyCredentialRequestOptionsJSON`.
    pub public_key: serde_json::Value,
}

/// A sign-in's answer: the challenge's id and the assertion.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInProof {
    pub sign_in_id: String,
    pub credential: PasskeyAssertion,
}

/// `POST /v1/codes/live/presence`: a call session to start, once a member's passkey signs it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LivePresenceChallenge {
    /// Send back as `presence.id` with the assertion.
    pub presence_id: String,
    /// The session to be started; it exists only once started with the assertion.
    #[schema(example = "ls_0H8Z4K2M9QW3R")]
    pub session_id: String,
    #[schema(format = DateTime)]
    pub session_expires_at: String,
    /// `PublicKeyCredentialRequestOptionsJSON`; the challenge is `live::passkey_challenge`.
    #[schema(value_type = Object)]
    pub public_key: serde_json::Value,
}

/// `presence` in `POST /v1/codes/live`: the live challenge answered.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LivePresenceProof {
    pub id: String,
    pub session_id: String,
    /// The `PublicKeyCredential` (`toJSON()`) the authenticator returned.
    #[schema(value_type = Object)]
    pub credential: PasskeyAssertion,
}

/// Who vouched for a code or a session: the member, the passkey, the assertion (with the RP ID
/// it was made for) that is its signature.
pub(crate) struct Presented {
    pub member_id: String,
    pub passkey_id: String,
    pub assertion: String,
}

/// A code minted with a passkey, as checked here.
pub(crate) struct PasskeyMinted {
    pub code: MessageCode,
    pub expires_ms: i64,
    pub member_id: String,
    pub passkey_id: String,
    pub assertion: String,
}

/// What revoking a passkey did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RevokedPasskey {
    pub id: String,
}

pub(crate) fn passkey_refused(e: PasskeyError) -> ServiceError {
    match e {
        PasskeyError::Malformed(m) => ServiceError::invalid("invalid_webauthn_response", m),
        PasskeyError::RpId(m) => ServiceError::internal(format!("passkey relying party: {m}")),
        other => ServiceError::Forbidden {
            code: other.code(),
            message: other.to_string(),
        },
    }
}

/// The relying party passkeys are made for: `[codes].passkey_*`, else `[server].public_url`
/// (`localhost` with the same port when that is an IP address, which WebAuthn refuses).
pub fn passkey_policy(
    public_url: &str,
    codes: &pixseal_codes::CodesConfig,
) -> std::result::Result<PasskeyPolicy, String> {
    let public = public_url.trim_end_matches('/');
    let (_, host, _) =
        parts_of(public).ok_or_else(|| format!("server.public_url {public:?} has no host"))?;
    let is_ip = host.parse::<std::net::IpAddr>().is_ok();
    let host = host.to_ascii_lowercase();
    let rp_id = if !codes.passkey_rp_id.is_empty() {
        codes.passkey_rp_id.to_ascii_lowercase()
    } else if is_ip {
        "localhost".to_string()
    } else {
        host.clone()
    };
    if !passkey::valid_rp_id(&rp_id) {
        return Err(format!(
            "passkey relying party {rp_id:?} is not a domain name"
        ));
    }
    let origins = if !codes.passkey_origins.is_empty() {
        codes.passkey_origins.clone()
    } else {
        vec![site_origin(public)]
    };
    Ok(PasskeyPolicy {
        rp_id,
        origins,
        // Each checked when the configuration was loaded.
        aaguids: codes
            .passkey_aaguids
            .iter()
            .filter_map(|a| parse_aaguid(a))
            .collect(),
    })
}

/// The origin browsers give this site's pages (`[server].public_url`'s; `localhost` for an IP
/// address, where WebAuthn works at all). Empty for a URL without a host (refused at start-up).
fn site_origin(public_url: &str) -> String {
    let Some((scheme, host, port)) = parts_of(public_url.trim_end_matches('/')) else {
        return String::new();
    };
    // Browsers leave the scheme's default port out of an origin.
    let port = match (scheme, port) {
        ("https", ":443") | ("http", ":80") => "",
        (_, p) => p,
    };
    let host = if host.parse::<std::net::IpAddr>().is_ok() {
        "localhost".to_string()
    } else {
        host.to_ascii_lowercase()
    };
    format!("{scheme}://{host}{port}")
}

/// (scheme, host, ":port" or "") of a base URL.
fn parts_of(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (h, after) = v6.split_once(']')?;
            (h, after)
        }
        None => match authority.rfind(':') {
            Some(i) => (&authority[..i], &authority[i..]),
            None => (authority, ""),
        },
    };
    Some((scheme, host, port))
}

impl Services {
    /// The relying party passkeys are made for (settled at start-up, see [`passkey_policy`]).
    pub fn passkey_policy(&self) -> &PasskeyPolicy {
        &self.passkeys
    }

    /// The same relying party with this site's own origin only: a dashboard session is opened
    /// from this site's pages, never from an integrating site trusted to mint codes.
    fn sign_in_policy(&self) -> PasskeyPolicy {
        PasskeyPolicy {
            origins: vec![site_origin(&self.config.public_url)],
            ..self.passkeys.as_ref().clone()
        }
    }

    /// Whether `tenant`'s codes need a person present to be minted.
    pub(crate) fn presence_required(&self, presence: Option<Presence>) -> bool {
        match presence {
            Some(p) => p == Presence::Required,
            None => self.codes.require_presence,
        }
    }

    /// Add a member to `tenant` (or re-enroll one, for another passkey): a one-time token, good
    /// for a day, with which the member registers a passkey. An administrator's act (CLI):
    /// an API key cannot add passkeys, so a stolen key cannot give itself presence.
    pub async fn enroll_member(
        &self,
        tenant: &Tenant,
        name: &str,
        actor: &Actor,
    ) -> Result<Enrollment> {
        let name = name.trim();
        if !passkey::valid_member_name(name) {
            return Err(ServiceError::request(
                "member name: 1–64 bytes, no spaces or control characters (it is the passkey's user name)",
            ));
        }
        let token = new_token()?;
        let now = self.clock.now_ms();
        let (expires_at, expires_ms) = meta::at_ms(now + ENROLLMENT_MS);
        let m = self
            .db
            .enroll_member(
                &Member {
                    id: uuid::Uuid::now_v7().to_string(),
                    tenant_id: tenant.id.clone(),
                    name: name.to_string(),
                    user_handle: B64URL.encode(passkey::new_user_handle()),
                    created_at: meta::at_ms(now).0,
                },
                &token_hash(&token),
                expires_ms,
            )
            .await?;
        self.audit(actor, "member.enroll", &m.id, Outcome::Ok).await;
        Ok(Enrollment {
            member_id: m.id,
            member: m.name,
            tenant: tenant.name.clone(),
            enrollment_token: token,
            expires_at,
        })
    }

    /// Start registering a passkey with an enrollment token.
    pub async fn begin_passkey_registration(
        &self,
        req: RegistrationRequest,
    ) -> Result<RegistrationOptions> {
        let now = self.clock.now_ms();
        let hash = token_hash(req.enrollment_token.trim());
        let Some(member) = self.db.member_by_enrollment(&hash, now).await? else {
            return Err(ServiceError::Forbidden {
                code: "enrollment_invalid",
                message: "this enrollment token is unknown, used or expired; ask for a new one"
                    .into(),
            });
        };
        let handle: [u8; 64] = B64URL
            .decode(&member.user_handle)
            .ok()
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| ServiceError::internal("stored user handle is malformed"))?;
        let policy = self.passkey_policy();
        let start =
            passkey::begin_registration(policy, &handle, &member.name).map_err(passkey_refused)?;
        self.db
            .insert_ceremony(&Ceremony {
                id: start.ceremony_id,
                kind: CeremonyKind::Register,
                tenant_id: member.tenant_id.clone(),
                member_id: Some(member.id.clone()),
                state: B64.encode(&start.state),
                bound: Some(hash),
                code_expires_ms: None,
                expires_ms: now + CEREMONY_MS,
            })
            .await?;
        Ok(RegistrationOptions {
            member: member.name,
            public_key: start.options,
        })
    }

    /// Finish a registration (the `RegistrationResponseJSON` the browser returned): the passkey
    /// is stored and the enrollment token spent, together.
    pub async fn finish_passkey_registration(&self, response: &[u8]) -> Result<PasskeyView> {
        let now = self.clock.now_ms();
        let id = passkey::registration_ceremony_id(response).map_err(passkey_refused)?;
        let Some(c) = self
            .db
            .take_ceremony(&id, CeremonyKind::Register, None, now)
            .await?
        else {
            return Err(ServiceError::Forbidden {
                code: "registration_unknown",
                message: "no such registration under way: it finished, expired or never began"
                    .into(),
            });
        };
        let state = B64
            .decode(&c.state)
            .map_err(|_| ServiceError::internal("stored ceremony state is malformed"))?;
        let policy = self.passkey_policy();
        let member_id = c
            .member_id
            .ok_or_else(|| ServiceError::internal("registration without a member"))?;
        let member = self.db.member(&member_id).await?;
        let actor = Actor::Member(member.id.clone());
        let new = match passkey::finish_registration(policy, &state, response) {
            Ok(n) => n,
            Err(e) => {
                self.audit_detail(
                    &actor,
                    "passkey.register",
                    &member.id,
                    Outcome::Refused,
                    e.code(),
                )
                .await;
                return Err(passkey_refused(e));
            }
        };
        let row = PasskeyRow {
            id: B64URL.encode(&new.credential_id),
            tenant_id: member.tenant_id.clone(),
            member_id: member.id.clone(),
            public_key: new.public_key.to_text(),
            sign_count: i64::from(new.sign_count),
            aaguid: aaguid_text(&new.aaguid),
            created_at: meta::at_ms(now).0,
            last_used_at: None,
            revoked_at: None,
        };
        let bound = c.bound.unwrap_or_default();
        let stored = self
            .db
            .insert_passkey(&row, &bound, now)
            .await
            .map_err(|e| match e {
                DbError::Conflict(m) => ServiceError::conflict("conflict", m),
                other => other.into(),
            })?;
        if !stored {
            return Err(ServiceError::Forbidden {
                code: "enrollment_invalid",
                message: "the enrollment token was used or replaced meanwhile".into(),
            });
        }
        let detail = format!(
            "member={} alg={} aaguid={}",
            member.id,
            new.public_key.algorithm(),
            row.aaguid
        );
        self.audit_detail(&actor, "passkey.register", &row.id, Outcome::Ok, &detail)
            .await;
        Ok(view(&row, &member.name))
    }

    /// A member's name (shown to them on the dashboard).
    pub async fn member_name(&self, id: &str) -> Result<String> {
        Ok(self.db.member(id).await?.name)
    }

    /// The account's members and their passkeys.
    pub async fn members(&self, tenant: &Tenant) -> Result<Members> {
        let account = self.db.code_account(&tenant.id).await?;
        let keys = self.db.passkeys(&tenant.id).await?;
        let members = self
            .db
            .members(&tenant.id)
            .await?
            .into_iter()
            .map(|m| MemberView {
                passkeys: keys
                    .iter()
                    .filter(|k| k.member_id == m.id)
                    .map(|k| view(k, &m.name))
                    .collect(),
                id: m.id,
                name: m.name,
                created_at: m.created_at,
            })
            .collect();
        Ok(Members {
            presence_required: self.presence_required(account.presence),
            members,
        })
    }

    /// Revoke one of the account's passkeys: it mints nothing more. Codes it signed before
    /// stay as they are (revoke those with `DELETE /v1/codes`).
    pub async fn revoke_passkey(
        &self,
        tenant: &Tenant,
        id: &str,
        actor: &Actor,
    ) -> Result<RevokedPasskey> {
        if !self.db.revoke_passkey(&tenant.id, id).await? {
            return Err(ServiceError::NotFound);
        }
        self.audit(actor, "passkey.revoke", id, Outcome::Ok).await;
        Ok(RevokedPasskey { id: id.to_string() })
    }

    /// Set whether an account's minting needs a person present (`None`: the default).
    pub async fn set_presence(
        &self,
        tenant: &Tenant,
        presence: Option<Presence>,
        actor: &Actor,
    ) -> Result<Members> {
        self.db.set_presence(&tenant.id, presence).await?;
        let detail = presence.map_or("default", Presence::as_str);
        self.audit_detail(actor, "code.presence", &tenant.id, Outcome::Ok, detail)
            .await;
        self.members(tenant).await
    }

    /// Start minting a code with a person present: the code and its expiry are fixed now, and
    /// the authenticator is asked to sign their SHA-256 — with any of the account's passkeys,
    /// or, for a member signed in to the dashboard, with one of `member`'s.
    pub async fn begin_presence(
        &self,
        tenant: &Tenant,
        member: Option<&str>,
        req: PresenceRequest,
    ) -> Result<PresenceChallenge> {
        let now = self.clock.now_ms();
        let msg = crate::codes::message_hash(&req.message, &req.message_sha256)?;
        let recipient = crate::codes::check_recipient(&req.recipient)?;
        self.serves(&tenant.region)?;
        let max_days = self.codes.message_ttl_days;
        let days = req.ttl_days.unwrap_or(max_days);
        if !(1..=max_days).contains(&days) {
            return Err(ServiceError::request(format!(
                "ttl_days must be 1 to {max_days}"
            )));
        }
        self.mint_caps_allow(tenant, member).await?;
        let code = MessageCode::random().map_err(|e| ServiceError::internal(e.to_string()))?;
        // Whole seconds: the signed data carries the expiry in seconds.
        let (expires_at, expires_ms) = meta::at_ms(now + days * DAY_MS);
        let data = SignedCode {
            code,
            message_sha256: msg,
            recipient_sha256: recipient_sha256(recipient),
            expires_s: expires_ms / 1000,
        };
        let (presence_id, public_key) = self
            .ask_presence(
                tenant,
                member,
                CeremonyKind::Mint,
                data.passkey_challenge(),
                None,
                expires_ms,
            )
            .await?;
        Ok(PresenceChallenge {
            presence_id,
            code: code.to_string(),
            expires_at,
            public_key,
        })
    }

    /// Start a live call session with a person present: the session's id and end are fixed
    /// now, and the authenticator is asked to sign them (`live::passkey_challenge`).
    pub async fn begin_live_presence(
        &self,
        tenant: &Tenant,
        member: Option<&str>,
    ) -> Result<LivePresenceChallenge> {
        self.serves(&tenant.region)?;
        let now = self.clock.now_ms();
        let session_id = crate::codes::new_live_session_id()?;
        // Whole seconds, as signed.
        let (session_expires_at, expires_ms) =
            meta::at_ms(now + self.codes.live_session_minutes * 60_000);
        let challenge = pixseal_codes::live::passkey_challenge(&session_id, expires_ms / 1000);
        let (presence_id, public_key) = self
            .ask_presence(
                tenant,
                member,
                CeremonyKind::Live,
                challenge,
                Some(session_id.clone()),
                expires_ms,
            )
            .await?;
        Ok(LivePresenceChallenge {
            presence_id,
            session_id,
            session_expires_at,
            public_key,
        })
    }

    /// Remember a presence ceremony (`challenge`, and what it is for) for five minutes: its id
    /// and the request options naming the account's (or `member`'s) active passkeys.
    async fn ask_presence(
        &self,
        tenant: &Tenant,
        member: Option<&str>,
        kind: CeremonyKind,
        challenge: [u8; 32],
        bound: Option<String>,
        expires_ms: i64,
    ) -> Result<(String, serde_json::Value)> {
        let active: Vec<PasskeyRow> = self
            .db
            .passkeys(&tenant.id)
            .await?
            .into_iter()
            .filter(|k| k.revoked_at.is_none() && member.is_none_or(|m| k.member_id == m))
            .collect();
        if active.is_empty() {
            let message = match member {
                Some(_) => "you have no passkey left: ask for a new enrollment",
                None => {
                    "this account has no passkey: enroll a member (pixseal codes enroll) and register one"
                }
            };
            return Err(ServiceError::Forbidden {
                code: "no_passkey",
                message: message.into(),
            });
        }
        let now = self.clock.now_ms();
        let id = uuid::Uuid::now_v7().to_string();
        self.db
            .insert_ceremony(&Ceremony {
                id: id.clone(),
                kind,
                tenant_id: tenant.id.clone(),
                member_id: None,
                state: hex::encode(challenge),
                bound,
                code_expires_ms: Some(expires_ms),
                expires_ms: now + CEREMONY_MS,
            })
            .await?;
        let allow: Vec<serde_json::Value> = active
            .iter()
            .map(|k| serde_json::json!({ "type": "public-key", "id": k.id }))
            .collect();
        Ok((
            id,
            serde_json::json!({
                "challenge": B64URL.encode(challenge),
                "rpId": self.passkeys.rp_id,
                "allowCredentials": allow,
                "userVerification": "required",
                "timeout": CEREMONY_MS,
            }),
        ))
    }

    /// Check a presence proof for the code `msg`/`recipient` describe: the challenge taken
    /// (once), the passkey the account's (`member`'s, when given) and unrevoked, the assertion
    /// signed over exactly this code's data with UV, its counter moved forward.
    pub(crate) async fn check_presence(
        &self,
        tenant: &Tenant,
        member: Option<&str>,
        proof: &PresenceProof,
        msg: &str,
        recipient: &str,
    ) -> Result<PasskeyMinted> {
        let code = crate::codes::parse_code(&proof.code)?;
        let signed = |c: &Ceremony| {
            SignedCode {
                code,
                message_sha256: msg.to_string(),
                recipient_sha256: recipient_sha256(recipient),
                expires_s: c.code_expires_ms.unwrap_or_default() / 1000,
            }
            .passkey_challenge()
        };
        let (c, p) = self
            .take_presence(
                tenant,
                member,
                CeremonyKind::Mint,
                &proof.id,
                &proof.credential,
                signed,
            )
            .await?;
        Ok(PasskeyMinted {
            code,
            expires_ms: c.code_expires_ms.unwrap_or_default(),
            member_id: p.member_id,
            passkey_id: p.passkey_id,
            assertion: p.assertion,
        })
    }

    /// Check a live session's presence proof: as [`Self::check_presence`], over the session's
    /// id and end. The session to start: its id, end and who vouched for it.
    pub(crate) async fn check_live_presence(
        &self,
        tenant: &Tenant,
        member: Option<&str>,
        proof: &LivePresenceProof,
    ) -> Result<(String, i64, Presented)> {
        let session = proof.session_id.trim();
        let signed = |c: &Ceremony| {
            pixseal_codes::live::passkey_challenge(
                session,
                c.code_expires_ms.unwrap_or_default() / 1000,
            )
        };
        let (c, p) = self
            .take_presence(
                tenant,
                member,
                CeremonyKind::Live,
                &proof.id,
                &proof.credential,
                signed,
            )
            .await?;
        // The session id is in the signed challenge: another one is `presence_mismatch` above.
        let expires_ms = c.code_expires_ms.unwrap_or_default();
        if expires_ms <= self.clock.now_ms() {
            return Err(ServiceError::Gone {
                code: "expired",
                message: "this call session's time ran out before it started".into(),
            });
        }
        Ok((session.to_string(), expires_ms, p))
    }

    /// Check `credential` against the stored passkey for `challenge` under `policy`, and move
    /// the passkey's counter to the assertion's in one conditional update.
    async fn assert_and_advance(
        &self,
        key_row: &PasskeyRow,
        credential: &PasskeyAssertion,
        policy: &PasskeyPolicy,
        challenge: &[u8; 32],
    ) -> Result<()> {
        let key = PasskeyKey::parse(&key_row.public_key)
            .map_err(|e| ServiceError::internal(e.to_string()))?;
        let stored = u32::try_from(key_row.sign_count).unwrap_or(u32::MAX);
        let checked = credential
            .check(policy, &key, challenge, stored)
            .map_err(passkey_refused)?;
        if !self
            .db
            .advance_passkey(&key_row.id, i64::from(checked.sign_count))
            .await?
        {
            // Another assertion moved the counter (or a revocation landed) in between.
            return Err(passkey_refused(PasskeyError::Counter {
                stored,
                got: checked.sign_count,
            }));
        }
        Ok(())
    }

    /// The presence ceremony `id` of `kind`, taken once; `challenge_of` rebuilds from it and the
    /// request what should have been signed, which must be what was asked; then the passkey
    /// (the account's, `member`'s when given, unrevoked) and its assertion with UV, the counter
    /// moved forward.
    async fn take_presence(
        &self,
        tenant: &Tenant,
        member: Option<&str>,
        kind: CeremonyKind,
        id: &str,
        credential: &PasskeyAssertion,
        challenge_of: impl FnOnce(&Ceremony) -> [u8; 32],
    ) -> Result<(Ceremony, Presented)> {
        let now = self.clock.now_ms();
        let c = self
            .db
            .take_ceremony(id, kind, Some(&tenant.id), now)
            .await?
            .ok_or_else(|| ServiceError::Forbidden {
                code: "presence_unknown",
                message: "no such presence challenge: it was used, expired or never issued".into(),
            })?;
        if c.code_expires_ms.is_none() {
            return Err(ServiceError::internal(
                "presence ceremony without an expiry",
            ));
        }
        let challenge = challenge_of(&c);
        if hex::encode(challenge) != c.state {
            return Err(passkey_refused(PasskeyError::Challenge));
        }
        let cred_id = B64URL.encode(credential.credential_id().map_err(passkey_refused)?);
        let key_row = self
            .db
            .passkey(&cred_id)
            .await?
            .filter(|k| k.tenant_id == tenant.id && member.is_none_or(|m| k.member_id == m))
            .ok_or_else(|| ServiceError::Forbidden {
                code: "passkey_unknown",
                message: match member {
                    Some(_) => "this passkey is not one of yours",
                    None => "this passkey is not registered with the account",
                }
                .into(),
            })?;
        if key_row.revoked_at.is_some() {
            return Err(ServiceError::Forbidden {
                code: "passkey_revoked",
                message: "this passkey was revoked".into(),
            });
        }
        let policy = self.passkey_policy();
        self.assert_and_advance(&key_row, credential, policy, &challenge)
            .await?;
        // Kept with the RP ID it was made for: later checks do not depend on today's settings.
        let mut stored_json =
            serde_json::to_value(credential).map_err(|e| ServiceError::internal(e.to_string()))?;
        stored_json["rp_id"] = serde_json::Value::String(policy.rp_id.clone());
        Ok((
            c,
            Presented {
                member_id: key_row.member_id,
                passkey_id: key_row.id,
                assertion: stored_json.to_string(),
            },
        ))
    }
}

impl Services {
    /// Start a dashboard sign-in with a passkey: a random challenge, remembered (once) for the
    /// ceremony's five minutes. Anyone may ask, so the sign-ins under way are capped overall
    /// (besides the per-address rate limit): past [`MAX_SIGN_INS`], 503 `busy`.
    pub async fn begin_sign_in(&self) -> Result<SignInChallenge> {
        let now = self.clock.now_ms();
        if self.db.sign_ins_under_way(now).await? >= MAX_SIGN_INS {
            return Err(ServiceError::Busy(
                "too many passkey sign-ins under way; try again in a minute",
            ));
        }
        let mut challenge = [0u8; 32];
        getrandom::fill(&mut challenge)
            .map_err(|e| ServiceError::internal(format!("OS randomness: {e}")))?;
        let id = uuid::Uuid::now_v7().to_string();
        self.db
            .insert_sign_in(&id, &hex::encode(challenge), now + CEREMONY_MS)
            .await?;
        Ok(SignInChallenge {
            sign_in_id: id,
            public_key: serde_json::json!({
                "challenge": B64URL.encode(challenge),
                "rpId": self.passkeys.rp_id,
                "allowCredentials": [],
                "userVerification": "required",
                "timeout": CEREMONY_MS,
            }),
        })
    }

    /// Finish a sign-in: the challenge taken (once), the passkey known and unrevoked, the
    /// assertion checked (this site's origin only, RP ID, UV, counter, the user handle when
    /// given); a member's session of `[server].session_minutes` bound to that passkey. Every
    /// refusal is audited.
    pub async fn finish_sign_in(&self, proof: &SignInProof) -> Result<(Caller, Session)> {
        let (actor, result) = self.check_sign_in(proof).await;
        match result {
            Ok((key_row, caller, session)) => {
                let detail = format!("passkey={}", key_row.id);
                self.audit_detail(&actor, "session.create", caller.id(), Outcome::Ok, &detail)
                    .await;
                Ok((caller, session))
            }
            Err(e) => {
                self.audit_detail(
                    &actor,
                    "session.create",
                    "passkey",
                    Outcome::Refused,
                    e.code(),
                )
                .await;
                Err(e)
            }
        }
    }

    /// [`Self::finish_sign_in`]'s checks: who it was (as far as known) and the outcome.
    async fn check_sign_in(
        &self,
        proof: &SignInProof,
    ) -> (Actor, Result<(PasskeyRow, Caller, Session)>) {
        let mut actor = Actor::Anonymous;
        let result = async {
            let now = self.clock.now_ms();
            let challenge = self
                .db
                .take_sign_in(&proof.sign_in_id, now)
                .await?
                .ok_or_else(|| ServiceError::Forbidden {
                    code: "sign_in_unknown",
                    message: "no such sign-in under way: it finished, expired or never began; start again".into(),
                })?;
            let challenge: [u8; 32] = hex::decode(&challenge)
                .ok()
                .and_then(|c| c.try_into().ok())
                .ok_or_else(|| ServiceError::internal("stored sign-in challenge is malformed"))?;
            let cred_id =
                B64URL.encode(proof.credential.credential_id().map_err(passkey_refused)?);
            let unknown = || ServiceError::Forbidden {
                code: "passkey_unknown",
                message: "this passkey is not registered here".into(),
            };
            let key_row = self.db.passkey(&cred_id).await?.ok_or_else(unknown)?;
            actor = Actor::Member(key_row.member_id.clone());
            if key_row.revoked_at.is_some() {
                return Err(ServiceError::Forbidden {
                    code: "passkey_revoked",
                    message: "this passkey was revoked".into(),
                });
            }
            let member = self.db.member(&key_row.member_id).await?;
            // A discoverable passkey names its user: it must be the passkey's own member.
            let handle = proof.credential.response.user_handle.as_deref();
            if handle.is_some_and(|h| h.trim_end_matches('=') != member.user_handle) {
                return Err(unknown());
            }
            self.assert_and_advance(&key_row, &proof.credential, &self.sign_in_policy(), &challenge)
                .await?;
            let tenant = self.db.tenant(&key_row.tenant_id).await?;
            let (token, now, expires_ms, max_age_secs) = self.new_session(SessionKind::Member)?;
            self.db
                .create_member_session(&token, &key_row.id, now, expires_ms)
                .await?;
            let caller = Caller::member(key_row.member_id.clone(), tenant);
            Ok((
                key_row,
                caller,
                Session {
                    token,
                    max_age_secs,
                },
            ))
        }
        .await;
        (actor, result)
    }
}

fn view(k: &PasskeyRow, member: &str) -> PasskeyView {
    let key = PasskeyKey::parse(&k.public_key).ok();
    PasskeyView {
        id: k.id.clone(),
        member: member.to_string(),
        algorithm: key.as_ref().map_or("unknown", PasskeyKey::algorithm),
        aaguid: k.aaguid.clone(),
        fingerprint: key.map(|k| k.fingerprint()).unwrap_or_default(),
        created_at: k.created_at.clone(),
        last_used_at: k.last_used_at.clone(),
        revoked_at: k.revoked_at.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::{parts_of, passkey_policy};
    use pixseal_codes::CodesConfig;

    #[test]
    fn the_relying_party_follows_the_public_url() {
        let codes = CodesConfig::default();
        let p = passkey_policy("http://127.0.0.1:8080", &codes).unwrap();
        assert_eq!(
            (p.rp_id.as_str(), p.origins.as_slice()),
            ("localhost", &["http://localhost:8080".to_string()][..])
        );
        let p = passkey_policy("https://Photos.Example.org:443/", &codes).unwrap();
        assert_eq!(
            (p.rp_id.as_str(), p.origins.as_slice()),
            (
                "photos.example.org",
                &["https://photos.example.org".to_string()][..]
            )
        );
        let set = CodesConfig {
            passkey_rp_id: "example.org".into(),
            passkey_origins: vec!["https://app.example.org".into()],
            ..CodesConfig::default()
        };
        let p = passkey_policy("https://photos.example.org", &set).unwrap();
        assert_eq!(
            (p.rp_id.as_str(), p.origins[0].as_str()),
            ("example.org", "https://app.example.org")
        );
        // Refused at start-up, not at the first passkey.
        assert!(passkey_policy("no scheme", &codes).is_err());
        let bad = CodesConfig {
            passkey_rp_id: "fotos.españa.example".into(),
            ..CodesConfig::default()
        };
        assert!(
            passkey_policy("https://photos.example.org", &bad).is_err(),
            "{bad:?}"
        );
    }

    #[test]
    fn base_url_parts() {
        assert_eq!(
            parts_of("http://127.0.0.1:8080"),
            Some(("http", "127.0.0.1", ":8080"))
        );
        assert_eq!(
            parts_of("https://pixseal.example/base"),
            Some(("https", "pixseal.example", ""))
        );
        assert_eq!(
            parts_of("https://[::1]:8443"),
            Some(("https", "::1", ":8443"))
        );
        assert_eq!(parts_of("no scheme"), None);
    }
}
