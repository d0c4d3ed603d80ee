//! Interop with the reference C2PA implementation (c2pa-python) both ways, and the verdict
//! boundaries: verified / untrusted / tampered / not_stamped, on JPEG, PNG and WebP.

use std::path::Path;

use pixseal_media::{OutputFormat, Pixels, encode::Encoder};
use pixseal_provenance::{
    ClaimSigner, DevChain, LocalSigner, ProofAssertion, SignAlg, SoftBindings, StampActions,
    Verdict, Verifier, embed,
};
use pixseal_testkit::{c2pa_ref, synthetic_photo};
use serde_json::Value;

const FORMATS: [OutputFormat; 3] = [OutputFormat::Jpeg, OutputFormat::Png, OutputFormat::WebP];

fn picture(format: OutputFormat, seed: u64) -> Vec<u8> {
    let (w, h) = (320, 240);
    let mut px = Pixels::new(w, h, 3, synthetic_photo(w, h, seed));
    Encoder::new().encode(&mut px, format, 85).unwrap()
}

fn proof() -> ProofAssertion {
    ProofAssertion {
        proof_id: "px_0H8Z4K2M9QW3R".into(),
        issued_at: "2026-11-26T12:00:00Z".into(),
        verify_url: "https://pixseal.example/v/px_0H8Z4K2M9QW3R".into(),
    }
}

struct Ident {
    chain: DevChain,
    signer: LocalSigner,
}

fn ident(org: &str) -> Ident {
    let chain = DevChain::generate(org).unwrap();
    let signer = LocalSigner::from_pem(
        chain.chain_pem.as_bytes(),
        chain.key_pem.as_deref().unwrap().as_bytes(),
        SignAlg::Es256,
    )
    .unwrap();
    Ident { chain, signer }
}

fn stamped(id: &Ident, format: OutputFormat, seed: u64) -> Vec<u8> {
    embed(
        &picture(format, seed),
        &proof(),
        &StampActions::default(),
        &SoftBindings::default(),
        &id.signer,
    )
    .unwrap()
    .bytes
}

#[test]
fn a_watermark_action_is_never_signed_without_its_soft_binding() {
    let id = ident("pixseal bindings");
    let acts = StampActions {
        watermarked: true,
        visible_mark: false,
    };
    let pic = picture(OutputFormat::Jpeg, 9);
    let e = embed(&pic, &proof(), &acts, &SoftBindings::default(), &id.signer).unwrap_err();
    assert!(e.to_string().contains("soft binding"), "{e}");
    let bindings = SoftBindings {
        watermark: Some(0x0123_4567_89ab_cdef),
        ..SoftBindings::default()
    };
    let signed = embed(&pic, &proof(), &acts, &bindings, &id.signer).unwrap();
    assert!(signed.manifest_id.starts_with("urn:c2pa:"));
    let r = Verifier::new(&id.chain.root_pem).verify(&signed.bytes);
    assert_eq!(r.verdict, Verdict::Verified, "{r:#?}");
    assert_eq!(r.soft_bindings.len(), 1);
    assert_eq!(r.soft_bindings[0].alg, "org.pixseal.watermark.1");
    assert_eq!(r.soft_bindings[0].value, "ASNFZ4mrze8=");
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
}

fn read_ref(file: &str, trust: Option<&str>) -> Value {
    let mut args = vec!["read", file];
    if let Some(t) = trust {
        args.extend(["--trust", t]);
    }
    serde_json::from_str(&c2pa_ref(&args)[0]).unwrap()
}

#[test]
fn reference_reader_validates_pixseal_manifests() {
    let d = tempfile::tempdir().unwrap();
    let id = ident("pixseal interop");
    let root = write(d.path(), "root.pem", id.chain.root_pem.as_bytes());
    for f in FORMATS {
        let file = write(
            d.path(),
            &format!("s.{}", f.extension()),
            &stamped(&id, f, 1),
        );
        let r = read_ref(&file, Some(&root));
        assert_eq!(r["state"], "Trusted", "{f:?}: {r:#}");
        assert_eq!(r["failure"], serde_json::json!([]), "{f:?}: {r:#}");
        assert_eq!(r["claim_generator_info"][0]["name"], "pixseal");
        let a = &r["assertions"]["org.pixseal.proof"];
        assert_eq!(a["proof_id"], "px_0H8Z4K2M9QW3R", "{r:#}");
        let actions = r["assertions"]["c2pa.actions.v2"]["actions"]
            .as_array()
            .or(r["assertions"]["c2pa.actions"]["actions"].as_array())
            .unwrap_or_else(|| panic!("no actions: {r:#}"))
            .iter()
            .map(|a| a["action"].as_str().unwrap().to_string())
            .collect::<Vec<_>>();
        assert_eq!(actions, ["c2pa.created", "c2pa.edited"], "{f:?}");
        // Without our root the reference says valid-but-untrusted, never invalid.
        let r = read_ref(&file, None);
        assert_eq!(r["state"], "Valid", "{f:?}: {r:#}");
        assert_eq!(
            r["failure"],
            serde_json::json!(["signingCredential.untrusted"])
        );
    }
}

