//! The near-match index: multi-index hashing over the sixteen 16-bit slices of each kept PDQ
//! hash, in SQL on both databases, so a lookup within a Hamming threshold reads a few thousand
//! index entries instead of every proof, and returns exactly what a full scan returns.
//!
//! Why it is exact: if two 256-bit hashes differ in at most `t` bits, the differences spread over
//! 16 slices, so at least one slice differs in at most `⌊t/16⌋` bits (else the total would exceed
//! `t`). Probing every slice with every value within that radius therefore finds every hash
//! within `t`; each candidate is then measured exactly. At the default threshold 31 the radius is
//! 1: 16 × 17 = 272 probed keys, about 4 150 candidates among a million uniformly spread hashes,
//! each read from the index entry itself, which carries the whole hash (docs/provenance.md).

use sqlx::Row;

use crate::meta::{Db, DbError, DbKind, ProofRecord};

/// Slices of a 256-bit hash, 16 bits each (most significant first).
pub const SLICES: usize = 16;
const WIDTH: u32 = 16;

/// Past this radius a lookup would read too much of the index (radius 2 at a million proofs:
/// 2 192 probes, about 33 000 candidates; radius 3: 11 000 probes); it scans instead. Radius 2
/// serves thresholds up to 47.
const MAX_RADIUS: u32 = 2;

/// Proof rows per page when scanning or backfilling.
const PAGE: i64 = 5000;

/// Proofs per insert statement when importing: 16 key rows × 6 values each stays under both
/// databases' limits on bound parameters (SQLite 32 766, PostgreSQL 65 535).
const IMPORT_CHUNK: usize = 300;

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

/// The hash as the four signed 64-bit words the key rows store (big-endian, `h0` first).
fn words(h: &Hash) -> [i64; 4] {
    std::array::from_fn(|i| i64::from_be_bytes(h[i * 8..i * 8 + 8].try_into().expect("8 bytes")))
}

/// The hash back from its four words.
fn from_words(w: [i64; 4]) -> Hash {
    let mut h = [0u8; 32];
    for (i, x) in w.iter().enumerate() {
        h[i * 8..i * 8 + 8].copy_from_slice(&x.to_be_bytes());
    }
    h
}

/// The index key of slice `i` holding `value`: one integer column serves every slice.
fn key(i: usize, value: u32) -> i64 {
    ((i as i64) << WIDTH) | i64::from(value)
}

/// Slice `i` of the hash: bytes `2i` and `2i + 1`, big-endian.
fn slice(h: &Hash, i: usize) -> u32 {
    u32::from(u16::from_be_bytes([h[2 * i], h[2 * i + 1]]))
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
                ball(slice(h, i), WIDTH, radius)
                    .into_iter()
                    .map(move |v| key(i, v))
            })
            .collect(),
    )
}

impl Db {
    /// Every kept proof whose PDQ is within `threshold` of `h`: (proof id, distance), closest
    /// first (ties by proof id). Through the index; a scan when the threshold is too wide
    /// (the scan reads each proof's own hash: a video's keyframe hashes are found through the
    /// index only, at thresholds up to 47).
    pub async fn pdq_near(&self, h: &Hash, threshold: u32) -> Result<Vec<(String, u32)>, DbError> {
        let Some(probes) = probes(h, threshold) else {
            return self.pdq_scan(h, threshold).await;
        };
        let list = probes
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        // The candidates come back as one JSON array: both drivers hand rows over one at a
        // time, which cost more than the probes themselves at a million proofs
        // (docs/benchmarks.md).
        let json: Option<String> = match self.kind() {
            // One prepared statement whatever the probes (one array parameter): a single
            // index-only scan over the sorted keys.
            DbKind::Postgres => sqlx::query(
                "SELECT CAST(json_agg(json_build_array(proof_id, h0, h1, h2, h3)) AS TEXT) FROM pdq_slices WHERE k = ANY(CAST(CAST($1 AS TEXT) AS BIGINT[]))",
            )
            .bind(format!("{{{list}}}"))
            .fetch_one(self.pool())
            .await?
            .try_get(0)?,
            // SQLite probes the covering key index once per value of the IN list (it sorts the
            // list first). The keys are integers computed here, never text from a request, so
            // they are written into the statement.
            DbKind::Sqlite => {
                let sql = format!(
                    "SELECT json_group_array(json_array(proof_id, h0, h1, h2, h3)) FROM pdq_slices WHERE k IN ({list})"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_one(self.pool())
                    .await?
                    .try_get(0)?
            }
        };
        // PostgreSQL aggregates no rows to NULL.
        let candidates: Vec<(String, i64, i64, i64, i64)> = match json {
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| DbError::Invalid(format!("near-match candidates: {e}")))?,
            None => Vec::new(),
        };
        let mut found = Vec::new();
        for (id, a, b, c, d) in candidates {
            let d = distance(h, &from_words([a, b, c, d]));
            if d <= threshold {
                found.push((id, d));
            }
        }
        // A hash near on several slices was read once per slice, and a proof with several
        // hashes (a video's keyframes) may be near by more than one: each proof once, at its
        // closest.
        found.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        let mut seen = std::collections::HashSet::new();
        found.retain(|(id, _)| seen.insert(id.clone()));
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
        for chunk in proofs.chunks(IMPORT_CHUNK) {
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
            let hashed: Vec<(&str, Hash)> = chunk
                .iter()
                .filter_map(|p| Some((p.proof_id.as_str(), parse(p.pdq.as_deref()?)?)))
                .collect();
            insert_slices(&mut tx, self.kind(), &hashed).await?;
        }
        tx.commit().await?;
        // A bulk load changes the tables' shape at once: fresh statistics keep the planner on
        // the index, and on PostgreSQL a vacuum marks the new pages all-visible so the lookup
        // stays index-only (autovacuum does both, later).
        let refresh: &[&str] = match self.kind() {
            DbKind::Postgres => &["VACUUM ANALYZE proofs", "VACUUM ANALYZE pdq_slices"],
            DbKind::Sqlite => &["ANALYZE proofs", "ANALYZE pdq_slices"],
        };
        for statement in refresh {
            sqlx::query(*statement).execute(self.pool()).await?;
        }
        Ok(())
    }

