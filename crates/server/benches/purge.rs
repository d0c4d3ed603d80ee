//! Purge and rate-limit benchmark (`cargo bench -p pixseal-server --bench purge`):
//! - purge N expired artifacts (default 100,000; PIXSEAL_BENCH_PURGE_N) on SQLite and on
//!   PostgreSQL (fresh database), artifacts/s;
//! - the cost of one rate-limit check, in-process vs Redis (127.0.0.1:6379).
//!
//! Prints a markdown table.

use std::sync::Arc;
use std::time::Instant;

use pixseal_seal::KeysConfig;
use pixseal_server::{AppState, ServerConfig, ratelimit::Limiter};
use pixseal_store::{Artifact, BlobStore, Db, StorageConfig};

async fn state(db_url: &str, dir: &std::path::Path, cfg: ServerConfig) -> AppState {
    let db = Db::connect(db_url).await.unwrap();
    let mut storage = StorageConfig::default();
    storage.regions.retain(|k, _| k == "us");
    let blobs = BlobStore::open(&storage, dir).unwrap();
    let keys = Arc::from(KeysConfig::default().open_provider(dir, &["us"]).unwrap());
    let receipts = Arc::new(pixseal_proof::LocalReceiptSigner::open(&dir.join("r.pem")).unwrap());
    let limiter = Arc::new(Limiter::new(&cfg).await);
    AppState::new(
        cfg,
        pixseal_media::Limits::default(),
        db,
        blobs,
        keys,
        receipts,
        limiter,
    )
}

async fn purge_run(name: &str, db_url: &str, n: usize) -> (String, usize, f64) {
    let dir = tempfile::tempdir().unwrap();
    let st = state(db_url, dir.path(), ServerConfig::default()).await;
    let t = st.db.create_tenant("bench", "us", 30).await.unwrap();
    let (_, now) = pixseal_store::meta::now();
    let blob_dir = dir.path().join("blobs/us");
    std::fs::create_dir_all(&blob_dir).unwrap();
    for i in 0..n {
        let id = format!("b{i:07}");
        let a = Artifact {
            id: id.clone(),
            tenant_id: t.id.clone(),
            region: "us".into(),
            proof_id: format!("px_{i:013}"),
            state: "active".into(),
            sha256: "0".repeat(64),
            original_sha256: "1".repeat(64),
            content_type: "image/webp".into(),
            width: 1,
            height: 1,
            bytes: 6,
            wrapped_key: String::new(),
            label_sealed: None,
            client_ip_sealed: None,
            created_at: String::new(),
            created_ms: now - 1000,
            expires_at: String::new(),
            expires_ms: now - 1,
        };
        st.db.insert_artifact(&a).await.unwrap();
        std::fs::write(blob_dir.join(&id), b"sealed").unwrap();
    }
    let t0 = Instant::now();
    let (a, b) = (st.clone(), st.clone());
    let (ra, rb) = tokio::join!(
        tokio::spawn(async move {
            pixseal_server::purge_due(&a, now, 500, 600_000)
                .await
                .unwrap()
        }),
        tokio::spawn(async move {
            pixseal_server::purge_due(&b, now, 500, 600_000)
                .await
                .unwrap()
        }),
    );
    let purged = (ra.unwrap().purged + rb.unwrap().purged) as usize;
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(purged, n);
    (name.to_string(), n, n as f64 / secs)
}

async fn limiter_cost(backend: &str) -> f64 {
    let cfg = ServerConfig {
        rate_limit_backend: backend.into(),
        rate_limit_prefix: format!("pixseal:bench:{}:", std::process::id()),
        rate_limit_per_key: 1_000_000,
        ..ServerConfig::default()
    };
    let l = Limiter::new(&cfg).await;
    let n = 20_000;
    let t0 = Instant::now();
    for i in 0..n {
        l.check_key(&format!("k{}", i % 100)).await.unwrap();
    }
    t0.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn main() {
    let n: usize = std::env::var("PIXSEAL_BENCH_PURGE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
        let pg = pixseal_testkit::fresh_postgres_db("bench");
        let runs = [
            purge_run("SQLite", &sqlite, n).await,
            purge_run("PostgreSQL", &pg, n).await,
        ];
        println!("| purge (2 workers, local blobs) | artifacts | artifacts/s |");
        println!("|---|---:|---:|");
        for (name, n, rate) in runs {
            println!("| {name} | {n} | {rate:.0} |");
        }
        println!();
        println!("| rate-limit check | µs per check |");
        println!("|---|---:|");
        println!(
            "| in-process (governor) | {:.2} |",
            limiter_cost("memory").await
        );
        println!(
            "| Redis GCRA script (loopback) | {:.2} |",
            limiter_cost("redis").await
        );
    });
}
