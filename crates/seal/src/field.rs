//! Sealing small values (database fields, JSON documents) with the same key hierarchy.
//!
//! A sealed field is the text `pxf1.` followed by unpadded base64url of:
//!
//! | bytes | field |
//! |---|---|
//! | 1 | envelope version = 1 |
//! | 1 | provider id (1 local, 2 transit) |
//! | 1 + N | key name length, key name |
//! | 4 | key version (BE) |
//! | 2 + W | wrapped data key length (BE), wrapped data key |
//! | 12 | AES-GCM nonce (random) |
//! | rest | AES-256-GCM ciphertext + 16-byte tag |
//!
//! The associated data is SHA-256 over a domain label, the envelope bytes before the nonce,
//! the region and the caller's context (e.g. `uploads.client_ip.<row id>`), so a value copied
//! to another row, column or region does not open. Each value has its own data key: deleting
//! the value (or the row) shreds it. With the transit provider each call costs one round trip.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Result, SealError};
use crate::header::Cursor;
use crate::provider::{
    KeyProvider, MAX_WRAPPED_LEN, ProviderId, WrappedKey, parse_key_name, random_bytes,
    validate_region,
};

/// Text prefix of a sealed field.
pub const FIELD_PREFIX: &str = "pxf1.";
const ENVELOPE_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Largest plaintext accepted by [`seal_field`] (fields are small; objects use [`crate::Sealer`]).
pub const MAX_FIELD_LEN: usize = 1 << 20;

fn field_aad(prefix: &[u8], region: &str, context: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"pixseal/seal/v1/field-aad");
    for part in [prefix, region.as_bytes(), context.as_bytes()] {
        h.update((part.len() as u32).to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// Seals one value. `context` names where it is stored (bound as associated data).
pub fn seal_field(
    provider: &dyn KeyProvider,
    region: &str,
    context: &str,
    plaintext: &[u8],
) -> Result<String> {
    validate_region(region)?;
    if plaintext.len() > MAX_FIELD_LEN {
        return Err(SealError::Config(format!(
            "field of {} bytes is larger than {MAX_FIELD_LEN}",
            plaintext.len()
        )));
    }
    let (dek, wrapped) = provider.generate_data_key(region)?;
    wrapped.validate()?;
    let mut env = Vec::with_capacity(
        9 + wrapped.key_name.len()
            + wrapped.ciphertext.len()
            + NONCE_LEN
            + plaintext.len()
            + TAG_LEN,
    );
    env.push(ENVELOPE_VERSION);
    env.push(wrapped.provider.as_byte());
    env.push(wrapped.key_name.len() as u8);
    env.extend_from_slice(wrapped.key_name.as_bytes());
    env.extend_from_slice(&wrapped.version.to_be_bytes());
    env.extend_from_slice(&(wrapped.ciphertext.len() as u16).to_be_bytes());
    env.extend_from_slice(&wrapped.ciphertext);
    let aad = field_aad(&env, region, context);
    let mut nonce = [0u8; NONCE_LEN];
    random_bytes(&mut nonce)?;
    let cipher = Aes256Gcm::new_from_slice(&dek[..])
        .map_err(|_| SealError::Internal("bad data key length".into()))?;
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| SealError::Internal("field encryption failed".into()))?;
    env.extend_from_slice(&nonce);
    env.extend_from_slice(&ct);
    Ok(format!("{FIELD_PREFIX}{}", B64URL.encode(&env)))
}

/// Opens a value sealed by [`seal_field`] with the same region and context. Anything
/// malformed or moved is [`SealError::Tampered`].
pub fn open_field(
    provider: &dyn KeyProvider,
    region: &str,
    context: &str,
    sealed: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    validate_region(region)?;
    let b64 = sealed
        .strip_prefix(FIELD_PREFIX)
        .ok_or(SealError::Tampered)?;
    if b64.len() > (MAX_FIELD_LEN + 4096) * 4 / 3 + 4 {
        return Err(SealError::Tampered);
    }
    let env = B64URL.decode(b64).map_err(|_| SealError::Tampered)?;
    let mut r = Cursor::new(&env);
    if r.u8()? != ENVELOPE_VERSION {
        return Err(SealError::Tampered);
    }
    let provider_id = ProviderId::from_byte(r.u8()?).ok_or(SealError::Tampered)?;
    let name_len = r.u8()? as usize;
    let key_name = parse_key_name(r.take(name_len)?)?;
    let version = r.u32()?;
    let wlen = r.u16()? as usize;
    if version == 0 || wlen == 0 || wlen > MAX_WRAPPED_LEN {
        return Err(SealError::Tampered);
    }
    let ciphertext = r.take(wlen)?.to_vec();
    let prefix_len = env.len() - r.rest_len();
    let nonce = r.take(NONCE_LEN)?;
    let ct = r.rest();
    if ct.len() < TAG_LEN {
        return Err(SealError::Tampered);
    }
    if provider_id != provider.id() || key_name != provider.key_name(region)? {
        return Err(SealError::Tampered);
    }
    let wrapped = WrappedKey {
        provider: provider_id,
        key_name,
        version,
        ciphertext,
    };
    let dek = provider.unwrap_data_key(&wrapped, region)?;
    let aad = field_aad(&env[..prefix_len], region, context);
    let cipher = Aes256Gcm::new_from_slice(&dek[..])
        .map_err(|_| SealError::Internal("bad data key length".into()))?;
    let pt = cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
        .map_err(|_| SealError::Tampered)?;
    Ok(Zeroizing::new(pt))
}

/// The name of the master key that wrapped a sealed field's data key (read from its envelope,
/// not yet authenticated: a caller uses it only to pick which provider tries to open it).
pub fn field_key_name(sealed: &str) -> Result<String> {
    let b64 = sealed
        .strip_prefix(FIELD_PREFIX)
        .ok_or(SealError::Tampered)?;
    let head = &b64[..b64.len().min(256)];
    let env = B64URL
        .decode(&head[..head.len() / 4 * 4])
        .map_err(|_| SealError::Tampered)?;
    let mut r = Cursor::new(&env);
    if r.u8()? != ENVELOPE_VERSION {
        return Err(SealError::Tampered);
    }
    ProviderId::from_byte(r.u8()?).ok_or(SealError::Tampered)?;
    let name_len = r.u8()? as usize;
    parse_key_name(r.take(name_len)?)
}

/// Serializes `value` to JSON and seals it like [`seal_field`].
pub fn seal_json<T: Serialize + ?Sized>(
    provider: &dyn KeyProvider,
    region: &str,
    context: &str,
    value: &T,
) -> Result<String> {
    let json = Zeroizing::new(
        serde_json::to_vec(value)
            .map_err(|e| SealError::Config(format!("not serializable: {e}")))?,
    );
    seal_field(provider, region, context, &json)
}

/// Opens a document sealed by [`seal_json`]. A document that authenticates but does not
/// deserialize into `T` is [`SealError::Config`] (wrong type), not `Tampered`.
pub fn open_json<T: DeserializeOwned>(
    provider: &dyn KeyProvider,
    region: &str,
    context: &str,
    sealed: &str,
) -> Result<T> {
    let json = open_field(provider, region, context, sealed)?;
    serde_json::from_slice(&json).map_err(|e| SealError::Config(format!("sealed JSON: {e}")))
}
