//! pixseal-proof: what proves a stamp. Today the proof id (SPEC §2); stamps, manifests, codes
//! and receipts join it.

pub mod proof_id;

pub use proof_id::ProofId;
