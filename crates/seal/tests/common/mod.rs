//! Shared helpers for the integration tests.
#![allow(dead_code)]

use pixseal_seal::{LocalKeyProvider, ObjectRef, SealError, TransitConfig, TransitKeyProvider};

/// Regions the tests use. `us`/`eu` are shared and never rotated; each rotation/shredding test
/// has a region of its own so tests can run in parallel against one server.
pub const BAO_REGIONS: &str = "us eu rot shred";

pub const OBJ: ObjectRef<'static> = ObjectRef {
    object_id: "art_01HZX",
    tenant: "tenant-a",
    region: "us",
};

pub fn obj(
    object_id: &'static str,
    tenant: &'static str,
    region: &'static str,
) -> ObjectRef<'static> {
    ObjectRef {
        object_id,
        tenant,
        region,
    }
}

/// A local provider with regions `us` and `eu` in a fresh key file.
pub fn local() -> (tempfile::TempDir, LocalKeyProvider) {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = LocalKeyProvider::open(dir.path().join("keys.json"), &["us", "eu"]).expect("key file");
    (dir, p)
}

/// Deterministic pseudo-random bytes (xorshift), so failures are reproducible.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn assert_tampered<T: std::fmt::Debug>(r: Result<T, SealError>, what: &str) {
    match r {
        Err(SealError::Tampered) => {}
        other => panic!("{what}: expected Err(Tampered), got {other:?}"),
    }
}

