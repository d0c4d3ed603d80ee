//! `local` key provider: versioned master keys in a JSON key file (mode 0600).
//!
//! File layout (created on first use with `O_CREAT|O_EXCL` and mode 0600, rewritten atomically
//! through a 0600 temporary file + rename):
//!
//! ```json
//! {"format":1,"regions":{"us":{"key_name":"pixseal-us","min_decryption_version":1,
//!   "versions":{"1":"<base64 32 bytes>","2":"…"}}}}
//! ```
//!
//! Wrapping a data key = AES-256-GCM with the region's master key version, a random 96-bit
//! nonce, and associated data binding the key name, region and version. Plaintext master keys
//! live in [`Zeroizing`] buffers.
//!
//! Several processes may share the file (a server and the CLI, two servers on one data
//! directory): every change (creation, a new region, rotation, `min_decryption_version`) is made
//! under an exclusive lock on `<file>.lock`, on the file as it is on disk at that moment, so
//! no process overwrites another's keys. Each process notices a replaced file (the atomic
//! rename gives it a new inode) before it uses its keys and reloads it: a rotation made by
//! `pixseal keys rotate` is used by a running server from its next upload on.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Result, SealError};
use crate::provider::{
    DataKey, KeyProvider, KeyVersions, ProviderId, WrappedKey, random_bytes, random_data_key,
    validate_region,
};

const FILE_FORMAT: u32 = 1;
const WRAP_NONCE_LEN: usize = 12;
/// nonce(12) + DEK(32) + tag(16)
const WRAPPED_LEN: usize = WRAP_NONCE_LEN + 32 + 16;

#[derive(Serialize, Deserialize)]
struct KeyFile {
    format: u32,
    regions: BTreeMap<String, RegionFile>,
}

#[derive(Serialize, Deserialize)]
struct RegionFile {
    key_name: String,
    min_decryption_version: u32,
    versions: BTreeMap<u32, Zeroizing<String>>,
}

struct RegionKeys {
    key_name: String,
    min_decryption_version: u32,
    versions: BTreeMap<u32, Zeroizing<[u8; 32]>>,
}

/// Master keys from a local key file. See the module docs.
pub struct LocalKeyProvider {
    path: PathBuf,
    regions: Mutex<Loaded>,
}

/// The keys as last read, and which file they were read from.
struct Loaded {
    map: BTreeMap<String, RegionKeys>,
    stamp: Option<FileStamp>,
}

/// What tells one version of the key file from the next: every save is a new inode.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(path).ok().map(|m| FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
        })
    }
}

/// An exclusive lock on `<key file>.lock`, held while the key file is read and changed.
struct FileLock(fs::File);

