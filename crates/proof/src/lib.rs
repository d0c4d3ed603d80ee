//! pixseal-proof: what proves a stamp and what proves a deletion: proof ids (SPEC §2) and
//! signed deletion receipts (SPEC §8, docs/receipts.md), and the licences and device tokens the
//! same key signs (docs/licenses.md); stamps, manifests and codes join them.

pub mod checkpoint;
pub mod license;
pub mod proof_id;
pub mod receipt;
pub mod subject;

pub use checkpoint::{Checkpoint, SignedCheckpoint};
pub use license::{DeviceToken, LICENSE_KEY_PREFIX, License, SignedDeviceToken};
pub use proof_id::ProofId;
pub use receipt::{
    LocalReceiptSigner, Receipt, ReceiptError, ReceiptPublicKey, ReceiptSigner, ReceiptV1,
    ReceiptV2, SignedReceipt,
};
pub use subject::SubjectOpening;
