//! pixseal-store: where sealed artifacts live. Blobs go to one store per region (local
//! directory or an S3 bucket/prefix); nothing is ever written to another region's store.
//! Metadata (tenants, API keys, artifacts, deletions and their receipts, verification codes) lives in SQLite or PostgreSQL.

// First: `deletions` uses its column macro.
#[macro_use]
pub mod meta;

pub mod audit;
pub mod blob;
pub mod challenges;
pub mod codes;
pub mod deletions;
pub mod licenses;
pub mod passkeys;
pub mod pdq_index;
pub mod pickups;
pub mod sessions;
pub mod states;
pub mod tenant_keys;

pub use audit::{AuditEntry, BrokenLink};
pub use blob::{
    BlobError, BlobKey, BlobStore, OWNER_MARKER, PrefixOwner, RegionStorage, StorageBackend,
    StorageConfig,
};
pub use codes::{CapReached, CodeAccount, LevelEvent, LiveSession, MessageCodeRow, MintCap};
pub use deletions::{Deletion, StoredReceipt};
pub use licenses::{LicenseDevice, LicenseRow, SeatClaim};
pub use meta::{ApiKey, Artifact, Db, DbError, DbKind, ProofManifest, ProofRecord, Tenant};
pub use passkeys::{Ceremony, CeremonyKind, Member, PasskeyRow, Presence};
pub use pickups::{Pickup, PickupClaim};
pub use sessions::{MemberSession, PageAfter};
pub use states::{
    ArtifactState, DeletionReason, DeviceState, PickupState, ProofStatus, Scope, UnknownValue,
};
pub use tenant_keys::{TenantKey, TenantVault};
