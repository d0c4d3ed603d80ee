//! seal_field / seal_json with the local provider.

mod common;

use common::{assert_tampered, local};
use pixseal_seal::{
    KeyProvider, SealError, field_key_name, open_field, open_json, seal_field, seal_json,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Meta {
    label: String,
    ip: String,
    tags: Vec<String>,
}

#[test]
fn field_round_trip_and_compactness() {
    let (_d, p) = local();
    for v in [&b""[..], b"203.0.113.7", &[0u8; 300][..]] {
        let s = seal_field(&p, "us", "uploads.client_ip.42", v).unwrap();
        assert!(s.starts_with("pxf1."));
        assert!(s.is_ascii() && !s.contains(['+', '/', '=']));
        assert_eq!(
            &open_field(&p, "us", "uploads.client_ip.42", &s).unwrap()[..],
            v
        );
        // version+provider+name+version+len+wrapped(60)+nonce+tag ≈ 110 bytes before base64
        assert!(s.len() < 5 + (110 + v.len()) * 4 / 3 + 4, "{}", s.len());
    }
    // Same value twice: different ciphertexts (fresh key and nonce).
    let a = seal_field(&p, "us", "c", b"same").unwrap();
    let b = seal_field(&p, "us", "c", b"same").unwrap();
    assert_ne!(a, b);
}

#[test]
fn field_bound_to_context_and_region() {
    let (_d, p) = local();
    let s = seal_field(&p, "us", "uploads.client_ip.42", b"203.0.113.7").unwrap();
    assert_tampered(
        open_field(&p, "us", "uploads.client_ip.43", &s),
        "other row",
    );
    assert_tampered(open_field(&p, "us", "uploads.label.42", &s), "other column");
    assert_tampered(
        open_field(&p, "eu", "uploads.client_ip.42", &s),
        "other region",
    );
}

#[test]
fn field_every_flip_and_truncation_is_tampered() {
    let (_d, p) = local();
    let s = seal_field(&p, "us", "ctx", b"a label with a name in it").unwrap();
    let bytes = s.as_bytes();
    for i in 0..bytes.len() {
        for repl in [b'A', b'z', b'0', b'-', b'_', b'.', b'='] {
            if bytes[i] == repl {
                continue;
            }
            let mut t = bytes.to_vec();
            t[i] = repl;
            let t = String::from_utf8(t).unwrap();
            // Base64 has "don't care" bits in the last character; a change there that decodes
            // to the same bytes is not a modification of the envelope.
            if let Ok(v) = open_field(&p, "us", "ctx", &t) {
                assert!(
                    i == bytes.len() - 1 && &v[..] == b"a label with a name in it",
                    "{i} {repl}"
                );
                continue;
            }
            assert_tampered(
                open_field(&p, "us", "ctx", &t),
                &format!("char {i} -> {}", repl as char),
            );
        }
    }
    for n in 0..s.len() {
        assert_tampered(open_field(&p, "us", "ctx", &s[..n]), &format!("cut {n}"));
    }
    for g in [
        "",
        "pxf1.",
        "pxf1.AAAA",
        "hello",
        "pxf1.!!!!",
        "pxf2.AAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        assert_tampered(open_field(&p, "us", "ctx", g), g);
    }
}

#[test]
fn json_round_trip() {
    let (_d, p) = local();
    let m = Meta {
        label: "Anna's wedding".into(),
        ip: "198.51.100.23".into(),
        tags: vec!["a".into(), "b".into()],
    };
    let s = seal_json(&p, "eu", "artifacts.meta.art_1", &m).unwrap();
    let back: Meta = open_json(&p, "eu", "artifacts.meta.art_1", &s).unwrap();
    assert_eq!(back, m);
    assert!(matches!(
        open_json::<Meta>(&p, "eu", "artifacts.meta.art_2", &s),
        Err(SealError::Tampered)
    ));
    // Authentic but of another type: a config error, not tampering.
    let n = seal_json(&p, "eu", "x", &42u32).unwrap();
    assert_eq!(
        open_json::<Meta>(&p, "eu", "x", &n).unwrap_err().code(),
        "config"
    );
}

#[test]
fn a_fields_key_name_is_read_from_its_envelope() {
    let (_d, p) = local();
    let long = "x".repeat(5000);
    for value in ["", "short", long.as_str()] {
        let sealed = seal_field(&p, "eu", "ctx", value.as_bytes()).unwrap();
        assert_eq!(field_key_name(&sealed).unwrap(), p.key_name("eu").unwrap());
    }
    assert_tampered(field_key_name("pxf1."), "empty");
    assert_tampered(field_key_name("not a field"), "no prefix");
    assert_tampered(field_key_name("pxf1.AgIDYWJj"), "wrong envelope version");
}
