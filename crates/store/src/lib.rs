//! pixseal-store: where sealed artifacts live. Blobs go to one store per region (local
//! directory or an S3 bucket/prefix); nothing is ever written to another region's store.
//! Metadata (tenants, API keys, artifacts, verification codes) lives in SQLite or PostgreSQL.

pub mod audit;
pub mod blob;
pub mod codes;
pub mod meta;
pub mod states;

pub use audit::{AuditEntry, BrokenLink};
pub use blob::{BlobError, BlobKey, BlobStore, RegionStorage, StorageBackend, StorageConfig};
pub use codes::{CodeAccount, LevelEvent, LiveSession, MessageCodeRow};
pub use meta::{ApiKey, Artifact, Db, DbError, DbKind, ProofRecord, Tenant};
pub use states::{ArtifactState, ProofStatus, Scope, UnknownValue};
