//! Near-match lookup benchmark (`cargo bench -p pixseal-store --bench pdq_index`): the
//! multi-index lookup (`Db::pdq_near`) side by side with the full scan (`Db::pdq_scan`) at
//! 10 000, 100 000 and 1 000 000 kept proofs (PIXSEAL_BENCH_PDQ_SIZES, comma-separated), on
//! SQLite and on PostgreSQL (a fresh database), threshold 31.
//!
//! Kept proofs: the PDQ hashes of 500 synthetic photos (`pixseal_testkit::synthetic_photo`,
//! 480×360), the rest uniformly random hashes. Queries (1000): 250 JPEG q50 re-encodes and 250
//! half-size downscales of those 500 photos, and 500 unrelated synthetic photos. For every query
//! the index's answer is compared with an exact in-memory scan over every kept hash (recall =
//! queries where both give the same proofs at the same distances); the database scan is timed
//! on the first PIXSEAL_BENCH_PDQ_SCANS queries (default 20), it is slow by design. Prints a
//! markdown table.

use std::time::Instant;

use pixseal_provenance::pdq::hash_rgb;
use pixseal_store::pdq_index::{Hash, distance};
use pixseal_store::{Db, ProofRecord, ProofStatus};
use pixseal_testkit::synthetic_photo;

const THRESHOLD: u32 = 31;
const REAL: usize = 500;
const W: u32 = 480;
const H: u32 = 360;

fn pdq_of(rgb: &[u8], w: u32, h: u32) -> Hash {
    hash_rgb(rgb, w, h, 3).expect("large enough to hash").hash.0
}

fn jpeg_q50(rgb: &[u8], w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_raw(w, h, rgb.to_vec()).unwrap();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 50)
        .encode_image(&img)
        .unwrap();
    image::load_from_memory(&out).unwrap().to_rgb8().into_raw()
}

fn half(rgb: &[u8], w: u32, h: u32) -> (Vec<u8>, u32, u32) {
    let img = image::RgbImage::from_raw(w, h, rgb.to_vec()).unwrap();
    let small = image::imageops::resize(&img, w / 2, h / 2, image::imageops::FilterType::Triangle);
    (small.into_raw(), w / 2, h / 2)
}

struct Rng(u64);

impl Rng {
    fn hash(&mut self) -> Hash {
        std::array::from_fn(|_| {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 as u8
        })
    }
}

fn record(i: usize, h: &Hash) -> ProofRecord {
    ProofRecord {
        proof_id: format!("px_{i:013}"),
        sha256: "0".repeat(64),
        original_sha256: "1".repeat(64),
        pdq: Some(hex::encode(h)),
        issued_at: "2026-12-05T00:00:00Z".into(),
        status: ProofStatus::Active,
        purged_at: None,
        receipt_id: None,
    }
}

fn exact(kept: &[(String, Hash)], q: &Hash) -> Vec<(String, u32)> {
    let mut out: Vec<(String, u32)> = kept
        .iter()
        .filter_map(|(id, h)| {
            let d = distance(q, h);
            (d <= THRESHOLD).then(|| (id.clone(), d))
        })
        .collect();
    out.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    out
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::var("PIXSEAL_BENCH_PDQ_SIZES")
        .unwrap_or_else(|_| "10000,100000,1000000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("sizes are numbers"))
        .collect();
    let scans: usize = std::env::var("PIXSEAL_BENCH_PDQ_SCANS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);

    let t = Instant::now();
    let photos: Vec<Vec<u8>> = (0..REAL as u64).map(|s| synthetic_photo(W, H, s)).collect();
    let real: Vec<Hash> = photos.iter().map(|p| pdq_of(p, W, H)).collect();
    let mut queries: Vec<(&str, Hash)> = Vec::new();
    for (i, p) in photos.iter().enumerate() {
        if i % 2 == 0 {
            queries.push(("re-encoded", pdq_of(&jpeg_q50(p, W, H), W, H)));
        } else {
            let (s, w, h) = half(p, W, H);
            queries.push(("downscaled", pdq_of(&s, w, h)));
        }
    }
    for s in 0..500u64 {
        queries.push((
            "unrelated",
            pdq_of(&synthetic_photo(W, H, 100_000 + s), W, H),
        ));
    }
    eprintln!(
        "hashed {} photos and {} queries in {:.1} s",
        REAL,
        queries.len(),
        t.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().unwrap();
    let dbs = [
        (
            "SQLite",
            format!("sqlite://{}", dir.path().join("pdq.db").display()),
        ),
        ("PostgreSQL", pixseal_testkit::fresh_postgres_db("pdqbench")),
    ];
    println!(
        "| database | kept proofs | import s | index p50 ms | index p99 ms | index max ms | scan p50 ms ({scans} q) | same answer as the scan (1000 q) | queries with a match |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, url) in &dbs {
        let db = Db::connect(url).await.unwrap();
        let mut kept: Vec<(String, Hash)> = Vec::new();
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        for &n in &sizes {
            // Grow the same database to the next size.
            let t = Instant::now();
            let mut batch = Vec::new();
            while kept.len() < n {
                let i = kept.len();
                let h = if i < REAL { real[i] } else { rng.hash() };
                batch.push(record(i, &h));
                kept.push((format!("px_{i:013}"), h));
                if batch.len() == 20_000 {
                    db.import_proofs(&batch).await.unwrap();
                    batch.clear();
                }
            }
            db.import_proofs(&batch).await.unwrap();
            let import_s = t.elapsed().as_secs_f64();

            let mut lat = Vec::new();
            let (mut same, mut matched) = (0, 0);
            for (_, q) in &queries {
                let t = Instant::now();
                let got = db.pdq_near(q, THRESHOLD).await.unwrap();
                lat.push(t.elapsed().as_secs_f64() * 1e3);
                let want = exact(&kept, q);
                same += usize::from(got == want);
                matched += usize::from(!want.is_empty());
            }
            let mut scan = Vec::new();
            for (_, q) in queries.iter().take(scans) {
                let t = Instant::now();
                let got = db.pdq_scan(q, THRESHOLD).await.unwrap();
                scan.push(t.elapsed().as_secs_f64() * 1e3);
                assert_eq!(got, exact(&kept, q));
            }
            lat.sort_by(f64::total_cmp);
            scan.sort_by(f64::total_cmp);
            println!(
                "| {name} | {n} | {import_s:.1} | {:.2} | {:.2} | {:.2} | {:.1} | {same}/{} | {matched} |",
                pct(&lat, 0.5),
                pct(&lat, 0.99),
                lat.last().unwrap(),
                pct(&scan, 0.5),
                queries.len(),
            );
        }
    }
    let by_kind = |kind: &str| {
        queries
            .iter()
            .filter(|(k, _)| *k == kind)
            .filter(|(_, q)| real.iter().any(|r| distance(q, r) <= THRESHOLD))
            .count()
    };
    println!(
        "\nQueries within {THRESHOLD} of one of the 500 photos' hashes: re-encoded {}/250, downscaled {}/250, unrelated {}/500.",
        by_kind("re-encoded"),
        by_kind("downscaled"),
        by_kind("unrelated")
    );
}