/// The real OpenBao dev server (started through the shared test kit).
pub struct Bao(&'static pixseal_testkit::Bao);

impl Bao {
    /// Provider with the app token (the least-privilege policy).
    pub fn app(&self) -> TransitKeyProvider {
        self.provider(&self.0.token)
    }

    /// Provider with the admin (root) token.
    pub fn admin(&self) -> TransitKeyProvider {
        self.provider(&self.0.root_token)
    }

    pub fn addr(&self) -> &str {
        &self.0.addr
    }

    pub fn token(&self) -> &str {
        &self.0.token
    }

    pub fn root_token(&self) -> &str {
        &self.0.root_token
    }

    fn provider(&self, token: &str) -> TransitKeyProvider {
        let regions: Vec<&str> = BAO_REGIONS.split_whitespace().collect();
        TransitKeyProvider::new(TransitConfig::new(&self.0.addr, token, &regions))
            .expect("transit provider")
    }
}

/// `None` only when PIXSEAL_SKIP_TRANSIT=1.
pub fn bao() -> Option<Bao> {
    pixseal_testkit::openbao(BAO_REGIONS).map(Bao)
}

use pixseal_seal::{KeyPlacement, KeyProvider, Sealer, read_header};

/// Rotation: old blobs still open, rewrap/reseal move them to the new version,
/// min_decryption_version then refuses the old ones. `admin` sets min_decryption_version.
pub fn rotation_scenario(app: &dyn KeyProvider, admin: &dyn KeyProvider, region: &'static str) {
    let o = obj("rot-object", "tenant-r", region);
    let v0 = app.key_versions(region).unwrap().latest;
    let emb = Sealer::new(app, KeyPlacement::Embedded);
    let det = Sealer::new(app, KeyPlacement::Detached);
    let pt = data(100_000, 99);
    let (blob_e, re) = emb.seal_bytes(&pt, &o).unwrap();
    let (blob_d, rd) = det.seal_bytes(&pt, &o).unwrap();
    assert_eq!(re.wrapped_key.version, v0);
    assert_eq!(read_header(&blob_e[..]).unwrap().key_version, v0);

    let v1 = app.rotate(region).unwrap();
    assert_eq!(v1, v0 + 1);
    let kv = app.key_versions(region).unwrap();
    assert_eq!(kv.latest, v1);
    assert!(
        kv.versions.contains(&v0) && kv.versions.contains(&v1),
        "{kv:?}"
    );

    // Old blobs still open after the rotation.
    assert!(emb.open_bytes(&blob_e, &o, None).unwrap() == pt);
    assert!(det.open_bytes(&blob_d, &o, Some(&rd.wrapped_key)).unwrap() == pt);
    // New blobs use the new version.
    let (_, rn) = det.seal_bytes(b"new", &o).unwrap();
    assert_eq!(rn.wrapped_key.version, v1);

    // Detached: rewrap the stored key; the blob itself is unchanged.
    let rd2 = app.rewrap(&rd.wrapped_key, region).unwrap();
    assert_eq!(rd2.version, v1);
    assert_ne!(rd2.ciphertext, rd.wrapped_key.ciphertext);
    assert!(det.open_bytes(&blob_d, &o, Some(&rd2)).unwrap() == pt);
    // Embedded: reseal (fresh data key under the new version), streaming.
    let mut blob_e2 = Vec::new();
    let r2 = emb.reseal(&blob_e[..], &mut blob_e2, &o, None).unwrap();
    assert_eq!(r2.wrapped_key.version, v1);
    assert_eq!(r2.plaintext_len, pt.len() as u64);
    assert_eq!(read_header(&blob_e2[..]).unwrap().key_version, v1);
    assert!(emb.open_bytes(&blob_e2, &o, None).unwrap() == pt);

    // Raise min_decryption_version: the old version is refused, the moved data still opens.
    admin.set_min_decryption_version(region, v1).unwrap();
    assert_eq!(app.key_versions(region).unwrap().min_decryption_version, v1);
    let refused = |r: Result<Vec<u8>, SealError>, what: &str| match r {
        Err(SealError::KeyVersionRefused(_)) => {}
        other => panic!(
            "{what}: expected KeyVersionRefused, got {:?}",
            other.map(|v| v.len())
        ),
    };
    refused(emb.open_bytes(&blob_e, &o, None), "old embedded blob");
    refused(
        det.open_bytes(&blob_d, &o, Some(&rd.wrapped_key)),
        "old detached key",
    );
    assert_eq!(
        app.rewrap(&rd.wrapped_key, region).unwrap_err().code(),
        "key_version_refused"
    );
    assert!(emb.open_bytes(&blob_e2, &o, None).unwrap() == pt);
    assert!(det.open_bytes(&blob_d, &o, Some(&rd2)).unwrap() == pt);
}

/// Crypto-shredding: a detached blob whose wrapped key was deleted opens with no key at all.
pub fn shredding_scenario(p: &dyn KeyProvider, region: &'static str) {
    let o = obj("shred-object", "tenant-s", region);
    let det = Sealer::new(p, KeyPlacement::Detached);
    let pt = data(150_000, 5);
    let (blob, summary) = det.seal_bytes(&pt, &o).unwrap();
    let backup = blob.clone(); // a copy in a backup, outside our control
    assert!(
        det.open_bytes(&blob, &o, Some(&summary.wrapped_key))
            .unwrap()
            == pt
    );
    let header = read_header(&backup[..]).unwrap();
    assert!(
        header.wrapped_dek.is_none(),
        "the blob must not carry its wrapped key"
    );
    let wrapped_bytes = summary.wrapped_key.to_bytes();
    assert!(
        !backup
            .windows(wrapped_bytes.len().min(24))
            .any(|w| w == &summary.wrapped_key.ciphertext[..24]),
        "no copy of the wrapped key inside the blob"
    );

    // Every other wrapped key the system holds: other objects, same region and tenant,
    // plus rewrapped copies under a newer version.
    let mut others = Vec::new();
    for i in 0..4 {
        let (_, r) = det.seal_bytes(&data(100, i), &o).unwrap();
        others.push(r.wrapped_key);
    }
    // Delete the object's wrapped key (the database row).
    drop(summary);

    match det.open_bytes(&backup, &o, None) {
        Err(SealError::KeyNotFound(_)) => {}
        other => panic!("without its wrapped key: {:?}", other.map(|v| v.len())),
    }
    for (i, k) in others.iter().enumerate() {
        assert_tampered(
            det.open_bytes(&backup, &o, Some(k)),
            &format!("other object's key {i}"),
        );
        let mut forged = k.clone();
        forged.version = header.key_version;
        assert_tampered(
            det.open_bytes(&backup, &o, Some(&forged)),
            &format!("forged key {i}"),
        );
    }
    // Opened as an embedded blob: no key either.
    let emb = Sealer::new(p, KeyPlacement::Embedded);
    assert!(emb.open_bytes(&backup, &o, None).is_err());
}

/// A deletion receipt to sign in the receipt-signer tests.
pub fn receipt() -> pixseal_proof::Receipt {
    pixseal_proof::Receipt::V2(pixseal_proof::ReceiptV2 {
        version: 2,
        receipt_id: "rcpt_00112233445566778899aabbccddeeff".into(),
        proof_id: "px_0H8Z4K2M9QW3R".into(),
        sha256: "ab".repeat(32),
        region: "us".into(),
        created_at: "2026-11-01T00:00:00Z".into(),
        deleted_at: "2026-11-08T00:00:00Z".into(),
        reason: "deleted_by_owner".into(),
        subject: "cd".repeat(32),
    })
}

/// `method path` on the OpenBao at `addr` with `token` (blocking): (status, JSON body).
pub fn bao_request(
    addr: &str,
    token: &str,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    let c = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap();
    let url = format!("{addr}/v1/{path}");
    let req = match method {
        "GET" => c.get(&url),
        "DELETE" => c.delete(&url),
        _ => c.post(&url).body(body.to_owned()),
    };
    let r = req.header("X-Vault-Token", token).send().unwrap();
    let status = r.status().as_u16();
    let body = r.text().unwrap_or_default();
    (status, serde_json::from_str(&body).unwrap_or_default())
}
