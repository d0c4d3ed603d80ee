//! The key-provider abstraction (envelope encryption: data keys wrapped by a per-region master key).

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Result, SealError};

/// A plaintext 256-bit data-encryption key. Zeroized on drop; never serialized.
pub type DataKey = Zeroizing<[u8; 32]>;

/// Which provider wrapped a data key (stored as one byte in headers and envelopes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderId {
    /// Key file on local disk ([`crate::local::LocalKeyProvider`]).
    Local,
    /// Vault/OpenBao Transit ([`crate::transit::TransitKeyProvider`]).
    Transit,
}

impl ProviderId {
    /// Wire byte.
    pub fn as_byte(self) -> u8 {
        match self {
            ProviderId::Local => 1,
            ProviderId::Transit => 2,
        }
    }

    /// From the wire byte (`None` for unknown values).
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(ProviderId::Local),
            2 => Some(ProviderId::Transit),
            _ => None,
        }
    }

    /// Stable name (`local`, `transit`).
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderId::Local => "local",
            ProviderId::Transit => "transit",
        }
    }
}

/// Largest wrapped data key accepted anywhere (a Transit ciphertext is ~70 bytes, local 60).
pub const MAX_WRAPPED_LEN: usize = 1024;
/// Largest key name accepted anywhere.
pub const MAX_KEY_NAME_LEN: usize = 128;

/// A data key wrapped (encrypted) by a master key version. Safe to store: this is what the
/// store keeps in the database row of the object; deleting it crypto-shreds the object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    /// Provider that wrapped it.
    pub provider: ProviderId,
    /// Master key name (one per region, e.g. `pixseal-eu`).
    pub key_name: String,
    /// Master key version that wrapped it (>= 1).
    pub version: u32,
    /// Provider-specific ciphertext (local: nonce || AES-GCM ciphertext+tag; transit: the
    /// `vault:vN:…` string as ASCII bytes).
    pub ciphertext: Vec<u8>,
}

impl WrappedKey {
    /// Compact binary encoding (for a database column):
    /// `provider u8 | name_len u8 | name | version u32 BE | ct_len u16 BE | ct`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.key_name.len() + self.ciphertext.len());
        out.push(self.provider.as_byte());
        out.push(self.key_name.len() as u8);
        out.extend_from_slice(self.key_name.as_bytes());
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&(self.ciphertext.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Inverse of [`WrappedKey::to_bytes`]; any malformed input is [`SealError::Tampered`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = crate::header::Cursor::new(bytes);
        let provider = ProviderId::from_byte(r.u8()?).ok_or(SealError::Tampered)?;
        let name_len = r.u8()? as usize;
        let key_name = parse_key_name(r.take(name_len)?)?;
        let version = r.u32()?;
        if version == 0 {
            return Err(SealError::Tampered);
        }
        let ct_len = r.u16()? as usize;
        if ct_len == 0 || ct_len > MAX_WRAPPED_LEN {
            return Err(SealError::Tampered);
        }
        let ciphertext = r.take(ct_len)?.to_vec();
        r.finish()?;
        Ok(WrappedKey {
            provider,
            key_name,
            version,
            ciphertext,
        })
    }

    /// Checks the invariants the encodings rely on.
    pub(crate) fn validate(&self) -> Result<()> {
        validate_key_name(&self.key_name)?;
        if self.version == 0 {
            return Err(SealError::Internal("wrapped key version 0".into()));
        }
        if self.ciphertext.is_empty() || self.ciphertext.len() > MAX_WRAPPED_LEN {
            return Err(SealError::Internal(format!(
                "wrapped key of {} bytes",
                self.ciphertext.len()
            )));
        }
        Ok(())
    }
}

/// Key names are 1..=128 bytes of `[A-Za-z0-9._-]`.
pub fn validate_key_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > MAX_KEY_NAME_LEN
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(SealError::Config(format!("invalid key name {name:?}")));
    }
    Ok(())
}

/// Parses a key name from untrusted bytes (anything invalid is `Tampered`).
pub(crate) fn parse_key_name(bytes: &[u8]) -> Result<String> {
    let s = std::str::from_utf8(bytes).map_err(|_| SealError::Tampered)?;
    validate_key_name(s).map_err(|_| SealError::Tampered)?;
    Ok(s.to_owned())
}

/// Regions are 1..=32 bytes of `[a-z0-9-]` (e.g. `us`, `eu`, `ca-east`).
pub fn validate_region(region: &str) -> Result<()> {
    if region.is_empty()
        || region.len() > 32
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(SealError::Config(format!("invalid region {region:?}")));
    }
    Ok(())
}

/// Versions of one region's master key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVersions {
    /// Master key name.
    pub key_name: String,
    /// Newest version (used for new data keys).
    pub latest: u32,
    /// Oldest version still allowed to unwrap.
    pub min_decryption_version: u32,
    /// All versions that still exist, ascending.
    pub versions: Vec<u32>,
}

/// A source of data keys: envelope encryption with one master key per region.
///
/// Object-safe (`Box<dyn KeyProvider + Send + Sync>` / `Arc<dyn KeyProvider>`). All methods
/// are blocking; an async server calls them through `spawn_blocking`. Implementations never
/// fall back to another key or region: an unknown region is [`SealError::KeyNotFound`], an
/// unreachable service [`SealError::KeyUnavailable`].
pub trait KeyProvider: Send + Sync {
    /// Which provider this is (recorded in every header).
    fn id(&self) -> ProviderId;

