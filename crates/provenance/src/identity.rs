//! The signing identity: a development certificate chain made on first use, or a production
//! chain and key loaded from files; signing sits behind [`ClaimSigner`] so a key held in a key
//! service or on a token ([`crate::held`]) signs without the manifest code changing.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use serde::{Deserialize, Serialize};

use crate::ProvenanceError;
use crate::held::SignerKind;
use crate::timestamp::TimeStamper;

/// The C2PA claim-signing EKU (id-kp-c2pa-claimSigning, 1.3.6.1.4.1.62558.2.1).
const C2PA_CLAIM_SIGNING: &[u64] = &[1, 3, 6, 1, 4, 1, 62558, 2, 1];

/// Development root validity: longer than any retention choice plus the years a stamped file
/// is expected to be checked afterwards (a manifest is only valid while its chain is).
pub const DEV_ROOT_YEARS: i64 = 20;
/// Development signing certificate validity (inside the root's).
pub const DEV_SIGNER_YEARS: i64 = 10;

/// Signature algorithms pixseal signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SignAlg {
    #[default]
    Es256,
    Es384,
    Ed25519,
}

impl SignAlg {
    pub(crate) fn c2pa(self) -> c2pa::SigningAlg {
        match self {
            SignAlg::Es256 => c2pa::SigningAlg::Es256,
            SignAlg::Es384 => c2pa::SigningAlg::Es384,
            SignAlg::Ed25519 => c2pa::SigningAlg::Ed25519,
        }
    }
}

/// Whatever signs a C2PA claim: a key file ([`LocalSigner`]), or a key held in a key service
/// or on a token ([`crate::HeldKeySigner`]).
///
/// `sign` receives the COSE `Sig_structure` bytes and returns the signature as COSE wants it
/// (for ECDSA the fixed-size `r || s`, not DER). It may block (a key service call): callers in
/// async code run signing on a blocking thread.
pub trait ClaimSigner: Send + Sync {
    /// Where the private key lives.
    fn kind(&self) -> SignerKind;
    fn alg(&self) -> SignAlg;
    /// DER certificates, end-entity first (the root is the verifier's trust anchor and is not
    /// included).
    fn cert_chain(&self) -> &[Vec<u8>];
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, ProvenanceError>;
    /// The time-stamping authority that countersigns each signature, if one is configured.
    fn time_stamper(&self) -> Option<&dyn TimeStamper> {
        None
    }
    /// Whether signing works now (readiness); a key in memory always can.
    fn check(&self) -> Result<(), ProvenanceError> {
        Ok(())
    }
}

/// A key held in memory, loaded from PEM (PKCS#8).
pub struct LocalSigner {
    alg: SignAlg,
    chain: Vec<Vec<u8>>,
    inner: c2pa::BoxedSigner,
}

impl LocalSigner {
    /// From a PEM certificate chain (end-entity first) and a PKCS#8 PEM private key.
    pub fn from_pem(
        chain_pem: &[u8],
        key_pem: &[u8],
        alg: SignAlg,
    ) -> Result<Self, ProvenanceError> {
        let chain = pem_certs(chain_pem)?;
        if chain.is_empty() {
            return Err(ProvenanceError::Identity(
                "certificate chain holds no CERTIFICATE block".into(),
            ));
        }
        let inner = c2pa::create_signer::from_keys(chain_pem, key_pem, alg.c2pa(), None)
            .map_err(|e| ProvenanceError::Identity(format!("signing key: {e}")))?;
        Ok(LocalSigner { alg, chain, inner })
    }

    pub fn from_files(chain: &Path, key: &Path, alg: SignAlg) -> Result<Self, ProvenanceError> {
        let read = |p: &Path| {
            fs::read(p).map_err(|e| ProvenanceError::Identity(format!("{}: {e}", p.display())))
        };
        Self::from_pem(&read(chain)?, &read(key)?, alg)
    }
}

