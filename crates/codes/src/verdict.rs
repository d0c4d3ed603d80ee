//! The outcome of a verification: `valid`, or exactly why not.

use serde::Serialize;

/// What a verifier is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = CodeVerdictValue))]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Valid,
    /// No such code (or live session).
    Unknown,
    /// The code exists but the message or the recipient differ (which one is not said), or a
    /// live code is wrong.
    Mismatch,
    Expired,
    /// Already verified once (message codes), or already verified in this window (live codes).
    Used,
    /// The account revoked its codes.
    Revoked,
    /// Live codes only: too many wrong codes; the session is locked for now.
    Locked,
    /// Level-4 account: the stored device signature does not verify against the device key.
    InvalidSignature,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Unknown => "unknown",
            Verdict::Mismatch => "mismatch",
            Verdict::Expired => "expired",
            Verdict::Used => "used",
            Verdict::Revoked => "revoked",
            Verdict::Locked => "locked",
            Verdict::InvalidSignature => "invalid_signature",
        }
    }
}

/// What is known of a stored message code when it is checked (before the one-time claim).
#[derive(Debug, Clone)]
pub struct StoredCode<'a> {
    pub message_sha256: &'a str,
    pub recipient_tag: &'a str,
    pub expires_ms: i64,
    pub used: bool,
    pub revoked: bool,
}

impl StoredCode<'_> {
    /// Judge a presented (message hash, recipient tag) at `now_ms`. Order matters: a revoked
    /// account is the strongest warning; an expired code is dead whatever was typed; a changed
    /// message is reported before "already used", so a recipient always learns of tampering.
    /// `Valid` here still has to win the one-time claim.
    pub fn judge(&self, message_sha256: &str, recipient_tag: &str, now_ms: i64) -> Verdict {
        use subtle::ConstantTimeEq;
        if self.revoked {
            return Verdict::Revoked;
        }
        if now_ms >= self.expires_ms {
            return Verdict::Expired;
        }
        let same_msg = self
            .message_sha256
            .as_bytes()
            .ct_eq(message_sha256.as_bytes());
        let same_rcpt = self
            .recipient_tag
            .as_bytes()
            .ct_eq(recipient_tag.as_bytes());
        if !bool::from(same_msg & same_rcpt) {
            return Verdict::Mismatch;
        }
        if self.used {
            return Verdict::Used;
        }
        Verdict::Valid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judging_order() {
        let s = StoredCode {
            message_sha256: "m",
            recipient_tag: "r",
            expires_ms: 100,
            used: false,
            revoked: false,
        };
        assert_eq!(s.judge("m", "r", 99), Verdict::Valid);
        assert_eq!(s.judge("m", "r", 100), Verdict::Expired);
        assert_eq!(s.judge("x", "r", 1), Verdict::Mismatch);
        assert_eq!(s.judge("m", "x", 1), Verdict::Mismatch);
        let used = StoredCode {
            used: true,
            ..s.clone()
        };
        assert_eq!(used.judge("m", "r", 1), Verdict::Used);
        assert_eq!(used.judge("x", "r", 1), Verdict::Mismatch);
        let revoked = StoredCode { revoked: true, ..s };
        assert_eq!(revoked.judge("m", "r", 1_000), Verdict::Revoked);
        assert_eq!(Verdict::InvalidSignature.as_str(), "invalid_signature");
    }
}