#[test]
fn pixseal_verifies_reference_signed_files() {
    let d = tempfile::tempdir().unwrap();
    // A third party's chain made in the test; only its root is handed to pixseal.
    let theirs = ident("Third Party Test CA");
    let chain = write(
        d.path(),
        "their-chain.pem",
        theirs.chain.chain_pem.as_bytes(),
    );
    let key = write(
        d.path(),
        "their-key.pem",
        theirs.chain.key_pem.as_deref().unwrap().as_bytes(),
    );
    let trusting = Verifier::new(&theirs.chain.root_pem);
    let other = Verifier::new(&ident("someone else").chain.root_pem);
    for f in FORMATS {
        let src = write(d.path(), &format!("in.{}", f.extension()), &picture(f, 7));
        let out = d.path().join(format!("ref.{}", f.extension()));
        c2pa_ref(&[
            "sign",
            &src,
            out.to_str().unwrap(),
            "--chain",
            &chain,
            "--key",
            &key,
        ]);
        let bytes = std::fs::read(&out).unwrap();
        let r = trusting.verify(&bytes);
        assert_eq!(r.verdict, Verdict::Verified, "{f:?}: {r:#?}");
        assert!(
            r.claim_generator
                .as_deref()
                .unwrap()
                .starts_with("c2pa-python-reference")
        );
        assert!(
            r.assertions.iter().any(|a| a == "org.example.thirdparty"),
            "{r:#?}"
        );
        assert_eq!(r.proof, None, "a third-party manifest has no pixseal proof");
        assert_eq!(
            r.signer.as_ref().unwrap().issuer.as_deref(),
            Some("Third Party Test CA")
        );
        let r = other.verify(&bytes);
        assert_eq!(r.verdict, Verdict::Untrusted, "{f:?}: {r:#?}");
    }
}

#[test]
fn pixseal_round_trip_verified_untrusted_and_not_stamped() {
    let id = ident("pixseal round trip");
    let trusting = Verifier::new(&id.chain.root_pem);
    let nobody = Verifier::new("");
    for f in FORMATS {
        let s = stamped(&id, f, 2);
        let r = trusting.verify(&s);
        assert_eq!(r.verdict, Verdict::Verified, "{f:?}: {r:#?}");
        assert_eq!(r.proof_id(), Some("px_0H8Z4K2M9QW3R"));
        assert_eq!(
            r.claim_generator.as_deref(),
            Some(concat!("pixseal/", env!("CARGO_PKG_VERSION")))
        );
        assert!(r.time.is_some());
        let r = nobody.verify(&s);
        assert_eq!(r.verdict, Verdict::Untrusted, "{f:?}: {r:#?}");
        assert_eq!(r.proof_id(), Some("px_0H8Z4K2M9QW3R"));
        assert_eq!(trusting.verify(&picture(f, 2)).verdict, Verdict::NotStamped);
        assert_eq!(id.signer.cert_chain().len(), 1);
    }
}

/// Offset of the first byte of entropy-coded data after the last SOS of a JPEG.
fn jpeg_scan_start(b: &[u8]) -> usize {
    let mut i = 2;
    loop {
        assert_eq!(b[i], 0xFF);
        let m = b[i + 1];
        let len = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
        if m == 0xDA {
            return i + 2 + len;
        }
        i += 2 + len;
    }
}

