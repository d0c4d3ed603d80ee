//! Passkeys (WebAuthn with user verification) for the members of an account: registration, and
//! the code assertion — a passkey's signature whose challenge is the SHA-256 of one code's data
//! ([`SignedCode::passkey_challenge`]), so the assertion itself is the code's level-4 signature
//! and anyone holding the credential's public key can check it again, offline.
//!
//! Registration is `webauthn_rp`'s ceremony (attestation `none` or self, COSE keys, UV
//! required). A code assertion's challenge is ours, not a random one, which the library's
//! authentication ceremony cannot express; its checks (W3C WebAuthn §7.2) are done here over the
//! RustCrypto verifiers: signature first, then type, challenge, origin, RP ID hash, UP, UV and
//! the signature counter.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde::{Deserialize, Serialize};
use sha2_11::{Digest, Sha256};
use webauthn_rp::bin::{Decode, Encode};
use webauthn_rp::request::register::{
    CoseAlgorithmIdentifier, CredProtect, Nickname, PublicKeyCredentialCreationOptions,
    PublicKeyCredentialUserEntity, RegistrationVerificationOptions, UserHandle64, Username,
};
use webauthn_rp::request::{AsciiDomain, ExtensionInfo, RpId};
use webauthn_rp::response::register::UncompressedPubKey;
use webauthn_rp::{Registration, RegistrationServerState};

/// Who the passkeys belong to and which authenticators are accepted (`[codes].passkey_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyPolicy {
    /// The relying party ID: the site's domain (`localhost` for development).
    pub rp_id: String,
    /// Exact origins (`https://pixseal.example`) a ceremony may come from.
    pub origins: Vec<String>,
    /// Authenticator models (AAGUIDs) allowed to register; empty = any. What the authenticator
    /// reports: without an attestation certificate chain it is a filter, not a proof.
    pub aaguids: Vec<[u8; 16]>,
}

/// Why a passkey operation was refused; each has a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasskeyError {
    #[error("not a WebAuthn response: {0}")]
    Malformed(String),
    #[error("the relying party ID {0:?} is not a domain")]
    RpId(String),
    #[error("registration refused: {0}")]
    Registration(String),
    #[error("this authenticator model ({0}) is not allowed by the account's policy")]
    Aaguid(String),
    #[error("the passkey's signature does not verify")]
    Signature,
    #[error("the assertion was made for other data than this code's (challenge differs)")]
    Challenge,
    #[error("the assertion comes from an origin that is not allowed: {0}")]
    Origin(String),
    #[error("the assertion was made for another relying party")]
    RpIdHash,
    #[error("the authenticator did not report user presence")]
    UserNotPresent,
    #[error("the authenticator did not verify the user (biometric or PIN)")]
    UserNotVerified,
    #[error(
        "signature counter went backwards ({got} after {stored}): a cloned authenticator or a replay"
    )]
    Counter { stored: u32, got: u32 },
}

impl PasskeyError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            PasskeyError::Malformed(_) => "invalid_webauthn_response",
            PasskeyError::RpId(_) => "invalid_config",
            PasskeyError::Registration(_) => "passkey_registration_refused",
            PasskeyError::Aaguid(_) => "authenticator_not_allowed",
            PasskeyError::Signature => "presence_signature_invalid",
            PasskeyError::Challenge => "presence_mismatch",
            PasskeyError::Origin(_) => "presence_origin",
            PasskeyError::RpIdHash => "presence_rp_id",
            PasskeyError::UserNotPresent => "presence_user_absent",
            PasskeyError::UserNotVerified => "presence_not_verified",
            PasskeyError::Counter { .. } => "passkey_counter",
        }
    }
}

/// A passkey's public key, as stored: `ed25519:`, `p256:` or `p384:` and the base64url of the
/// raw key (Ed25519) or the uncompressed SEC1 point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasskeyKey {
    Ed25519([u8; 32]),
    P256(Vec<u8>),
    P384(Vec<u8>),
}

impl PasskeyKey {
    pub fn to_text(&self) -> String {
        let (alg, raw) = match self {
            PasskeyKey::Ed25519(k) => ("ed25519", &k[..]),
            PasskeyKey::P256(k) => ("p256", &k[..]),
            PasskeyKey::P384(k) => ("p384", &k[..]),
        };
        format!("{alg}:{}", B64URL.encode(raw))
    }

