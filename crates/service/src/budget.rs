//! What requests may hold at once: the bytes of pictures in flight across all requests
//! (`max_inflight_bytes`): a body reserved before it is read and held until the work on it
//! ends, a stamped answer held until it is sent; and the decode slots (`decode_concurrency`),
//! held by the blocking task itself.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{Result, ServiceError, Services};

/// The budget is counted in KiB: one permit each.
const UNIT: u64 = 1024;

fn units(bytes: u64) -> u32 {
    bytes.div_ceil(UNIT).clamp(1, u64::from(u32::MAX)) as u32
}

/// A counted resource: its semaphore and how many permits it started with.
pub(crate) struct Slots {
    pub(crate) sem: Arc<Semaphore>,
    total: usize,
}

impl Slots {
    pub(crate) fn new(n: usize) -> Self {
        let total = n.clamp(1, Semaphore::MAX_PERMITS);
        Slots {
            sem: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// The in-flight body budget, in its units.
    pub(crate) fn for_bytes(max_inflight_bytes: u64) -> Self {
        Slots::new(units(max_inflight_bytes) as usize)
    }

    fn taken(&self) -> usize {
        self.total - self.sem.available_permits()
    }
}

/// Room reserved for a body not read yet.
pub struct Reservation(OwnedSemaphorePermit);

impl Reservation {
    /// The body read: the reservation shrinks to its size and stays with it.
    pub fn hold(mut self, bytes: Bytes) -> Body {
        let keep = units(bytes.len() as u64);
        if let Some(extra) = self.0.num_permits().checked_sub(keep as usize)
            && extra > 0
        {
            drop(self.0.split(extra));
        }
        Body {
            bytes,
            _held: Some(self.0),
        }
    }

    /// Several bodies read from one request (a multipart form): each keeps its own share of
    /// the reservation, so each is given back when the work on it ends; the rest is given
    /// back now.
    pub fn hold_each(self, parts: Vec<Bytes>) -> Vec<Body> {
        let mut left = Some(self.0);
        parts
            .into_iter()
            .map(|bytes| {
                let share = units(bytes.len() as u64) as usize;
                // Parts are counted in whole units, so their shares can add up to a little more
                // than the request reserved: a part that finds too little takes what is left.
                let held = match left.as_mut() {
                    Some(p) if p.num_permits() > share => p.split(share),
                    _ => left.take(),
                };
                Body { bytes, _held: held }
            })
            .collect()
    }
}

/// A picture's bytes, with the share of the in-flight budget they hold until dropped (by the
/// blocking task that works on them, so a request that timed out still counts until its work
/// has ended).
pub struct Body {
    bytes: Bytes,
    _held: Option<OwnedSemaphorePermit>,
}

impl Body {
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }
}

/// The picture's bytes are zeroed when the work on them is done, where the buffer is this
/// body's alone (a body read in several chunks is; one still shared with the connection's
/// read buffer is left to it).
impl Drop for Body {
    fn drop(&mut self) {
        if let Ok(mut unique) = std::mem::take(&mut self.bytes).try_into_mut() {
            unique.fill(0);
            std::hint::black_box(&unique[..]);
        }
    }
}

/// How long a finished answer waits for room in the budget before its request is told `busy`.
const ANSWER_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// An answer's bytes and the share of the budget they hold until the server has sent them.
struct Held {
    bytes: Vec<u8>,
    _share: OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// Bytes outside the budget (the command line, tests).
impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Body { bytes, _held: None }
    }
}

impl Services {
    /// Reserve room for a body of at most `len` bytes, or `busy` when the bodies already in
    /// flight leave none (the caller answers 503 with Retry-After, nothing is read).
    pub fn reserve_body(&self, len: u64) -> Result<Reservation> {
        self.body_budget
            .sem
            .clone()
            .try_acquire_many_owned(units(len))
            .map(Reservation)
            .map_err(|_| ServiceError::Busy("too many uploads in flight; retry shortly"))
    }

