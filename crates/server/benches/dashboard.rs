//! Dashboard benchmark (`cargo bench -p pixseal-server --bench dashboard`): the first page of
//! the gallery (`GET /app`, signed in: session lookup, one page of 24 newest artifacts, the
//! count, the HTML) and `GET /v1/artifacts` (50 per page, JSON) for a tenant holding N
//! artifacts (default 10,000; PIXSEAL_BENCH_DASHBOARD_N), beside an empty tenant, on SQLite and
//! on PostgreSQL (a fresh database), through an in-process server on loopback. R requests each
//! (default 200; PIXSEAL_BENCH_DASHBOARD_REQUESTS); p50, p99 and max in ms. Prints a markdown
//! table.

use std::time::Instant;

use pixseal_server::AppState;
use pixseal_service::ServerConfig;
use pixseal_store::{Artifact, ArtifactState, Scope, Tenant};
use pixseal_testkit::TestApp;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `n` stored artifacts of tenant `t`, created a second apart (rows only: the pages read no blob).
async fn seed(st: &AppState, t: &Tenant, n: usize, now: i64) {
    for i in 0..n {
        let created_ms = now - (n - i) as i64 * 1000;
        let a = Artifact {
            id: format!("0192{i:08}-0000-7000-8000-000000000000"),
            tenant_id: t.id.clone(),
            region: "us".into(),
            proof_id: format!("px_{i:013}"),
            state: ArtifactState::Active,
            sha256: "0".repeat(64),
            original_sha256: "1".repeat(64),
            content_type: "image/webp".into(),
            width: 4032,
            height: 3024,
            bytes: 2_400_000,
            wrapped_key: String::new(),
            label_sealed: None,
            client_ip_sealed: None,
            created_at: pixseal_store::meta::at_ms(created_ms).0,
            created_ms,
            expires_at: pixseal_store::meta::at_ms(created_ms + 30 * 86_400_000).0,
            expires_ms: created_ms + 30 * 86_400_000,
        };
        st.db.insert_artifact(&a).await.unwrap();
    }
}

struct Timing {
    p50: f64,
    p99: f64,
    max: f64,
}

async fn time(client: &reqwest::Client, url: &str, headers: &[(&str, String)], n: usize) -> Timing {
    let mut ms = Vec::with_capacity(n);
    for _ in 0..n {
        let mut rb = client.get(url);
        for (k, v) in headers {
            rb = rb.header(*k, v);
        }
        let t = Instant::now();
        let r = rb.send().await.unwrap();
        assert!(r.status().is_success(), "{url}: {}", r.status());
        let _ = r.bytes().await.unwrap();
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| ms[((ms.len() as f64 * p) as usize).min(ms.len() - 1)];
    Timing {
        p50: at(0.5),
        p99: at(0.99),
        max: *ms.last().unwrap(),
    }
}

async fn run(db: &str, db_url: &str, n: usize, requests: usize) -> Vec<String> {
    let mut config = TestApp::config();
    config.server = ServerConfig {
        database_url: db_url.into(),
        rate_limit_per_key: 0,
        rate_limit_per_ip: 0,
        ..ServerConfig::default()
    };
    let app = TestApp::spawn(config).await;
    let st = &app.state;
    let (_, now) = pixseal_store::meta::now();
    let mut rows = Vec::new();
    for (tenant, count) in [("empty", 0), ("full", n)] {
        let t = st.db.create_tenant(tenant, "us", 30).await.unwrap();
        seed(st, &t, count, now).await;
        let (_, key) = st
            .db
            .create_api_key(&t, &[Scope::ArtifactsRead])
            .await
            .unwrap();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let r = client
            .post(format!("{}/app/sign-in", app.url))
            .form(&[("key", key.as_str())])
            .send()
            .await
            .unwrap();
        let cookie = r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let page = time(
            &client,
            &format!("{}/app", app.url),
            &[("cookie", cookie)],
            requests,
        )
        .await;
        let api = time(
            &client,
            &format!("{}/v1/artifacts", app.url),
            &[("authorization", format!("Bearer {key}"))],
            requests,
        )
        .await;
        for (what, t) in [
            ("`GET /app` (24, HTML)", page),
            ("`GET /v1/artifacts` (50, JSON)", api),
        ] {
            rows.push(format!(
                "| {db} | {count} | {what} | {:.2} | {:.2} | {:.2} |",
                t.p50, t.p99, t.max
            ));
        }
    }
    rows
}

#[tokio::main]
async fn main() {
    let n = env_or("PIXSEAL_BENCH_DASHBOARD_N", 10_000);
    let requests = env_or("PIXSEAL_BENCH_DASHBOARD_REQUESTS", 200);
    let mut rows = run("SQLite", "", n, requests).await;
    let pg = pixseal_testkit::fresh_postgres_db("dashboard");
    rows.extend(run("PostgreSQL", &pg, n, requests).await);
    println!("First page of the gallery, {requests} requests each, in ms:\n");
    println!("| database | artifacts | request | p50 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
}
