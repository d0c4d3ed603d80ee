//! Blob store against real backends: the local filesystem and SeaweedFS over S3.

use bytes::Bytes;
use pixseal_store::{BlobError, BlobKey, BlobStore, StorageBackend, StorageConfig};

fn s3_config() -> StorageConfig {
    let s3 = pixseal_testkit::seaweedfs();
    let mut cfg = StorageConfig {
        backend: StorageBackend::S3,
        endpoint: s3.endpoint.clone(),
        access_key_id: s3.access_key.clone(),
        secret_access_key: s3.secret_key.clone().into(),
        allow_http: true,
        ..StorageConfig::default()
    };
    // One bucket per region, as production would have.
    for (name, r) in cfg.regions.iter_mut() {
        r.bucket = format!("pixseal-{name}");
    }
    cfg
}

fn unique(tag: &str) -> BlobKey {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    BlobKey::new(format!("{tag}-{n}")).unwrap()
}

async fn round_trip_and_isolation(store: &BlobStore) {
    let key = unique("obj");
    let body = Bytes::from(vec![7u8; 300_000]);
    store.put("us", &key, body.clone()).await.unwrap();
    assert_eq!(store.get("us", &key).await.unwrap(), body);
    assert!(store.exists("us", &key).await.unwrap());
    // The same key in another region is another blob: nothing crosses regions.
    assert!(matches!(
        store.get("eu", &key).await,
        Err(BlobError::NotFound)
    ));
    assert!(!store.exists("eu", &key).await.unwrap());
    assert!(store.list("us").await.unwrap().contains(&key));
    assert!(!store.list("eu").await.unwrap().contains(&key));
    assert!(matches!(
        store.get("mars", &key).await,
        Err(BlobError::UnknownRegion(_))
    ));
    store.delete("us", &key).await.unwrap();
    store.delete("us", &key).await.unwrap(); // idempotent
    assert!(matches!(
        store.get("us", &key).await,
        Err(BlobError::NotFound)
    ));
    store.check().await.unwrap();
    ranges_and_streams(store).await;
}

/// Ranged reads return the bytes asked for and the blob's length; a blob put in pieces is
/// stored whole, and one whose writer stops before the end is not stored at all.
async fn ranges_and_streams(store: &BlobStore) {
    let key = unique("pieces");
    let whole: Vec<u8> = (0..20_000_000u32).map(|i| (i % 251) as u8).collect();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let feed = {
        let whole = whole.clone();
        tokio::spawn(async move {
            for piece in whole.chunks(1_000_003) {
                tx.send(Some(Bytes::copy_from_slice(piece))).await.unwrap();
            }
            tx.send(None).await.unwrap();
        })
    };
    store.put_stream("us", &key, rx).await.unwrap();
    feed.await.unwrap();
    for range in [0..10u64, 8_388_600..8_388_700, 19_999_990..20_000_000] {
        let (bytes, len) = store.get_range("us", &key, range.clone()).await.unwrap();
        assert_eq!(len, whole.len() as u64);
        assert_eq!(&bytes[..], &whole[range.start as usize..range.end as usize]);
    }
    // A range past the end comes back cut to the blob.
    let (bytes, _) = store
        .get_range("us", &key, 19_999_995..20_000_100)
        .await
        .unwrap();
    assert_eq!(bytes.len(), 5);
    store.delete("us", &key).await.unwrap();

    let cut = unique("cut");
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(Some(Bytes::from(vec![1u8; 9_000_000])))
        .await
        .unwrap();
    drop(tx);
    assert!(store.put_stream("us", &cut, rx).await.is_err());
    assert!(!store.exists("us", &cut).await.unwrap());
}

#[tokio::test]
async fn local_backend_round_trip_and_region_isolation() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&StorageConfig::default(), dir.path()).unwrap();
    round_trip_and_isolation(&store).await;
    // Region prefixes are separate directories, and no temporary files are left behind.
    let key = unique("f");
    store
        .put("eu", &key, Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert!(dir.path().join("blobs/eu").join(key.as_str()).exists());
    let leftovers: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|p| p.contains("#"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn s3_backend_on_seaweedfs_round_trip_and_region_isolation() {
    let cfg = s3_config();
    let store = BlobStore::open(&cfg, std::path::Path::new("/nonexistent")).unwrap();
    // Buckets are created by the start script; give a fresh server a moment to finish that.
    for _ in 0..40 {
        if store.check().await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    round_trip_and_isolation(&store).await;
}

#[tokio::test]
async fn s3_with_wrong_credentials_is_an_error_not_a_silent_success() {
    let mut cfg = s3_config();
    cfg.secret_access_key = "wrong".into();
    let store = BlobStore::open(&cfg, std::path::Path::new("/nonexistent")).unwrap();
    let r = store
        .put("us", &unique("denied"), Bytes::from_static(b"x"))
        .await;
    assert!(matches!(r, Err(BlobError::Unavailable(_))), "{r:?}");
}

fn walk(p: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            out.push(path.display().to_string());
            if path.is_dir() {
                out.extend(walk(&path));
            }
        }
    }
    out
}