    /// Index the proofs kept before the index existed (run at open; one row read once done).
    /// Resumable: it walks the proofs in id order and records how far it got in the same
    /// transaction as the keys; a proof published meanwhile indexes itself, and its keys are
    /// not written twice.
    pub(crate) async fn backfill_pdq_keys(&self) -> Result<u64, DbError> {
        let r = sqlx::query("SELECT complete, indexed_to FROM pdq_index_state WHERE id = 1")
            .fetch_one(self.pool())
            .await?;
        let (complete, mut after): (i64, String) = (r.try_get(0)?, r.try_get(1)?);
        if complete == 1 {
            return Ok(0);
        }
        let mut done = 0;
        loop {
            let page = self.pdq_page(&after, PAGE).await?;
            let mut tx = self.pool().begin().await?;
            let Some((last, _)) = page.last() else {
                sqlx::query("UPDATE pdq_index_state SET complete = 1 WHERE id = 1")
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok(done);
            };
            after = last.clone();
            // Not a hash: never indexable, and never matched by the scan either.
            let hashed: Vec<(&str, Hash)> = page
                .iter()
                .filter_map(|(id, hex_digits)| Some((id.as_str(), parse(hex_digits)?)))
                .collect();
            for chunk in hashed.chunks(IMPORT_CHUNK) {
                insert_slices(&mut tx, self.kind(), chunk).await?;
            }
            sqlx::query("UPDATE pdq_index_state SET indexed_to = $1 WHERE id = 1")
                .bind(&after)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            done += page.len() as u64;
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

/// The sixteen key rows of each hash, in one statement; rows already there are left alone.
async fn insert_slices(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    kind: DbKind,
    hashed: &[(&str, Hash)],
) -> Result<(), DbError> {
    if hashed.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO pdq_slices (k, proof_id, h0, h1, h2, h3) VALUES {} ON CONFLICT DO NOTHING",
        placeholders(kind, hashed.len() * SLICES, 6)
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (id, h) in hashed {
        let [h0, h1, h2, h3] = words(h);
        for k in keys(h) {
            q = q.bind(k).bind(*id).bind(h0).bind(h1).bind(h2).bind(h3);
        }
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

/// Index one proof's hash, inside the transaction that publishes the proof.
pub(crate) async fn insert_keys(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    kind: DbKind,
    proof_id: &str,
    h: &Hash,
) -> Result<(), DbError> {
    insert_slices(tx, kind, &[(proof_id, *h)]).await
}

/// Index more hashes under one proof (a video's keyframes), inside the transaction that
/// publishes it: a lookup near any of them finds the proof.
pub(crate) async fn insert_more_keys(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    kind: DbKind,
    proof_id: &str,
    hashes: &[Hash],
) -> Result<(), DbError> {
    // 16 key rows × 6 values per hash: 300 hashes per statement stay under both databases'
    // limits on bound parameters.
    for chunk in hashes.chunks(IMPORT_CHUNK) {
        let hashed: Vec<(&str, Hash)> = chunk.iter().map(|h| (proof_id, *h)).collect();
        insert_slices(tx, kind, &hashed).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balls_have_the_binomial_sizes_and_no_repeats() {
        for (r, n) in [(0, 1), (1, 17), (2, 137)] {
            let v = 0xA5C3;
            let mut b = ball(v, WIDTH, r);
            assert_eq!(b.len(), n, "radius {r}");
            b.sort_unstable();
            b.dedup();
            assert_eq!(b.len(), n, "radius {r}: repeats");
            assert!(
                b.iter()
                    .all(|x| (x ^ v).count_ones() <= r && *x < 1 << WIDTH)
            );
        }
    }

    #[test]
    fn slices_cover_every_bit_once_and_words_round_trip() {
        for bit in 0..256 {
            let mut h = [0u8; 32];
            h[bit / 8] = 0x80 >> (bit % 8);
            let set: Vec<u32> = (0..SLICES).map(|i| slice(&h, i).count_ones()).collect();
            assert_eq!(set.iter().sum::<u32>(), 1, "bit {bit}");
            assert_eq!(from_words(words(&h)), h, "bit {bit}");
        }
        let h: Hash = std::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0xF0);
        assert_eq!(from_words(words(&h)), h);
    }

    #[test]
    fn probes_cover_every_hash_within_the_threshold() {
        // Random pairs at every distance up to 47 (radius 2): whenever d <= t, one of b's keys
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
            let d = (rnd() % 48) as u32;
            let mut b = a;
            let mut flipped = std::collections::BTreeSet::new();
            while flipped.len() < d as usize {
                flipped.insert((rnd() % 256) as usize);
            }
            for bit in &flipped {
                b[bit / 8] ^= 1 << (bit % 8);
            }
            assert_eq!(distance(&a, &b), d);
            for t in [d, 31, 47] {
                if d <= t {
                    let p = probes(&a, t).unwrap();
                    assert!(keys(&b).iter().any(|k| p.contains(k)), "d {d} t {t}");
                }
            }
        }
        assert_eq!(probes(&[0; 32], 31).unwrap().len(), 272);
        assert_eq!(probes(&[0; 32], 47).unwrap().len(), 16 * 137);
        assert!(probes(&[0; 32], 48).is_none());
    }
}
