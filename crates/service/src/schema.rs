//! OpenAPI schemas of what the domain crates serialize. Those crates stay free of utoipa, so
//! their types are described here: enums from their values (exhaustive matches make a new
//! variant a compile error until it is listed), structs as mirrors that the tests below hold to
//! what the real types serialize.

use pixseal_store::ProofStatus;
use utoipa::ToSchema;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

/// A string that is one of `values`.
fn one_of(values: impl IntoIterator<Item = &'static str>) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .build()
}

/// Every variant of `$ty`; the match makes a new variant a compile error here until listed.
macro_rules! every_variant {
    ($ty:ident { $($variant:ident),+ $(,)? }) => {{
        let _listed = |v: $ty| match v {
            $($ty::$variant)|+ => (),
        };
        [$($ty::$variant),+]
    }};
}

/// `pixseal_store::ProofStatus`.
pub fn proof_status() -> Object {
    one_of(ProofStatus::ALL.iter().map(|s| s.as_str()))
}

fn code_verdicts() -> [pixseal_codes::Verdict; 8] {
    use pixseal_codes::Verdict;
    every_variant!(Verdict {
        Valid,
        Unknown,
        Mismatch,
        Expired,
        Used,
        Revoked,
        Locked,
        InvalidSignature,
    })
}

/// `pixseal_codes::Verdict`.
pub fn code_verdict() -> Object {
    one_of(code_verdicts().map(|v| v.as_str()))
}

fn report_verdicts() -> [pixseal_provenance::Verdict; 6] {
    use pixseal_provenance::Verdict;
    every_variant!(Verdict {
        Verified,
        Untrusted,
        Tampered,
        WatermarkOnly,
        NearMatch,
        NotStamped,
    })
}

/// `pixseal_provenance::Verdict` (SPEC §6).
pub fn report_verdict() -> Object {
    one_of(report_verdicts().map(|v| v.as_str()))
}

/// What a file's C2PA manifest says (`pixseal_provenance::Report`).
#[derive(ToSchema)]
pub struct Report {
    #[schema(schema_with = report_verdict)]
    pub verdict: String,
    /// A one-line, plain-language reason.
    pub message: String,
    pub signer: Option<SignerInfo>,
    /// Signing time (RFC 3339).
    pub time: Option<String>,
    pub claim_generator: Option<String>,
    /// Labels of the active manifest's assertions.
    pub assertions: Vec<String>,
    pub validation_codes: Vec<ValidationCode>,
    /// pixseal's assertion, when the manifest is pixseal's.
    pub proof: Option<ProofAssertion>,
    /// Manifests in the file (the active one and any ingredients').
    pub manifests: u64,
}

/// Who signed the active manifest, as its certificate says.
#[derive(ToSchema)]
pub struct SignerInfo {
    /// Organisation of the signing certificate.
    pub issuer: Option<String>,
    pub common_name: Option<String>,
    pub cert_serial_number: Option<String>,
}

/// One validation status code reported by the C2PA validator.
#[derive(ToSchema)]
pub struct ValidationCode {
    pub code: String,
    #[schema(schema_with = validation_kind)]
    pub kind: String,
    #[schema(nullable = false)]
    pub explanation: Option<String>,
}

fn validation_kind() -> Object {
    one_of(["success", "informational", "failure"])
}

/// pixseal's `org.pixseal.proof` assertion.
#[derive(ToSchema)]
pub struct ProofAssertion {
    #[schema(pattern = r"^px_[0-9A-HJKMNP-TV-Z]{13}$")]
    pub proof_id: String,
    #[schema(format = DateTime)]
    pub issued_at: String,
    /// Where anyone can look the proof up.
    pub verify_url: String,
}

/// A signed deletion receipt (`pixseal_proof::SignedReceipt`).
#[derive(ToSchema)]
pub struct SignedReceipt {
    pub receipt: Receipt,
    #[schema(schema_with = receipt_alg)]
    pub alg: String,
    /// First 16 hex digits of SHA-256 of the public key (SubjectPublicKeyInfo DER).
    pub key_id: String,
    /// Base64 Ed25519 over `pixseal deletion receipt v1\n` + the JSON of `receipt` in field
    /// order.
    pub signature: String,
}

