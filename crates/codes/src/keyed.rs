//! Keyed hashes under the server's code secret, and the plain hashes of messages and recipients.
//!
//! The database keeps a code only as `HMAC-SHA256(secret, "code" ‖ canonical code)` and a
//! recipient only as `HMAC-SHA256(secret, "recipient" ‖ normalized recipient)`: without the
//! secret (held wrapped by the key provider, never in the database in clear) a leaked table gives
//! neither usable codes nor a dictionary of recipients. Each use has its own domain label and
//! every part is length-prefixed, so no input of one kind can collide with another.

use hmac::{Hmac, KeyInit, Mac};
use sha2_11::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::MessageCode;

type HmacSha256 = Hmac<Sha256>;

/// The code secret of one region: 256 bits, zeroized on drop, never printed.
#[derive(Clone)]
pub struct CodeKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeKey(…)")
    }
}

impl CodeKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        CodeKey(Zeroizing::new(bytes))
    }

    /// HMAC-SHA256 over a domain label and length-prefixed parts.
    pub(crate) fn mac(&self, label: &str, parts: &[&[u8]]) -> [u8; 32] {
        let mut m = <HmacSha256 as KeyInit>::new_from_slice(&self.0[..])
            .expect("HMAC takes a key of any length");
        m.update(b"pixseal/codes/v1/");
        m.update(label.as_bytes());
        for p in parts {
            m.update(&(p.len() as u64).to_be_bytes());
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }

    /// What the database stores instead of a message code (hex).
    pub fn code_tag(&self, code: MessageCode) -> String {
        hex::encode(self.mac("code", &[code.canonical().as_bytes()]))
    }

    /// What the database stores instead of a recipient (hex).
    pub fn recipient_tag(&self, recipient: &str) -> String {
        hex::encode(self.mac("recipient", &[normalize_recipient(recipient).as_bytes()]))
    }
}

/// A recipient as compared: surrounding whitespace removed, lowercased (an e-mail address or a
/// phone number typed by a human; `Bob@Example.com` and `bob@example.com ` are one recipient).
pub fn normalize_recipient(r: &str) -> String {
    r.trim().to_lowercase()
}

/// SHA-256 of a message body, hex.
pub fn message_sha256(message: &[u8]) -> String {
    hex::encode(Sha256::digest(message))
}

/// SHA-256 of the normalized recipient, hex: what a level-4 device signs (the device has no
/// access to the server secret, so it cannot sign the keyed form).
pub fn recipient_sha256(recipient: &str) -> String {
    hex::encode(Sha256::digest(normalize_recipient(recipient).as_bytes()))
}

/// A SHA-256 given as hex (any case) → lowercase hex, or `None` if it is not 64 hex digits.
pub fn parse_sha256_hex(s: &str) -> Option<String> {
    let s = s.trim();
    (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_depend_on_the_key_and_the_input() {
        let k1 = CodeKey::from_bytes([1; 32]);
        let k2 = CodeKey::from_bytes([2; 32]);
        let c = MessageCode::from_value(42);
        assert_eq!(k1.code_tag(c), k1.code_tag(c));
        assert_ne!(k1.code_tag(c), k2.code_tag(c));
        assert_ne!(k1.code_tag(c), k1.code_tag(MessageCode::from_value(43)));
        assert_eq!(
            k1.recipient_tag(" Bob@Example.com"),
            k1.recipient_tag("bob@example.com")
        );
        assert_ne!(
            k1.recipient_tag("bob@example.com"),
            k1.recipient_tag("eve@example.com")
        );
        // Domain separation: the same bytes as code and as recipient give different tags.
        let canon = c.canonical().to_lowercase();
        assert_ne!(k1.code_tag(c), k1.recipient_tag(&canon));
        assert!(!format!("{k1:?}").contains('1'));
    }

    #[test]
    fn hashes() {
        assert_eq!(
            message_sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            parse_sha256_hex(" BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"),
            Some(message_sha256(b"abc"))
        );
        assert_eq!(parse_sha256_hex("abc"), None);
        assert_eq!(parse_sha256_hex(&"g".repeat(64)), None);
        assert_eq!(recipient_sha256("A@B "), recipient_sha256("a@b"));
    }
}
