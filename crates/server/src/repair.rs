//! Crash repair: finish what an interrupted upload or delete left (a `pending` row older than
//! the grace period, a `deleting` row), and remove blobs that have no row — which only a crash
//! can produce, since a row is always written before its blob and removed after it.

use pixseal_store::{BlobKey, meta};

use crate::AppState;

/// What one repair pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RepairReport {
    pub unfinished_rows: usize,
    pub orphan_blobs: usize,
}

/// Run one repair pass. `grace_ms`: how old a `pending` row must be before it counts as dead
/// (uploads in flight on another instance are younger).
pub async fn repair(state: &AppState, grace_ms: i64) -> Result<RepairReport, crate::ApiError> {
    let mut report = RepairReport::default();
    let (_, now_ms) = meta::now();
    for a in state.db.unfinished(now_ms - grace_ms).await? {
        if let Ok(key) = BlobKey::new(&a.id) {
            state.blobs.delete(&a.region, &key).await?;
        }
        state.db.delete_artifact(&a.id).await?;
        report.unfinished_rows += 1;
    }
    let regions: Vec<String> = state.blobs.regions().map(String::from).collect();
    for region in regions {
        for name in state.blobs.list_names(&region).await? {
            // A name that is not a key (a temporary file from an interrupted write) or a key
            // with no row at all is an orphan.
            let orphan = match BlobKey::new(&name) {
                Ok(_) => !state.db.artifact_exists(&name).await?,
                Err(_) => true,
            };
            if orphan {
                state.blobs.delete_name(&region, &name).await?;
                report.orphan_blobs += 1;
            }
        }
    }
    if report != RepairReport::default() {
        tracing::warn!(
            unfinished_rows = report.unfinished_rows,
            orphan_blobs = report.orphan_blobs,
            "repair pass fixed leftovers"
        );
    }
    Ok(report)
}
