//! Message codes: 60 bits from the OS CSPRNG, written as 12 Crockford base32 characters in three
//! groups of four, then a fourth group holding Crockford's check symbol (value mod 37), e.g.
//! `7K3M-9QWX-R2TB-F`. Parsing is forgiving the way Crockford intends (any case, `O`→0,
//! `I`/`L`→1, hyphens and spaces ignored); the check symbol catches every single-character
//! error and every swap of two adjacent characters before the server looks anything up.

use std::fmt;
use std::str::FromStr;

/// Data characters (32) followed by the five extra check symbols (`*~$=U`).
const SYMBOLS: &[u8; 37] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U";
const DATA_CHARS: usize = 12;
/// Bits of randomness in a code.
pub const CODE_BITS: u32 = 5 * DATA_CHARS as u32;

/// A message code's value (the low 60 bits are used).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageCode(u64);

/// Why a typed code was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseCodeError {
    #[error("a code has 12 characters plus a check character (e.g. 7K3M-9QWX-R2TB-F)")]
    Length,
    #[error("{0:?} is not a Crockford base32 character")]
    Character(char),
    #[error("the check character does not match: a character was mistyped")]
    Check,
}

impl MessageCode {
    /// A fresh code from the operating system's CSPRNG.
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b)?;
        Ok(Self::from_value(u64::from_be_bytes(b)))
    }

    /// The code of a 60-bit value (higher bits are dropped).
    pub fn from_value(v: u64) -> Self {
        MessageCode(v & ((1 << CODE_BITS) - 1))
    }

    pub fn value(self) -> u64 {
        self.0
    }

    /// The canonical form: 12 characters and the check symbol, no separators. This is what is
    /// keyed-hashed and signed, so every typed variant of one code means the same thing.
    pub fn canonical(self) -> String {
        let mut s = String::with_capacity(DATA_CHARS + 1);
        for i in 0..DATA_CHARS {
            let shift = 5 * (DATA_CHARS - 1 - i);
            s.push(SYMBOLS[((self.0 >> shift) & 31) as usize] as char);
        }
        s.push(SYMBOLS[(self.0 % 37) as usize] as char);
        s
    }
}

impl fmt::Display for MessageCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.canonical();
        write!(f, "{}-{}-{}-{}", &c[0..4], &c[4..8], &c[8..12], &c[12..])
    }
}

// Debug never prints the code itself: it is a secret until used.
impl fmt::Debug for MessageCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MessageCode(…)")
    }
}

fn symbol_value(c: u8, check: bool) -> Option<u64> {
    let c = match c.to_ascii_uppercase() {
        b'O' => b'0',
        b'I' | b'L' => b'1',
        x => x,
    };
    let limit = if check { 37 } else { 32 };
    SYMBOLS[..limit]
        .iter()
        .position(|&s| s == c)
        .map(|p| p as u64)
}

impl FromStr for MessageCode {
    type Err = ParseCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let chars: Vec<u8> = s
            .bytes()
            .filter(|b| !matches!(b, b'-' | b' ' | b'\t'))
            .collect();
        if s.len() > 64 || chars.len() != DATA_CHARS + 1 {
            return Err(ParseCodeError::Length);
        }
        let mut v = 0u64;
        for &c in &chars[..DATA_CHARS] {
            let d = symbol_value(c, false).ok_or(ParseCodeError::Character(c as char))?;
            v = (v << 5) | d;
        }
        let check = chars[DATA_CHARS];
        let got = symbol_value(check, true).ok_or(ParseCodeError::Character(check as char))?;
        if got != v % 37 {
            return Err(ParseCodeError::Check);
        }
        Ok(MessageCode(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_every_typed_form() {
        for v in [0u64, 1, 36, 37, (1 << 60) - 1, 0x0ABC_DEF0_1234_5678] {
            let c = MessageCode::from_value(v);
            let shown = c.to_string();
            assert_eq!(shown.len(), 16);
            assert_eq!(shown.parse::<MessageCode>().unwrap(), c);
            assert_eq!(shown.to_lowercase().parse::<MessageCode>().unwrap(), c);
            assert_eq!(c.canonical().parse::<MessageCode>().unwrap(), c);
            assert_eq!(shown.replace('-', " ").parse::<MessageCode>().unwrap(), c);
        }
        // Crockford aliases: O is 0, I and L are 1.
        let c = MessageCode::from_value(0);
        assert_eq!(c.canonical(), "0000000000000");
        assert_eq!("OOOO-oooo-0000-0".parse::<MessageCode>().unwrap(), c);
        let one = MessageCode::from_value(0x0084_2108_4210_8421);
        assert_eq!(one.canonical()[..12].to_string(), "111111111111");
        let typed = format!("IiLl-1111-1111-{}", &one.canonical()[12..]);
        assert_eq!(typed.parse::<MessageCode>().unwrap(), one);
    }

    #[test]
    fn check_symbol_catches_single_errors_and_adjacent_swaps() {
        let alphabet = &SYMBOLS[..32];
        for seed in 0..200u64 {
            let c = MessageCode::from_value(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 4);
            let canon = c.canonical().into_bytes();
            for i in 0..DATA_CHARS {
                for &a in alphabet {
                    if a == canon[i] {
                        continue;
                    }
                    let mut t = canon.clone();
                    t[i] = a;
                    let s = String::from_utf8(t).unwrap();
                    assert!(s.parse::<MessageCode>().is_err(), "{s} slipped through");
                }
                if i + 1 < DATA_CHARS && canon[i] != canon[i + 1] {
                    let mut t = canon.clone();
                    t.swap(i, i + 1);
                    let s = String::from_utf8(t).unwrap();
                    assert_eq!(s.parse::<MessageCode>(), Err(ParseCodeError::Check), "{s}");
                }
            }
        }
    }

    #[test]
    fn rejects_malformed_input() {
        for bad in [
            "",
            "ABCD",
            "7K3M-9QWX-R2TB",
            "7K3M-9QWX-R2TB-FF0",
            "UK3M-9QWX-R2TB-F",
        ] {
            assert!(bad.parse::<MessageCode>().is_err(), "{bad}");
        }
        assert_eq!(
            "7K3M-9QWX-R2T!-F".parse::<MessageCode>(),
            Err(ParseCodeError::Character('!'))
        );
        assert!(format!("{:?}", MessageCode::from_value(5)).contains('…'));
    }

    #[test]
    fn random_codes_differ_and_fit_60_bits() {
        let a = MessageCode::random().unwrap();
        let b = MessageCode::random().unwrap();
        assert_ne!(a, b);
        assert!(a.value() < 1 << 60);
    }
}