#[test]
fn one_changed_byte_or_pixel_is_tampered_never_untrusted() {
    let d = tempfile::tempdir().unwrap();
    let id = ident("pixseal tamper");
    let trusting = Verifier::new(&id.chain.root_pem);
    let nobody = Verifier::new("");
    // One byte of JPEG scan data.
    let mut j = stamped(&id, OutputFormat::Jpeg, 3);
    let at = jpeg_scan_start(&j) + 500;
    j[at] ^= 0x10;
    // One pixel of a PNG (IDAT rewritten, the manifest chunk untouched).
    let png = stamped(&id, OutputFormat::Png, 3);
    let src = write(d.path(), "p.png", &png);
    let dst = d.path().join("p1.png");
    c2pa_ref(&["flip-pixel", &src, dst.to_str().unwrap()]);
    let p = std::fs::read(&dst).unwrap();
    // One byte of WebP image data (the last byte of the file is inside the VP8 chunk payload
    // unless the manifest chunk comes last; pick the middle of the VP8 chunk).
    let mut w = stamped(&id, OutputFormat::WebP, 3);
    let vp8 = w
        .windows(4)
        .position(|x| x == b"VP8 " || x == b"VP8L")
        .unwrap();
    w[vp8 + 200] ^= 0x01;
    for (what, bytes) in [("jpeg byte", &j), ("png pixel", &p), ("webp byte", &w)] {
        for (who, v) in [("trusted", &trusting), ("untrusted signer", &nobody)] {
            let r = v.verify(bytes);
            assert_eq!(r.verdict, Verdict::Tampered, "{what} / {who}: {r:#?}");
            assert!(
                r.validation_codes
                    .iter()
                    .any(|c| c.kind == "failure" && c.code.contains("Hash")
                        || c.code.contains("hash")),
                "{what}: {:?}",
                r.validation_codes
            );
        }
    }
    // The reference agrees.
    let f = write(d.path(), "j.jpg", &j);
    let root = write(d.path(), "root.pem", id.chain.root_pem.as_bytes());
    let r = read_ref(&f, Some(&root));
    assert_eq!(r["state"], "Invalid", "{r:#}");
    let r = read_ref(dst.to_str().unwrap(), Some(&root));
    assert_eq!(r["state"], "Invalid", "{r:#}");
}

#[test]
fn stripped_metadata_means_not_stamped() {
    let d = tempfile::tempdir().unwrap();
    let id = ident("pixseal strip");
    let v = Verifier::new(&id.chain.root_pem);
    for f in FORMATS {
        let s = write(
            d.path(),
            &format!("s.{}", f.extension()),
            &stamped(&id, f, 4),
        );
        let out = d.path().join(format!("stripped-{}.png", f.extension()));
        c2pa_ref(&["derive", &s, out.to_str().unwrap(), "--op", "strip"]);
        let r = v.verify(&std::fs::read(&out).unwrap());
        assert_eq!(r.verdict, Verdict::NotStamped, "{f:?}: {r:#?}");
    }
}

/// Deterministic mutations of the C2PA part of a stamped file: flipped bits, zeroed and
/// 0xFF runs, truncations, length fields bent. None may panic; none may come out `verified`
/// unless the bytes are unchanged where it matters (checked: a mutation the validator
/// accepts must leave the claim and signature intact, so we only require a verdict).
#[test]
fn malformed_manifests_never_panic() {
    let id = ident("pixseal fuzz");
    let v = Verifier::new(&id.chain.root_pem);
    let mut seed = 0x1234_5678_9abc_def1u64;
    let mut rnd = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for f in FORMATS {
        let s = stamped(&id, f, 5);
        // The manifest store region: from the first "jumb" box header to the last "c2pa"
        // label seen, with some slack.
        let first = s
            .windows(4)
            .position(|w| w == b"jumb")
            .unwrap()
            .saturating_sub(16);
        let last = s
            .windows(4)
            .rposition(|w| w == b"c2pa" || w == b"c2cs")
            .unwrap()
            + 4096;
        let (lo, hi) = (first, last.min(s.len()));
        for i in 0..150 {
            let mut m = s.clone();
            match i % 6 {
                0 => {
                    let at = lo + rnd(hi - lo);
                    m[at] ^= 1 << rnd(8);
                }
                1 => {
                    let at = lo + rnd(hi - lo);
                    let n = 1 + rnd(64);
                    for b in m.iter_mut().skip(at).take(n) {
                        *b = 0;
                    }
                }
                2 => {
                    let at = lo + rnd(hi - lo);
                    m.truncate(at);
                }
                3 => {
                    // Bend a 32-bit big-endian box length just before a box type.
                    let boxes: Vec<usize> = m
                        .windows(4)
                        .enumerate()
                        .filter(|(i, w)| {
                            *i >= lo + 4
                                && *i < hi
                                && (*w == b"jumb"
                                    || *w == b"jumd"
                                    || *w == b"cbor"
                                    || *w == b"json")
                        })
                        .map(|(i, _)| i - 4)
                        .collect();
                    if let Some(&at) = boxes.get(rnd(boxes.len().max(1))) {
                        let bad = [0u32, 1, 7, 8, 0xFFFF_FFFF, 0x7FFF_FFFF, rnd(1 << 20) as u32];
                        m[at..at + 4].copy_from_slice(&bad[rnd(bad.len())].to_be_bytes());
                    }
                }
                4 => {
                    let at = lo + rnd(hi - lo);
                    let n = 1 + rnd(32);
                    for b in m.iter_mut().skip(at).take(n) {
                        *b = 0xFF;
                    }
                }
                _ => {
                    // Duplicate a slice of the store somewhere else inside it.
                    let a = lo + rnd(hi - lo);
                    let b = lo + rnd(hi - lo);
                    let n = (1 + rnd(256)).min(m.len() - a.max(b));
                    let chunk = m[a..a + n].to_vec();
                    m[b..b + n].copy_from_slice(&chunk);
                }
            }
            let r = v.verify(&m);
            *counts.entry(r.verdict.as_str()).or_default() += 1;
            if m != s && r.verdict == Verdict::Verified {
                // Accepted only when the change hit bytes outside what is hashed or signed
                // (e.g. padding); the picture itself must still be the original.
                assert_eq!(pixseal_media::sniff(&m).ok(), pixseal_media::sniff(&s).ok());
            }
        }
    }
    eprintln!("mutation verdicts: {counts:?}");
    assert!(
        counts.get("tampered").copied().unwrap_or(0) > 100,
        "{counts:?}"
    );
}

