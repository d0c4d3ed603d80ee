//! Durable credentials and the C2PA Soft Binding Resolution API: the signed manifest a proof
//! keeps past its artifact's purge, found by proof id, by manifest id, by a soft-binding value
//! (watermark payload or PDQ hash), or from a picture.

use base64::Engine as _;
use pixseal_proof::ProofId;
use pixseal_provenance::manifest::{pdq_of_binding_value, watermark_of_binding_value};
use pixseal_provenance::pdq::Pdq;
use pixseal_provenance::{PDQ_BINDING_ALG, WATERMARK_BINDING_ALG};
use pixseal_store::ProofManifest;
use serde::Serialize;
use utoipa::ToSchema;

use crate::budget::Body;
use crate::work::with_pipeline;
use crate::{Result, ServiceError, Services};

/// Matches answered when the client names no `maxResults`, and the most it may ask for.
pub const DEFAULT_MAX_RESULTS: u32 = 10;
pub const MAX_RESULTS: u32 = 100;

/// The soft-binding algorithms this service resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingAlg {
    /// [`WATERMARK_BINDING_ALG`]: exact, the payload names one proof.
    Watermark,
    /// [`PDQ_BINDING_ALG`]: a fingerprint, every proof within `pdq_threshold`.
    Pdq,
}

impl BindingAlg {
    pub fn name(self) -> &'static str {
        match self {
            BindingAlg::Watermark => WATERMARK_BINDING_ALG,
            BindingAlg::Pdq => PDQ_BINDING_ALG,
        }
    }

    fn parse(alg: &str) -> Result<BindingAlg> {
        match alg {
            WATERMARK_BINDING_ALG => Ok(BindingAlg::Watermark),
            PDQ_BINDING_ALG => Ok(BindingAlg::Pdq),
            other => Err(ServiceError::invalid(
                "unsupported_algorithm",
                format!(
                    "soft-binding algorithm {other:?} is not resolved here; supported: {WATERMARK_BINDING_ALG}, {PDQ_BINDING_ALG}"
                ),
            )),
        }
    }
}

/// One manifest a binding or a picture resolves to (Soft Binding Resolution API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManifestMatch {
    /// The manifest's label, `urn:c2pa:…`; `GET /v1/manifests/{manifestId}` returns it.
    #[schema(example = "urn:c2pa:01938a7e-4c1b-7d2e-9f00-1a2b3c4d5e6f")]
    pub manifest_id: String,
    /// Where the manifest store can be fetched (`application/c2pa`).
    pub endpoint: String,
    /// 0–100: 100 for an exact binding (the watermark payload), else how alike the PDQ hashes
    /// are, `100 × (256 − distance) / 256`, rounded down.
    #[schema(minimum = 0, maximum = 100)]
    pub similarity_score: u32,
    /// The proof the manifest belongs to (`GET /v1/proofs/{proof_id}`).
    #[schema(example = "px_0H8Z4K2M9QW3R")]
    pub proof_id: String,
}

/// The answer of the matching routes, best match first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Matches {
    pub matches: Vec<ManifestMatch>,
}

/// One algorithm in the supported list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SupportedAlgorithm {
    pub alg: String,
}

/// What this service resolves, as the Resolution API lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SupportedAlgorithms {
    pub watermarks: Vec<SupportedAlgorithm>,
    pub fingerprints: Vec<SupportedAlgorithm>,
}

/// The similarity score of a PDQ distance (of 256 bits).
fn similarity(distance: u32) -> u32 {
    100 * 256u32.saturating_sub(distance) / 256
}

fn decode_manifest(m: &ProofManifest) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(&m.manifest)
        .map_err(|e| ServiceError::internal(format!("kept manifest of {}: {e}", m.proof_id)))
}

fn clamp_results(max_results: Option<u32>) -> usize {
    max_results
        .unwrap_or(DEFAULT_MAX_RESULTS)
        .clamp(1, MAX_RESULTS) as usize
}

impl Services {
    /// Where a kept manifest can be fetched.
    pub fn manifest_url(&self, manifest_id: &str) -> String {
        format!(
            "{}/v1/manifests/{manifest_id}",
            self.config.public_url.trim_end_matches('/')
        )
    }

    /// The signed manifest store kept for a proof (any spelling of the id the parser accepts).
    pub async fn proof_manifest(&self, raw: &str) -> Result<Vec<u8>> {
        let id: ProofId = raw.parse().map_err(|_| ServiceError::NotFound)?;
        let m = self
            .db
            .proof_manifest(&id.to_string())
            .await?
            .ok_or(ServiceError::NotFound)?;
        decode_manifest(&m)
    }

