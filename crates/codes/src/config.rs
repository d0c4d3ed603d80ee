//! `[codes]` settings.

use serde::{Deserialize, Serialize};

/// Message codes are never valid longer than this (the contract's ceiling).
pub const MAX_MESSAGE_TTL_DAYS: i64 = 30;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CodesConfig {
    /// How long a message code is valid (days, 1–30); a request may ask for less, never more.
    pub message_ttl_days: i64,
    /// Wrong live codes a session tolerates before it locks (1–10).
    pub live_max_failures: u32,
    /// How long a live call session (and so its codes) lasts, in minutes.
    pub live_session_minutes: i64,
    /// Message codes an account may issue per hour (sliding); beyond it 429
    /// `code_quota_exceeded` with Retry-After. 0 = no cap.
    pub max_codes_per_hour: u32,
    /// The same per member (codes minted with a member's passkey). 0 = no cap.
    pub max_codes_per_member_hour: u32,
    /// Whether minting needs a member's passkey assertion with user verification (a person
    /// present), for accounts that have not chosen otherwise.
    pub require_presence: bool,
    /// WebAuthn relying party ID; empty = the host of `[server].public_url` (`localhost` when
    /// that is an IP address: WebAuthn does not accept IP addresses).
    pub passkey_rp_id: String,
    /// Origins passkey ceremonies may come from; empty = the origin of `[server].public_url`
    /// (with `localhost` for an IP address).
    pub passkey_origins: Vec<String>,
    /// Authenticator models (AAGUIDs, `8-4-4-4-12` hex) allowed to register; empty = any.
    pub passkey_aaguids: Vec<String>,
}

impl Default for CodesConfig {
    fn default() -> Self {
        CodesConfig {
            message_ttl_days: MAX_MESSAGE_TTL_DAYS,
            live_max_failures: crate::live::MAX_FAILURES,
            live_session_minutes: 240,
            max_codes_per_hour: 20,
            max_codes_per_member_hour: 10,
            require_presence: true,
            passkey_rp_id: String::new(),
            passkey_origins: Vec::new(),
            passkey_aaguids: Vec::new(),
        }
    }
}

impl CodesConfig {
    /// Refuse settings that would break a promise (longer codes, an unbounded failure cap).
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_MESSAGE_TTL_DAYS).contains(&self.message_ttl_days) {
            return Err(format!(
                "codes.message_ttl_days must be 1 to {MAX_MESSAGE_TTL_DAYS}, not {}",
                self.message_ttl_days
            ));
        }
        if !(1..=10).contains(&self.live_max_failures) {
            return Err(format!(
                "codes.live_max_failures must be 1 to 10, not {}",
                self.live_max_failures
            ));
        }
        if self.max_codes_per_hour > 1_000_000 {
            return Err(format!(
                "codes.max_codes_per_hour must be 0 (no cap) to 1000000, not {}",
                self.max_codes_per_hour
            ));
        }
        if self.max_codes_per_member_hour > 1_000_000 {
            return Err(format!(
                "codes.max_codes_per_member_hour must be 0 (no cap) to 1000000, not {}",
                self.max_codes_per_member_hour
            ));
        }
        if let Some(bad) = self
            .passkey_aaguids
            .iter()
            .find(|a| crate::passkey::parse_aaguid(a).is_none())
        {
            return Err(format!(
                "codes.passkey_aaguids: {bad:?} is not an AAGUID (32 hex digits, hyphens allowed)"
            ));
        }
        if let Some(bad) = self.passkey_origins.iter().find(|o| {
            !(o.starts_with("https://")
                || *o == "http://localhost"
                || o.starts_with("http://localhost:"))
        }) {
            return Err(format!(
                "codes.passkey_origins: {bad:?} must be https:// (or http://localhost)"
            ));
        }
        if !(1..=24 * 60).contains(&self.live_session_minutes) {
            return Err(format!(
                "codes.live_session_minutes must be 1 to 1440, not {}",
                self.live_session_minutes
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_never_above_thirty_days() {
        assert_eq!(CodesConfig::default().validate(), Ok(()));
        for bad in [0, 31, 365] {
            let c = CodesConfig {
                message_ttl_days: bad,
                ..CodesConfig::default()
            };
            assert!(c.validate().is_err());
        }
        let c = CodesConfig {
            live_max_failures: 0,
            ..CodesConfig::default()
        };
        assert!(c.validate().is_err());
        for (origin, ok) in [
            ("https://pixseal.example", true),
            ("http://localhost:8080", true),
            ("http://localhost.evil.example", false),
            ("http://pixseal.example", false),
        ] {
            let c = CodesConfig {
                passkey_origins: vec![origin.into()],
                ..CodesConfig::default()
            };
            assert_eq!(c.validate().is_ok(), ok, "{origin}");
        }
        let c = CodesConfig {
            passkey_aaguids: vec!["not-an-aaguid".into()],
            ..CodesConfig::default()
        };
        assert!(c.validate().is_err());
    }
}
