//! The decode pipeline each blocking-pool thread keeps for the CPU-heavy steps.

use std::cell::RefCell;

use pixseal_media::{Limits, Pipeline};

thread_local! {
    static PIPELINE: RefCell<Option<Pipeline>> = const { RefCell::new(None) };
}

/// Run `f` with this thread's pipeline (made on first use with `limits`); its buffers are
/// zeroed afterwards, whatever `f` returned, so no picture (a `/v1/verify` upload included,
/// which is "not stored") stays in the worker's memory.
pub(crate) fn with_pipeline<T>(limits: Limits, f: impl FnOnce(&mut Pipeline) -> T) -> T {
    PIPELINE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let p = slot.get_or_insert_with(|| Pipeline::new(limits));
        let out = f(p);
        p.scrub();
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After a picture (decoded, or refused half-way) the worker's kept buffers are all zero.
    #[test]
    fn a_worker_keeps_no_picture_between_requests() {
        let limits = Limits::default();
        let mut img = image::RgbImage::new(300, 200);
        for (x, y, p) in img.enumerate_pixels_mut() {
            *p = image::Rgb([(x % 251) as u8 + 1, (y % 241) as u8 + 1, 200]);
        }
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png).unwrap();
        let png = png.into_inner();
        let held = std::thread::spawn(move || {
            let unscrubbed = {
                let mut p = Pipeline::new(limits);
                let d = p.decode(&png, Some(100)).unwrap();
                p.recycle(d.pixels);
                p.holds_picture_bytes()
            };
            with_pipeline(limits, |p| {
                let d = p.decode(&png, Some(100)).unwrap();
                p.recycle(d.pixels);
            });
            let after_decode = with_pipeline(limits, |p| p.holds_picture_bytes());
            let mut truncated = png.clone();
            truncated.truncate(png.len() / 2);
            with_pipeline(limits, |p| {
                let _ = p.decode(&truncated, None);
            });
            let after_error = with_pipeline(limits, |p| p.holds_picture_bytes());
            (unscrubbed, after_decode, after_error)
        })
        .join()
        .unwrap();
        assert!(held.0, "without scrubbing the buffers do hold the picture");
        assert!(!held.1, "after a picture");
        assert!(!held.2, "after an error");
    }
}
