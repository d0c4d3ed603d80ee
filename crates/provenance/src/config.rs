//! `[provenance]` settings and the one place the signing identity and trust anchors are found.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ProvenanceError;
use crate::held::{HeldKey, HeldKeySigner, SignerKind};
use crate::identity::{ClaimSigner, DevChain, DevPaths, LocalSigner, SignAlg, pem_certs};

/// `[provenance]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProvenanceConfig {
    /// Where the claim-signing key lives: `file` (`private_key`, or the development key),
    /// `transit` (a key in `[keys]`' Transit) or `pkcs11` (a key on the `[pkcs11]` token).
    pub signer: SignerKind,
    /// PEM certificate chain (end-entity first, root left out) that signs manifests; empty =
    /// the development chain under `<data_dir>/c2pa/`, made by `pixseal keys init`.
    pub cert_chain: String,
    /// PKCS#8 PEM private key of that chain's end-entity certificate (`signer = "file"` only).
    pub private_key: String,
    /// Signature algorithm of that key: es256, es384 or ed25519 (`signer = "file"` only: a
    /// held key says what it is).
    pub signing_alg: SignAlg,
    /// PEM bundle of the roots `pixseal verify` and `/v1/verify` trust, and that `keys
    /// trust-anchor` prints; empty = the development root.
    pub trust_anchors: String,
    /// Name shown as the issuer of proofs (`GET /v1/proofs/{id}`) and in the certificates
    /// `keys init` makes.
    pub issuer_name: String,
    /// Hamming distance (of 256 bits) at or below which two PDQ hashes are the same picture.
    pub pdq_threshold: u32,
    /// RFC 3161 time-stamping authority (http:// or https:// URL) that countersigns every
    /// manifest signature; empty = no time-stamp. When set, nothing is signed without one.
    pub tsa_url: String,
    /// Seconds one time-stamp request may take, connection included.
    pub tsa_timeout_secs: u64,
}

impl Default for ProvenanceConfig {
    fn default() -> Self {
        ProvenanceConfig {
            signer: SignerKind::File,
            cert_chain: String::new(),
            private_key: String::new(),
            signing_alg: SignAlg::Es256,
            trust_anchors: String::new(),
            issuer_name: "pixseal development installation".into(),
            pdq_threshold: crate::pdq::MATCH_THRESHOLD,
            tsa_url: String::new(),
            tsa_timeout_secs: 10,
        }
    }
}

/// The loaded signing identity.
pub struct Identity {
    pub signer: Arc<dyn ClaimSigner>,
    /// The development chain made by `keys init`: trusted by nobody else.
    pub development: bool,
}

impl ProvenanceConfig {
    /// `<data_dir>/c2pa`.
    pub fn dev_dir(data_dir: &Path) -> PathBuf {
        data_dir.join("c2pa")
    }

    /// True when no production chain is configured.
    pub fn uses_dev_chain(&self) -> bool {
        self.cert_chain.is_empty() && self.private_key.is_empty()
    }

    /// Make the development chain if it is in use and missing. Returns whether it was made.
    pub fn ensure_dev_chain(&self, data_dir: &Path) -> Result<bool, ProvenanceError> {
        if !self.uses_dev_chain() {
            return Ok(false);
        }
        let dir = Self::dev_dir(data_dir);
        let p = DevPaths::in_dir(&dir);
        if p.key.exists() || p.chain.exists() {
            return Ok(false);
        }
        DevChain::generate(&self.issuer_name)?.write_to(&dir)?;
        Ok(true)
    }

