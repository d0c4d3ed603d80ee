//! Seal/open throughput of a 50 MiB object on one core (local provider), and optionally the
//! latency of transit datakey calls (when BAO_ADDR and BAO_TOKEN are set).
//!
//! `cargo bench -p pixseal-seal --bench seal` prints `key=value` lines that
//! scripts/bench-seal.sh turns into a table.

use std::time::{Duration, Instant};

use pixseal_seal::{
    KeyPlacement, KeyProvider, LocalKeyProvider, ObjectRef, Sealer, TransitConfig,
    TransitKeyProvider,
};

const SIZE: usize = 50 * 1024 * 1024;
const RUNS: usize = 5;

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing useful: keep quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let size = if quick { 1024 * 1024 } else { SIZE };
    let dir = tempfile::tempdir().expect("tempdir");
    let p = LocalKeyProvider::open(dir.path().join("keys.json"), &["us"]).expect("key file");
    let obj = ObjectRef {
        object_id: "bench-object",
        tenant: "bench",
        region: "us",
    };
    let s = Sealer::new(&p, KeyPlacement::Embedded);
    let mut x = 0x1234_5678_9abc_def1u64;
    let pt: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut blob = Vec::with_capacity(size + size / 1000 + 4096);
    let mut out = Vec::with_capacity(size);
    let (mut best_seal, mut best_open) = (Duration::MAX, Duration::MAX);
    for _ in 0..if quick { 1 } else { RUNS } {
        blob.clear();
        let t = Instant::now();
        let _r = s.seal(&pt[..], &mut blob, &obj).expect("seal");
        best_seal = best_seal.min(t.elapsed());
        out.clear();
        let t = Instant::now();
        s.open(&blob[..], &mut out, &obj, None).expect("open");
        best_open = best_open.min(t.elapsed());
        assert!(out == pt);
    }
    println!("object_bytes={size}");
    println!("seal_mbps={:.0}", mbps(size, best_seal));
    println!("open_mbps={:.0}", mbps(size, best_open));
    println!("overhead_bytes={}", blob.len() - size);

    if let (Ok(addr), Ok(token)) = (std::env::var("BAO_ADDR"), std::env::var("BAO_TOKEN")) {
        let n = if quick { 10 } else { 1000 };
        let t =
            TransitKeyProvider::new(TransitConfig::new(&addr, &token, &["us"])).expect("transit");
        let _warm = t.generate_data_key("us").expect("transit datakey");
        let mut lat: Vec<Duration> = (0..n)
            .map(|_| {
                let t0 = Instant::now();
                let _k = t.generate_data_key("us").expect("transit datakey");
                t0.elapsed()
            })
            .collect();
        lat.sort();
        let q = |f: f64| lat[((n as f64 * f) as usize).min(n - 1)].as_secs_f64() * 1e3;
        println!("transit_calls={n}");
        println!("transit_datakey_p50_ms={:.2}", q(0.50));
        println!("transit_datakey_p99_ms={:.2}", q(0.99));
        let (_, w) = t.generate_data_key("us").expect("transit datakey");
        let mut lat: Vec<Duration> = (0..n)
            .map(|_| {
                let t0 = Instant::now();
                let _k = t.unwrap_data_key(&w, "us").expect("transit decrypt");
                t0.elapsed()
            })
            .collect();
        lat.sort();
        let q = |f: f64| lat[((n as f64 * f) as usize).min(n - 1)].as_secs_f64() * 1e3;
        println!("transit_decrypt_p50_ms={:.2}", q(0.50));
        println!("transit_decrypt_p99_ms={:.2}", q(0.99));
    }
}
