//! Purge and rate-limit benchmark (`cargo bench -p pixseal-server --bench purge`):
//! - purge N expired artifacts (default 100,000; PIXSEAL_BENCH_PURGE_N) on SQLite and on
//!   PostgreSQL (fresh database), artifacts/s;
//! - upload latency while such a purge runs: an in-process server on loopback, C clients
//!   (default 4; PIXSEAL_BENCH_UPLOAD_CLIENTS) each POSTing a small JPEG (fixtures/photos/
//!   garden.jpg, 640×480) back to back, first for S seconds with no purge (default 30;
//!   PIXSEAL_BENCH_UPLOAD_SECS), then for as long as the N-artifact purge (2 workers, in the
//!   server's process, as `pixseal serve` runs it) takes; uploads/s, p50, p99 and max;
//! - the cost of one rate-limit check, in-process vs Redis (127.0.0.1:6379).
//!
//! PIXSEAL_BENCH_ONLY=upload runs only the upload-during-purge part; PIXSEAL_BENCH_PURGE_BATCH
//! sets the rows claimed per purge batch (default 500, as `pixseal serve`). Prints markdown
//! tables.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pixseal_server::{AppState, ratelimit::Limiter};
use pixseal_service::{RateLimitBackend, ServerConfig};
use pixseal_store::{Artifact, ArtifactState, Scope, Tenant};
use pixseal_testkit::TestApp;

/// The service on `db_url` (empty: SQLite) with these `[server]` settings.
async fn app(db_url: &str, server: ServerConfig) -> TestApp {
    let mut config = TestApp::config();
    config.server = ServerConfig {
        database_url: db_url.into(),
        ..server
    };
    TestApp::spawn(config).await
}

/// N expired artifacts (rows + local blob files) of tenant `t`, due at `now`.
async fn seed_expired(st: &AppState, t: &Tenant, dir: &std::path::Path, n: usize, now: i64) {
    let blob_dir = dir.join("blobs/us");
    std::fs::create_dir_all(&blob_dir).unwrap();
    for i in 0..n {
        let id = format!("b{i:07}");
        let a = Artifact {
            id: id.clone(),
            tenant_id: t.id.clone(),
            region: "us".into(),
            proof_id: format!("px_{i:013}"),
            state: ArtifactState::Active,
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
}

/// Two purge workers on `st`, as two `pixseal serve` instances (or one instance and
/// `pixseal purge`) would run them; resolves to the number purged.
fn spawn_purge(st: &AppState, now: i64) -> tokio::task::JoinHandle<u64> {
    let batch = std::env::var("PIXSEAL_BENCH_PURGE_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let (a, b) = (st.clone(), st.clone());
    tokio::spawn(async move {
        let (ra, rb) = tokio::join!(
            tokio::spawn(async move { a.purge_at(now, batch, 600_000).await.unwrap() }),
            tokio::spawn(async move { b.purge_at(now, batch, 600_000).await.unwrap() }),
        );
        ra.unwrap().purged + rb.unwrap().purged
    })
}

async fn purge_run(name: &str, db_url: &str, n: usize) -> (String, usize, f64) {
    let app = app(db_url, ServerConfig::default()).await;
    let st = &app.state;
    let t = st.db.create_tenant("bench", "us", 30).await.unwrap();
    let (_, now) = pixseal_store::meta::now();
    seed_expired(st, &t, app.data.path(), n, now).await;
    let t0 = Instant::now();
    let purged = spawn_purge(st, now).await.unwrap() as usize;
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(purged, n);
    (name.to_string(), n, n as f64 / secs)
}

/// Uploads of one condition.
#[derive(Default)]
struct Uploads {
    ok: usize,
    errors: usize,
    secs: f64,
    /// Milliseconds of the successful uploads, sorted.
    lat: Vec<f64>,
    /// (seconds since the start when it finished, milliseconds) of each successful upload.
    timed: Vec<(f64, f64)>,
}

impl Uploads {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.secs
    }
    fn pct(&self, p: f64) -> f64 {
        if self.lat.is_empty() {
            return f64::NAN;
        }
        self.lat[((self.lat.len() as f64 * p) as usize).min(self.lat.len() - 1)]
    }
    fn max(&self) -> f64 {
        self.lat.last().copied().unwrap_or(f64::NAN)
    }
    /// The highest p99 of any 10-second window with at least 100 uploads (a purge that hurts
    /// only part of the time shows here even when the whole-run p99 hides it).
    fn worst_window_p99(&self) -> f64 {
        let end = self.timed.iter().map(|t| t.0).fold(0.0, f64::max);
        let mut worst = f64::NAN;
        let mut from = 0.0;
        while from < end {
            let mut w: Vec<f64> = self
                .timed
                .iter()
                .filter(|(t, _)| *t >= from && *t < from + 10.0)
                .map(|t| t.1)
                .collect();
            if w.len() >= 100 {
                w.sort_by(f64::total_cmp);
                let p = w[((w.len() as f64 * 0.99) as usize).min(w.len() - 1)];
                worst = if worst.is_nan() { p } else { worst.max(p) };
            }
            from += 10.0;
        }
        worst
    }
}

/// `clients` clients POST `photo` back to back until `stop` is set.
async fn upload_until(
    url: &str,
    key: &str,
    photo: &Arc<Vec<u8>>,
    clients: usize,
    stop: Arc<AtomicBool>,
) -> Uploads {
    let t0 = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (url, key, photo, stop) = (
                url.to_string(),
                key.to_string(),
                photo.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let (mut lat, mut errors) = (Vec::new(), 0usize);
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let r = client
                        .post(&url)
                        .bearer_auth(&key)
                        .body(photo.to_vec())
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().as_u16() == 201 => {
                            let _ = r.bytes().await;
                            lat.push((
                                t0.elapsed().as_secs_f64(),
                                t.elapsed().as_secs_f64() * 1000.0,
                            ));
                        }
                        _ => errors += 1,
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut u = Uploads::default();
    for w in workers {
        let (l, e) = w.await.unwrap();
        u.lat.extend(l.iter().map(|t| t.1));
        u.timed.extend(l);
        u.errors += e;
    }
    u.secs = t0.elapsed().as_secs_f64();
    u.ok = u.lat.len();
    u.lat.sort_by(f64::total_cmp);
    u
}

async fn upload_for(
    url: &str,
    key: &str,
    photo: &Arc<Vec<u8>>,
    clients: usize,
    secs: u64,
) -> Uploads {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(secs)).await;
        s.store(true, Ordering::Relaxed);
    });
    upload_until(url, key, photo, clients, stop).await
}