impl FileLock {
    fn take(path: &Path) -> Result<FileLock> {
        let mut name = path.as_os_str().to_owned();
        name.push(".lock");
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&name)
            .map_err(|e| {
                SealError::Config(format!(
                    "cannot open key file lock {}: {e}",
                    Path::new(&name).display()
                ))
            })?;
        f.lock()
            .map_err(|e| SealError::Config(format!("cannot lock the key file: {e}")))?;
        Ok(FileLock(f))
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl std::fmt::Debug for LocalKeyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKeyProvider")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl LocalKeyProvider {
    /// Opens the key file at `path`, creating it (mode 0600, parent directory must exist) on
    /// first use, and makes sure every region in `regions` has a master key (version 1 is
    /// generated for a new region; key name `pixseal-<region>`). A file readable or writable
    /// by group/other is refused.
    pub fn open(path: impl AsRef<Path>, regions: &[&str]) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        for r in regions {
            validate_region(r)?;
        }
        let _lock = FileLock::take(&path)?;
        let mut map = load(&path)?.unwrap_or_default();
        let mut changed = !path.exists();
        for r in regions {
            if !map.contains_key(*r) {
                let mut versions = BTreeMap::new();
                versions.insert(1, random_data_key()?);
                map.insert(
                    (*r).to_owned(),
                    RegionKeys {
                        key_name: format!("pixseal-{r}"),
                        min_decryption_version: 1,
                        versions,
                    },
                );
                changed = true;
            }
        }
        if changed || fs::metadata(&path).map(|m| m.len() == 0).unwrap_or(true) {
            save(&path, &map)?;
        }
        let stamp = FileStamp::of(&path);
        Ok(LocalKeyProvider {
            path,
            regions: Mutex::new(Loaded { map, stamp }),
        })
    }

    /// Path of the key file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The keys, reloaded first when the file on disk was replaced by another process.
    fn keys(&self) -> Result<std::sync::MutexGuard<'_, Loaded>> {
        let mut g = self
            .regions
            .lock()
            .map_err(|_| SealError::Internal("local key provider lock poisoned".into()))?;
        let now = FileStamp::of(&self.path);
        if now.is_some() && now != g.stamp {
            let _lock = FileLock::take(&self.path)?;
            if let Some(map) = load(&self.path)? {
                g.map = map;
            }
            g.stamp = FileStamp::of(&self.path);
        }
        Ok(g)
    }

    /// Change the keys: under the file lock, on the file as it is now, then saved; nothing
    /// changes (in memory or on disk) when `f` or the save fails.
    fn change<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, RegionKeys>) -> Result<T>,
    ) -> Result<T> {
        let mut g = self
            .regions
            .lock()
            .map_err(|_| SealError::Internal("local key provider lock poisoned".into()))?;
        let _lock = FileLock::take(&self.path)?;
        let mut map = load(&self.path)?.unwrap_or_default();
        let out = f(&mut map)?;
        save(&self.path, &map)?;
        g.map = map;
        g.stamp = FileStamp::of(&self.path);
        Ok(out)
    }

    fn wrap_aad(key_name: &str, region: &str, version: u32) -> Vec<u8> {
        let mut aad = b"pixseal/local-wrap/v1".to_vec();
        for part in [key_name.as_bytes(), region.as_bytes()] {
            aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
            aad.extend_from_slice(part);
        }
        aad.extend_from_slice(&version.to_be_bytes());
        aad
    }

    fn wrap(rk: &RegionKeys, region: &str, version: u32, dek: &[u8; 32]) -> Result<WrappedKey> {
        let kek = rk
            .versions
            .get(&version)
            .ok_or_else(|| SealError::Internal(format!("no master key version {version}")))?;
        let cipher = Aes256Gcm::new_from_slice(&kek[..])
            .map_err(|_| SealError::Internal("bad master key length".into()))?;
        let mut nonce = [0u8; WRAP_NONCE_LEN];
        random_bytes(&mut nonce)?;
        let aad = Self::wrap_aad(&rk.key_name, region, version);
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &dek[..],
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Internal("wrapping failed".into()))?;
        let mut out = Vec::with_capacity(WRAPPED_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(WrappedKey {
            provider: ProviderId::Local,
            key_name: rk.key_name.clone(),
            version,
            ciphertext: out,
        })
    }

    fn region<'m>(map: &'m BTreeMap<String, RegionKeys>, region: &str) -> Result<&'m RegionKeys> {
        map.get(region).ok_or_else(|| {
            SealError::KeyNotFound(format!("no local master key for region {region:?}"))
        })
    }

    fn latest(rk: &RegionKeys) -> Result<u32> {
        rk.versions
            .keys()
            .next_back()
            .copied()
            .ok_or_else(|| SealError::Internal("region without key versions".into()))
    }

    fn unwrap_locked(rk: &RegionKeys, wrapped: &WrappedKey, region: &str) -> Result<DataKey> {
        if wrapped.provider != ProviderId::Local || wrapped.key_name != rk.key_name {
            // Presented for a region/key it was not wrapped for.
            return Err(SealError::Tampered);
        }
        let Some(kek) = rk.versions.get(&wrapped.version) else {
            // A version this key never had: indistinguishable from a forged reference.
            return Err(SealError::Tampered);
        };
        if wrapped.version < rk.min_decryption_version {
            return Err(SealError::KeyVersionRefused(format!(
                "{} version {} is below min_decryption_version {}",
                rk.key_name, wrapped.version, rk.min_decryption_version
            )));
        }
        if wrapped.ciphertext.len() != WRAPPED_LEN {
            return Err(SealError::Tampered);
        }
        let cipher = Aes256Gcm::new_from_slice(&kek[..])
            .map_err(|_| SealError::Internal("bad master key length".into()))?;
        let aad = Self::wrap_aad(&rk.key_name, region, wrapped.version);
        let (nonce, ct) = wrapped.ciphertext.split_at(WRAP_NONCE_LEN);
        let pt = Zeroizing::new(
            cipher
                .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
                .map_err(|_| SealError::Tampered)?,
        );
        let mut dek = Zeroizing::new([0u8; 32]);
        if pt.len() != 32 {
            return Err(SealError::Tampered);
        }
        dek.copy_from_slice(&pt);
        Ok(dek)
    }
}

