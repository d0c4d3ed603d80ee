//! A structural check of a manifest store before the C2PA reader parses it: every JUMBF box
//! fits inside its parent, and every CBOR content box decodes within its own bytes.
//!
//! The reader allocates what a CBOR header declares before reading it: a 10 KB JPEG whose
//! assertion declared a 2.5 GB byte string made `pixseal verify` (and the public
//! `POST /v1/verify`) take 2.5 GB for 6 s (found by the `verify` fuzz target, docs/fuzzing.md).
//! Here the lengths are read against the bytes really present (ciborium reads long strings in
//! fixed-size segments), so no declared length reaches the reader unchecked.

/// JUMBF superboxes nest a few levels deep in a manifest store; far more is not one.
const MAX_DEPTH: usize = 16;

/// `Err(why)` when the manifest store is malformed.
pub(crate) fn check_store(store: &[u8]) -> Result<(), String> {
    walk(store, 0)
}

fn walk(mut buf: &[u8], depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err("JUMBF boxes nested too deeply".into());
    }
    while !buf.is_empty() {
        let head = |n: usize| -> Result<&[u8], String> {
            buf.get(..n)
                .ok_or_else(|| "truncated JUMBF box header".to_string())
        };
        let lbox = u32::from_be_bytes(head(8)?[..4].try_into().expect("4 bytes"));
        let kind: [u8; 4] = head(8)?[4..8].try_into().expect("4 bytes");
        let (header, total) = match lbox {
            0 => (8, buf.len() as u64),
            1 => (
                16,
                u64::from_be_bytes(head(16)?[8..16].try_into().expect("8 bytes")),
            ),
            n => (8, u64::from(n)),
        };
        if total < header as u64 || total > buf.len() as u64 {
            return Err(format!(
                "JUMBF box {:?} declares {total} bytes where {} remain",
                String::from_utf8_lossy(&kind),
                buf.len()
            ));
        }
        let (this, rest) = buf.split_at(total as usize);
        let payload = &this[header..];
        match &kind {
            b"jumb" => walk(payload, depth + 1)?,
            b"cbor" => {
                ciborium::de::from_reader::<serde::de::IgnoredAny, _>(payload)
                    .map_err(|e| format!("CBOR content box: {e}"))?;
            }
            _ => {}
        }
        buf = rest;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut b = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn well_formed_stores_pass() {
        // {"a": h'0102'} in CBOR.
        let cbor = [0xA1, 0x61, b'a', 0x42, 1, 2];
        let store = boxed(
            b"jumb",
            &[boxed(b"jumd", b"desc"), boxed(b"cbor", &cbor)].concat(),
        );
        assert_eq!(check_store(&store), Ok(()));
    }

    #[test]
    fn declared_lengths_beyond_the_bytes_are_refused() {
        // A byte string declaring 2^31 bytes, with four present.
        let bomb = [0x5A, 0x80, 0, 0, 0, 1, 2, 3, 4];
        let store = boxed(b"jumb", &boxed(b"cbor", &bomb));
        assert!(check_store(&store).unwrap_err().contains("CBOR"));
        // An array declaring 2^32 - 1 items.
        let wide = [0x9A, 0xFF, 0xFF, 0xFF, 0xFF, 0x01];
        assert!(check_store(&boxed(b"cbor", &wide)).is_err());
        // A box longer than its container, and one shorter than its header.
        let mut long = boxed(b"jumb", b"xx");
        long[3] = 200;
        assert!(check_store(&long).unwrap_err().contains("declares"));
        let mut short = boxed(b"cbor", &[]);
        short[3] = 4;
        assert!(check_store(&short).is_err());
        assert!(check_store(&[0, 0, 0]).is_err());
    }

    #[test]
    fn nesting_is_bounded() {
        let mut b = boxed(b"cbor", &[0xF6]);
        for _ in 0..(MAX_DEPTH + 2) {
            b = boxed(b"jumb", &b);
        }
        assert!(check_store(&b).unwrap_err().contains("deeply"));
    }
}