impl ClaimSigner for LocalSigner {
    fn kind(&self) -> SignerKind {
        SignerKind::File
    }
    fn alg(&self) -> SignAlg {
        self.alg
    }
    fn cert_chain(&self) -> &[Vec<u8>] {
        &self.chain
    }
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, ProvenanceError> {
        self.inner
            .sign(data)
            .map_err(|e| ProvenanceError::Signing(e.to_string()))
    }
}

/// DER bodies of every CERTIFICATE block of a PEM bundle.
pub fn pem_certs(pem: &[u8]) -> Result<Vec<Vec<u8>>, ProvenanceError> {
    let text = std::str::from_utf8(pem)
        .map_err(|_| ProvenanceError::Identity("PEM is not UTF-8 text".into()))?;
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines().map(str::trim) {
        match (&mut body, line) {
            (None, "-----BEGIN CERTIFICATE-----") => body = Some(String::new()),
            (Some(b), "-----END CERTIFICATE-----") => {
                out.push(b64_decode(b)?);
                body = None;
            }
            (Some(b), l) => b.push_str(l),
            (None, _) => {}
        }
    }
    Ok(out)
}

fn b64_decode(s: &str) -> Result<Vec<u8>, ProvenanceError> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| ProvenanceError::Identity("bad base64 in PEM".into()))
}

/// A freshly made development chain: a P-256 root (CA, keyCertSign) and an end-entity
/// signing certificate (digitalSignature, C2PA claim-signing + emailProtection EKUs, SKI/AKI).
pub struct DevChain {
    pub root_pem: String,
    /// The end-entity certificate (the chain a manifest carries).
    pub chain_pem: String,
    /// PKCS#8 PEM of the end-entity key; `None` when the key is held elsewhere
    /// ([`DevChain::for_public_key`]).
    pub key_pem: Option<String>,
}

impl DevChain {
    /// Make a chain for `org` (shown as the signer). The root's private key is not returned:
    /// it signs this one certificate and is dropped, so nothing else can ever chain to it.
    pub fn generate(org: &str) -> Result<DevChain, ProvenanceError> {
        Self::generate_valid_for(org, time::Duration::days(365 * DEV_SIGNER_YEARS))
    }

    /// The same chain with a signing certificate that expires `validity` from now (a short one
    /// shows what a time-stamp is for: the manifest outlives the certificate).
    pub fn generate_valid_for(
        org: &str,
        validity: time::Duration,
    ) -> Result<DevChain, ProvenanceError> {
        let ee_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(cert_err)?;
        let mut chain = Self::certify(org, &ee_key, validity)?;
        chain.key_pem = Some(ee_key.serialize_pem());
        Ok(chain)
    }

    /// A development chain for a key held elsewhere (a key service, a token): the certificate
    /// certifies `spki_der` (DER SubjectPublicKeyInfo, P-256, P-384 or Ed25519); no key is
    /// returned because none is here.
    pub fn for_public_key(org: &str, spki_der: &[u8]) -> Result<DevChain, ProvenanceError> {
        let public = rcgen::SubjectPublicKeyInfo::from_der(spki_der)
            .map_err(|e| ProvenanceError::Identity(format!("held public key: {e}")))?;
        Self::certify(org, &public, time::Duration::days(365 * DEV_SIGNER_YEARS))
    }

