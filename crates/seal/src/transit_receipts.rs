//! Deletion receipts signed by an Ed25519 key held in Vault / OpenBao Transit (the private key
//! never leaves the service), the `transit` implementation of
//! [`pixseal_proof::ReceiptSigner`]. It shares the HTTP client, token handling and retry
//! policy of the [`crate::TransitKeyProvider`].
//!
//! | operation | call | app-token capability |
//! |---|---|---|
//! | public key, type, versions | `GET transit/keys/<k>` | read |
//! | sign | `POST transit/sign/<k>` (`input` = base64 of the signed bytes, `key_version`) | update |
//! | create the key when missing | `POST transit/keys/<k>` (`type = ed25519`) | admin (`scripts/openbao.sh` does it) |
//!
//! The key version is pinned when the signer opens: every receipt is signed with the version
//! whose public key `/v1/keys/receipts` serves, so a rotation in Transit never produces a
//! receipt that the served key does not verify (restart to move to a new version). Each
//! signature is checked against that public key before a receipt is handed out.
//!
//! Blocking (`reqwest::blocking`): from async code, call [`ReceiptSigner::sign`] and
//! [`TransitReceiptSigner::open`] on the blocking pool.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use pixseal_proof::{Receipt, ReceiptError, ReceiptPublicKey, ReceiptSigner, SignedReceipt};

use crate::error::{Result, SealError};
use crate::provider::validate_key_name;
use crate::transit::{Input, KeyInfo, SignResp, TransitClient, TransitConfig, ciphertext_version};

/// Default name of the receipt-signing key (`<transit_key_prefix>receipts`).
pub const DEFAULT_RECEIPT_KEY: &str = "pixseal-receipts";

/// Signs deletion receipts with a Transit key of type `ed25519`. See the module docs.
pub struct TransitReceiptSigner {
    client: TransitClient,
    key: String,
    version: u32,
    public: ReceiptPublicKey,
}

impl std::fmt::Debug for TransitReceiptSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransitReceiptSigner")
            .field("base", &self.client.base)
            .field("key", &self.key)
            .field("version", &self.version)
            .field("key_id", &self.public.key_id())
            .finish_non_exhaustive()
    }
}

fn receipt_error(e: SealError) -> ReceiptError {
    match e {
        SealError::KeyUnavailable(m) => ReceiptError::Unavailable(m),
        other => ReceiptError::Key(format!("transit ({}): {other}", other.code())),
    }
}

impl TransitReceiptSigner {
    /// Connects to Transit (address, token, mount and retries from `config`; its region keys
    /// are not used) and loads the public key of `key_name`, creating the key (type `ed25519`)
    /// when it does not exist and the token is allowed to (the app token is not: an operator
    /// or `scripts/openbao.sh` creates it). A key of another type is refused.
    pub fn open(config: &TransitConfig, key_name: &str) -> Result<Self> {
        validate_key_name(key_name)?;
        let client = TransitClient::new(config)?;
        let path = format!("keys/{key_name}");
        let info = match client.call(true, &path, None, Input::Trusted) {
            Ok(body) => TransitClient::parse::<KeyInfo>(&body)?,
            Err(SealError::KeyNotFound(_)) => {
                client
                    .call(
                        false,
                        &path,
                        Some(&serde_json::json!({"type": "ed25519"})),
                        Input::Trusted,
                    )
                    .map_err(|e| match e {
                        SealError::PermissionDenied(m) => SealError::KeyNotFound(format!(
                            "transit key {key_name:?} does not exist and this token may not create it \
                             (an operator creates it: `bao write transit/keys/{key_name} type=ed25519`): {m}"
                        )),
                        other => other,
                    })?;
                let body = client.call(true, &path, None, Input::Trusted)?;
                TransitClient::parse::<KeyInfo>(&body)?
            }
            Err(e) => return Err(e),
        };
        if info.kind != "ed25519" {
            return Err(SealError::Config(format!(
                "transit key {key_name:?} is of type {:?}; receipts need an \"ed25519\" key",
                info.kind
            )));
        }
        let version = info.latest_version;
        let public = public_key_of(&info, version, key_name)?;
        Ok(TransitReceiptSigner {
            client,
            key: key_name.to_owned(),
            version,
            public,
        })
    }

