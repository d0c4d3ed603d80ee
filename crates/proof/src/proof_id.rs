//! Proof ids: 64 random bits from the OS CSPRNG, shown as `px_` + 13 Crockford base32 characters.

use std::fmt;
use std::str::FromStr;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The 64-bit proof id the invisible watermark carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProofId(pub u64);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a proof id (expected px_ followed by 13 Crockford base32 characters)")]
pub struct ParseProofIdError;

impl ProofId {
    /// A fresh id from the operating system's CSPRNG.
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b)?;
        Ok(ProofId(u64::from_be_bytes(b)))
    }
}

impl fmt::Display for ProofId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // 13 groups of 5 bits = 65 bits: the first character carries the top 4 bits.
        let mut out = [0u8; 13];
        for (i, c) in out.iter_mut().enumerate() {
            let shift = 5 * (12 - i);
            *c = ALPHABET[((self.0 as u128 >> shift) & 31) as usize];
        }
        write!(
            f,
            "px_{}",
            std::str::from_utf8(&out).expect("ASCII alphabet")
        )
    }
}

impl FromStr for ProofId {
    type Err = ParseProofIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let body = s.strip_prefix("px_").ok_or(ParseProofIdError)?;
        if body.len() != 13 {
            return Err(ParseProofIdError);
        }
        let mut v: u128 = 0;
        for c in body.bytes() {
            // Crockford decoding: case-insensitive, O→0, I/L→1.
            let c = match c.to_ascii_uppercase() {
                b'O' => b'0',
                b'I' | b'L' => b'1',
                x => x,
            };
            let d = ALPHABET
                .iter()
                .position(|&a| a == c)
                .ok_or(ParseProofIdError)?;
            v = (v << 5) | d as u128;
        }
        u64::try_from(v).map(ProofId).map_err(|_| ParseProofIdError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_has_the_spec_shape() {
        for v in [0u64, 1, u64::MAX, 0x0123_4567_89AB_CDEF] {
            let s = ProofId(v).to_string();
            assert_eq!(s.len(), 16);
            assert!(s.starts_with("px_"));
            assert_eq!(s.parse::<ProofId>().unwrap(), ProofId(v));
        }
        assert_eq!(ProofId(0).to_string(), "px_0000000000000");
        assert_eq!(ProofId(u64::MAX).to_string(), "px_FZZZZZZZZZZZZ");
        assert_eq!(
            "px_fzzzzzzzzzzzz".parse::<ProofId>().unwrap(),
            ProofId(u64::MAX)
        );
    }

    #[test]
    fn rejects_malformed_ids() {
        for bad in [
            "",
            "px_",
            "px_000000000000",
            "px_00000000000000",
            "xx_0000000000000",
            "px_GZZZZZZZZZZZZ",
            "px_000000000000U",
        ] {
            assert_eq!(bad.parse::<ProofId>(), Err(ParseProofIdError), "{bad}");
        }
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(ProofId::random().unwrap(), ProofId::random().unwrap());
    }
}