/// The `verify` fuzz target's second finding, kept as a test: a JPEG whose APP11 manifest store
/// lost its `jumb` superbox type. The reader finds no manifest in it, so it is `not_stamped`;
/// the store check must not call it `tampered` (it did, for a while, on the box's bogus length).
#[test]
fn a_store_without_its_superbox_is_not_stamped() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/store-without-superbox.jpg");
    let bytes = std::fs::read(file).unwrap();
    let report = pixseal_provenance::Verifier::new("").verify(&bytes);
    assert_eq!(
        report.verdict,
        pixseal_provenance::Verdict::NotStamped,
        "{report:?}"
    );
}

/// A signer whose key service is down: everything but the signature itself works.
struct Down(LocalSigner);

impl ClaimSigner for Down {
    fn kind(&self) -> pixseal_provenance::SignerKind {
        self.0.kind()
    }
    fn alg(&self) -> SignAlg {
        self.0.alg()
    }
    fn cert_chain(&self) -> &[Vec<u8>] {
        self.0.cert_chain()
    }
    fn sign(&self, _: &[u8]) -> Result<Vec<u8>, pixseal_provenance::ProvenanceError> {
        Err(pixseal_provenance::ProvenanceError::Signing(
            "the key service did not answer".into(),
        ))
    }
}

/// `sign_video` of a sanitized clip; the signed bytes or the error's code.
fn sign_clip(
    clean: &[u8],
    signer: std::sync::Arc<dyn ClaimSigner>,
    reencoded: bool,
    acts: &StampActions,
    bindings: &SoftBindings,
) -> Result<Vec<u8>, &'static str> {
    use pixseal_media::VideoLimits;
    use pixseal_media::video::VideoFormat;
    use pixseal_provenance::manifest::{VideoClaim, sign_video};
    let mut out = std::io::Cursor::new(Vec::new());
    let claim = VideoClaim {
        proof: &proof(),
        reencoded,
        acts,
        bindings,
    };
    match sign_video(
        clean,
        VideoFormat::Mp4,
        &VideoLimits::default(),
        &mut out,
        &claim,
        signer,
    ) {
        Ok(_) => Ok(out.into_inner()),
        Err(e) => Err(e.code()),
    }
}

#[test]
fn a_video_signed_in_place_keeps_the_signers_failure_and_its_claims_honest() {
    use std::sync::Arc;
    let clip = pixseal_testkit::video::Clip::plain().make();
    let mut clean = Vec::new();
    pixseal_media::video::sanitize(&clip[..], &Default::default(), &mut clean).unwrap();
    let plain = StampActions::default();
    let marked = StampActions {
        watermarked: true,
        visible_mark: false,
    };
    let none = SoftBindings::default();
    let watermark = SoftBindings {
        watermark: Some(0x5EED),
        ..SoftBindings::default()
    };

    // A key service that is down stays that (a 503 to retry), not an internal error.
    let down = Arc::new(Down(ident("Down").signer));
    assert_eq!(
        sign_clip(&clean, down, false, &plain, &none),
        Err("key_unavailable")
    );

    let id = ident("Honest");
    let signer: Arc<dyn ClaimSigner> = Arc::new(id.signer);
    // Copied samples carry no watermark: such a claim is never signed; nor a watermark action
    // without its binding.
    assert_eq!(
        sign_clip(&clean, signer.clone(), false, &marked, &watermark),
        Err("internal")
    );
    assert_eq!(
        sign_clip(&clean, signer.clone(), true, &marked, &none),
        Err("internal")
    );

    // What is signed reads back verified.
    let signed = sign_clip(&clean, signer, false, &plain, &none).unwrap();
    let r = Verifier::new(&id.chain.root_pem).verify(&signed);
    assert_eq!(r.verdict, Verdict::Verified, "{}", r.message);
}
