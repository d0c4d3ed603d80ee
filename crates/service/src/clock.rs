//! The one clock every workflow reads, and the day in milliseconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// The system time plus an offset that only tests change, shared by every clone, so an
/// in-process service can be moved through time (codes expire, retention ends) over HTTP.
#[derive(Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        let sys = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        sys + self.offset_ms.load(Ordering::Relaxed)
    }

    /// Now as (RFC 3339 UTC with `Z`, milliseconds since the epoch).
    pub fn now(&self) -> (String, i64) {
        pixseal_store::meta::at_ms(self.now_ms())
    }

    /// Move this clock (and every clone of it) forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_move_together() {
        let a = Clock::default();
        let b = a.clone();
        let before = b.now_ms();
        a.advance(DAY_MS);
        assert!(b.now_ms() - before >= DAY_MS);
        assert!(b.now().0.ends_with('Z'));
    }
}
