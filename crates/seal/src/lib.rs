//! pixseal-seal: sealed objects (SPEC §7) and key providers.
//!
//! - [`Sealer`] seals/opens objects as a versioned header followed by AES-256-GCM segments in
//!   the STREAM construction (`aead::stream::StreamBE32`: 64 KiB segments, 32-bit counter and a
//!   last-segment flag in the nonce). The serialized header and the object id, tenant and region
//!   are bound as associated data of every segment; the AES-GCM under STREAM is AWS-LC's
//!   (through an `AeadInPlace` adapter). Byte layout: `docs/sealed-format.md`.
//!   [`RangeOpener`] opens any byte range from only the segments that hold it.
//! - [`Spool`] is an encrypted scratch file under a key held only in memory, for work too
//!   large for memory (a video between sanitize and storage).
//! - [`KeyProvider`] wraps per-object data keys with a per-region master key:
//!   [`LocalKeyProvider`] (key file, 0600) and [`TransitKeyProvider`] (Vault/OpenBao Transit).
//! - [`seal_field`] / [`seal_json`] seal small values with the same key hierarchy.
//! - [`wrap_for_import`] and [`TransitImporter`] bring a tenant's own key into Transit (BYOK).
//! - [`TransitReceiptSigner`] and [`Pkcs11ReceiptSigner`] sign deletion receipts with an
//!   Ed25519 key held by Transit or a PKCS#11 token; [`KeysConfig::open_receipt_signer`]
//!   builds the configured receipt signer.
//! - [`TransitClaimKey`] and [`Pkcs11ClaimKey`] hold the C2PA claim-signing key
//!   ([`pixseal_provenance::HeldKey`]) in Transit or on a token.
//!
//! Every failure is a typed [`SealError`] with a stable [`SealError::code`]; malformed input of
//! any kind is `tampered`, never a panic. Only the Transit and PKCS#11 types leave the process.

pub mod byok;
pub mod config;
pub mod error;
pub mod field;
mod gcm;
pub mod header;
pub mod local;
pub mod pkcs11;
pub mod provider;
pub mod range;
pub mod secret;
pub mod spool;
pub mod stream;
pub mod transit;
pub mod transit_claims;
pub mod transit_receipts;

pub use byok::{TransitImporter, wrap_for_import};
pub use config::{KeyProviderKind, KeysConfig, ReceiptProviderKind};
pub use error::{Result, SealError};
pub use field::{field_key_name, open_field, open_json, seal_field, seal_json};
pub use header::Header;
pub use local::LocalKeyProvider;
pub use pkcs11::{Pkcs11ClaimKey, Pkcs11Config, Pkcs11ReceiptSigner, Pkcs11Token};
pub use provider::{DataKey, KeyProvider, KeyVersions, ProviderId, WrappedKey, validate_key_name};
pub use range::RangeOpener;
pub use secret::Secret;
pub use spool::Spool;
pub use stream::{KeyPlacement, ObjectRef, SealSummary, Sealer, read_header};
pub use transit::{RetryPolicy, TransitConfig, TransitKeyProvider};
pub use transit_claims::TransitClaimKey;
pub use transit_receipts::TransitReceiptSigner;
