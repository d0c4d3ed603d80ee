//! Proof-of-work challenge costs (`cargo bench -p pixseal-service --bench challenge`): what the
//! service pays to issue one and to check one (the two HMACs alone, and the whole redemption
//! with its spent-challenge insert, on SQLite), and what a client pays to solve one at the
//! default difficulty (`[stamp]` defaults) with ALTCHA's Rust solver, the one `pixseal` would
//! use. PIXSEAL_BENCH_SOLVES (default 30) challenges are solved. Prints a markdown table.

use std::time::Instant;

use base64::Engine;
use pixseal_service::challenge::ChallengeRoute;
use pixseal_service::{Config, Services};

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn row(what: &str, mut ms: Vec<f64>, unit: &str) {
    ms.sort_by(f64::total_cmp);
    let scale = if unit == "µs" { 1000.0 } else { 1.0 };
    println!(
        "| {what} | {} | {:.1} {unit} | {:.1} {unit} | {:.1} {unit} |",
        ms.len(),
        pct(&ms, 0.5) * scale,
        pct(&ms, 0.99) * scale,
        ms.last().unwrap() * scale,
    );
}

#[tokio::main]
async fn main() {
    let solves: usize = std::env::var("PIXSEAL_BENCH_SOLVES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let s = Services::open(&config).await.unwrap();
    println!(
        "Defaults: PBKDF2/SHA-256, cost {} iterations, counter between {} and {} at an idle service.\n",
        config.stamp.challenge_work_cost,
        config.stamp.challenge_work / 2,
        config.stamp.challenge_work
    );
    println!("| step | n | p50 | p99 | max |");
    println!("|---|---|---|---|---|");

    // The first call unwraps the secrets; time the steady state.
    s.issue_challenge(ChallengeRoute::Stamp).await.unwrap();
    let mut issue = Vec::new();
    for _ in 0..500 {
        let t = Instant::now();
        s.issue_challenge(ChallengeRoute::Stamp).await.unwrap();
        issue.push(t.elapsed().as_secs_f64() * 1e3);
    }
    row("issue (server)", issue, "µs");

    let mut solve = Vec::new();
    let mut solved = Vec::new();
    for _ in 0..solves {
        let c = s.issue_challenge(ChallengeRoute::Stamp).await.unwrap();
        let t = Instant::now();
        let solution = altcha::solve_challenge(altcha::SolveChallengeOptions::new(&c))
            .unwrap()
            .expect("solved");
        solve.push(t.elapsed().as_secs_f64() * 1e3);
        solved.push((c, solution));
    }
    row("solve, ALTCHA's Rust solver (client)", solve, "ms");

    let mut check = Vec::new();
    let mut redeem = Vec::new();
    for (c, solution) in &solved {
        let payload = serde_json::json!({ "challenge": c, "solution": solution });
        let header = base64::engine::general_purpose::STANDARD.encode(payload.to_string());
        // Checking is repeatable (nothing is spent): time it many times.
        for _ in 0..20 {
            let t = Instant::now();
            s.check_challenge(ChallengeRoute::Stamp, &header)
                .await
                .unwrap();
            check.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let t = Instant::now();
        s.redeem_challenge(ChallengeRoute::Stamp, &header)
            .await
            .unwrap();
        redeem.push(t.elapsed().as_secs_f64() * 1e3);
    }
    row("check: decode + 2 HMACs (server)", check, "µs");
    row(
        "redeem: 2 HMACs + spent insert, SQLite (server)",
        redeem,
        "µs",
    );
}
