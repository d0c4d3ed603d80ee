//! Reading and validating a C2PA manifest, pixseal's or anyone's, into a SPEC §6 verdict.
//!
//! `untrusted` and `tampered` are kept apart on purpose: a manifest whose only failures are
//! about who signed it (a certificate not chaining to a trusted anchor, an untrusted
//! time-stamp) is `untrusted`: the content still matches what was signed. Any integrity failure
//! (a hash that no longer matches, a bad claim signature, a manifest that cannot be parsed) is
//! `tampered`, and so is a credential that is no longer good at all (expired without a
//! time-stamp proving it was signed before, revoked): the reference reader calls those Invalid,
//! and pixseal is never more lenient than it.

use std::io::{Cursor, Read, Seek};

use serde::Serialize;
use serde_json::json;

use crate::manifest::{PIXSEAL_ASSERTION, ProofAssertion};
use crate::timestamp::TimeStampStatus;

/// The validation code the reference reader (c2pa-rs 0.91) gives a watermark action without a
/// soft-binding assertion; pixseal's c2pa (0.90) does not check it, so the verifier applies it itself.
pub const SOFT_BINDING_MISSING: &str = "assertion.action.softBindingMissing";

/// SPEC §6 verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Verified,
    Untrusted,
    Tampered,
    WatermarkOnly,
    NearMatch,
    NotStamped,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Verified => "verified",
            Verdict::Untrusted => "untrusted",
            Verdict::Tampered => "tampered",
            Verdict::WatermarkOnly => "watermark_only",
            Verdict::NearMatch => "near_match",
            Verdict::NotStamped => "not_stamped",
        }
    }
}

/// Who signed the active manifest, as its certificate says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignerInfo {
    /// Organisation of the signing certificate.
    pub issuer: Option<String>,
    pub common_name: Option<String>,
    pub cert_serial_number: Option<String>,
}

/// One soft binding of a manifest: an algorithm and its value over the whole picture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SoftBinding {
    /// `org.pixseal.watermark.1`, `org.pixseal.pdq.1`, or another issuer's algorithm name.
    pub alg: String,
    /// Algorithm-specific; base64 for pixseal's.
    pub value: String,
}

/// One validation status code reported by the C2PA validator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ValidationCode))]
pub struct Code {
    pub code: String,
    /// `success`, `informational` or `failure`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
}

/// What verification found in one file.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Report {
    pub verdict: Verdict,
    /// A one-line, plain-language reason.
    pub message: String,
    pub signer: Option<SignerInfo>,
    /// Signing time (RFC 3339): the signature's timestamp, else the issue time of pixseal's
    /// signed assertion.
    pub time: Option<String>,
    pub claim_generator: Option<String>,
    /// Labels of the active manifest's assertions.
    pub assertions: Vec<String>,
    pub validation_codes: Vec<Code>,
    /// pixseal's assertion, when the manifest is pixseal's.
    pub proof: Option<ProofAssertion>,
    /// The active manifest's soft bindings (watermark, fingerprint), as signed.
    pub soft_bindings: Vec<SoftBinding>,
    /// The signature's RFC 3161 time-stamp, when it carries one.
    pub timestamp: Option<TimeStampStatus>,
    /// Manifests in the file (the active one and any ingredients').
    pub manifests: usize,
}

impl Report {
    fn bare(verdict: Verdict, message: impl Into<String>) -> Report {
        Report {
            verdict,
            message: message.into(),
            signer: None,
            time: None,
            claim_generator: None,
            assertions: Vec::new(),
            validation_codes: Vec::new(),
            proof: None,
            soft_bindings: Vec::new(),
            timestamp: None,
            manifests: 0,
        }
    }

    /// `tampered` with `pixseal.manifest.unreadable`: a manifest store is there but cannot be
    /// read, and `explanation` says where.
    fn unreadable(message: &str, explanation: String) -> Report {
        let mut r = Report::bare(Verdict::Tampered, message);
        r.validation_codes.push(Code {
            code: "pixseal.manifest.unreadable".into(),
            kind: "failure",
            explanation: Some(explanation),
        });
        r
    }

    pub fn proof_id(&self) -> Option<&str> {
        self.proof.as_ref().map(|p| p.proof_id.as_str())
    }
}

