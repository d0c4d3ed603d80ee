//! Live call codes: 4 digits that change every 2 minutes, per account and call session.
//!
//! Derivation (TOTP, RFC 6238, over HMAC-SHA256 as in RFC 4226 §5):
//! `session_secret = HMAC(region secret, "live-session" ‖ account ‖ session id)` and
//! `mac = HMAC(session_secret, counter as 8 bytes big-endian)` with
//! `counter = ⌊unix time / 120 s⌋`.
//!
//! Digits without modulo bias: instead of RFC 4226's dynamic truncation to 31 bits followed by
//! `mod 10^4` (which favours the first 3 648 values by 1 part in 214 748), the MAC is read as
//! sixteen big-endian 16-bit words and the first word below 60 000 (= 6 × 10 000) gives the code
//! as `word mod 10 000`: exactly uniform. Each word is rejected with probability 5 536 / 65 536
//! ≈ 0.0845, all sixteen with probability ≈ 7·10⁻¹⁸; only then is the whole 256-bit MAC
//! reduced mod 10 000 (bias below 10⁻⁷³).
//!
//! The verifier accepts the current window and the previous one (clock skew, a code read out
//! just before it rotated), never a future one. A session tolerates [`MAX_FAILURES`] wrong codes;
//! the next one locks it until the start of the next window, and each further lock lasts twice
//! as long as the one before (1, 2, 4, … windows). A successful check resets the count.

use hmac::{Hmac, KeyInit, Mac};
use sha2_11::Sha256;
use subtle::ConstantTimeEq;

use crate::CodeKey;

/// The WebAuthn challenge a member's passkey signs to start call session `session` (ending at
/// `expires_s`, Unix seconds): SHA-256 of
/// `"pixseal-live-passkey-v1\nsession=…\nexpires=…\n"`, a first line no other signed text
/// has, so the assertion vouches for this session and nothing else.
pub fn passkey_challenge(session: &str, expires_s: i64) -> [u8; 32] {
    use sha2_11::Digest;
    Sha256::digest(format!(
        "pixseal-live-passkey-v1\nsession={session}\nexpires={expires_s}\n"
    ))
    .into()
}

/// One rotation window.
pub const WINDOW_MS: i64 = 120_000;
/// Codes have this many digits.
pub const DIGITS: u32 = 4;
const MODULUS: u32 = 10_u32.pow(DIGITS);
/// Wrong codes a session tolerates before it is locked (the default of `[codes]`).
pub const MAX_FAILURES: u32 = 5;
/// Lock lengths stop doubling here (2^20 windows ≈ 4 years: the session expires long before).
const MAX_LOCK_DOUBLINGS: u32 = 20;

/// The rotation counter at `now_ms`.
pub fn counter(now_ms: i64) -> i64 {
    now_ms.div_euclid(WINDOW_MS)
}

/// When window `counter` ends (the next one starts).
pub fn window_end_ms(counter: i64) -> i64 {
    counter.saturating_add(1).saturating_mul(WINDOW_MS)
}

/// The code of one window: always [`DIGITS`] digits, leading zeros kept.
pub fn code(key: &CodeKey, account: &str, session: &str, counter: i64) -> String {
    let secret = key.mac("live-session", &[account.as_bytes(), session.as_bytes()]);
    let mut m =
        <Hmac<Sha256> as KeyInit>::new_from_slice(&secret).expect("HMAC takes a key of any length");
    m.update(&counter.to_be_bytes());
    let mac: [u8; 32] = m.finalize().into_bytes().into();
    format!("{:0width$}", digits(&mac), width = DIGITS as usize)
}

/// Rejection sampling over the MAC's 16-bit words (see the module documentation).
fn digits(mac: &[u8; 32]) -> u32 {
    const ACCEPT_BELOW: u32 = (65_536 / MODULUS) * MODULUS;
    for w in mac.chunks_exact(2) {
        let v = u32::from(u16::from_be_bytes([w[0], w[1]]));
        if v < ACCEPT_BELOW {
            return v % MODULUS;
        }
    }
    mac.iter()
        .fold(0u32, |acc, &b| (acc * 256 + u32::from(b)) % MODULUS)
}

/// Which window a typed code belongs to: the current one or the previous one, else `None`.
/// Windows before `first_counter` (the session's first window) never count: no code of them
/// was ever shown. The comparison is constant-time.
pub fn check(
    key: &CodeKey,
    account: &str,
    session: &str,
    now_ms: i64,
    first_counter: i64,
    typed: &str,
) -> Option<i64> {
    let typed = typed.trim();
    if typed.len() != DIGITS as usize || !typed.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = counter(now_ms);
    // Both windows are always computed, so timing does not tell which one matched.
    let cur = code(key, account, session, now);
    let prev = code(key, account, session, now - 1);
    let in_cur = cur.as_bytes().ct_eq(typed.as_bytes());
    let in_prev = prev.as_bytes().ct_eq(typed.as_bytes());
    if bool::from(in_cur) && now >= first_counter {
        Some(now)
    } else if bool::from(in_prev) && now > first_counter {
        Some(now - 1)
    } else {
        None
    }
}

