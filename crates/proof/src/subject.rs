//! The subject of a version 2 deletion receipt: a salted SHA-256 commitment to the artifact id
//! and the original's SHA-256, and the opening that only the owning tenant is shown.
//!
//! `subject = hex(SHA-256("pixseal receipt subject v2\n" || salt || "\n" || artifact_id || "\n"
//! || original_sha256))`, every part as its text (the salt as 64 lowercase hex digits). The
//! salt is 256 random bits per receipt, so the subject says nothing about a guessed original
//! or artifact id to someone without the opening, and anyone holding the opening can recompute
//! it with `printf` and `sha256sum` (docs/receipts.md).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::receipt::ReceiptError;

/// The domain-separation prefix of a subject commitment.
pub const SUBJECT_DOMAIN: &str = "pixseal receipt subject v2\n";

/// What opens a version 2 receipt's `subject`: shown to the owning tenant only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SubjectOpening {
    /// 256 random bits, 64 lowercase hex digits.
    pub salt: String,
    /// The deleted artifact's id (internal: never shown to the public).
    pub artifact_id: String,
    /// SHA-256 of the original upload, 64 lowercase hex digits.
    pub original_sha256: String,
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

impl SubjectOpening {
    /// A fresh opening with a salt from the OS CSPRNG.
    pub fn new(artifact_id: &str, original_sha256: &str) -> Result<Self, ReceiptError> {
        let mut salt = [0u8; 32];
        getrandom::fill(&mut salt).map_err(|e| ReceiptError::Key(format!("OS randomness: {e}")))?;
        let opening = SubjectOpening {
            salt: hex::encode(salt),
            artifact_id: artifact_id.to_string(),
            original_sha256: original_sha256.to_string(),
        };
        opening.subject()?;
        Ok(opening)
    }

    /// The commitment this opening opens. The parts are separated by newlines, so none may
    /// hold one: a part that could shift the separators is refused, not hashed.
    pub fn subject(&self) -> Result<String, ReceiptError> {
        if !is_hex64(&self.salt) {
            return Err(ReceiptError::Malformed(
                "salt is not 64 lowercase hex digits".into(),
            ));
        }
        if !is_hex64(&self.original_sha256) {
            return Err(ReceiptError::Malformed(
                "original_sha256 is not 64 lowercase hex digits".into(),
            ));
        }
        if self.artifact_id.is_empty()
            || self.artifact_id.len() > 128
            || self.artifact_id.chars().any(char::is_control)
        {
            return Err(ReceiptError::Malformed(
                "artifact_id is empty, too long or holds a control character".into(),
            ));
        }
        let mut h = Sha256::new();
        h.update(SUBJECT_DOMAIN.as_bytes());
        for (i, part) in [&self.salt, &self.artifact_id, &self.original_sha256]
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                h.update(b"\n");
            }
            h.update(part.as_bytes());
        }
        Ok(hex::encode(h.finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opening() -> SubjectOpening {
        SubjectOpening {
            salt: "5a".repeat(32),
            artifact_id: "0192f3a4-0000-7000-8000-000000000001".into(),
            original_sha256: "cd".repeat(32),
        }
    }

    /// The commitment is the documented text hashed, as `printf … | sha256sum` computes it.
    #[test]
    fn subject_is_the_documented_hash() {
        let o = opening();
        let text = format!(
            "pixseal receipt subject v2\n{}\n{}\n{}",
            o.salt, o.artifact_id, o.original_sha256
        );
        assert_eq!(o.subject().unwrap(), hex::encode(Sha256::digest(text)));
        for change in [
            |o: &mut SubjectOpening| o.salt = "5b".repeat(32),
            |o: &mut SubjectOpening| o.artifact_id.push('0'),
            |o: &mut SubjectOpening| o.original_sha256 = "ce".repeat(32),
        ] {
            let mut other = opening();
            change(&mut other);
            assert_ne!(other.subject().unwrap(), o.subject().unwrap());
        }
    }

    #[test]
    fn fresh_salts_differ_and_bad_parts_are_refused() {
        let a = SubjectOpening::new("a", &"cd".repeat(32)).unwrap();
        let b = SubjectOpening::new("a", &"cd".repeat(32)).unwrap();
        assert_ne!(a.salt, b.salt);
        assert_ne!(a.subject().unwrap(), b.subject().unwrap());
        for bad in [
            SubjectOpening {
                salt: "5A".repeat(32),
                ..opening()
            },
            SubjectOpening {
                original_sha256: "cd".into(),
                ..opening()
            },
            SubjectOpening {
                artifact_id: "a\nb".into(),
                ..opening()
            },
            SubjectOpening {
                artifact_id: String::new(),
                ..opening()
            },
        ] {
            assert!(
                matches!(bad.subject(), Err(ReceiptError::Malformed(_))),
                "{bad:?}"
            );
        }
    }
}