    /// Load the signer (never creates anything; `keys init` does).
    pub fn identity(&self, data_dir: &Path) -> Result<Identity, ProvenanceError> {
        if self.uses_dev_chain() {
            let p = DevPaths::in_dir(&Self::dev_dir(data_dir));
            if !p.key.exists() {
                return Err(ProvenanceError::Identity(format!(
                    "no signing certificate at {} (run `pixseal keys init`, or set [provenance].cert_chain and private_key)",
                    p.chain.display()
                )));
            }
            return Ok(Identity {
                signer: Arc::new(LocalSigner::from_files(&p.chain, &p.key, SignAlg::Es256)?),
                development: true,
            });
        }
        if self.cert_chain.is_empty() || self.private_key.is_empty() {
            return Err(ProvenanceError::Identity(
                "[provenance].cert_chain and private_key must be set together".into(),
            ));
        }
        Ok(Identity {
            signer: Arc::new(LocalSigner::from_files(
                Path::new(&self.cert_chain),
                Path::new(&self.private_key),
                self.signing_alg,
            )?),
            development: false,
        })
    }

    /// The certificate chain (DER, end-entity first) for a held key: the configured one, or the
    /// development chain when it was made already; `None` when it is still to be made.
    pub fn held_chain(&self, data_dir: &Path) -> Result<Option<Vec<Vec<u8>>>, ProvenanceError> {
        if !self.private_key.is_empty() {
            return Err(ProvenanceError::Identity(format!(
                "[provenance].private_key is for signer = \"file\"; with signer = \"{}\" the key \
                 is held there",
                self.signer.as_str()
            )));
        }
        let (path, configured) = if self.cert_chain.is_empty() {
            (DevPaths::in_dir(&Self::dev_dir(data_dir)).chain, false)
        } else {
            (PathBuf::from(&self.cert_chain), true)
        };
        let pem = match std::fs::read(&path) {
            Ok(pem) => pem,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !configured => return Ok(None),
            Err(e) => {
                return Err(ProvenanceError::Identity(format!(
                    "{}: {e}",
                    path.display()
                )));
            }
        };
        let chain = pem_certs(&pem)?;
        if chain.is_empty() {
            return Err(ProvenanceError::Identity(format!(
                "{} holds no CERTIFICATE block",
                path.display()
            )));
        }
        Ok(Some(chain))
    }

    /// The identity of a held key: `chain` from [`ProvenanceConfig::held_chain`], or, when
    /// that is `None`, a development chain made now for the key's public key (root and
    /// certificate under `<data_dir>/c2pa/`). Returns whether it was made.
    pub fn held_identity(
        &self,
        data_dir: &Path,
        key: Arc<dyn HeldKey>,
        chain: Option<Vec<Vec<u8>>>,
    ) -> Result<(Identity, bool), ProvenanceError> {
        let development = self.cert_chain.is_empty();
        let (chain, created) = match chain {
            Some(c) => (c, false),
            None => {
                let dev = DevChain::for_public_key(&self.issuer_name, key.public_key_der())?;
                dev.write_to(&Self::dev_dir(data_dir))?;
                (pem_certs(dev.chain_pem.as_bytes())?, true)
            }
        };
        let signer = HeldKeySigner::new(key, chain).map_err(|e| match (e, development) {
            (ProvenanceError::Identity(m), true) => ProvenanceError::Identity(format!(
                "{m}; the development certificate at {} was made for another key: move \
                 {} away and run `pixseal keys init` to make one for this key",
                DevPaths::in_dir(&Self::dev_dir(data_dir)).chain.display(),
                Self::dev_dir(data_dir).display()
            )),
            (e, _) => e,
        })?;
        Ok((
            Identity {
                signer: Arc::new(signer),
                development,
            },
            created,
        ))
    }

    /// The PEM bundle of trusted roots (empty string when none exists yet).
    pub fn anchors_pem(&self, data_dir: &Path) -> Result<String, ProvenanceError> {
        let path = if self.trust_anchors.is_empty() {
            DevPaths::in_dir(&Self::dev_dir(data_dir)).root
        } else {
            PathBuf::from(&self.trust_anchors)
        };
        match std::fs::read_to_string(&path) {
            Ok(s) => Ok(s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.trust_anchors.is_empty() => {
                Ok(String::new())
            }
            Err(e) => Err(ProvenanceError::Identity(format!(
                "{}: {e}",
                path.display()
            ))),
        }
    }
}
