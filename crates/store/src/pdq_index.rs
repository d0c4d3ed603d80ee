//! The near-match index: multi-index hashing over eleven slices (23 or 24 bits) of each kept PDQ
//! hash, in SQL on both databases, so a lookup within a Hamming threshold reads a few hundred
//! candidates instead of every proof, and returns exactly what a full scan returns.
//!
//! Why it is exact: if two 256-bit hashes differ in at most `t` bits, the differences spread over
//! 11 slices, so at least one slice differs in at most `⌊t/11⌋` bits (else the total would exceed
//! `t`). Probing every slice with every value within that radius therefore finds every hash
//! within `t`; each candidate is then measured exactly. At the default threshold 31 the radius
//! is 2: 3 × 301 + 8 × 277 = 3119 probed keys, and among a million uniformly spread hashes about
//! 320 candidates (16-bit slices would probe 272 keys but read about 4 150; docs/provenance.md).

use sqlx::Row;

use crate::meta::{Db, DbError, DbKind, ProofRecord};

/// Slices of a 256-bit hash, and their widths in bits (most significant first).
pub const SLICES: usize = 11;
const WIDTHS: [u32; SLICES] = [24, 24, 24, 23, 23, 23, 23, 23, 23, 23, 23];

/// Past this radius a lookup would probe too many keys (radius 3: about 25 000); it scans
/// instead. Radius 2 serves thresholds up to 32.
const MAX_RADIUS: u32 = 2;

/// Proof rows per page when scanning or backfilling.
const PAGE: i64 = 5000;

/// A PDQ hash as its 64 hex digits decode, 32 bytes.
pub type Hash = [u8; 32];

/// The hash of a stored 64-hex-digit PDQ, if it is one.
pub fn parse(hex_digits: &str) -> Option<Hash> {
    hex::decode(hex_digits).ok()?.try_into().ok()
}

/// Hamming distance between two hashes.
pub fn distance(a: &Hash, b: &Hash) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

/// The index key of slice `i` holding `value`: one integer column serves every slice.
fn key(i: usize, value: u32) -> i64 {
    ((i as i64) << 24) | i64::from(value)
}

/// Bits `[start, start + width)` of the hash, read most significant first.
fn slice(h: &Hash, i: usize) -> u32 {
    let start: u32 = WIDTHS[..i].iter().sum();
    (start..start + WIDTHS[i]).fold(0, |v, bit| {
        let b = (h[(bit / 8) as usize] >> (7 - bit % 8)) & 1;
        (v << 1) | u32::from(b)
    })
}

/// The keys a hash is stored under, one per slice.
pub fn keys(h: &Hash) -> [i64; SLICES] {
    std::array::from_fn(|i| key(i, slice(h, i)))
}

/// Every `width`-bit value within Hamming distance `radius` of `v`.
fn ball(v: u32, width: u32, radius: u32) -> Vec<u32> {
    let mut out = vec![v];
    let mut frontier = vec![(v, 0u32)];
    // Flip bits in increasing position order so each value is produced once.
    for _ in 0..radius {
        let mut next = Vec::new();
        for &(x, lowest) in &frontier {
            for bit in lowest..width {
                let y = x ^ (1 << bit);
                out.push(y);
                next.push((y, bit + 1));
            }
        }
        frontier = next;
    }
    out
}

/// The keys to probe for every hash within `threshold` of `h`, or `None` when the threshold is
/// too wide for the index to help.
pub fn probes(h: &Hash, threshold: u32) -> Option<Vec<i64>> {
    let radius = threshold / SLICES as u32;
    if radius > MAX_RADIUS {
        return None;
    }
    Some(
        (0..SLICES)
            .flat_map(|i| {
                ball(slice(h, i), WIDTHS[i], radius)
                    .into_iter()
                    .map(move |v| key(i, v))
            })
            .collect(),
    )
}