/// Until when a session is locked after its `lock_level`-th lock (0 = first): the start of the
/// next window, then 2, 4, 8 … windows later.
pub fn locked_until_ms(now_ms: i64, lock_level: u32) -> i64 {
    let windows = 1i64 << lock_level.min(MAX_LOCK_DOUBLINGS);
    counter(now_ms)
        .saturating_add(windows)
        .saturating_mul(WINDOW_MS)
}

/// The chance that an attacker who knows the session id and hammers the verifier for
/// `duration_ms` gets one code accepted, with `max_failures` tries per lock cycle: each try hits
/// one of the two accepted codes with probability 2/10⁴, and after `k` locks the attacker has
/// spent about 2^k windows. An upper bound (union bound), for docs/codes.md and its test.
pub fn guess_odds(duration_ms: i64, max_failures: u32) -> f64 {
    let mut elapsed = 0i64;
    let mut tries = 0u64;
    let mut level = 0u32;
    while elapsed < duration_ms {
        tries += u64::from(max_failures);
        elapsed += WINDOW_MS << level.min(MAX_LOCK_DOUBLINGS);
        level += 1;
    }
    (tries as f64 * 2.0 / f64::from(MODULUS)).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CodeKey {
        CodeKey::from_bytes([7; 32])
    }

    #[test]
    fn codes_are_four_digits_stable_within_a_window_and_rotate() {
        let k = key();
        let t = 1_700_000_000_000i64;
        let c = counter(t);
        let a = code(&k, "acct", "ls_1", c);
        assert_eq!(a.len(), 4);
        assert!(a.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(code(&k, "acct", "ls_1", counter(t + 1)), a);
        // Over many windows, consecutive codes are mostly different.
        let changes = (0..200)
            .filter(|i| code(&k, "acct", "ls_1", c + i) != code(&k, "acct", "ls_1", c + i + 1))
            .count();
        assert!(changes > 190, "{changes}");
        assert_ne!(
            (0..20)
                .map(|i| code(&k, "acct", "ls_1", c + i))
                .collect::<Vec<_>>(),
            (0..20)
                .map(|i| code(&k, "acct", "ls_2", c + i))
                .collect::<Vec<_>>()
        );
        assert_ne!(
            (0..20)
                .map(|i| code(&k, "acct", "ls_1", c + i))
                .collect::<Vec<_>>(),
            (0..20)
                .map(|i| code(&k, "other", "ls_1", c + i))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn check_accepts_current_and_previous_window_only() {
        let k = key();
        let t = 1_700_000_040_000i64;
        let c = counter(t);
        let cur = code(&k, "a", "s", c);
        let prev = code(&k, "a", "s", c - 1);
        let old = code(&k, "a", "s", c - 2);
        let next = code(&k, "a", "s", c + 1);
        assert_eq!(check(&k, "a", "s", t, 0, &cur), Some(c));
        if prev != cur {
            assert_eq!(check(&k, "a", "s", t, 0, &prev), Some(c - 1));
            // A session that started in this window never showed the previous code.
            assert_eq!(check(&k, "a", "s", t, c, &prev), None);
        }
        if old != cur && old != prev {
            assert_eq!(check(&k, "a", "s", t, 0, &old), None);
        }
        if next != cur && next != prev {
            assert_eq!(check(&k, "a", "s", t, 0, &next), None);
        }
        assert_eq!(check(&k, "a", "s", t, 0, "12345"), None);
        assert_eq!(check(&k, "a", "s", t, 0, "12a4"), None);
    }

    #[test]
    fn digits_are_uniform() {
        // 200 000 codes into 10 000 buckets: chi-square with 9 999 degrees of freedom has mean
        // 9 999 and sd ≈ 141; a biased mapping (e.g. mod of a 16-bit word) lands far above.
        let k = key();
        let mut counts = vec![0u32; MODULUS as usize];
        let n = 200_000;
        for i in 0..n {
            let c: usize = code(&k, "a", "s", i).parse().unwrap();
            counts[c] += 1;
        }
        let e = f64::from(n as u32) / f64::from(MODULUS);
        let chi: f64 = counts.iter().map(|&o| (f64::from(o) - e).powi(2) / e).sum();
        assert!(
            (9_999.0 - 6.0 * 141.0..9_999.0 + 6.0 * 141.0).contains(&chi),
            "{chi}"
        );
        // The rejection bound: words ≥ 60 000 are never used directly.
        let mut mac = [0xFFu8; 32];
        mac[30] = 0x00;
        mac[31] = 0x07;
        assert_eq!(digits(&mac), 7);
    }

    #[test]
    fn lock_lengths_double() {
        let t = 10 * WINDOW_MS + 5_000;
        assert_eq!(locked_until_ms(t, 0), 11 * WINDOW_MS);
        assert_eq!(locked_until_ms(t, 1), 12 * WINDOW_MS);
        assert_eq!(locked_until_ms(t, 3), 18 * WINDOW_MS);
        assert!(locked_until_ms(t, 200) > t);
    }

    #[test]
    fn guess_odds_stay_small() {
        // One window: 5 tries × 2 accepted codes / 10 000.
        assert!((guess_odds(WINDOW_MS, 5) - 0.001).abs() < 1e-12);
        // A whole day of hammering: 10 lock cycles, 50 tries, 1 %.
        assert!(guess_odds(86_400_000, 5) <= 0.011);
    }
}