/// Validates files against a set of trust anchors. Cheap to share between threads.
#[derive(Clone)]
pub struct Verifier {
    settings: serde_json::Value,
}

/// Failure codes about the signer's credential rather than the content.
fn is_credential_code(code: &str) -> bool {
    code.starts_with("signingCredential.") || code.starts_with("timeStamp.")
}

/// Credential failures that make the signature worthless rather than merely not trusted by
/// this verifier: the reference reader's state for them is Invalid.
pub const CREDENTIAL_INVALID: [&str; 3] = [
    "signingCredential.expired",
    "signingCredential.revoked",
    "signingCredential.invalid",
];

/// The JUMBF superbox type and the C2PA manifest store label, which every embedded manifest
/// store carries whatever the container.
fn has_c2pa_marker(bytes: &[u8]) -> bool {
    bytes.windows(4).any(|w| w == b"jumb") && bytes.windows(4).any(|w| w == b"c2pa")
}

impl Verifier {
    /// `anchors_pem`: the PEM bundle of root certificates to trust (may be empty: then every
    /// valid manifest is `untrusted`).
    pub fn new(anchors_pem: &str) -> Verifier {
        let mut trust = serde_json::Map::new();
        if anchors_pem.contains("-----BEGIN CERTIFICATE-----") {
            trust.insert("trust_anchors".into(), json!(anchors_pem));
        }
        let settings = json!({
            "trust": trust,
            "verify": {
                "verify_after_reading": true,
                "verify_trust": true,
                // Offline by design: no OCSP, no remote manifests.
                "ocsp_fetch": false,
                "remote_manifest_fetch": false,
            },
        });
        Verifier { settings }
    }

    /// Verify one file held in memory. Never panics: a panic inside the C2PA reader on a
    /// hostile file is caught and reported as `tampered` (a manifest was there but unreadable).
    pub fn verify(&self, bytes: &[u8]) -> Report {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.verify_inner(bytes))) {
            Ok(r) => r,
            Err(_) => Report::unreadable(
                "the file's C2PA data could not be read (malformed manifest)",
                "the C2PA reader stopped on this file".into(),
            ),
        }
    }

    /// Verify one file read from a stream of type `media_type` (a video on disk: never held in
    /// memory whole). The same verdicts as [`Verifier::verify`], and never panics either.
    pub fn verify_stream<R: Read + Seek + Send>(&self, media_type: &str, stream: R) -> Report {
        let run = || self.verify_stream_inner(media_type, stream);
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
            Ok(r) => r,
            Err(_) => Report::unreadable(
                "the file's C2PA data could not be read (malformed manifest)",
                "the C2PA reader stopped on this file".into(),
            ),
        }
    }

    fn verify_stream_inner<R: Read + Seek + Send>(&self, format: &str, mut stream: R) -> Report {
        // The store is checked before the reader sees it, as for a file in memory. Here a
        // store found by the container walk stands for the markers.
        let store = c2pa::jumbf_io::load_jumbf_from_stream(format, &mut stream);
        if let Ok(store) = &store
            && let Err(why) = crate::guard::check_store(store)
        {
            return Report::unreadable(
                "a C2PA manifest is present but malformed: the file was altered or damaged",
                why,
            );
        }
        self.read_manifest(format, stream, store.is_ok())
    }

    fn verify_inner(&self, bytes: &[u8]) -> Report {
        let format = crate::manifest::media_type_for(bytes).unwrap_or("application/octet-stream");
        let marked = has_c2pa_marker(bytes);
        // The store is checked before the reader sees it: the reader trusts declared lengths.
        // Without the C2PA superbox markers the reader finds no manifest to decode, and the
        // file is `not_stamped` as it would have been.
        if marked
            && let Ok(store) = c2pa::jumbf_io::load_jumbf_from_memory(format, bytes)
            && let Err(why) = crate::guard::check_store(&store)
        {
            return Report::unreadable(
                "a C2PA manifest is present but malformed: the file was altered or damaged",
                why,
            );
        }
        self.read_manifest(format, Cursor::new(bytes), marked)
    }

    /// The reference reader's verdict on a file whose store (if `marked`) passed the guard.
    fn read_manifest<R: Read + Seek + Send>(
        &self,
        format: &str,
        stream: R,
        marked: bool,
    ) -> Report {
        let ctx = match c2pa::Context::new().with_settings(self.settings.clone()) {
            Ok(c) => c,
            Err(e) => return Report::bare(Verdict::NotStamped, format!("verifier settings: {e}")),
        };
        let reader = match c2pa::Reader::from_context(ctx).with_stream(format, stream) {
            Ok(r) => r,
            Err(c2pa::Error::JumbfNotFound)
            | Err(c2pa::Error::ProvenanceMissing)
            | Err(c2pa::Error::UnsupportedType) => {
                return Report::bare(Verdict::NotStamped, "no C2PA manifest in this file");
            }
            Err(e) if !marked => {
                return Report::bare(Verdict::NotStamped, format!("no C2PA manifest found ({e})"));
            }
            Err(e) => {
                return Report::unreadable(
                    "a C2PA manifest is present but cannot be read: the file was altered or damaged",
                    e.to_string(),
                );
            }
        };
        report_from(&reader)
    }
}