impl Db {
    /// Every kept proof whose PDQ is within `threshold` of `h`: (proof id, distance), closest
    /// first (ties by proof id). Through the index; a scan when the threshold is too wide.
    pub async fn pdq_near(&self, h: &Hash, threshold: u32) -> Result<Vec<(String, u32)>, DbError> {
        let Some(probes) = probes(h, threshold) else {
            return self.pdq_scan(h, threshold).await;
        };
        let ids: Vec<String> = match self.kind() {
            // One prepared statement whatever the probes (one array parameter): a single index
            // scan over the sorted keys. Measured at 1 000 000 proofs it takes about half the
            // time of one lateral subquery per key (docs/benchmarks.md).
            DbKind::Postgres => {
                let array = format!(
                    "{{{}}}",
                    probes
                        .iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                );
                sqlx::query(
                    "SELECT DISTINCT proof_id FROM pdq_keys WHERE k = ANY(CAST(CAST($1 AS TEXT) AS BIGINT[]))",
                )
                .bind(array)
                .fetch_all(self.pool())
                .await?
            }
            // SQLite probes the key index once per value of the IN list (it sorts the list
            // first). The keys are integers computed here, never text from a request, so they
            // are written into the statement.
            DbKind::Sqlite => {
                let list = probes
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(",");
                let sql = format!("SELECT DISTINCT proof_id FROM pdq_keys WHERE k IN ({list})");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_all(self.pool())
                    .await?
            }
        }
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
        // Then the candidates' hashes by primary key: two index lookups whatever the planner
        // thinks of joining a few hundred keys to every proof.
        let mut found = Vec::new();
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT proof_id, pdq FROM proofs WHERE proof_id IN {}",
                placeholders(self.kind(), 1, chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(id);
            }
            for r in q.fetch_all(self.pool()).await? {
                let (id, hex_digits): (String, Option<String>) = (r.try_get(0)?, r.try_get(1)?);
                if let Some(other) = hex_digits.as_deref().and_then(parse) {
                    let d = distance(h, &other);
                    if d <= threshold {
                        found.push((id, d));
                    }
                }
            }
        }
        found.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        Ok(found)
    }

    /// The same answer as [`Db::pdq_near`] by reading every kept PDQ: the reference the index
    /// is measured against, and the fallback for wide thresholds.
    pub async fn pdq_scan(&self, h: &Hash, threshold: u32) -> Result<Vec<(String, u32)>, DbError> {
        let mut found = Vec::new();
        let mut after = String::new();
        loop {
            let page = self.pdq_page(&after, PAGE).await?;
            let Some((last, _)) = page.last() else { break };
            after = last.clone();
            for (id, hex_digits) in &page {
                if let Some(other) = parse(hex_digits) {
                    let d = distance(h, &other);
                    if d <= threshold {
                        found.push((id.clone(), d));
                    }
                }
            }
            if (page.len() as i64) < PAGE {
                break;
            }
        }
        found.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        Ok(found)
    }

    /// Proof records published in bulk, without artifacts, indexed as uploads index theirs:
    /// for benchmarks and tests of the near-match lookup at sizes uploads would take hours to
    /// reach. Each call is one transaction.
    pub async fn import_proofs(&self, proofs: &[ProofRecord]) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        for chunk in proofs.chunks(1000) {
            let sql = format!(
                "INSERT INTO proofs (proof_id, sha256, original_sha256, pdq, issued_at, status) VALUES {}",
                placeholders(self.kind(), chunk.len(), 6)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for p in chunk {
                q = q
                    .bind(&p.proof_id)
                    .bind(&p.sha256)
                    .bind(&p.original_sha256)
                    .bind(&p.pdq)
                    .bind(&p.issued_at)
                    .bind(p.status.as_str());
            }
            q.execute(&mut *tx).await?;
            let keyed: Vec<(i64, &str)> = chunk
                .iter()
                .filter_map(|p| Some((parse(p.pdq.as_deref()?)?, p.proof_id.as_str())))
                .flat_map(|(h, id)| keys(&h).map(|k| (k, id)))
                .collect();
            if keyed.is_empty() {
                continue;
            }
            let sql = format!(
                "INSERT INTO pdq_keys (k, proof_id) VALUES {}",
                placeholders(self.kind(), keyed.len(), 2)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (k, id) in keyed {
                q = q.bind(k).bind(id);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        // A bulk load changes the tables' shape at once; fresh statistics keep the planner on
        // the index (PostgreSQL otherwise scans until autovacuum analyzes).
        for table in ["ANALYZE proofs", "ANALYZE pdq_keys"] {
            sqlx::query(table).execute(self.pool()).await?;
        }
        Ok(())
    }

    /// Index the proofs kept before the index existed (run at open; one row read once done).
    pub(crate) async fn backfill_pdq_keys(&self) -> Result<u64, DbError> {
        let complete: i64 = sqlx::query("SELECT complete FROM pdq_index_state WHERE id = 1")
            .fetch_one(self.pool())
            .await?
            .try_get(0)?;
        if complete == 1 {
            return Ok(0);
        }
        let mut done = 0;
        loop {
            let rows = sqlx::query(
                "SELECT p.proof_id, p.pdq FROM proofs p WHERE p.pdq IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pdq_keys k WHERE k.proof_id = p.proof_id) ORDER BY p.proof_id LIMIT $1",
            )
            .bind(PAGE)
            .fetch_all(self.pool())
            .await?;
            if rows.is_empty() {
                sqlx::query("UPDATE pdq_index_state SET complete = 1 WHERE id = 1")
                    .execute(self.pool())
                    .await?;
                return Ok(done);
            }
            let mut tx = self.pool().begin().await?;
            for r in &rows {
                let (id, hex_digits): (String, String) = (r.try_get(0)?, r.try_get(1)?);
                match parse(&hex_digits) {
                    Some(h) => insert_keys(&mut tx, &id, &h).await?,
                    // Not a hash: never indexable, and never matched by the scan either; a
                    // marker key outside every slice's range keeps it from being picked again.
                    None => insert_key(&mut tx, &id, -1).await?,
                }
                done += 1;
            }
            tx.commit().await?;
        }
    }
}

/// `rows` tuples of `n` placeholders: numbered (`$1, …`) for PostgreSQL; plain `?` for SQLite,
/// where binding thousands of numbered parameters costs time quadratic in their count.
fn placeholders(kind: DbKind, rows: usize, n: usize) -> String {
    (0..rows)
        .map(|r| {
            let cols: Vec<String> = (1..=n)
                .map(|c| match kind {
                    DbKind::Postgres => format!("${}", r * n + c),
                    DbKind::Sqlite => "?".to_string(),
                })
                .collect();
            format!("({})", cols.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn insert_key(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    proof_id: &str,
    k: i64,
) -> Result<(), DbError> {
    sqlx::query("INSERT INTO pdq_keys (k, proof_id) VALUES ($1, $2)")
        .bind(k)
        .bind(proof_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Index one proof's hash, inside the transaction that publishes the proof.
pub(crate) async fn insert_keys(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    proof_id: &str,
    h: &Hash,
) -> Result<(), DbError> {
    for k in keys(h) {
        insert_key(tx, proof_id, k).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balls_have_the_binomial_sizes_and_no_repeats() {
        for (width, r, n) in [(24, 0, 1), (24, 1, 25), (24, 2, 301), (23, 2, 277)] {
            let v = 0x5A_C3A5 & ((1 << width) - 1);
            let mut b = ball(v, width, r);
            assert_eq!(b.len(), n, "width {width} radius {r}");
            b.sort_unstable();
            b.dedup();
            assert_eq!(b.len(), n, "width {width} radius {r}: repeats");
            assert!(
                b.iter()
                    .all(|x| (x ^ v).count_ones() <= r && *x < 1 << width)
            );
        }
    }

    #[test]
    fn slices_cover_every_bit_once() {
        assert_eq!(WIDTHS.iter().sum::<u32>(), 256);
        for bit in 0..256 {
            let mut h = [0u8; 32];
            h[bit / 8] = 0x80 >> (bit % 8);
            let set: Vec<u32> = (0..SLICES).map(|i| slice(&h, i).count_ones()).collect();
            assert_eq!(set.iter().sum::<u32>(), 1, "bit {bit}");
        }
    }

    #[test]
    fn probes_cover_every_hash_within_the_threshold() {
        // Random pairs at every distance up to 32 (radius 2): whenever d <= t, one of b's keys
        // is among a's probes.
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for _ in 0..2000 {
            let mut a = [0u8; 32];
            a.iter_mut().for_each(|x| *x = rnd() as u8);
            let d = (rnd() % 33) as u32;
            let mut b = a;
            let mut flipped = std::collections::BTreeSet::new();
            while flipped.len() < d as usize {
                flipped.insert((rnd() % 256) as usize);
            }
            for bit in &flipped {
                b[bit / 8] ^= 1 << (bit % 8);
            }
            assert_eq!(distance(&a, &b), d);
            for t in [d, 31, 32] {
                if d <= t {
                    let p = probes(&a, t).unwrap();
                    assert!(keys(&b).iter().any(|k| p.contains(k)), "d {d} t {t}");
                }
            }
        }
        assert_eq!(probes(&[0; 32], 31).unwrap().len(), 3119);
        assert!(probes(&[0; 32], 33).is_none());
    }
}
