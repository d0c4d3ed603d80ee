//! Verification levels 0–4 (the "verification ladder"): each level needs the one before it,
//! and only the system raises a level — an administrator with recorded evidence, never the
//! account itself. Lowering (e.g. revoking a badge) may skip levels.

use std::fmt;

/// An account's verification level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Level(u8);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LevelError {
    #[error("verification levels are 0 to 4, not {0}")]
    OutOfRange(i64),
    #[error("levels are raised one step at a time: {from} → {to} skips a step")]
    Skips { from: u8, to: u8 },
    #[error("the account is already at level {0}")]
    Unchanged(u8),
    #[error("level 4 needs a registered device key or passkey")]
    NoDeviceKey,
    #[error("a level change needs evidence (what was checked, by whom)")]
    NoEvidence,
}

impl Level {
    pub const REGISTERED: Level = Level(0);
    /// Codes of this level must carry a device signature.
    pub const DEVICE_BOUND: Level = Level(4);

    pub fn new(v: i64) -> Result<Level, LevelError> {
        u8::try_from(v)
            .ok()
            .filter(|v| *v <= 4)
            .map(Level)
            .ok_or(LevelError::OutOfRange(v))
    }

    pub fn get(self) -> u8 {
        self.0
    }

    /// Stable name, as shown by verifiers.
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "registered",
            1 => "personal_verified",
            2 => "identity_verified",
            3 => "identity_employer",
            _ => "device_bound",
        }
    }

    /// Whether the system may move an account from `self` to `to`: up one step, or down any.
    /// `has_device_key` and `evidence` are what the step to level 4 and every change require.
    pub fn change_to(
        self,
        to: Level,
        has_device_key: bool,
        evidence: &str,
    ) -> Result<(), LevelError> {
        if evidence.trim().is_empty() {
            return Err(LevelError::NoEvidence);
        }
        if to == self {
            return Err(LevelError::Unchanged(self.0));
        }
        if to.0 > self.0 + 1 {
            return Err(LevelError::Skips {
                from: self.0,
                to: to.0,
            });
        }
        if to == Level::DEVICE_BOUND && !has_device_key {
            return Err(LevelError::NoDeviceKey);
        }
        Ok(())
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.0, self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladder() {
        let l = |v| Level::new(v).unwrap();
        assert!(Level::new(5).is_err());
        assert!(Level::new(-1).is_err());
        assert_eq!(l(0).change_to(l(1), false, "liveness check #12"), Ok(()));
        assert_eq!(
            l(0).change_to(l(2), false, "x"),
            Err(LevelError::Skips { from: 0, to: 2 })
        );
        assert_eq!(
            l(3).change_to(l(4), false, "x"),
            Err(LevelError::NoDeviceKey)
        );
        assert_eq!(l(3).change_to(l(4), true, "x"), Ok(()));
        assert_eq!(l(4).change_to(l(0), false, "abuse report"), Ok(()));
        assert_eq!(
            l(2).change_to(l(3), false, "  "),
            Err(LevelError::NoEvidence)
        );
        assert_eq!(
            l(2).change_to(l(2), false, "x"),
            Err(LevelError::Unchanged(2))
        );
        assert_eq!(l(4).name(), "device_bound");
    }
}