fn report_from(reader: &c2pa::Reader) -> Report {
    let mut codes = Vec::new();
    if let Some(results) = reader.validation_results() {
        if let Some(active) = results.active_manifest() {
            for (kind, list) in [
                ("failure", active.failure()),
                ("informational", active.informational()),
                ("success", active.success()),
            ] {
                for s in list {
                    codes.push(Code {
                        code: s.code().to_string(),
                        kind,
                        explanation: s.explanation().map(str::to_string),
                    });
                }
            }
        }
    } else if let Some(status) = reader.validation_status() {
        for s in status {
            codes.push(Code {
                code: s.code().to_string(),
                kind: if s.passed() { "success" } else { "failure" },
                explanation: s.explanation().map(str::to_string),
            });
        }
    }
    if let Some(missing) = reader.active_manifest().and_then(missing_soft_binding)
        && !codes.iter().any(|c| c.code == SOFT_BINDING_MISSING)
    {
        codes.push(missing);
    }
    let failures: Vec<&str> = codes
        .iter()
        .filter(|c| c.kind == "failure")
        .map(|c| c.code.as_str())
        .collect();
    let state = reader.validation_state();
    let manifest = reader.active_manifest();
    let (verdict, message) = if manifest.is_none() {
        (
            Verdict::Tampered,
            "a C2PA manifest store is present but has no valid active manifest".to_string(),
        )
    } else if failures.is_empty() && matches!(state, c2pa::ValidationState::Trusted) {
        (
            Verdict::Verified,
            "manifest valid, signed by a trusted certificate, content unchanged".to_string(),
        )
    } else if let Some(dead) = failures
        .iter()
        .copied()
        .find(|c| CREDENTIAL_INVALID.contains(c))
    {
        (
            Verdict::Tampered,
            format!(
                "the signature no longer holds: its signing certificate failed ({dead}) and no trusted time-stamp shows it was signed while the certificate was good"
            ),
        )
    } else if failures.iter().all(|c| is_credential_code(c)) {
        (
            Verdict::Untrusted,
            format!(
                "manifest valid and content unchanged, but the signer is not one you trust ({})",
                if failures.is_empty() {
                    "trust not checked".to_string()
                } else {
                    failures.join(", ")
                }
            ),
        )
    } else {
        let integrity: Vec<&str> = failures
            .iter()
            .copied()
            .filter(|c| !is_credential_code(c))
            .collect();
        (
            Verdict::Tampered,
            format!(
                "content or manifest changed after signing ({})",
                integrity.join(", ")
            ),
        )
    };
    let mut r = Report::bare(verdict, message);
    r.manifests = reader.manifests().len();
    if let Some(m) = manifest {
        r.claim_generator = m
            .claim_generator_info
            .as_ref()
            .and_then(|v| v.first())
            .map(|g| match g.version.as_deref() {
                Some(v) => format!("{}/{v}", g.name),
                None => g.name.clone(),
            })
            .or_else(|| m.claim_generator().map(str::to_string));
        if let Some(si) = m.signature_info() {
            r.signer = Some(SignerInfo {
                issuer: si.issuer.clone(),
                common_name: si.common_name.clone(),
                cert_serial_number: si.cert_serial_number.clone(),
            });
            r.time = si.time.clone();
            r.timestamp = timestamp_status(&codes, si.time.as_deref());
        }
        r.assertions = m
            .assertions()
            .iter()
            .map(|a| a.label().to_string())
            .collect();
        r.soft_bindings = soft_bindings_of(m);
        r.proof = m
            .assertions()
            .iter()
            .find(|a| a.label() == PIXSEAL_ASSERTION)
            .and_then(|a| a.value().ok())
            .and_then(|v| serde_json::from_value::<ProofAssertion>(v.clone()).ok());
        // Without a trusted timestamp the signature carries no time; pixseal's own assertion
        // (covered by the signature) says when the proof was issued.
        if r.time.is_none() {
            r.time = r.proof.as_ref().map(|p| p.issued_at.clone());
        }
    }
    r.validation_codes = codes;
    r
}