    /// Count an answer (a stamped file, a chunk of a ZIP, a picked-up file) in the in-flight
    /// budget until the returned bytes are dropped, i.e. sent. It waits for room (answers in
    /// flight drain as clients read them) up to a bound, then says `busy`.
    pub async fn hold_answer(&self, bytes: Vec<u8>) -> Result<Bytes> {
        let want = units(bytes.len() as u64).min(self.body_budget.total as u32);
        let share = tokio::time::timeout(
            ANSWER_WAIT,
            self.body_budget.sem.clone().acquire_many_owned(want),
        )
        .await
        .map_err(|_| ServiceError::Busy("too many answers in flight; retry shortly"))?
        .map_err(|_| ServiceError::internal("the in-flight budget closed"))?;
        Ok(Bytes::from_owner(Held {
            bytes,
            _share: share,
        }))
    }

    /// A slot for CPU-heavy work (decode, stamp, verify): at most `decode_concurrency` at once.
    /// Move it into the blocking task, so it is released when the work ends, not when the
    /// request gives up waiting for it.
    pub async fn decode_slot(&self) -> Result<OwnedSemaphorePermit> {
        self.decode_slots
            .sem
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ServiceError::internal("decode slots closed"))
    }

    /// The one video processing slot (waits for it).
    pub(crate) async fn video_slot(&self) -> Result<OwnedSemaphorePermit> {
        self.video_slots
            .sem
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ServiceError::internal("video slots closed"))
    }

    /// Decode slots taken now (by running work, whether or not its request still waits).
    pub fn decode_slots_busy(&self) -> usize {
        self.decode_slots.taken()
    }

    /// How busy the decode slots are now, from 0 (idle) to 1 (every slot taken).
    pub fn decode_load(&self) -> f64 {
        self.decode_slots.taken() as f64 / self.decode_slots.total as f64
    }

    /// Bytes of the in-flight budget reserved or held now.
    pub fn inflight_body_bytes(&self) -> u64 {
        self.body_budget.taken() as u64 * UNIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decode slot belongs to the work, not to the request: when the request stops waiting
    /// (its timeout drops the future) the slot stays taken until the blocking work ends, so
    /// abandoned requests cannot stack up more work than `decode_concurrency`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_request_leaves_its_slot_with_the_work() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::Config {
            data_dir: dir.path().to_path_buf(),
            ..crate::Config::default()
        };
        config.server.decode_concurrency = 1;
        let s = Services::open(&config).await.unwrap();
        let mut img = image::RgbImage::new(6000, 4000);
        for (x, y, p) in img.enumerate_pixels_mut() {
            *p = image::Rgb([((x * 7) ^ (y * 3)) as u8, (x + y) as u8, (x * y) as u8]);
        }
        let mut jpeg = std::io::Cursor::new(Vec::new());
        img.write_to(&mut jpeg, image::ImageFormat::Jpeg).unwrap();
        let body = Body::from(Bytes::from(jpeg.into_inner()));
        let gave_up =
            tokio::time::timeout(std::time::Duration::from_millis(5), s.verify(body)).await;
        assert!(gave_up.is_err(), "a 24 MP verification took under 5 ms");
        assert_eq!(
            s.decode_slots_busy(),
            1,
            "the work goes on after its request gave up, and still holds its slot"
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while s.decode_slots_busy() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the slot never came back"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn an_answer_holds_its_share_until_it_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::Config {
            data_dir: dir.path().to_path_buf(),
            ..crate::Config::default()
        };
        config.server.max_inflight_bytes = 64 * UNIT;
        let s = Services::open(&config).await.unwrap();
        let answer = s.hold_answer(vec![7u8; 40 * 1024]).await.unwrap();
        assert_eq!(s.inflight_body_bytes(), 40 * UNIT);
        let clone = answer.slice(1..2);
        drop(answer);
        assert_eq!(s.inflight_body_bytes(), 40 * UNIT, "a slice still holds it");
        drop(clone);
        assert_eq!(s.inflight_body_bytes(), 0);
        assert!(
            matches!(s.reserve_body(64 * UNIT + 1), Err(ServiceError::Busy(_))),
            "the budget is still bounded"
        );
    }

    #[test]
    fn a_reservation_shrinks_to_the_body_and_returns_when_it_is_dropped() {
        let budget = Slots::for_bytes(10 * UNIT);
        let sem = budget.sem.clone();
        let r = Reservation(sem.clone().try_acquire_many_owned(8).unwrap());
        assert_eq!(sem.available_permits(), 2);
        let body = r.hold(Bytes::from(vec![0u8; 1500]));
        assert_eq!(sem.available_permits(), 8, "1500 bytes hold 2 KiB");
        drop(body);
        assert_eq!(sem.available_permits(), 10);
    }
}