    /// A kept manifest store by its label.
    pub async fn manifest(&self, manifest_id: &str) -> Result<Vec<u8>> {
        if !manifest_id.starts_with("urn:c2pa:") || manifest_id.len() > 200 {
            return Err(ServiceError::NotFound);
        }
        let m = self
            .db
            .manifest_by_id(manifest_id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        decode_manifest(&m)
    }

    /// The manifest id kept for a proof, if any.
    pub(crate) async fn manifest_id_of(&self, proof_id: &str) -> Result<Option<String>> {
        Ok(self
            .db
            .proof_manifest(proof_id)
            .await?
            .map(|m| m.manifest_id))
    }

    pub fn supported_algorithms() -> SupportedAlgorithms {
        SupportedAlgorithms {
            watermarks: vec![SupportedAlgorithm {
                alg: WATERMARK_BINDING_ALG.into(),
            }],
            fingerprints: vec![SupportedAlgorithm {
                alg: PDQ_BINDING_ALG.into(),
            }],
        }
    }

    /// The manifests a soft-binding value resolves to.
    pub async fn matches_by_binding(
        &self,
        alg: &str,
        value: &str,
        max_results: Option<u32>,
    ) -> Result<Matches> {
        let bad_value = || {
            ServiceError::request(format!(
                "value is not a {alg} binding value (base64 of {} bytes)",
                if alg == WATERMARK_BINDING_ALG { 8 } else { 32 }
            ))
        };
        let limit = clamp_results(max_results);
        let found = match BindingAlg::parse(alg)? {
            BindingAlg::Watermark => {
                let bits = watermark_of_binding_value(value).ok_or_else(bad_value)?;
                vec![(ProofId(bits).to_string(), 0)]
            }
            BindingAlg::Pdq => {
                let h = pdq_of_binding_value(value).ok_or_else(bad_value)?;
                self.near(&h, limit).await?
            }
        };
        self.matches_of(found, limit).await
    }

    /// The manifests a picture resolves to, through its soft bindings: the watermark (only
    /// when the picture also looks like the proof's own, since the watermark is no secret) and
    /// the PDQ hash. The picture is examined in memory and not kept.
    pub async fn matches_by_content(
        &self,
        body: Body,
        max_results: Option<u32>,
    ) -> Result<Matches> {
        let limit = clamp_results(max_results);
        let slot = self.decode_slot().await?;
        let s = self.clone();
        let (watermark, hash) = tokio::task::spawn_blocking(move || {
            let _held = (slot, &body);
            with_pipeline(s.limits, |p| {
                // Only the pixels matter here (a manifest of its own is not read): the upload
                // limits, one decode, then the watermark and the PDQ hash of the same pixels.
                pixseal_media::admit(body.bytes(), p.limits())?;
                let d = p.decode(body.bytes(), None)?;
                let px = &d.pixels;
                let h =
                    pixseal_provenance::pdq::hash_rgb(&px.data, px.width, px.height, px.channels)
                        .map(|r| r.hash);
                let wm = pixseal_provenance::detect_watermark(px);
                p.recycle(d.pixels);
                Ok::<_, pixseal_media::IngestError>((wm, h))
            })
        })
        .await??;
        let mut found: Vec<(String, u32)> = Vec::new();
        if let Some(h) = &hash {
            found = self.near(h, limit).await?;
        }
        if let Some(bits) = watermark {
            let id = ProofId(bits).to_string();
            // Shown only when the PDQ lookup found that very proof: a copied watermark on an
            // unrelated picture resolves to nothing.
            if let Some(pos) = found.iter().position(|(p, _)| *p == id) {
                let (p, _) = found.remove(pos);
                found.insert(0, (p, 0));
            }
        }
        self.matches_of(found, limit).await
    }

    async fn matches_of(&self, found: Vec<(String, u32)>, limit: usize) -> Result<Matches> {
        let mut matches = Vec::new();
        for (proof_id, distance) in found.into_iter().take(limit) {
            if let Some(manifest_id) = self.manifest_id_of(&proof_id).await? {
                matches.push(ManifestMatch {
                    endpoint: self.manifest_url(&manifest_id),
                    manifest_id,
                    similarity_score: similarity(distance),
                    proof_id,
                });
            }
        }
        Ok(Matches { matches })
    }

    /// Every proof whose PDQ is within `pdq_threshold` of `h`, closest first, at most `limit`.
    pub(crate) async fn near(&self, h: &Pdq, limit: usize) -> Result<Vec<(String, u32)>> {
        let mut all = self.within_threshold(h).await?;
        all.truncate(limit);
        Ok(all)
    }
}