    pub fn parse(s: &str) -> Result<PasskeyKey, PasskeyError> {
        let bad = || PasskeyError::Malformed(format!("not a stored passkey key: {s:.20}"));
        let (alg, b) = s.split_once(':').ok_or_else(bad)?;
        let raw = B64URL.decode(b).map_err(|_| bad())?;
        let key = match alg {
            "ed25519" => PasskeyKey::Ed25519(raw.try_into().map_err(|_| bad())?),
            "p256" => PasskeyKey::P256(raw),
            "p384" => PasskeyKey::P384(raw),
            _ => return Err(bad()),
        };
        key.verifying_check().map_err(|_| bad())?;
        Ok(key)
    }

    /// The COSE algorithm name shown to people.
    pub fn algorithm(&self) -> &'static str {
        match self {
            PasskeyKey::Ed25519(_) => "EdDSA",
            PasskeyKey::P256(_) => "ES256",
            PasskeyKey::P384(_) => "ES384",
        }
    }

    /// A short fingerprint (first 8 bytes of the SHA-256 of the stored text), for display/audit.
    pub fn fingerprint(&self) -> String {
        hex::encode(&Sha256::digest(self.to_text().as_bytes())[..8])
    }

    fn verifying_check(&self) -> Result<(), ()> {
        match self {
            PasskeyKey::Ed25519(k) => ed25519_dalek::VerifyingKey::from_bytes(k)
                .ok()
                .filter(|v| !v.is_weak())
                .map(|_| ())
                .ok_or(()),
            PasskeyKey::P256(k) => p256::ecdsa::VerifyingKey::from_sec1_bytes(k)
                .map(|_| ())
                .map_err(|_| ()),
            PasskeyKey::P384(k) => p384::ecdsa::VerifyingKey::from_sec1_bytes(k)
                .map(|_| ())
                .map_err(|_| ()),
        }
    }

    /// Whether `sig` is this key's signature over `msg` (ES256/ES384: DER; EdDSA: strict).
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        use p256::ecdsa::signature::Verifier;
        match self {
            PasskeyKey::Ed25519(k) => {
                let (Ok(vk), Ok(s)) = (
                    ed25519_dalek::VerifyingKey::from_bytes(k),
                    ed25519_dalek::Signature::from_slice(sig),
                ) else {
                    return false;
                };
                vk.verify_strict(msg, &s).is_ok()
            }
            PasskeyKey::P256(k) => {
                let (Ok(vk), Ok(s)) = (
                    p256::ecdsa::VerifyingKey::from_sec1_bytes(k),
                    p256::ecdsa::DerSignature::from_bytes(sig),
                ) else {
                    return false;
                };
                vk.verify(msg, &s).is_ok()
            }
            PasskeyKey::P384(k) => {
                let (Ok(vk), Ok(s)) = (
                    p384::ecdsa::VerifyingKey::from_sec1_bytes(k),
                    p384::ecdsa::DerSignature::from_bytes(sig),
                ) else {
                    return false;
                };
                vk.verify(msg, &s).is_ok()
            }
        }
    }
}

/// A member's random WebAuthn user handle (64 bytes; it names no one).
pub fn new_user_handle() -> [u8; 64] {
    UserHandle64::new().encode().unwrap_or_else(|e| match e {})
}

/// Whether `name` can be a member's WebAuthn user name (RFC 8265 UsernameCasePreserved: no
/// spaces, 1–64 bytes).
pub fn valid_member_name(name: &str) -> bool {
    Username::try_from(name).is_ok()
}

/// Whether `rp_id` can be a relying party ID (an ASCII domain; lowercase it first).
pub fn valid_rp_id(rp_id: &str) -> bool {
    AsciiDomain::try_from(rp_id.to_string()).is_ok()
}

/// A started registration: the state to keep (bound to `ceremony_id`) and the options for
/// `navigator.credentials.create()` (`PublicKeyCredentialCreationOptionsJSON`).
#[derive(Debug)]
pub struct RegistrationStart {
    pub ceremony_id: String,
    pub state: Vec<u8>,
    pub options: serde_json::Value,
}