struct UploadRun {
    name: &'static str,
    idle: Uploads,
    purging: Uploads,
    purge_secs: f64,
    purged: u64,
}

/// Upload latency without, then during, an N-artifact purge on one server.
async fn upload_during_purge(
    name: &'static str,
    db_url: &str,
    n: usize,
    clients: usize,
    secs: u64,
) -> UploadRun {
    let cfg = ServerConfig {
        rate_limit_per_key: 0,
        rate_limit_per_ip: 0,
        ..ServerConfig::default()
    };
    let app = app(db_url, cfg).await;
    let st = &app.state;
    let t = st.db.create_tenant("bench", "us", 30).await.unwrap();
    let (_, key) = st
        .db
        .create_api_key(&t, &[Scope::ArtifactsWrite])
        .await
        .unwrap();
    let (_, now) = pixseal_store::meta::now();
    seed_expired(st, &t, app.data.path(), n, now).await;
    let url = format!("{}/v1/artifacts", app.url);
    let photo = Arc::new(
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../fixtures/photos/garden.jpg"),
        )
        .unwrap(),
    );
    // Warm-up (connections, caches, the blocking pool), not counted.
    upload_for(&url, &key, &photo, clients, 3).await;
    let idle = upload_for(&url, &key, &photo, clients, secs).await;
    // Then the same load for as long as the purge of the N expired artifacts runs.
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let purge = spawn_purge(st, now);
    let uploads = tokio::spawn({
        let (url, key, photo, stop) = (url.clone(), key.clone(), photo.clone(), stop.clone());
        async move { upload_until(&url, &key, &photo, clients, stop).await }
    });
    let purged = purge.await.unwrap();
    let purge_secs = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let purging = uploads.await.unwrap();
    assert_eq!(purged, n as u64);
    UploadRun {
        name,
        idle,
        purging,
        purge_secs,
        purged,
    }
}

async fn limiter_cost(backend: RateLimitBackend) -> f64 {
    let cfg = ServerConfig {
        rate_limit_backend: backend,
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
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let n = env("PIXSEAL_BENCH_PURGE_N", 100_000);
    let clients = env("PIXSEAL_BENCH_UPLOAD_CLIENTS", 4);
    let secs = env("PIXSEAL_BENCH_UPLOAD_SECS", 30) as u64;
    let only_upload = std::env::var("PIXSEAL_BENCH_ONLY").as_deref() == Ok("upload");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        if !only_upload {
            let runs = [
                purge_run("SQLite", "", n).await,
                purge_run("PostgreSQL", &pixseal_testkit::fresh_postgres_db("bench"), n).await,
            ];
            println!("| purge (2 workers, local blobs) | artifacts | artifacts/s |");
            println!("|---|---:|---:|");
            for (name, n, rate) in runs {
                println!("| {name} | {n} | {rate:.0} |");
            }
            println!();
        }
        let runs = [
            upload_during_purge("SQLite", "", n, clients, secs).await,
            upload_during_purge(
                "PostgreSQL",
                &pixseal_testkit::fresh_postgres_db("benchupload"),
                n,
                clients,
                secs,
            )
            .await,
        ];
        println!(
            "| POST /v1/artifacts ({clients} clients, garden.jpg 640×480) | uploads no purge / during purge | uploads/s no purge / during | p50 ms no purge / during | p99 ms no purge / during | worst 10 s p99 ms no purge / during | max ms no purge / during | errors | purge under load |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
        for r in runs {
            println!(
                "| {} | {} / {} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | {:.0} / {:.0} | {} / {} | {} in {:.1} s ({:.0}/s) |",
                r.name,
                r.idle.ok,
                r.purging.ok,
                r.idle.rate(),
                r.purging.rate(),
                r.idle.pct(0.50),
                r.purging.pct(0.50),
                r.idle.pct(0.99),
                r.purging.pct(0.99),
                r.idle.worst_window_p99(),
                r.purging.worst_window_p99(),
                r.idle.max(),
                r.purging.max(),
                r.idle.errors,
                r.purging.errors,
                r.purged,
                r.purge_secs,
                r.purged as f64 / r.purge_secs,
            );
        }
        if !only_upload {
            println!();
            println!("| rate-limit check | µs per check |");
            println!("|---|---:|");
            println!(
                "| in-process (governor) | {:.2} |",
                limiter_cost(RateLimitBackend::Memory).await
            );
            println!(
                "| Redis GCRA script (loopback) | {:.2} |",
                limiter_cost(RateLimitBackend::Redis).await
            );
        }
    });
}