    /// The Transit key name.
    pub fn key_name(&self) -> &str {
        &self.key
    }

    /// The key version every receipt is signed with.
    pub fn key_version(&self) -> u32 {
        self.version
    }
}

fn public_key_of(info: &KeyInfo, version: u32, key_name: &str) -> Result<ReceiptPublicKey> {
    let b64 = info
        .keys
        .get(&version.to_string())
        .and_then(|v| v.get("public_key"))
        .and_then(|v| v.as_str())
        .ok_or_else(|| {
            SealError::KeyNotFound(format!(
                "transit key {key_name:?} has no public key for version {version}"
            ))
        })?;
    let raw = B64
        .decode(b64.as_bytes())
        .map_err(|_| SealError::Internal("transit public key is not base64".into()))?;
    ReceiptPublicKey::from_raw(&raw)
        .map_err(|e| SealError::Internal(format!("transit key {key_name:?}: {e}")))
}

impl ReceiptSigner for TransitReceiptSigner {
    fn provider(&self) -> &'static str {
        "transit"
    }

    fn public_key(&self) -> &ReceiptPublicKey {
        &self.public
    }

    fn sign_message(&self, message: &[u8]) -> std::result::Result<Vec<u8>, ReceiptError> {
        let body = self
            .client
            .call(
                false,
                &format!("sign/{}", self.key),
                Some(&serde_json::json!({
                    "input": B64.encode(message),
                    "key_version": self.version,
                })),
                Input::Trusted,
            )
            .map_err(receipt_error)?;
        let r: SignResp = TransitClient::parse(&body).map_err(receipt_error)?;
        // `vault:v<version>:<base64 signature>`, made by the pinned version.
        if ciphertext_version(&r.signature) != Some(self.version) {
            return Err(ReceiptError::Key(format!(
                "transit signed with another key version than v{}",
                self.version
            )));
        }
        r.signature
            .rsplit_once(':')
            .and_then(|(_, s)| B64.decode(s.as_bytes()).ok())
            .ok_or_else(|| ReceiptError::Key("transit signature is not base64".into()))
    }

    fn sign(&self, receipt: Receipt) -> std::result::Result<SignedReceipt, ReceiptError> {
        let sig = self.sign_message(&receipt.signed_bytes())?;
        // Checked here: a receipt that would not verify offline is never handed out.
        self.public.attach(receipt, &sig)
    }

    /// The key is reachable and its pinned version still has the public key being served.
    fn check(&self) -> std::result::Result<(), ReceiptError> {
        let body = self
            .client
            .call(true, &format!("keys/{}", self.key), None, Input::Trusted)
            .map_err(receipt_error)?;
        let info: KeyInfo = TransitClient::parse(&body).map_err(receipt_error)?;
        let now = public_key_of(&info, self.version, &self.key).map_err(receipt_error)?;
        if now != self.public {
            return Err(ReceiptError::Key(format!(
                "transit key {:?} v{} no longer has the public key being served",
                self.key, self.version
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_service_is_unavailable_and_bad_names_refused() {
        let mut cfg = TransitConfig::new("http://127.0.0.1:1", "secret-token", &["us"]);
        cfg.retry.initial_backoff = std::time::Duration::from_millis(10);
        let e = TransitReceiptSigner::open(&cfg, DEFAULT_RECEIPT_KEY).unwrap_err();
        assert_eq!(e.code(), "key_unavailable", "{e}");
        assert!(!e.to_string().contains("secret-token"), "{e}");
        assert_eq!(
            TransitReceiptSigner::open(&cfg, "a/b").unwrap_err().code(),
            "config"
        );
        assert_eq!(
            receipt_error(SealError::KeyUnavailable("x".into())),
            ReceiptError::Unavailable("x".into())
        );
    }
}