/// A passkey that completed registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPasskey {
    pub credential_id: Vec<u8>,
    pub public_key: PasskeyKey,
    pub sign_count: u32,
    pub aaguid: [u8; 16],
    /// Self-attested (packed) rather than no attestation at all.
    pub self_attested: bool,
}

fn rp_id(policy: &PasskeyPolicy) -> Result<RpId, PasskeyError> {
    AsciiDomain::try_from(policy.rp_id.clone())
        .map(RpId::Domain)
        .map_err(|_| PasskeyError::RpId(policy.rp_id.clone()))
}

fn challenge_id(c: u128) -> String {
    format!("{c:032x}")
}

/// Start registering a passkey for the member with `user_handle`, shown to the authenticator
/// as `name`. UV required, a discoverable credential, EdDSA/ES256/ES384 only.
pub fn begin_registration(
    policy: &PasskeyPolicy,
    user_handle: &[u8; 64],
    name: &str,
) -> Result<RegistrationStart, PasskeyError> {
    let rp = rp_id(policy)?;
    let handle = UserHandle64::decode(*user_handle).unwrap_or_else(|e| match e {});
    let username = Username::try_from(name)
        .map_err(|_| PasskeyError::Registration(format!("member name {name:?} is not usable")))?;
    let nickname = Nickname::try_from(name).ok();
    let mut options = PublicKeyCredentialCreationOptions::passkey(
        &rp,
        PublicKeyCredentialUserEntity {
            name: username,
            id: &handle,
            display_name: nickname,
        },
        Vec::new(),
    );
    options.pub_key_cred_params = options
        .pub_key_cred_params
        .remove(CoseAlgorithmIdentifier::Rs256);
    // Ask for credProtect "UV required" where the authenticator has it, without making the
    // browser refuse one that lacks it (Chromium fails the whole ceremony when the policy is
    // enforced): every assertion needs UV here anyway.
    options.extensions.cred_protect =
        CredProtect::UserVerificationRequired(ExtensionInfo::AllowDontEnforceValue);
    let (server, client) = options
        .start_ceremony()
        .map_err(|e| PasskeyError::Registration(e.to_string()))?;
    let state = server
        .encode()
        .map_err(|e| PasskeyError::Registration(e.to_string()))?;
    let options =
        serde_json::to_value(&client).map_err(|e| PasskeyError::Registration(e.to_string()))?;
    let ceremony_id = challenge_id(webauthn_rp::request::TimedCeremony::sent_challenge(&server).0);
    Ok(RegistrationStart {
        ceremony_id,
        state,
        options,
    })
}

/// The ceremony a registration response answers (its challenge), to find the kept state.
pub fn registration_ceremony_id(response_json: &[u8]) -> Result<String, PasskeyError> {
    let reg = Registration::from_json_relaxed(response_json)
        .map_err(|e| PasskeyError::Malformed(e.to_string()))?;
    reg.challenge_relaxed()
        .map(|c| challenge_id(c.0))
        .map_err(|e| PasskeyError::Malformed(e.to_string()))
}

/// Finish a registration: every check of the ceremony (origin, challenge, RP ID, UP, UV,
/// attestation, algorithm, expiry), then the account's authenticator policy.
pub fn finish_registration(
    policy: &PasskeyPolicy,
    state: &[u8],
    response_json: &[u8],
) -> Result<NewPasskey, PasskeyError> {
    let rp = rp_id(policy)?;
    let server = RegistrationServerState::<64>::decode(state)
        .map_err(|e| PasskeyError::Registration(format!("ceremony state: {e}")))?;
    let reg = Registration::from_json_relaxed(response_json)
        .map_err(|e| PasskeyError::Malformed(e.to_string()))?;
    let origins: Vec<&str> = policy.origins.iter().map(String::as_str).collect();
    let opts = RegistrationVerificationOptions::<&str, &str> {
        allowed_origins: &origins,
        ..Default::default()
    };
    let cred = server
        .verify(&rp, &reg, &opts)
        .map_err(|e| PasskeyError::Registration(e.to_string()))?;
    let meta = cred.metadata();
    let aaguid: [u8; 16] = meta
        .aaguid
        .data()
        .try_into()
        .map_err(|_| PasskeyError::Registration("AAGUID is not 16 bytes".into()))?;
    if !policy.aaguids.is_empty() && !policy.aaguids.contains(&aaguid) {
        return Err(PasskeyError::Aaguid(aaguid_text(&aaguid)));
    }
    let public_key = match cred.static_state().credential_public_key {
        UncompressedPubKey::Ed25519(k) => PasskeyKey::Ed25519(
            <[u8; 32]>::try_from(*k.inner())
                .map_err(|_| PasskeyError::Registration("Ed25519 key length".into()))?,
        ),
        UncompressedPubKey::P256(k) => PasskeyKey::P256([&[4u8][..], k.x(), k.y()].concat()),
        UncompressedPubKey::P384(k) => PasskeyKey::P384([&[4u8][..], k.x(), k.y()].concat()),
        UncompressedPubKey::Rsa(_) => {
            return Err(PasskeyError::Registration(
                "RSA keys are not accepted".into(),
            ));
        }
    };
    public_key
        .verifying_check()
        .map_err(|()| PasskeyError::Registration("unusable public key".into()))?;
    Ok(NewPasskey {
        credential_id: cred.id().as_ref().to_vec(),
        public_key,
        sign_count: cred.dynamic_state().sign_count,
        aaguid,
        self_attested: matches!(
            meta.attestation,
            webauthn_rp::response::register::Attestation::Surrogate
        ),
    })
}

