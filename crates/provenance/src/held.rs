//! Claim signing with a private key held elsewhere (a key service or a hardware token): the
//! certificate chain comes from files, the signature from the holder, and each signature is
//! checked against the certificate before it goes into a manifest.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ProvenanceError;
use crate::identity::{ClaimSigner, SignAlg};
use crate::timestamp::TimeStamper;

/// Where the C2PA claim-signing key lives (`[provenance].signer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SignerKind {
    /// A PKCS#8 PEM file (or the development key made by `pixseal keys init`).
    #[default]
    File,
    /// An ECDSA key in Vault/OpenBao Transit.
    Transit,
    /// A key on a PKCS#11 token (an HSM, SoftHSM2).
    Pkcs11,
}

impl SignerKind {
    /// The config value (`file`, `transit`, `pkcs11`).
    pub fn as_str(self) -> &'static str {
        match self {
            SignerKind::File => "file",
            SignerKind::Transit => "transit",
            SignerKind::Pkcs11 => "pkcs11",
        }
    }
}

/// A private key that never comes into this process: its public key, and signatures made by
/// whoever holds it. Implementations block (a network call or a token call); callers in async
/// code sign on a blocking thread.
pub trait HeldKey: Send + Sync {
    /// Who holds it.
    fn kind(&self) -> SignerKind;
    /// What it signs with (decides the COSE algorithm and the signature's form).
    fn alg(&self) -> SignAlg;
    /// Its public key, as a DER SubjectPublicKeyInfo.
    fn public_key_der(&self) -> &[u8];
    /// Signs `data` (the holder hashes it); ECDSA signatures come back as the fixed-size
    /// `r || s` COSE wants, not DER.
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, ProvenanceError>;
}

/// Bytes signed by the readiness probe: a domain line no COSE `Sig_structure` (a CBOR array)
/// can equal.
const PROBE: &[u8] = b"pixseal claim-signer probe v1\n";

/// A [`ClaimSigner`] over a [`HeldKey`] and the certificate chain that certifies it.
pub struct HeldKeySigner {
    key: Arc<dyn HeldKey>,
    chain: Vec<Vec<u8>>,
    /// The end-entity certificate's public key (DER SubjectPublicKeyInfo).
    certified: Vec<u8>,
}

impl HeldKeySigner {
    /// Pairs `key` with `chain` (DER, end-entity first). Refused unless the end-entity
    /// certificate certifies exactly this key, and the key signs a probe that verifies under
    /// that certificate (so a wrong key, version or token is found at start, not per upload).
    pub fn new(key: Arc<dyn HeldKey>, chain: Vec<Vec<u8>>) -> Result<Self, ProvenanceError> {
        let first = chain.first().ok_or_else(|| {
            ProvenanceError::Identity("certificate chain holds no certificate".into())
        })?;
        let certified = certified_key(first)?;
        if certified != key.public_key_der() {
            return Err(ProvenanceError::Identity(format!(
                "the signing certificate does not certify the key held in {} (a certificate for \
                 another key, or for an older version of it)",
                key.kind().as_str()
            )));
        }
        let signer = HeldKeySigner {
            key,
            chain,
            certified,
        };
        signer.check()?;
        Ok(signer)
    }
}

/// The public key (DER SubjectPublicKeyInfo) a DER certificate certifies.
pub fn certified_key(cert_der: &[u8]) -> Result<Vec<u8>, ProvenanceError> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| ProvenanceError::Identity(format!("signing certificate: {e}")))?;
    Ok(cert.tbs_certificate.subject_pki.raw.to_vec())
}

/// Checks `signature` over `data` with `public_key` (DER SubjectPublicKeyInfo).
fn verify(
    alg: SignAlg,
    signature: &[u8],
    data: &[u8],
    public_key: &[u8],
) -> Result<(), ProvenanceError> {
    let validator = c2pa::crypto::raw_signature::validator_for_signing_alg(alg.c2pa())
        .ok_or_else(|| ProvenanceError::Identity(format!("no validator for {alg:?}")))?;
    validator
        .validate(signature, data, public_key)
        .map_err(|e| ProvenanceError::Signing(format!("the signature does not verify: {e}")))
}