    /// A fresh root that certifies `public` once and is then dropped.
    fn certify(
        org: &str,
        public: &impl rcgen::PublicKeyData,
        validity: time::Duration,
    ) -> Result<DevChain, ProvenanceError> {
        let now = time::OffsetDateTime::now_utc();
        let root_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(cert_err)?;
        let mut root = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
        root.distinguished_name = dn(org, &format!("{org} development root"));
        root.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        root.not_before = now - time::Duration::days(1);
        root.not_after = now + time::Duration::days(365 * DEV_ROOT_YEARS);
        root.serial_number = Some(random_serial()?.into());
        let root_cert = root.self_signed(&root_key).map_err(cert_err)?;

        let mut ee = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
        ee.distinguished_name = dn(org, &format!("{org} claim signing"));
        ee.is_ca = IsCa::ExplicitNoCa;
        ee.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        ee.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::Other(C2PA_CLAIM_SIGNING.to_vec()),
            ExtendedKeyUsagePurpose::EmailProtection,
        ];
        ee.use_authority_key_identifier_extension = true;
        ee.not_before = now - time::Duration::days(1);
        ee.not_after = now + validity;
        ee.serial_number = Some(random_serial()?.into());
        let issuer = Issuer::new(root, root_key);
        let ee_cert = ee.signed_by(public, &issuer).map_err(cert_err)?;
        Ok(DevChain {
            root_pem: root_cert.pem(),
            chain_pem: ee_cert.pem(),
            key_pem: None,
        })
    }

    /// Write root, chain and key (when there is one) under `dir` (the key 0600). Refuses to
    /// overwrite.
    pub fn write_to(&self, dir: &Path) -> Result<(), ProvenanceError> {
        let io = |p: &Path, e: std::io::Error| {
            ProvenanceError::Identity(format!("{}: {e}", p.display()))
        };
        fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let paths = DevPaths::in_dir(dir);
        let key = self.key_pem.as_ref().map(|k| (&paths.key, k, true));
        let files = [
            (&paths.chain, &self.chain_pem, false),
            (&paths.root, &self.root_pem, false),
        ];
        for (path, text, private) in key.into_iter().chain(files) {
            let mut opts = fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(if private { 0o600 } else { 0o644 });
            }
            let _ = private;
            let mut f = opts.open(path).map_err(|e| io(path, e))?;
            f.write_all(text.as_bytes()).map_err(|e| io(path, e))?;
            f.sync_all().map_err(|e| io(path, e))?;
        }
        Ok(())
    }
}

fn cert_err(e: rcgen::Error) -> ProvenanceError {
    ProvenanceError::Identity(format!("certificate: {e}"))
}

fn dn(org: &str, cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::OrganizationName, org);
    d.push(DnType::CommonName, cn);
    d
}

fn random_serial() -> Result<Vec<u8>, ProvenanceError> {
    // 16 random bytes from the OS; the top bit cleared keeps the DER integer positive.
    let mut b = [0u8; 16];
    getrandom::fill(&mut b)
        .map_err(|e| ProvenanceError::Identity(format!("OS randomness: {e}")))?;
    b[0] = (b[0] & 0x7f) | 0x01;
    Ok(b.to_vec())
}

/// Where the development identity lives: `<dir>/root.pem`, `chain.pem`, `signing-key.pem`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevPaths {
    pub root: PathBuf,
    pub chain: PathBuf,
    pub key: PathBuf,
}

impl DevPaths {
    pub fn in_dir(dir: &Path) -> DevPaths {
        DevPaths {
            root: dir.join("root.pem"),
            chain: dir.join("chain.pem"),
            key: dir.join("signing-key.pem"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_chain_parses_and_signs() {
        let c = DevChain::generate("pixseal test").unwrap();
        assert_eq!(pem_certs(c.root_pem.as_bytes()).unwrap().len(), 1);
        let key = c.key_pem.as_deref().unwrap();
        let s =
            LocalSigner::from_pem(c.chain_pem.as_bytes(), key.as_bytes(), SignAlg::Es256).unwrap();
        let sig = s.sign(b"hello").unwrap();
        assert_eq!(sig.len(), 64, "ES256 signatures are r || s");
        let d = tempfile::tempdir().unwrap();
        c.write_to(d.path()).unwrap();
        assert!(
            c.write_to(d.path()).is_err(),
            "never overwrites an identity"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let m = fs::metadata(DevPaths::in_dir(d.path()).key).unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o600);
        }
    }
}