fn receipt_alg() -> Object {
    one_of(["Ed25519"])
}

/// What a deletion receipt states.
#[derive(ToSchema)]
#[schema(as = DeletionReceipt)]
pub struct Receipt {
    pub receipt_id: String,
    pub artifact_id: String,
    pub proof_id: String,
    pub sha256: String,
    pub original_sha256: String,
    pub region: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub deleted_at: String,
    #[schema(schema_with = deletion_reason)]
    pub reason: String,
}

fn deletion_reason() -> Object {
    use crate::artifacts::DeletionReason;
    let all = every_variant!(DeletionReason {
        DeletedByOwner,
        RetentionExpired,
    });
    one_of(all.map(DeletionReason::as_str))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use pixseal_provenance::verify::{Code, SignerInfo};
    use serde_json::Value;
    use utoipa::PartialSchema;

    use super::*;

    /// The property names of `T`'s schema.
    fn documented<T: PartialSchema>() -> BTreeSet<String> {
        let schema = serde_json::to_value(T::schema()).unwrap();
        schema["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no properties in {schema}"))
            .keys()
            .cloned()
            .collect()
    }

    /// The keys `value` (a fully populated instance, every option set) serializes.
    fn serialized(value: impl serde::Serialize) -> BTreeSet<String> {
        match serde_json::to_value(value).unwrap() {
            Value::Object(m) => m.keys().cloned().collect(),
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn mirrors_document_exactly_what_the_real_types_serialize() {
        let signer = SignerInfo {
            issuer: Some("o".into()),
            common_name: Some("cn".into()),
            cert_serial_number: Some("1".into()),
        };
        let code = Code {
            code: "claimSignature.validated".into(),
            kind: "success",
            explanation: Some("ok".into()),
        };
        let proof = pixseal_provenance::ProofAssertion {
            proof_id: "px_0H8Z4K2M9QW3R".into(),
            issued_at: "2026-01-01T00:00:00Z".into(),
            verify_url: "https://example.invalid/v/px_0H8Z4K2M9QW3R".into(),
        };
        let report = pixseal_provenance::Report {
            verdict: pixseal_provenance::Verdict::Verified,
            message: "m".into(),
            signer: Some(signer.clone()),
            time: Some("t".into()),
            claim_generator: Some("g".into()),
            assertions: vec!["a".into()],
            validation_codes: vec![code.clone()],
            proof: Some(proof.clone()),
            manifests: 1,
        };
        assert_eq!(serialized(&report), documented::<Report>());
        assert_eq!(serialized(&signer), documented::<super::SignerInfo>());
        assert_eq!(serialized(&code), documented::<ValidationCode>());
        assert_eq!(serialized(&proof), documented::<ProofAssertion>());
        let receipt = pixseal_proof::Receipt {
            receipt_id: "rcpt_1".into(),
            artifact_id: "a".into(),
            proof_id: "px_0H8Z4K2M9QW3R".into(),
            sha256: "s".into(),
            original_sha256: "o".into(),
            region: "us".into(),
            created_at: "c".into(),
            deleted_at: "d".into(),
            reason: "deleted_by_owner".into(),
        };
        let signed = pixseal_proof::SignedReceipt {
            receipt: receipt.clone(),
            alg: "Ed25519".into(),
            key_id: "k".into(),
            signature: "s".into(),
        };
        assert_eq!(serialized(&signed), documented::<SignedReceipt>());
        assert_eq!(serialized(&receipt), documented::<Receipt>());
    }

    #[test]
    fn enums_list_their_serialized_values() {
        for v in code_verdicts() {
            assert_eq!(serde_json::to_value(v).unwrap(), v.as_str());
        }
        for v in report_verdicts() {
            assert_eq!(serde_json::to_value(v).unwrap(), v.as_str());
        }
        let schema = serde_json::to_value(proof_status()).unwrap();
        assert_eq!(
            schema["enum"],
            serde_json::to_value(ProofStatus::ALL).unwrap()
        );
    }
}