/// Write the key file atomically (0600 temporary file, fsync, rename, fsync of the directory).
fn save(path: &Path, map: &BTreeMap<String, RegionKeys>) -> Result<()> {
    let file = KeyFile {
        format: FILE_FORMAT,
        regions: map
            .iter()
            .map(|(r, k)| {
                (
                    r.clone(),
                    RegionFile {
                        key_name: k.key_name.clone(),
                        min_decryption_version: k.min_decryption_version,
                        versions: k
                            .versions
                            .iter()
                            .map(|(v, key)| (*v, Zeroizing::new(B64.encode(&key[..]))))
                            .collect(),
                    },
                )
            })
            .collect(),
    };
    let json = Zeroizing::new(
        serde_json::to_vec_pretty(&file).map_err(|e| SealError::Internal(e.to_string()))?,
    );
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let mut suffix = [0u8; 8];
    random_bytes(&mut suffix)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        suffix
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ));
    let write = || -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        SealError::Config(format!("cannot write key file {}: {e}", path.display()))
    })
}

fn load(path: &Path) -> Result<Option<BTreeMap<String, RegionKeys>>> {
    let mut f = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(SealError::Config(format!(
                "cannot open key file {}: {e}",
                path.display()
            )));
        }
    };
    let meta = f.metadata()?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(SealError::Config(format!(
            "key file {} has mode {:o}; it must be 0600",
            path.display(),
            meta.permissions().mode() & 0o777
        )));
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(meta.len() as usize + 1));
    f.read_to_end(&mut buf)?;
    if buf.is_empty() {
        return Ok(Some(BTreeMap::new()));
    }
    let file: KeyFile = serde_json::from_slice(&buf)
        .map_err(|e| SealError::Config(format!("key file {} is invalid: {e}", path.display())))?;
    if file.format != FILE_FORMAT {
        return Err(SealError::Config(format!(
            "key file {} has unknown format {}",
            path.display(),
            file.format
        )));
    }
    let mut map = BTreeMap::new();
    for (region, rf) in file.regions {
        validate_region(&region)?;
        crate::provider::validate_key_name(&rf.key_name)?;
        let mut versions = BTreeMap::new();
        for (v, b64) in rf.versions {
            let raw = Zeroizing::new(
                B64.decode(b64.as_bytes())
                    .map_err(|_| SealError::Config(format!("key file: bad key {region} v{v}")))?,
            );
            if raw.len() != 32 || v == 0 {
                return Err(SealError::Config(format!(
                    "key file: bad key {region} v{v}"
                )));
            }
            let mut k = Zeroizing::new([0u8; 32]);
            k.copy_from_slice(&raw);
            versions.insert(v, k);
        }
        if versions.is_empty() {
            return Err(SealError::Config(format!(
                "key file: region {region} has no keys"
            )));
        }
        map.insert(
            region,
            RegionKeys {
                key_name: rf.key_name,
                min_decryption_version: rf.min_decryption_version.max(1),
                versions,
            },
        );
    }
    Ok(Some(map))
}

impl KeyProvider for LocalKeyProvider {
    fn id(&self) -> ProviderId {
        ProviderId::Local
    }

    fn key_name(&self, region: &str) -> Result<String> {
        let g = self.keys()?;
        Ok(Self::region(&g.map, region)?.key_name.clone())
    }