/// An AAGUID in its usual text form (8-4-4-4-12 hex).
pub fn aaguid_text(a: &[u8; 16]) -> String {
    let h = hex::encode(a);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// An AAGUID from its text form (hyphens optional).
pub fn parse_aaguid(s: &str) -> Option<[u8; 16]> {
    let h: String = s.chars().filter(|c| *c != '-').collect();
    hex::decode(h).ok()?.try_into().ok()
}

/// A passkey assertion (a code's presence proof, or a dashboard sign-in), base64url as
/// `PublicKeyCredential.toJSON()` gives it; the browser's whole JSON is accepted (other members
/// ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyAssertion {
    /// The credential ID (base64url).
    pub id: String,
    pub response: AssertionResponse,
}

/// `AuthenticatorAssertionResponseJSON`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssertionResponse {
    pub authenticator_data: String,
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    pub signature: String,
    /// The user handle a discoverable passkey returns (base64url).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_handle: Option<String>,
}

/// What a checked assertion tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssertionChecked {
    pub sign_count: u32,
    pub backup_state: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClientData {
    #[serde(rename = "type")]
    kind: String,
    challenge: String,
    origin: String,
    #[serde(default)]
    cross_origin: Option<bool>,
}

fn b64url(field: &str, s: &str) -> Result<Vec<u8>, PasskeyError> {
    B64URL
        .decode(s.trim_end_matches('='))
        .map_err(|_| PasskeyError::Malformed(format!("{field} is not base64url")))
}

impl PasskeyAssertion {
    pub fn credential_id(&self) -> Result<Vec<u8>, PasskeyError> {
        b64url("id", &self.id)
    }

    /// Check the assertion against the credential's key for `challenge` (the code data's
    /// SHA-256, or a sign-in's random one), the policy's RP ID and origins, and the counter
    /// last seen (`stored_count`).
    pub fn check(
        &self,
        policy: &PasskeyPolicy,
        key: &PasskeyKey,
        challenge: &[u8; 32],
        stored_count: u32,
    ) -> Result<AssertionChecked, PasskeyError> {
        self.check_with(
            &policy.rp_id,
            Some(&policy.origins),
            key,
            challenge,
            Some(stored_count),
        )
    }

    /// Check a stored assertion again, later: against the RP ID it was made for (kept with it),
    /// whatever the configuration says today; the origin and the counter were judged when it
    /// was made (the origin stays signed in `clientDataJSON`, see [`Self::origin`]).
    pub fn recheck(
        &self,
        rp_id: &str,
        key: &PasskeyKey,
        challenge: &[u8; 32],
    ) -> Result<AssertionChecked, PasskeyError> {
        self.check_with(rp_id, None, key, challenge, None)
    }

    /// The origin the client data names (signed), if it parses.
    pub fn origin(&self) -> Option<String> {
        let cdj = b64url("clientDataJSON", &self.response.client_data_json).ok()?;
        serde_json::from_slice::<ClientData>(&cdj)
            .ok()
            .map(|c| c.origin)
    }