/// What the validator said about the signature's time-stamp: a trusted one, else the first
/// problem it found, else a token that checked out without its authority being trusted. The
/// time counts only when the token checked out (the reader then gives it as the signing time).
fn timestamp_status(codes: &[Code], signing_time: Option<&str>) -> Option<TimeStampStatus> {
    const TRUSTED: &str = "timeStamp.trusted";
    const VALIDATED: &str = "timeStamp.validated";
    let has = |c: &str| codes.iter().any(|x| x.code == c);
    let problem = codes
        .iter()
        .map(|c| c.code.as_str())
        .find(|c| c.starts_with("timeStamp.") && *c != TRUSTED && *c != VALIDATED);
    let (code, trusted) = if has(TRUSTED) {
        (TRUSTED, true)
    } else if let Some(p) = problem {
        (p, false)
    } else if has(VALIDATED) {
        (VALIDATED, false)
    } else {
        return None;
    };
    let checked = has(TRUSTED) || has(VALIDATED);
    Some(TimeStampStatus {
        time: signing_time.filter(|_| checked).map(str::to_string),
        trusted,
        code: code.to_string(),
    })
}

/// The action names that announce a watermark, current and legacy.
const WATERMARK_ACTIONS: [&str; 2] = ["c2pa.watermarked.bound", "c2pa.watermarked"];

fn is_soft_binding(label: &str) -> bool {
    label == "c2pa.soft-binding" || label.starts_with("c2pa.soft-binding__")
}

/// C2PA's rule that a watermark action comes with at least one soft-binding assertion, as the
/// reference validator applies it: a failure when it does not hold.
fn missing_soft_binding(m: &c2pa::Manifest) -> Option<Code> {
    let watermarked = m
        .assertions()
        .iter()
        .filter(|a| a.label().starts_with("c2pa.actions"))
        .filter_map(|a| a.value().ok())
        .filter_map(|v| v.get("actions").and_then(|a| a.as_array()).cloned())
        .flatten()
        .any(|act| {
            act.get("action")
                .and_then(|a| a.as_str())
                .is_some_and(|a| WATERMARK_ACTIONS.contains(&a))
        });
    let bound = m.assertions().iter().any(|a| is_soft_binding(a.label()));
    (watermarked && !bound).then(|| Code {
        code: SOFT_BINDING_MISSING.into(),
        kind: "failure",
        explanation: Some("watermark action missing soft binding assertion".into()),
    })
}

/// Each block of each soft-binding assertion (algorithm from the assertion).
fn soft_bindings_of(m: &c2pa::Manifest) -> Vec<SoftBinding> {
    let mut out = Vec::new();
    for a in m.assertions().iter().filter(|a| is_soft_binding(a.label())) {
        let Ok(v) = a.value() else { continue };
        let Some(alg) = v.get("alg").and_then(|x| x.as_str()) else {
            continue;
        };
        for block in v
            .get("blocks")
            .and_then(|b| b.as_array())
            .into_iter()
            .flatten()
        {
            if let Some(value) = block.get("value").and_then(|x| x.as_str()) {
                out.push(SoftBinding {
                    alg: alg.to_string(),
                    value: value.to_string(),
                });
            }
        }
    }
    out
}
