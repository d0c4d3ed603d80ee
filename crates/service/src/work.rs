//! The decode pipeline each blocking-pool thread keeps for the CPU-heavy steps.

use std::cell::RefCell;

use pixseal_media::{Limits, Pipeline};

thread_local! {
    static PIPELINE: RefCell<Option<Pipeline>> = const { RefCell::new(None) };
}

/// Run `f` with this thread's pipeline (made on first use with `limits`).
pub(crate) fn with_pipeline<T>(limits: Limits, f: impl FnOnce(&mut Pipeline) -> T) -> T {
    PIPELINE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let p = slot.get_or_insert_with(|| Pipeline::new(limits));
        f(p)
    })
}