impl ClaimSigner for HeldKeySigner {
    fn kind(&self) -> SignerKind {
        self.key.kind()
    }
    fn alg(&self) -> SignAlg {
        self.key.alg()
    }
    fn cert_chain(&self) -> &[Vec<u8>] {
        &self.chain
    }
    /// Signs through the holder, then checks the signature against the certificate: a holder
    /// that answers with a wrong key's signature, or with garbage, stops here.
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, ProvenanceError> {
        let sig = self.key.sign(data)?;
        verify(self.key.alg(), &sig, data, &self.certified)?;
        Ok(sig)
    }
    fn check(&self) -> Result<(), ProvenanceError> {
        self.sign(PROBE).map(drop)
    }
}

/// A signer whose every signature is countersigned by a time-stamping authority.
pub struct TimeStamped {
    inner: Arc<dyn ClaimSigner>,
    tsa: Arc<dyn TimeStamper>,
}

impl TimeStamped {
    pub fn new(inner: Arc<dyn ClaimSigner>, tsa: Arc<dyn TimeStamper>) -> Self {
        TimeStamped { inner, tsa }
    }
}

impl ClaimSigner for TimeStamped {
    fn kind(&self) -> SignerKind {
        self.inner.kind()
    }
    fn alg(&self) -> SignAlg {
        self.inner.alg()
    }
    fn cert_chain(&self) -> &[Vec<u8>] {
        self.inner.cert_chain()
    }
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, ProvenanceError> {
        self.inner.sign(data)
    }
    fn time_stamper(&self) -> Option<&dyn TimeStamper> {
        Some(self.tsa.as_ref())
    }
    fn check(&self) -> Result<(), ProvenanceError> {
        self.inner.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{DevChain, LocalSigner, pem_certs};

    /// A held key backed by a local PEM key, to exercise the pairing rules without a service.
    struct Fake {
        inner: LocalSigner,
        spki: Vec<u8>,
        corrupt: bool,
    }

    impl HeldKey for Fake {
        fn kind(&self) -> SignerKind {
            SignerKind::Transit
        }
        fn alg(&self) -> SignAlg {
            SignAlg::Es256
        }
        fn public_key_der(&self) -> &[u8] {
            &self.spki
        }
        fn sign(&self, data: &[u8]) -> Result<Vec<u8>, ProvenanceError> {
            let mut s = self.inner.sign(data)?;
            if self.corrupt {
                s[10] ^= 1;
            }
            Ok(s)
        }
    }

    fn fake(chain: &DevChain, corrupt: bool) -> Arc<Fake> {
        let der = pem_certs(chain.chain_pem.as_bytes()).unwrap();
        Arc::new(Fake {
            inner: LocalSigner::from_pem(
                chain.chain_pem.as_bytes(),
                chain.key_pem.as_deref().unwrap().as_bytes(),
                SignAlg::Es256,
            )
            .unwrap(),
            spki: certified_key(&der[0]).unwrap(),
            corrupt,
        })
    }

    #[test]
    fn pairs_only_the_certified_key_and_checks_every_signature() {
        let a = DevChain::generate("held a").unwrap();
        let b = DevChain::generate("held b").unwrap();
        let chain_a = pem_certs(a.chain_pem.as_bytes()).unwrap();
        let chain_b = pem_certs(b.chain_pem.as_bytes()).unwrap();

        let s = HeldKeySigner::new(fake(&a, false), chain_a.clone()).unwrap();
        assert_eq!(s.sign(b"claim").unwrap().len(), 64);
        assert_eq!(s.kind(), SignerKind::Transit);

        let e = HeldKeySigner::new(fake(&a, false), chain_b)
            .err()
            .expect("another key's certificate");
        assert!(e.to_string().contains("does not certify"), "{e}");

        let e = HeldKeySigner::new(fake(&a, true), chain_a)
            .err()
            .expect("a holder answering with a bad signature");
        assert!(e.to_string().contains("does not verify"), "{e}");
    }

    #[test]
    fn a_chain_made_for_a_public_key_certifies_it() {
        let a = DevChain::generate("held key owner").unwrap();
        let key = fake(&a, false);
        let made = DevChain::for_public_key("held dev", key.public_key_der()).unwrap();
        assert!(made.key_pem.is_none());
        let chain = pem_certs(made.chain_pem.as_bytes()).unwrap();
        let s = HeldKeySigner::new(key, chain).unwrap();
        s.check().unwrap();
    }
}
