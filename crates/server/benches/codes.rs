//! Code verification benchmark (`cargo bench -p pixseal-server --bench codes`): an in-process
//! `pixseal serve` on loopback, N message codes issued beforehand (default 5 000;
//! PIXSEAL_BENCH_CODES_N), then every code verified once over HTTP by C concurrent clients
//! (default 16; PIXSEAL_BENCH_CODES_CLIENTS), on SQLite and on PostgreSQL (fresh database).
//! Each verify is a keyed lookup, the one-time conditional UPDATE and an audit append.
//! Rate limits are off (the point is the verify path). Prints a markdown table.

use std::sync::Arc;
use std::time::Instant;

use pixseal_service::codes::IssueRequest;
use pixseal_service::{Actor, ServerConfig};
use pixseal_testkit::TestApp;
use serde_json::json;

/// The service on `db_url` (empty: SQLite), rate limits and the minting cap off.
async fn app(db_url: &str) -> TestApp {
    let mut config = TestApp::config();
    config.codes.max_codes_per_hour = 0;
    config.codes.require_presence = false;
    config.server = ServerConfig {
        database_url: db_url.into(),
        rate_limit_per_key: 0,
        rate_limit_per_ip: 0,
        rate_limit_verify_per_ip: 0,
        ..ServerConfig::default()
    };
    TestApp::spawn(config).await
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
    let app = app(db_url).await;
    let st = &app.state;
    let t = st.db.create_tenant("bench", "us", 30).await.unwrap();
    let mut codes = Vec::with_capacity(n);
    for i in 0..n {
        let v = st
            .issue_code(
                &t,
                &Actor::Cli,
                IssueRequest {
                    message: Some(format!("message {i}")),
                    recipient: format!("r{i}@example.org"),
                    ..IssueRequest::default()
                },
            )
            .await
            .unwrap();
        codes.push((i, v.code));
    }
    let url = format!("{}/v1/codes/verify", app.url);
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
        let pg = pixseal_testkit::fresh_postgres_db("benchcodes");
        let runs = [
            run("SQLite", "", n, clients).await,
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
