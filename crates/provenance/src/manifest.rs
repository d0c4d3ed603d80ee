//! Building, signing and embedding pixseal's C2PA manifest in a JPEG, PNG or WebP.
//!
//! The manifest says what pixseal did and which proof it belongs to, and nothing about who
//! submitted the picture: no title or file name, no ingredient (the input's own provenance
//! and metadata were stripped on purpose), no thumbnail.

use std::io::Cursor;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::ProvenanceError;
use crate::identity::{ClaimSigner, SignAlg};

/// Label of pixseal's own assertion.
pub const PIXSEAL_ASSERTION: &str = "org.pixseal.proof";

/// The claim generator name; the version is this crate's (the workspace's).
pub const GENERATOR: &str = "pixseal";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// IPTC digital source type of the inception action (see `definition`).
pub const DIGITAL_SOURCE_TYPE: &str =
    "http://cv.iptc.org/newscodes/digitalsourcetype/algorithmicallyEnhanced";

/// The data of the `org.pixseal.proof` assertion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProofAssertion {
    /// `px_…` (SPEC §2).
    pub proof_id: String,
    /// RFC 3339 UTC.
    pub issued_at: String,
    /// Where anyone can look the proof up.
    pub verify_url: String,
}

/// What went into the stamped picture, for the actions assertion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StampActions {
    /// The invisible watermark carrying the proof id was embedded.
    pub watermarked: bool,
    /// A visible mark was drawn.
    pub visible_mark: bool,
}

/// The manifest definition (JSON for the c2pa builder).
fn definition(format: &str, proof: &ProofAssertion, acts: &StampActions) -> serde_json::Value {
    let agent = json!({"name": GENERATOR, "version": VERSION});
    let mut actions = vec![
        // The picture pixseal writes is a new asset made from the submitted pixels; its
        // input's provenance is deliberately not carried over (no ingredient), so the
        // inception is `created`. C2PA 2 requires a digitalSourceType there and IPTC has no
        // "unknown": `algorithmicallyEnhanced` (an existing picture, processed by software)
        // is the closest; the description says that the capture itself is not asserted.
        json!({"action": "c2pa.created", "softwareAgent": agent,
               "digitalSourceType": DIGITAL_SOURCE_TYPE,
               "description": "re-encoded by pixseal from the submitted picture's pixels; how they were captured is not asserted"}),
        json!({"action": "c2pa.edited", "softwareAgent": agent,
               "description": "sanitised: every piece of the input's metadata removed (EXIF, GPS, XMP, IPTC, ICC, comments, thumbnails); orientation and colour applied to the pixels"}),
    ];
    if acts.watermarked {
        actions.push(json!({"action": "c2pa.watermarked", "softwareAgent": agent,
                            "description": "invisible watermark carrying the proof id"}));
    }
    if acts.visible_mark {
        actions.push(json!({"action": "c2pa.edited", "softwareAgent": agent,
                            "description": "visible pixseal mark drawn"}));
    }
    json!({
        "claim_generator_info": [{"name": GENERATOR, "version": VERSION}],
        "format": format,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": actions}},
            {"label": PIXSEAL_ASSERTION, "data": proof},
        ],
    })
}

/// Adapts a [`ClaimSigner`] to the c2pa crate's signer.
struct Adapter<'a>(&'a dyn ClaimSigner);

impl c2pa::Signer for Adapter<'_> {
    fn sign(&self, data: &[u8]) -> c2pa::Result<Vec<u8>> {
        self.0
            .sign(data)
            .map_err(|e| c2pa::Error::OtherError(Box::new(e)))
    }
    fn alg(&self) -> c2pa::SigningAlg {
        self.0.alg().c2pa()
    }
    fn certs(&self) -> c2pa::Result<Vec<Vec<u8>>> {
        Ok(self.0.cert_chain().to_vec())
    }
    fn reserve_size(&self) -> usize {
        // Signature + certificates + COSE framing, with room to spare (no timestamp, no OCSP).
        let certs: usize = self.0.cert_chain().iter().map(Vec::len).sum();
        match self.0.alg() {
            SignAlg::Es256 | SignAlg::Es384 | SignAlg::Ed25519 => 2048 + certs,
        }
    }
}

/// Media types pixseal embeds manifests in.
pub fn media_type_for(bytes: &[u8]) -> Option<&'static str> {
    match pixseal_media::sniff(bytes) {
        Ok(pixseal_media::Format::Jpeg) => Some("image/jpeg"),
        Ok(pixseal_media::Format::Png) => Some("image/png"),
        Ok(pixseal_media::Format::WebP) => Some("image/webp"),
        _ => None,
    }
}

/// Sign a manifest for `proof` and embed it in `image` (JPEG, PNG or WebP, as pixseal's
/// encoder wrote it). Blocking and CPU-bound: run it off async threads.
pub fn embed(
    image: &[u8],
    proof: &ProofAssertion,
    acts: &StampActions,
    signer: &dyn ClaimSigner,
) -> Result<Vec<u8>, ProvenanceError> {
    let format = media_type_for(image).ok_or_else(|| {
        ProvenanceError::Embed("only JPEG, PNG and WebP outputs carry a manifest".into())
    })?;
    let ctx = c2pa::Context::new()
        .with_settings(json!({
            // Nothing is fetched and no thumbnail of the picture goes into the manifest.
            "builder": {"thumbnail": {"enabled": false}},
        }))
        .map_err(|e| ProvenanceError::Embed(format!("settings: {e}")))?;
    let mut builder = c2pa::Builder::from_context(ctx)
        .with_definition(definition(format, proof, acts))
        .map_err(|e| ProvenanceError::Embed(format!("manifest definition: {e}")))?;
    let mut src = Cursor::new(image);
    let mut dst = Cursor::new(Vec::with_capacity(image.len() + 32 * 1024));
    builder
        .sign(&Adapter(signer), format, &mut src, &mut dst)
        .map_err(|e| match e {
            c2pa::Error::OtherError(inner) => ProvenanceError::Signing(inner.to_string()),
            other => ProvenanceError::Embed(other.to_string()),
        })?;
    Ok(dst.into_inner())
}
