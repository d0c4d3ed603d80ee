//! `[keys]` configuration and the one place a configured key provider (and receipt signer) is
//! built.

use std::path::Path;
use std::sync::Arc;

use pixseal_proof::{LocalReceiptSigner, ReceiptSigner};

use serde::{Deserialize, Serialize};

use crate::{
    KeyProvider, LocalKeyProvider, Pkcs11Config, Pkcs11ReceiptSigner, Pkcs11Token, Result,
    SealError, Secret, TransitClaimKey, TransitConfig, TransitImporter, TransitKeyProvider,
    TransitReceiptSigner,
};

/// Which key provider holds the regions' master keys (`[keys].provider`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum KeyProviderKind {
    #[default]
    Local,
    Transit,
}

/// Who holds the receipt-signing key (`[keys].receipt_provider`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptProviderKind {
    /// The PEM file at `receipt_key_path`.
    #[default]
    Local,
    /// An `ed25519` Transit key named `<transit_key_prefix>receipts`.
    Transit,
    /// The Ed25519 key pair `[pkcs11].receipt_key_label` on the `[pkcs11]` token.
    Pkcs11,
}

/// `[keys]` settings (`Debug` shows no secret: the token is a [`Secret`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    pub provider: KeyProviderKind,
    /// Local key file; empty = `<data_dir>/keys.json`. Created 0600 on first use.
    pub local_path: String,
    /// Vault/OpenBao address, e.g. `https://bao.internal:8200`.
    pub transit_addr: String,
    /// Token whose policy allows exactly the transit paths of docs/sealed-format.md.
    pub transit_token: Secret,
    /// A file holding the token instead (read at start; trailing whitespace dropped).
    pub transit_token_file: String,
    pub transit_mount: String,
    /// PEM file of a private CA that signed the key service's TLS certificate; empty = the
    /// public roots only. (Plain `http://` is refused except to this machine.)
    pub transit_ca_cert: String,
    /// Key name of region R is `<transit_key_prefix><R>`.
    pub transit_key_prefix: String,
    /// Ed25519 key that signs deletion receipts (PKCS#8 PEM, created 0600 on first use);
    /// empty = `<data_dir>/receipt-signing.pem`. Used when `receipt_provider` is `local`.
    pub receipt_key_path: String,
    /// Who holds the receipt-signing key: `local` (the file at `receipt_key_path`),
    /// `transit` (an `ed25519` Transit key named `<transit_key_prefix>receipts`, reached with
    /// `transit_addr` / `transit_token` / `transit_mount`) or `pkcs11` (the `[pkcs11]` token).
    pub receipt_provider: ReceiptProviderKind,
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            provider: KeyProviderKind::Local,
            local_path: String::new(),
            transit_addr: String::new(),
            transit_token: Secret::default(),
            transit_token_file: String::new(),
            transit_mount: "transit".into(),
            transit_ca_cert: String::new(),
            transit_key_prefix: "pixseal-".into(),
            receipt_key_path: String::new(),
            receipt_provider: ReceiptProviderKind::Local,
        }
    }
}

impl KeysConfig {
    /// Where the receipt-signing key lives.
    pub fn receipt_key(&self, data_dir: &Path) -> std::path::PathBuf {
        if self.receipt_key_path.is_empty() {
            data_dir.join("receipt-signing.pem")
        } else {
            self.receipt_key_path.clone().into()
        }
    }

    /// Name of the Transit receipt-signing key: `<transit_key_prefix>receipts`.
    pub fn transit_receipt_key(&self) -> String {
        format!("{}receipts", self.transit_key_prefix)
    }

    /// Name of the Transit claim-signing key: `<transit_key_prefix>c2pa`.
    pub fn transit_claim_key(&self) -> String {
        format!("{}c2pa", self.transit_key_prefix)
    }