    fn check_with(
        &self,
        rp_id: &str,
        origins: Option<&[String]>,
        key: &PasskeyKey,
        challenge: &[u8; 32],
        stored_count: Option<u32>,
    ) -> Result<AssertionChecked, PasskeyError> {
        let auth = b64url("authenticatorData", &self.response.authenticator_data)?;
        let cdj = b64url("clientDataJSON", &self.response.client_data_json)?;
        let sig = b64url("signature", &self.response.signature)?;
        if auth.len() < 37 {
            return Err(PasskeyError::Malformed(
                "authenticatorData is shorter than 37 bytes".into(),
            ));
        }
        let mut signed = auth.clone();
        signed.extend_from_slice(&Sha256::digest(&cdj));
        if !key.verify(&signed, &sig) {
            return Err(PasskeyError::Signature);
        }
        let cd: ClientData = serde_json::from_slice(&cdj)
            .map_err(|e| PasskeyError::Malformed(format!("clientDataJSON: {e}")))?;
        if cd.kind != "webauthn.get" {
            return Err(PasskeyError::Malformed(format!(
                "clientDataJSON type is {:?}, not webauthn.get",
                cd.kind
            )));
        }
        if b64url("challenge", &cd.challenge)? != challenge[..] {
            return Err(PasskeyError::Challenge);
        }
        if origins.is_some_and(|o| !o.contains(&cd.origin)) || cd.cross_origin == Some(true) {
            return Err(PasskeyError::Origin(cd.origin.chars().take(100).collect()));
        }
        if auth[..32] != Sha256::digest(rp_id.as_bytes())[..] {
            return Err(PasskeyError::RpIdHash);
        }
        let flags = auth[32];
        if flags & 0x01 == 0 {
            return Err(PasskeyError::UserNotPresent);
        }
        if flags & 0x04 == 0 {
            return Err(PasskeyError::UserNotVerified);
        }
        let got = u32::from_be_bytes([auth[33], auth[34], auth[35], auth[36]]);
        if let Some(stored) = stored_count
            && (got != 0 || stored != 0)
            && got <= stored
        {
            return Err(PasskeyError::Counter { stored, got });
        }
        Ok(AssertionChecked {
            sign_count: got,
            backup_state: flags & 0x10 != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_refuse_junk() {
        let sk = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let point = sk.verifying_key().to_encoded_point(false);
        let k = PasskeyKey::P256(point.as_bytes().to_vec());
        assert_eq!(PasskeyKey::parse(&k.to_text()).unwrap(), k);
        assert_eq!(k.algorithm(), "ES256");
        assert!(PasskeyKey::parse("p256:AAAA").is_err());
        assert!(PasskeyKey::parse("rsa:AAAA").is_err());
        // The Ed25519 identity point is a small-order key.
        let mut id = [0u8; 32];
        id[0] = 1;
        assert!(PasskeyKey::parse(&PasskeyKey::Ed25519(id).to_text()).is_err());
        let a = parse_aaguid("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4").unwrap();
        assert_eq!(aaguid_text(&a), "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4");
        assert!(parse_aaguid("xyz").is_none());
    }

    #[test]
    fn registration_needs_a_domain_and_gives_options() {
        let policy = PasskeyPolicy {
            rp_id: "localhost".into(),
            origins: vec!["http://localhost:8080".into()],
            aaguids: vec![],
        };
        let start = begin_registration(&policy, &new_user_handle(), "alice").unwrap();
        assert_eq!(start.ceremony_id.len(), 32);
        assert_eq!(start.options["rp"]["id"], "localhost");
        assert_eq!(
            start.options["authenticatorSelection"]["userVerification"],
            "required"
        );
        let algs: Vec<i64> = start.options["pubKeyCredParams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["alg"].as_i64().unwrap())
            .collect();
        assert!(!algs.contains(&-257), "no RSA: {algs:?}");
        // Asked for, never enforced: Chromium refuses the whole ceremony otherwise on an
        // authenticator without credProtect.
        let ext = &start.options["extensions"];
        assert_eq!(
            ext["credentialProtectionPolicy"],
            "userVerificationRequired"
        );
        assert_eq!(ext["enforceCredentialProtectionPolicy"], false);
        let bad = PasskeyPolicy {
            rp_id: "".into(),
            ..policy
        };
        assert!(begin_registration(&bad, &new_user_handle(), "alice").is_err());
    }
}
