//! `SoftPasskey`: a software passkey (1Password's passkey-rs authenticator and WebAuthn client,
//! an implementation independent of ours) that registers and signs as a phone would, and can be
//! told to skip user verification or to sign from another origin, for the refusal tests.

use passkey_authenticator::{Authenticator, UiHint, UserCheck, UserValidationMethod};
use passkey_client::{Client, DefaultClientData};
use passkey_crypto::rust_crypto::RustCryptoBackend;
use passkey_types::Passkey;
use passkey_types::ctap2::{Aaguid, Ctap2Error};
use serde_json::{Value, json};

/// The model a soft passkey reports (a fixed AAGUID, so policies can name it).
pub const SOFT_AAGUID: [u8; 16] = *b"pixseal-softpkey";

/// What the "person" at the authenticator does: always present; verified unless told not.
struct Person {
    verifies: bool,
}

#[async_trait::async_trait]
impl UserValidationMethod for Person {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        _hint: UiHint<'a, Passkey>,
        presence: bool,
        verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck {
            presence,
            verification: verification && self.verifies,
        })
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(self.verifies)
    }
}

/// One passkey on one software authenticator, with a signature counter.
#[derive(Default)]
pub struct SoftPasskey {
    store: Option<Passkey>,
    es256_only: bool,
    no_counter: bool,
}

impl SoftPasskey {
    /// The authenticator's first choice among the algorithms offered (EdDSA when offered).
    pub fn new() -> Self {
        Self::default()
    }

    /// An authenticator that can only make ES256 (P-256) keys, as most phones do.
    pub fn es256() -> Self {
        SoftPasskey {
            es256_only: true,
            ..Self::default()
        }
    }

    /// An ES256 authenticator whose signature counter is always 0, as synced passkeys (iCloud
    /// Keychain, Google Password Manager) report.
    pub fn es256_without_counter() -> Self {
        SoftPasskey {
            es256_only: true,
            no_counter: true,
            ..Self::default()
        }
    }

    fn authenticator(
        &mut self,
        verifies: bool,
    ) -> Authenticator<Option<Passkey>, Person, RustCryptoBackend> {
        let mut auth = Authenticator::new(
            Aaguid(SOFT_AAGUID),
            self.store.take(),
            Person { verifies },
            RustCryptoBackend,
        );
        auth.set_make_credentials_with_signature_counter(!self.no_counter);
        if self.es256_only {
            auth.set_algorithms(&[passkey_crypto::iana::Algorithm::ES256])
                .expect("the backend makes ES256 keys");
        }
        auth
    }

    /// Answer `navigator.credentials.create({publicKey: options})` from `origin`: the
    /// `RegistrationResponseJSON` a browser would send.
    pub async fn register(&mut self, origin: &str, options: &Value) -> Result<Value, String> {
        let origin = url::Url::parse(origin).map_err(|e| e.to_string())?;
        let request = serde_json::from_value(json!({ "publicKey": options }))
            .map_err(|e| format!("creation options: {e}"))?;
        let mut client = Client::new(self.authenticator(true)).allows_insecure_localhost(true);
        let res = client.register(&origin, request, DefaultClientData).await;
        self.store = client.authenticator_mut().store_mut().take();
        let cred = res.map_err(|e| format!("{e:?}"))?;
        serde_json::to_value(cred).map_err(|e| e.to_string())
    }

    /// Answer `navigator.credentials.get()` for `challenge` (base64url) on `rp_id` from
    /// `origin`, with or without user verification: the `AuthenticationResponseJSON`.
    pub async fn assert(
        &mut self,
        origin: &str,
        rp_id: &str,
        challenge: &str,
        verify_user: bool,
    ) -> Result<Value, String> {
        let origin = url::Url::parse(origin).map_err(|e| e.to_string())?;
        let uv = if verify_user {
            "required"
        } else {
            "discouraged"
        };
        let request = serde_json::from_value(json!({ "publicKey": {
            "challenge": challenge,
            "rpId": rp_id,
            "userVerification": uv,
            "allowCredentials": [],
        }}))
        .map_err(|e| format!("request options: {e}"))?;
        let mut client =
            Client::new(self.authenticator(verify_user)).allows_insecure_localhost(true);
        let res = client
            .authenticate(&origin, request, DefaultClientData)
            .await;
        self.store = client.authenticator_mut().store_mut().take();
        let cred = res.map_err(|e| format!("{e:?}"))?;
        serde_json::to_value(cred).map_err(|e| e.to_string())
    }
}
