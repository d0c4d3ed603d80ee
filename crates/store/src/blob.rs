//! Per-region blob storage over `object_store`: local filesystem (write-then-rename) or S3.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;
use object_store::{
    GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode, PutPayload, WriteMultipart,
};
use pixseal_seal::Secret;
use serde::{Deserialize, Serialize};

/// Which kind of store holds blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    #[default]
    Local,
    S3,
}

/// `[storage]` configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub backend: StorageBackend,
    /// Local backend: root directory; each region gets `<path>/<prefix>`. Empty = `<data_dir>/blobs`.
    pub path: String,
    /// S3 backend: endpoint URL (empty = AWS), credentials and default bucket.
    pub endpoint: String,
    pub bucket: String,
    pub access_key_id: String,
    /// A secret: never shown by `Debug`.
    pub secret_access_key: Secret,
    /// A file holding the secret access key instead.
    pub secret_access_key_file: String,
    pub aws_region: String,
    /// Allow plain-HTTP endpoints (only for a store on loopback).
    pub allow_http: bool,
    /// Region name → where its blobs live.
    pub regions: BTreeMap<String, RegionStorage>,
}

/// Where one region's blobs live: a bucket (S3; default `[storage].bucket`) and a key prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RegionStorage {
    pub bucket: String,
    pub prefix: String,
}

impl Default for StorageConfig {
    fn default() -> Self {
        let regions = ["us", "eu", "ca"]
            .into_iter()
            .map(|r| {
                (
                    r.to_string(),
                    RegionStorage {
                        bucket: String::new(),
                        prefix: r.to_string(),
                    },
                )
            })
            .collect();
        StorageConfig {
            backend: StorageBackend::Local,
            path: String::new(),
            endpoint: String::new(),
            bucket: "pixseal".into(),
            access_key_id: String::new(),
            secret_access_key: Secret::default(),
            secret_access_key_file: String::new(),
            aws_region: "us-east-1".into(),
            allow_http: false,
            regions,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("region {0:?} has no blob store configured")]
    UnknownRegion(String),
    #[error("blob not found")]
    NotFound,
    #[error("invalid blob key {0:?}")]
    InvalidKey(String),
    #[error("blob store configuration: {0}")]
    Config(String),
    #[error("blob store unavailable: {0}")]
    Unavailable(String),
}

impl BlobError {
    pub fn code(&self) -> &'static str {
        match self {
            BlobError::NotFound => "not_found",
            BlobError::UnknownRegion(_) => "region_mismatch",
            _ => "internal",
        }
    }
}

fn map_err(e: object_store::Error) -> BlobError {
    match e {
        object_store::Error::NotFound { .. } => BlobError::NotFound,
        other => BlobError::Unavailable(other.to_string()),
    }
}

/// The object naming the installation that owns a region's prefix. Never a blob key (keys do
/// not start with a dot).
pub const OWNER_MARKER: &str = ".pixseal-installation";

/// Who owns a region's prefix, by its [`OWNER_MARKER`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrefixOwner {
    /// This installation (the marker names it, or it was just written).
    Us,
    /// Another installation, by its id.
    Other(String),
}

/// A blob's name inside its region: restricted to `[0-9A-Za-z_.-]`, so no key can climb out of
/// its region's prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobKey(String);

