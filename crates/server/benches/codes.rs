//! Code verification benchmark (`cargo bench -p pixseal-server --bench codes`): an in-process
//! `pixseal serve` on loopback, N message codes issued beforehand (default 5 000;
//! PIXSEAL_BENCH_CODES_N), then every code verified once over HTTP by C concurrent clients
//! (default 16; PIXSEAL_BENCH_CODES_CLIENTS), on SQLite and on PostgreSQL (fresh database).
//! Each verify is a keyed lookup, the one-time conditional UPDATE and an audit append.
//! Rate limits are off (the point is the verify path). Prints a markdown table.

use std::sync::Arc;
use std::time::Instant;

use pixseal_seal::KeysConfig;
use pixseal_server::codes::{IssueRequest, issue};
use pixseal_server::{AppState, ServerConfig};
use pixseal_store::{BlobStore, Db, StorageConfig};
use serde_json::json;

async fn state(db_url: &str, dir: &std::path::Path) -> AppState {
    let cfg = ServerConfig {
        rate_limit_per_key: 0,
        rate_limit_per_ip: 0,
        rate_limit_verify_per_ip: 0,
        ..ServerConfig::default()
    };
    let db = Db::connect(db_url).await.unwrap();
    let mut storage = StorageConfig::default();
    storage.regions.retain(|k, _| k == "us");
    let blobs = BlobStore::open(&storage, dir).unwrap();
    let keys = Arc::from(KeysConfig::default().open_provider(dir, &["us"]).unwrap());
    let receipts = Arc::new(pixseal_proof::LocalReceiptSigner::open(&dir.join("r.pem")).unwrap());
    let limiter = Arc::new(pixseal_server::ratelimit::Limiter::new(&cfg).await);
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

struct Run {
    name: &'static str,
    n: usize,
    rate: f64,
    p50: f64,
    p99: f64,
    valid: usize,
}

async fn run(name: &'static str, db_url: &str, n: usize, clients: usize) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let st = state(db_url, dir.path()).await;
    let t = st.db.create_tenant("bench", "us", 30).await.unwrap();
    let mut codes = Vec::with_capacity(n);
    for i in 0..n {
        let v = issue(
            &st,
            &t,
            "bench",
            IssueRequest {
                message: Some(format!("message {i}")),
                recipient: format!("r{i}@example.org"),
                ..IssueRequest::default()
            },
        )
        .await
        .unwrap();
        codes.push((i, v["code"].as_str().unwrap().to_string()));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/codes/verify", listener.local_addr().unwrap());
    tokio::spawn(pixseal_server::serve(
        st.clone(),
        listener,
        std::future::pending(),
    ));
    let queue = Arc::new(std::sync::Mutex::new(codes));
    let t0 = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (queue, url) = (queue.clone(), url.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut lat = Vec::new();
                let mut valid = 0;
                loop {
                    let Some((i, code)) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let t = Instant::now();
                    let r = client
                        .post(&url)
                        .json(&json!({"code": code, "message": format!("message {i}"), "recipient": format!("r{i}@example.org")}))
                        .send()
                        .await
                        .unwrap();
                    let v: serde_json::Value = r.json().await.unwrap();
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    valid += usize::from(v["verdict"] == "valid");
                }
                (lat, valid)
            })
        })
        .collect();
    let mut lat = Vec::new();
    let mut valid = 0;
    for w in workers {
        let (l, v) = w.await.unwrap();
        lat.extend(l);
        valid += v;
    }
    let secs = t0.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    Run {
        name,
        n,
        rate: n as f64 / secs,
        p50: pct(0.50),
        p99: pct(0.99),
        valid,
    }
}

fn main() {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (n, clients) = (
        env("PIXSEAL_BENCH_CODES_N", 5_000),
        env("PIXSEAL_BENCH_CODES_CLIENTS", 16),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
        let pg = pixseal_testkit::fresh_postgres_db("benchcodes");
        let runs = [
            run("SQLite", &sqlite, n, clients).await,
            run("PostgreSQL", &pg, n, clients).await,
        ];
        println!("| POST /v1/codes/verify ({clients} clients, loopback) | verifies | valid | verifies/s | p50 ms | p99 ms |");
        println!("|---|---:|---:|---:|---:|---:|");
        for r in runs {
            println!(
                "| {} | {} | {} | {:.0} | {:.2} | {:.2} |",
                r.name, r.n, r.valid, r.rate, r.p50, r.p99
            );
        }
    });
}
