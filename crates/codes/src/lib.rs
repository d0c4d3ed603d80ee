//! pixseal-codes: content-bound verification codes (SPEC §10), as pure domain logic:
//! no network, no database, no clock of its own (every function takes the time it needs).
//!
//! - [`MessageCode`]: 60 random bits shown as 12 Crockford base32 characters in groups of four
//!   plus a Crockford check symbol (`7K3M-9QWX-R2TB-F`); typos are caught before any lookup.
//! - [`CodeKey`]: the server secret (per region) behind every keyed hash: the stored form of a
//!   code ([`CodeKey::code_tag`]) and of a recipient ([`CodeKey::recipient_tag`]), and the seed
//!   of live call codes ([`live`]).
//! - [`live`]: 4-digit call codes rotating every 2 minutes, derived like TOTP (RFC 4226/6238
//!   over HMAC-SHA256) with unbiased digits, and the per-session failure cap.
//! - [`Level`]: verification levels 0–4; only the system raises them, one step at a time.
//! - [`device`]: the level-4 device signature over (code, message hash, recipient hash, expiry).
//! - [`passkey`]: members' passkeys (WebAuthn, UV required) and code assertions: level 4 and
//!   minting with a person present.
//! - [`Verdict`]: `valid` or why not.

pub mod config;
pub mod device;
pub mod keyed;
pub mod level;
pub mod live;
pub mod message;
pub mod passkey;
pub mod verdict;

pub use config::CodesConfig;
pub use device::{
    DeviceKey, DeviceSignatureError, SignedCode, fingerprint, parse_public_key, public_key_text,
};
pub use keyed::{CodeKey, message_sha256, normalize_recipient, parse_sha256_hex, recipient_sha256};
pub use level::{Level, LevelError};
pub use message::{MessageCode, ParseCodeError};
pub use verdict::{StoredCode, Verdict};