    fn generate_data_key(&self, region: &str) -> Result<(DataKey, WrappedKey)> {
        let g = self.keys()?;
        let rk = Self::region(&g.map, region)?;
        let dek = random_data_key()?;
        let wrapped = Self::wrap(rk, region, Self::latest(rk)?, &dek)?;
        Ok((dek, wrapped))
    }

    fn unwrap_data_key(&self, wrapped: &WrappedKey, region: &str) -> Result<DataKey> {
        let g = self.keys()?;
        Self::unwrap_locked(Self::region(&g.map, region)?, wrapped, region)
    }

    fn wrap_data_key(&self, dek: &DataKey, region: &str) -> Result<WrappedKey> {
        let g = self.keys()?;
        let rk = Self::region(&g.map, region)?;
        Self::wrap(rk, region, Self::latest(rk)?, dek)
    }

    fn rotate(&self, region: &str) -> Result<u32> {
        self.change(|map| {
            let rk = map.get_mut(region).ok_or_else(|| {
                SealError::KeyNotFound(format!("no local master key for region {region:?}"))
            })?;
            let next = Self::latest(rk)?
                .checked_add(1)
                .ok_or_else(|| SealError::Internal("key version overflow".into()))?;
            rk.versions.insert(next, random_data_key()?);
            Ok(next)
        })
    }

    fn rewrap(&self, wrapped: &WrappedKey, region: &str) -> Result<WrappedKey> {
        let g = self.keys()?;
        let rk = Self::region(&g.map, region)?;
        let dek = Self::unwrap_locked(rk, wrapped, region)?;
        Self::wrap(rk, region, Self::latest(rk)?, &dek)
    }

    fn key_versions(&self, region: &str) -> Result<KeyVersions> {
        let g = self.keys()?;
        let rk = Self::region(&g.map, region)?;
        Ok(KeyVersions {
            key_name: rk.key_name.clone(),
            latest: Self::latest(rk)?,
            min_decryption_version: rk.min_decryption_version,
            versions: rk.versions.keys().copied().collect(),
        })
    }

    fn set_min_decryption_version(&self, region: &str, version: u32) -> Result<()> {
        self.change(|map| {
            let rk = map.get_mut(region).ok_or_else(|| {
                SealError::KeyNotFound(format!("no local master key for region {region:?}"))
            })?;
            let latest = Self::latest(rk)?;
            if version == 0 || version > latest {
                return Err(SealError::Config(format!(
                    "min_decryption_version {version} outside 1..={latest}"
                )));
            }
            rk.min_decryption_version = version;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_0600_and_reloads_same_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let p = LocalKeyProvider::open(&path, &["us", "eu"]).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (dek, w) = p.generate_data_key("us").unwrap();
        assert_eq!(w.key_name, "pixseal-us");
        assert_eq!(w.version, 1);
        drop(p);
        let p2 = LocalKeyProvider::open(&path, &["us"]).unwrap();
        assert_eq!(*p2.unwrap_data_key(&w, "us").unwrap(), *dek);
        // A region added later keeps the existing ones.
        let p3 = LocalKeyProvider::open(&path, &["us", "ca"]).unwrap();
        assert_eq!(*p3.unwrap_data_key(&w, "us").unwrap(), *dek);
        assert!(p3.key_versions("ca").is_ok());
        assert!(p3.key_versions("eu").is_ok());
    }

    #[test]
    fn refuses_group_readable_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        drop(LocalKeyProvider::open(&path, &["us"]).unwrap());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let e = LocalKeyProvider::open(&path, &["us"]).unwrap_err();
        assert!(matches!(e, SealError::Config(_)), "{e}");
    }

    #[test]
    fn region_binding_and_unknown_region() {
        let dir = tempfile::tempdir().unwrap();
        let p = LocalKeyProvider::open(dir.path().join("k"), &["us", "eu"]).unwrap();
        let (_, w) = p.generate_data_key("us").unwrap();
        assert!(matches!(
            p.unwrap_data_key(&w, "eu"),
            Err(SealError::Tampered)
        ));
        assert!(matches!(
            p.generate_data_key("ca"),
            Err(SealError::KeyNotFound(_))
        ));
        let mut renamed = w.clone();
        renamed.key_name = "pixseal-eu".into();
        assert!(matches!(
            p.unwrap_data_key(&renamed, "eu"),
            Err(SealError::Tampered)
        ));
        for i in 0..w.ciphertext.len() {
            let mut t = w.clone();
            t.ciphertext[i] ^= 1;
            assert!(matches!(
                p.unwrap_data_key(&t, "us"),
                Err(SealError::Tampered)
            ));
        }
    }

    #[test]
    fn rotate_rewrap_min_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let p = LocalKeyProvider::open(&path, &["us"]).unwrap();
        let (dek, w1) = p.generate_data_key("us").unwrap();
        assert_eq!(p.rotate("us").unwrap(), 2);
        let (_, w2) = p.generate_data_key("us").unwrap();
        assert_eq!(w2.version, 2);
        assert_eq!(*p.unwrap_data_key(&w1, "us").unwrap(), *dek);
        let w1r = p.rewrap(&w1, "us").unwrap();
        assert_eq!(w1r.version, 2);
        assert_eq!(*p.unwrap_data_key(&w1r, "us").unwrap(), *dek);
        p.set_min_decryption_version("us", 2).unwrap();
        assert!(matches!(
            p.unwrap_data_key(&w1, "us"),
            Err(SealError::KeyVersionRefused(_))
        ));
        assert!(matches!(
            p.rewrap(&w1, "us"),
            Err(SealError::KeyVersionRefused(_))
        ));
        assert!(p.set_min_decryption_version("us", 3).is_err());
        // Persisted.
        drop(p);
        let p = LocalKeyProvider::open(&path, &["us"]).unwrap();
        let v = p.key_versions("us").unwrap();
        assert_eq!(
            (v.latest, v.min_decryption_version, v.versions),
            (2, 2, vec![1, 2])
        );
        assert!(matches!(
            p.unwrap_data_key(&w1, "us"),
            Err(SealError::KeyVersionRefused(_))
        ));
        assert_eq!(*p.unwrap_data_key(&w1r, "us").unwrap(), *dek);
    }