    /// The master key name used for `region`.
    fn key_name(&self, region: &str) -> Result<String>;

    /// A fresh random data key and the same key wrapped by the region's latest master key.
    fn generate_data_key(&self, region: &str) -> Result<(DataKey, WrappedKey)>;

    /// Unwraps a data key. A wrapped key that belongs to another region/key, or whose
    /// ciphertext was modified, is [`SealError::Tampered`]; one wrapped by a version below
    /// `min_decryption_version` is [`SealError::KeyVersionRefused`].
    fn unwrap_data_key(&self, wrapped: &WrappedKey, region: &str) -> Result<DataKey>;

    /// Wraps an existing data key under the region's latest master key version: how a data key
    /// moves from one master key to another (`keys rewrap --tenant`) without touching the blobs
    /// it sealed.
    fn wrap_data_key(&self, dek: &DataKey, region: &str) -> Result<WrappedKey>;

    /// Adds a new master key version for `region` and returns it; older versions still unwrap.
    fn rotate(&self, region: &str) -> Result<u32>;

    /// Re-wraps a data key under the latest master key version (the data key itself and every
    /// blob sealed with it are unchanged).
    fn rewrap(&self, wrapped: &WrappedKey, region: &str) -> Result<WrappedKey>;

    /// Versions of the region's master key.
    fn key_versions(&self, region: &str) -> Result<KeyVersions>;

    /// Refuses to unwrap anything wrapped by a version below `version` (an administrative
    /// operation; the Transit app token is not allowed to do it).
    fn set_min_decryption_version(&self, region: &str, version: u32) -> Result<()>;
}

impl<T: KeyProvider + ?Sized> KeyProvider for std::sync::Arc<T> {
    fn id(&self) -> ProviderId {
        (**self).id()
    }
    fn key_name(&self, region: &str) -> Result<String> {
        (**self).key_name(region)
    }
    fn generate_data_key(&self, region: &str) -> Result<(DataKey, WrappedKey)> {
        (**self).generate_data_key(region)
    }
    fn unwrap_data_key(&self, wrapped: &WrappedKey, region: &str) -> Result<DataKey> {
        (**self).unwrap_data_key(wrapped, region)
    }
    fn wrap_data_key(&self, dek: &DataKey, region: &str) -> Result<WrappedKey> {
        (**self).wrap_data_key(dek, region)
    }
    fn rotate(&self, region: &str) -> Result<u32> {
        (**self).rotate(region)
    }
    fn rewrap(&self, wrapped: &WrappedKey, region: &str) -> Result<WrappedKey> {
        (**self).rewrap(wrapped, region)
    }
    fn key_versions(&self, region: &str) -> Result<KeyVersions> {
        (**self).key_versions(region)
    }
    fn set_min_decryption_version(&self, region: &str, version: u32) -> Result<()> {
        (**self).set_min_decryption_version(region, version)
    }
}

/// Fills `buf` from the OS CSPRNG.
pub(crate) fn random_bytes(buf: &mut [u8]) -> Result<()> {
    use aes_gcm::aead::rand_core::RngCore;
    aes_gcm::aead::OsRng
        .try_fill_bytes(buf)
        .map_err(|e| SealError::Internal(format!("OS random generator failed: {e}")))
}

/// A fresh random data key.
pub(crate) fn random_data_key() -> Result<DataKey> {
    let mut k = Zeroizing::new([0u8; 32]);
    random_bytes(&mut k[..])?;
    Ok(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> WrappedKey {
        WrappedKey {
            provider: ProviderId::Transit,
            key_name: "pixseal-eu".into(),
            version: 3,
            ciphertext: b"vault:v3:abc".to_vec(),
        }
    }

    #[test]
    fn wrapped_key_bytes_round_trip() {
        let w = sample();
        assert_eq!(WrappedKey::from_bytes(&w.to_bytes()).unwrap(), w);
    }

    #[test]
    fn wrapped_key_bytes_reject_garbage() {
        let b = sample().to_bytes();
        for n in 0..b.len() {
            assert!(matches!(
                WrappedKey::from_bytes(&b[..n]),
                Err(SealError::Tampered)
            ));
        }
        let mut long = b.clone();
        long.push(0);
        assert!(matches!(
            WrappedKey::from_bytes(&long),
            Err(SealError::Tampered)
        ));
        let mut bad = b;
        bad[0] = 9;
        assert!(matches!(
            WrappedKey::from_bytes(&bad),
            Err(SealError::Tampered)
        ));
    }

    #[test]
    fn names_and_regions() {
        assert!(validate_key_name("pixseal-us").is_ok());
        assert!(validate_key_name("").is_err());
        assert!(validate_key_name("a/b").is_err());
        assert!(validate_region("eu").is_ok());
        assert!(validate_region("EU").is_err());
        assert!(validate_region("").is_err());
        assert_eq!(
            ProviderId::from_byte(ProviderId::Local.as_byte()),
            Some(ProviderId::Local)
        );
        assert_eq!(ProviderId::from_byte(0), None);
    }

    #[test]
    fn data_keys_are_random() {
        let a = random_data_key().unwrap();
        let b = random_data_key().unwrap();
        assert_ne!(*a, *b);
    }
}
