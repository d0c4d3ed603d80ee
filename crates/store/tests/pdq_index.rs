//! The near-match index answers exactly what the full scan answers, on SQLite and PostgreSQL,
//! at the default threshold and at the widest one it serves, and after a backfill of proofs
//! kept before it existed.

use pixseal_store::pdq_index::{Hash, distance};
use pixseal_store::{Db, ProofRecord, ProofStatus};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn hash(&mut self) -> Hash {
        std::array::from_fn(|_| self.next() as u8)
    }

    /// `h` with `d` distinct bits flipped.
    fn near(&mut self, h: &Hash, d: u32) -> Hash {
        let mut out = *h;
        while distance(h, &out) < d {
            let bit = (self.next() % 256) as usize;
            out[bit / 8] ^= 1 << (bit % 8);
            if distance(h, &out) > d {
                out[bit / 8] ^= 1 << (bit % 8);
            }
        }
        out
    }
}

fn record(i: usize, h: Option<&Hash>) -> ProofRecord {
    ProofRecord {
        proof_id: format!("px_{i:013}"),
        sha256: "0".repeat(64),
        original_sha256: "1".repeat(64),
        pdq: h.map(hex::encode),
        issued_at: "2026-12-05T00:00:00Z".into(),
        status: ProofStatus::Active,
        purged_at: None,
        receipt_id: None,
    }
}

/// 3000 unrelated hashes, 40 families of 10 near copies (1 to 55 bits away from their base),
/// a few proofs without a hash; then 300 queries: bases, near copies, unrelated.
async fn index_equals_scan(db: &Db) {
    let mut rng = Rng(0x5eed_0123_4567_89ab);
    let mut records = Vec::new();
    let mut bases = Vec::new();
    for i in 0..3000 {
        records.push(record(i, Some(&rng.hash())));
    }
    for f in 0..40 {
        let base = rng.hash();
        for c in 0..10 {
            let d = (c * 6) as u32 + 1;
            let h = rng.near(&base, d);
            records.push(record(10_000 + f * 10 + c, Some(&h)));
        }
        bases.push(base);
    }
    for i in 0..5 {
        records.push(record(20_000 + i, None));
    }
    db.import_proofs(&records).await.unwrap();

    let mut queries: Vec<Hash> = bases.clone();
    for b in &bases {
        for d in [3, 20, 31, 40, 47] {
            queries.push(rng.near(b, d));
        }
    }
    while queries.len() < 300 {
        queries.push(rng.hash());
    }
    let mut nonempty = 0;
    for t in [31, 32, 47] {
        for q in &queries {
            let index = db.pdq_near(q, t).await.unwrap();
            let scan = db.pdq_scan(q, t).await.unwrap();
            assert_eq!(index, scan, "threshold {t}");
            nonempty += usize::from(!index.is_empty());
        }
    }
    // The families are found (the test is not comparing empty answers).
    assert!(nonempty > 200, "{nonempty}");
    // Past radius 2 (threshold 48 and up) the lookup is the scan itself.
    let wide = db.pdq_near(&bases[0], 64).await.unwrap();
    assert_eq!(wide, db.pdq_scan(&bases[0], 64).await.unwrap());
}

async fn backfill(db: &Db, reopen: impl std::future::Future<Output = Db>) {
    let mut rng = Rng(0x0bad_f00d_1234_5678);
    let base = rng.hash();
    let records: Vec<ProofRecord> = (0..50)
        .map(|i| record(30_000 + i, Some(&rng.near(&base, i as u32 % 30))))
        .collect();
    db.import_proofs(&records).await.unwrap();
    // As a database from before the index: no keys, and the index marked incomplete.
    sqlx::query("DELETE FROM pdq_slices")
        .execute(db.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE pdq_index_state SET complete = 0, indexed_to = ''")
        .execute(db.pool())
        .await
        .unwrap();
    assert!(db.pdq_near(&base, 31).await.unwrap().is_empty());
    let db = reopen.await;
    let found = db.pdq_near(&base, 31).await.unwrap();
    assert_eq!(found, db.pdq_scan(&base, 31).await.unwrap());
    assert!(found.len() >= 50, "{}", found.len());
}

#[tokio::test]
async fn sqlite_index_equals_scan() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("i.db").display());
    let db = Db::connect(&url).await.unwrap();
    index_equals_scan(&db).await;
    backfill(&db, async { Db::connect(&url).await.unwrap() }).await;
}

#[tokio::test]
async fn postgres_index_equals_scan() {
    let url = pixseal_testkit::fresh_postgres_db("pdqindex");
    let db = Db::connect(&url).await.unwrap();
    index_equals_scan(&db).await;
    backfill(&db, async { Db::connect(&url).await.unwrap() }).await;
}