impl BlobKey {
    pub fn new(s: impl Into<String>) -> Result<Self, BlobError> {
        let s = s.into();
        let ok = !s.is_empty()
            && s.len() <= 128
            && !s.starts_with('.')
            && s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
        if ok {
            Ok(BlobKey(s))
        } else {
            Err(BlobError::InvalidKey(s))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

struct RegionStore {
    store: Arc<dyn ObjectStore>,
    prefix: ObjPath,
    /// Local backend: the region's directory (listing it directly also shows the temporary
    /// `name#n` files an interrupted write leaves, which `object_store` hides).
    local_dir: Option<PathBuf>,
    /// Where it is, for people: the directory, or `s3://bucket/prefix`.
    shown: String,
}

/// Blob stores by region.
pub struct BlobStore {
    regions: BTreeMap<String, RegionStore>,
    backend: StorageBackend,
}

/// Part size of [`BlobStore::put_stream`]: the smallest S3 accepts (but for the last part).
pub const PART: usize = 5 * 1024 * 1024;

impl BlobStore {
    /// Open every configured region's store. `data_dir` anchors the local default path.
    pub fn open(cfg: &StorageConfig, data_dir: &Path) -> Result<Self, BlobError> {
        if cfg.regions.is_empty() {
            return Err(BlobError::Config(
                "no regions configured under [storage.regions]".into(),
            ));
        }
        let mut regions = BTreeMap::new();
        for (name, r) in &cfg.regions {
            let prefix = if r.prefix.is_empty() {
                name.clone()
            } else {
                r.prefix.clone()
            };
            let prefix = ObjPath::parse(&prefix).map_err(|e| BlobError::Config(e.to_string()))?;
            let mut local_dir = None;
            let shown;
            let store: Arc<dyn ObjectStore> = match cfg.backend {
                StorageBackend::Local => {
                    let root: PathBuf = if cfg.path.is_empty() {
                        data_dir.join("blobs")
                    } else {
                        PathBuf::from(&cfg.path)
                    };
                    local_dir = Some(root.join(prefix.as_ref()));
                    shown = root.join(prefix.as_ref()).display().to_string();
                    std::fs::create_dir_all(&root).map_err(|e| {
                        BlobError::Config(format!("creating {}: {e}", root.display()))
                    })?;
                    Arc::new(
                        LocalFileSystem::new_with_prefix(&root)
                            .map_err(|e| BlobError::Config(e.to_string()))?
                            .with_automatic_cleanup(true),
                    )
                }
                StorageBackend::S3 => {
                    let bucket = if r.bucket.is_empty() {
                        &cfg.bucket
                    } else {
                        &r.bucket
                    };
                    shown = format!("s3://{bucket}/{prefix}");
                    let mut b = AmazonS3Builder::new()
                        .with_bucket_name(bucket)
                        .with_region(&cfg.aws_region)
                        .with_access_key_id(&cfg.access_key_id)
                        .with_secret_access_key(cfg.secret_access_key.expose())
                        .with_allow_http(cfg.allow_http);
                    if !cfg.endpoint.is_empty() {
                        b = b
                            .with_endpoint(&cfg.endpoint)
                            .with_virtual_hosted_style_request(false);
                    }
                    Arc::new(b.build().map_err(|e| BlobError::Config(e.to_string()))?)
                }
            };
            regions.insert(
                name.clone(),
                RegionStore {
                    store,
                    prefix,
                    local_dir,
                    shown,
                },
            );
        }
        Ok(BlobStore {
            regions,
            backend: cfg.backend,
        })
    }

    pub fn backend(&self) -> StorageBackend {
        self.backend
    }

    pub fn regions(&self) -> impl Iterator<Item = &str> {
        self.regions.keys().map(String::as_str)
    }

    fn region(&self, region: &str) -> Result<&RegionStore, BlobError> {
        self.regions
            .get(region)
            .ok_or_else(|| BlobError::UnknownRegion(region.to_string()))
    }

    fn path(rs: &RegionStore, key: &BlobKey) -> ObjPath {
        rs.prefix.clone().join(key.as_str())
    }

    /// Store a blob atomically (local: temp file + rename; S3: single PUT).
    pub async fn put(&self, region: &str, key: &BlobKey, data: Bytes) -> Result<(), BlobError> {
        let rs = self.region(region)?;
        rs.store
            .put(&Self::path(rs, key), PutPayload::from(data))
            .await
            .map_err(map_err)?;
        Ok(())
    }

    pub async fn get(&self, region: &str, key: &BlobKey) -> Result<Bytes, BlobError> {
        let rs = self.region(region)?;
        let r = rs.store.get(&Self::path(rs, key)).await.map_err(map_err)?;
        r.bytes().await.map_err(map_err)
    }

    /// Store a blob that arrives in pieces (too large to hold: a video), as a multipart
    /// upload of [`PART`]-byte parts, one part in flight while the next fills (local: a
    /// temporary file renamed at the end): at most two parts in memory. Nothing is stored
    /// unless every piece arrived: the sender gone before its `None` end mark aborts the
    /// upload.
    pub async fn put_stream(
        &self,
        region: &str,
        key: &BlobKey,
        mut pieces: tokio::sync::mpsc::Receiver<Option<Bytes>>,
    ) -> Result<(), BlobError> {
        let rs = self.region(region)?;
        let upload = rs
            .store
            .put_multipart(&Self::path(rs, key))
            .await
            .map_err(map_err)?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
        loop {
            match pieces.recv().await {
                Some(Some(piece)) => {
                    if let Err(e) = w.wait_for_capacity(1).await {
                        let _ = w.abort().await;
                        return Err(map_err(e));
                    }
                    w.put(piece);
                }
                Some(None) => break,
                None => {
                    let _ = w.abort().await;
                    return Err(BlobError::Unavailable(
                        "the blob's writer stopped before its end".into(),
                    ));
                }
            }
        }
        w.finish().await.map_err(map_err)?;
        Ok(())
    }

    /// Bytes `range` of a blob (shorter when the blob ends first) and the blob's whole
    /// length: one ranged read, so a range of a large blob costs only its own bytes.
    pub async fn get_range(
        &self,
        region: &str,
        key: &BlobKey,
        range: Range<u64>,
    ) -> Result<(Bytes, u64), BlobError> {
        let rs = self.region(region)?;
        let options = GetOptions {
            range: Some(GetRange::Bounded(range)),
            ..GetOptions::default()
        };
        let r = rs
            .store
            .get_opts(&Self::path(rs, key), options)
            .await
            .map_err(map_err)?;
        let len = r.meta.size;
        Ok((r.bytes().await.map_err(map_err)?, len))
    }

    /// Delete a blob; deleting one that is already gone is not an error (purges are retried).
    pub async fn delete(&self, region: &str, key: &BlobKey) -> Result<(), BlobError> {
        let rs = self.region(region)?;
        match rs.store.delete(&Self::path(rs, key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(map_err(e)),
        }
    }

    pub async fn exists(&self, region: &str, key: &BlobKey) -> Result<bool, BlobError> {
        let rs = self.region(region)?;
        match rs.store.head(&Self::path(rs, key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(map_err(e)),
        }
    }

    /// Every key in a region (for repair passes after a crash).
    pub async fn list(&self, region: &str) -> Result<Vec<BlobKey>, BlobError> {
        let rs = self.region(region)?;
        let mut out = Vec::new();
        let mut s = rs.store.list(Some(&rs.prefix));
        while let Some(item) = s.next().await {
            let meta = item.map_err(map_err)?;
            if let Some(name) = meta.location.filename()
                && let Ok(k) = BlobKey::new(name)
            {
                out.push(k);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Every object name in a region, including ones that are not valid keys (e.g. temporary
    /// files a crash left behind), for the repair pass.
    pub async fn list_names(&self, region: &str) -> Result<Vec<String>, BlobError> {
        let rs = self.region(region)?;
        let mut out = Vec::new();
        if let Some(dir) = &rs.local_dir {
            match std::fs::read_dir(dir) {
                Ok(rd) => {
                    for e in rd.flatten() {
                        if e.file_type().is_ok_and(|t| t.is_file()) {
                            out.push(e.file_name().to_string_lossy().into_owned());
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(BlobError::Unavailable(e.to_string())),
            }
        } else {
            let mut s = rs.store.list(Some(&rs.prefix));
            while let Some(item) = s.next().await {
                let meta = item.map_err(map_err)?;
                if let Some(name) = meta.location.filename() {
                    out.push(name.to_string());
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Delete an object by raw name (repair only; names cannot contain a separator).
    pub async fn delete_name(&self, region: &str, name: &str) -> Result<(), BlobError> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(BlobError::InvalidKey(name.to_string()));
        }
        let rs = self.region(region)?;
        if let Some(dir) = &rs.local_dir {
            return match std::fs::remove_file(dir.join(name)) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(BlobError::Unavailable(e.to_string())),
            };
        }
        match rs.store.delete(&rs.prefix.clone().join(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(map_err(e)),
        }
    }

    /// Claim `region`'s prefix for `installation`: the marker is written when there is none
    /// (create-only where the store supports it, so of two installations starting at once one
    /// wins), else read.
    pub async fn claim(&self, region: &str, installation: &str) -> Result<PrefixOwner, BlobError> {
        let rs = self.region(region)?;
        let path = rs.prefix.clone().join(OWNER_MARKER);
        let payload = PutPayload::from(Bytes::from(installation.to_string()));
        let read = || async {
            let r = rs.store.get(&path).await?;
            r.bytes().await
        };
        let owner = match rs
            .store
            .put_opts(&path, payload.clone(), PutMode::Create.into())
            .await
        {
            Ok(_) => return Ok(PrefixOwner::Us),
            Err(object_store::Error::AlreadyExists { .. }) => read().await.map_err(map_err)?,
            // A store without conditional writes: read, and write only when there is none.
            Err(object_store::Error::NotImplemented { .. }) => match read().await {
                Ok(b) => b,
                Err(object_store::Error::NotFound { .. }) => {
                    rs.store.put(&path, payload).await.map_err(map_err)?;
                    return Ok(PrefixOwner::Us);
                }
                Err(e) => return Err(map_err(e)),
            },
            Err(e) => return Err(map_err(e)),
        };
        let owner = String::from_utf8_lossy(&owner).trim().to_string();
        Ok(if owner == installation {
            PrefixOwner::Us
        } else {
            PrefixOwner::Other(owner)
        })
    }

    /// Where a region's blobs live, for people (a directory, or `s3://bucket/prefix`).
    pub fn describe(&self, region: &str) -> String {
        self.regions
            .get(region)
            .map_or_else(|| region.to_string(), |rs| rs.shown.clone())
    }

    /// Readiness: every region's store answers a listing.
    pub async fn check(&self) -> Result<(), BlobError> {
        for (name, rs) in &self.regions {
            let mut s = rs.store.list(Some(&rs.prefix));
            if let Some(Err(e)) = s.next().await {
                return Err(BlobError::Unavailable(format!("region {name}: {e}")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape_their_prefix() {
        for bad in ["", "../x", "a/b", ".hidden", "a b", "x\0", &"a".repeat(129)] {
            assert!(BlobKey::new(bad).is_err(), "{bad:?}");
        }
        assert!(BlobKey::new("0192f0c4-7d2e-7c3a-9f00-123456789abc").is_ok());
    }
}