    /// Many processes starting at once on an empty data directory end up with one set of keys:
    /// whatever one wraps, every other unwraps.
    #[test]
    fn concurrent_first_runs_agree_on_the_keys() {
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("keys.json");
            let start = std::sync::Arc::new(std::sync::Barrier::new(8));
            let providers: Vec<LocalKeyProvider> = (0..8)
                .map(|i| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        let regions: &[&str] = if i % 2 == 0 {
                            &["us", "eu"]
                        } else {
                            &["eu", "us"]
                        };
                        LocalKeyProvider::open(&path, regions).unwrap()
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect();
            for region in ["us", "eu"] {
                let (dek, w) = providers[0].generate_data_key(region).unwrap();
                for p in &providers[1..] {
                    assert_eq!(*p.unwrap_data_key(&w, region).unwrap(), *dek, "{region}");
                }
            }
        }
    }

    /// A rotation made by another process (the CLI) is seen by a running one before its next
    /// data key, and neither loses the other's versions.
    #[test]
    fn a_running_provider_sees_another_process_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let server = LocalKeyProvider::open(&path, &["us"]).unwrap();
        let cli = LocalKeyProvider::open(&path, &["us"]).unwrap();
        let (dek1, w1) = server.generate_data_key("us").unwrap();
        assert_eq!(cli.rotate("us").unwrap(), 2);
        let (dek2, w2) = server.generate_data_key("us").unwrap();
        assert_eq!(w2.version, 2, "the server uses the rotated key at once");
        assert_eq!(*cli.unwrap_data_key(&w2, "us").unwrap(), *dek2);
        // The server rotates next: from the file as it is, so version 3, not a second 2.
        assert_eq!(server.rotate("us").unwrap(), 3);
        assert_eq!(cli.key_versions("us").unwrap().versions, vec![1, 2, 3]);
        assert_eq!(*cli.unwrap_data_key(&w1, "us").unwrap(), *dek1);
        cli.set_min_decryption_version("us", 2).unwrap();
        assert!(matches!(
            server.unwrap_data_key(&w1, "us"),
            Err(SealError::KeyVersionRefused(_))
        ));
    }
}