    fn transit_config(&self, regions: &[&str]) -> Result<TransitConfig> {
        if self.transit_addr.is_empty() || self.transit_token.is_empty() {
            return Err(SealError::Config(
                "keys.provider, keys.receipt_provider or provenance.signer = \"transit\" needs keys.transit_addr and keys.transit_token".into(),
            ));
        }
        // Key names are `<prefix><region>`, `<prefix>receipts` and `<prefix>c2pa`: a region
        // may not take one of the signing keys' names.
        if let Some(r) = regions.iter().find(|r| matches!(**r, "receipts" | "c2pa")) {
            return Err(SealError::Config(format!(
                "a region named {r:?} would share its Transit key name with a signing key"
            )));
        }
        let mut cfg = TransitConfig::new(&self.transit_addr, self.transit_token.expose(), regions);
        cfg.mount = self.transit_mount.clone();
        if !self.transit_ca_cert.is_empty() {
            let pem = std::fs::read(&self.transit_ca_cert).map_err(|e| {
                SealError::Config(format!(
                    "keys.transit_ca_cert {:?}: {e}",
                    self.transit_ca_cert
                ))
            })?;
            cfg.ca_cert_pem = Some(pem);
        }
        cfg.keys = regions
            .iter()
            .map(|r| (r.to_string(), format!("{}{r}", self.transit_key_prefix)))
            .collect();
        Ok(cfg)
    }

    /// The C2PA claim-signing key in Transit (`[provenance].signer = "transit"`), at the
    /// version `certified` names (DER SubjectPublicKeyInfo of the signing certificate), or the
    /// latest when there is no certificate yet. Blocking.
    pub fn open_claim_key(
        &self,
        regions: &[&str],
        certified: Option<&[u8]>,
    ) -> Result<TransitClaimKey> {
        let cfg = self.transit_config(regions)?;
        TransitClaimKey::open(&cfg, &self.transit_claim_key(), certified)
    }

    /// Build the configured receipt signer. With `transit` or `pkcs11` this talks to the key
    /// service or token (blocking: from async code, call it on the blocking pool). `regions`
    /// are checked so that no region's master key has a signing key's name.
    pub fn open_receipt_signer(
        &self,
        data_dir: &Path,
        regions: &[&str],
        pkcs11: &Pkcs11Config,
    ) -> Result<Arc<dyn ReceiptSigner>> {
        match self.receipt_provider {
            ReceiptProviderKind::Local => {
                let path = self.receipt_key(data_dir);
                let signer = LocalReceiptSigner::open(&path)
                    .map_err(|e| SealError::Config(format!("receipt-signing key: {e}")))?;
                Ok(Arc::new(signer))
            }
            ReceiptProviderKind::Transit => {
                let cfg = self.transit_config(regions)?;
                Ok(Arc::new(TransitReceiptSigner::open(
                    &cfg,
                    &self.transit_receipt_key(),
                )?))
            }
            ReceiptProviderKind::Pkcs11 => {
                let token = Pkcs11Token::open(pkcs11)?;
                Ok(Arc::new(Pkcs11ReceiptSigner::open(token, pkcs11)?))
            }
        }
    }

    /// A provider whose master key for `region` is a tenant's own Transit key `key_name` (same
    /// address, token and mount as the region keys). No network I/O until it is used.
    pub fn open_tenant_provider(&self, region: &str, key_name: &str) -> Result<TransitKeyProvider> {
        let mut cfg = self.transit_config(&[region])?;
        cfg.keys = [(region.to_owned(), key_name.to_owned())].into();
        TransitKeyProvider::new(cfg)
    }

    /// An operator's session with the installation's Transit for importing a tenant's key
    /// (BYOK), with the operator's token (pixseal's own may not create keys). No network I/O
    /// until it is used.
    pub fn open_importer(&self, operator_token: &str) -> Result<TransitImporter> {
        let mut cfg = self.transit_config(&[])?;
        cfg.token = zeroize::Zeroizing::new(operator_token.to_owned());
        TransitImporter::new(&cfg)
    }

    /// The Transit wrapping key (PEM) a tenant wraps its key under before import, read with
    /// pixseal's token (a public key).
    pub fn transit_wrapping_key(&self) -> Result<String> {
        TransitImporter::new(&self.transit_config(&[])?)?.wrapping_key()
    }

    /// Build the configured provider for `regions`.
    pub fn open_provider(&self, data_dir: &Path, regions: &[&str]) -> Result<Box<dyn KeyProvider>> {
        match self.provider {
            KeyProviderKind::Local => {
                let path = if self.local_path.is_empty() {
                    data_dir.join("keys.json")
                } else {
                    self.local_path.clone().into()
                };
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                Ok(Box::new(LocalKeyProvider::open(path, regions)?))
            }
            KeyProviderKind::Transit => Ok(Box::new(TransitKeyProvider::new(
                self.transit_config(regions)?,
            )?)),
        }
    }
}
