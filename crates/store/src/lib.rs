//! pixseal-store: where sealed artifacts live. Blobs go to one store per region (local
//! directory or an S3 bucket/prefix); nothing is ever written to another region's store.

pub mod blob;

pub use blob::{BlobError, BlobKey, BlobStore, RegionStorage, StorageBackend, StorageConfig};
