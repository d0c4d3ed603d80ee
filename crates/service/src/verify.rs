//! Verification: the offline verdict of one file (the same for `pixseal verify` and
//! `POST /v1/verify`), the service's record lookups on top of it (watermark → proof record,
//! PDQ → near match), and the public proof record.

use pixseal_media::video::{self, FrameOptions, FrameShape};
use pixseal_media::{IngestError, Pipeline, Pixels, VideoLimits, sniff_video};
use pixseal_proof::ProofId;
use pixseal_provenance::manifest::hash_keyframes;
use pixseal_provenance::pdq::{self, Pdq};
use pixseal_provenance::stamp::FrameWatermark;
use pixseal_provenance::{Report, Verdict, Verifier, detect_watermark};
use pixseal_store::{DbError, ProofRecord, ProofStatus};
use serde::Serialize;
use utoipa::ToSchema;

use crate::budget::Body;
use crate::work::with_pipeline;
use crate::{Result, ServiceError, Services};

/// What one file says about itself, offline.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Verification {
    #[serde(flatten)]
    pub report: Report,
    /// The proof the file names: from a manifest, or from the invisible watermark.
    pub proof_id: Option<String>,
    /// The watermark's payload, when it was read (no manifest).
    #[serde(skip)]
    pub watermark: Option<u64>,
    /// The PDQ hash of the pixels, when asked for and no manifest spoke.
    #[serde(skip)]
    pub pdq: Option<Pdq>,
    /// A video's PDQ hashes of its keyframes, when asked for and no manifest spoke (empty
    /// when they could not be decoded); `None` for a picture.
    #[serde(skip)]
    pub keyframes: Option<Vec<Pdq>>,
}

/// Judge one file held in memory: its C2PA manifest; without one, the invisible watermark
/// (`watermark_only`); `with_pdq` also hashes pictures that carry neither, for a near-match
/// lookup. Only a file whose size, signature and header pass the limits is parsed at all
/// (the C2PA reader included); one that then cannot be decoded simply has no watermark.
pub fn examine(
    verifier: &Verifier,
    pipeline: &mut Pipeline,
    video: &VideoLimits,
    bytes: &[u8],
    with_pdq: bool,
) -> Result<Verification, IngestError> {
    if sniff_video(bytes).is_some() {
        // A video's boxes pass their limits before the C2PA reader walks them.
        pixseal_media::video::probe(bytes, video)?;
        return Ok(video_verification(verifier.verify(bytes)));
    }
    pixseal_media::admit(bytes, pipeline.limits())?;
    let mut report = verifier.verify(bytes);
    let (mut watermark, mut hash) = (None, None);
    if report.verdict == Verdict::NotStamped
        && let Ok(d) = pipeline.decode(bytes, None)
    {
        watermark = detect_watermark(&d.pixels);
        if let Some(bits) = watermark {
            let id = ProofId(bits).to_string();
            report.verdict = Verdict::WatermarkOnly;
            report.message =
                format!("no C2PA manifest, but the invisible watermark carries proof {id}");
        }
        // Hashed with a watermark too: the watermark carries no secret, so only the likeness
        // of the picture to the proof's own says the proof is about this picture.
        if with_pdq {
            let p = &d.pixels;
            hash = pdq::hash_rgb(&p.data, p.width, p.height, p.channels).map(|r| r.hash);
        }
        pipeline.recycle(d.pixels);
    }
    let proof_id = report
        .proof_id()
        .map(str::to_string)
        .or_else(|| watermark.map(|b| ProofId(b).to_string()));
    Ok(Verification {
        report,
        proof_id,
        watermark,
        pdq: hash,
        keyframes: None,
    })
}

/// Judge a video read from its file (`pixseal verify`), never held in memory whole: its boxes
/// pass the limits, then its manifest is read from the file; without one, its frames are
/// looked at ([`look_at_frames`], the CLI's budget: the whole video, 60 s), and `with_pdq` also
/// hashes its keyframes for a near-match lookup.
pub fn examine_video_file(
    verifier: &Verifier,
    video: &VideoLimits,
    file: &std::fs::File,
    spool_dir: &std::path::Path,
    with_pdq: bool,
) -> Result<Verification, IngestError> {
    let info = pixseal_media::video::probe(file, video)?;
    let mut v = video_verification(verifier.verify_stream(info.format.media_type(), file));
    look_at_frames(&mut v, file, video, spool_dir, with_pdq, FrameBudget::WHOLE)?;
    Ok(v)
}

/// How much of a manifest-less video's frames is decoded to look for its watermark.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameBudget {
    /// Frames are picked in the video's first this many ms (every frame up to the last one
    /// picked is decoded).
    first_ms: u64,
    /// Each decode (the frames, the keyframes) is killed past this.
    timeout: std::time::Duration,
}

impl FrameBudget {
    /// `pixseal verify`: the user's own machine and file, frames from all of it.
    const WHOLE: FrameBudget = FrameBudget {
        first_ms: u64::MAX,
        timeout: std::time::Duration::from_secs(60),
    };
    /// `POST /v1/verify`: anyone may ask, holding a decode slot, so the watermark's frames
    /// come from the first 8 s (whatever the video's length, no more of it is decoded for
    /// them; the keyframes' pass reads only keyframes) and each of the two decodes has 8 s:
    /// with the sanitize, the work stays within the request timeout (30 s by default).
    pub(crate) const SERVER: FrameBudget = FrameBudget {
        first_ms: 8_000,
        timeout: std::time::Duration::from_secs(8),
    };
}

/// What the frames of a video with no manifest say, into `v`: the invisible watermark of a
/// video stamped with `--reencode` (read from up to 24 frames together, [`video_watermark`])
/// makes it `watermark_only`; `with_pdq` also hashes up to 16 keyframes (PDQ) for a near match
/// or for checking that a watermarked copy looks like its proof's video. The video is
/// sanitized once into an encrypted spool that both decodes read front to back. Frames that
/// cannot be decoded are said in the message ("not stamped" alone would claim they were
/// looked at); only an internal failure is an error.
pub(crate) fn look_at_frames<S: pixseal_media::video::Source + ?Sized>(
    v: &mut Verification,
    src: &S,
    limits: &VideoLimits,
    spool_dir: &std::path::Path,
    with_pdq: bool,
    budget: FrameBudget,
) -> Result<(), IngestError> {
    if v.report.verdict != Verdict::NotStamped {
        return Ok(());
    }
    if with_pdq {
        v.keyframes = Some(Vec::new());
    }
    let mut unread = None;
    let mut note = |e: IngestError| match e {
        IngestError::Internal(_) => Err(e),
        e => {
            unread.get_or_insert(e);
            Ok(())
        }
    };
    match sanitized_spool(src, limits, spool_dir) {
        Ok((spool, info)) => {
            let spooled = crate::video::Spooled(&spool);
            match video_watermark(&spooled, &info, budget) {
                Ok(Some(bits)) => {
                    let id = ProofId(bits).to_string();
                    v.report.verdict = Verdict::WatermarkOnly;
                    v.report.message = format!(
                        "no C2PA manifest, but the invisible watermark in its frames carries proof {id}"
                    );
                    v.proof_id = Some(id);
                    v.watermark = Some(bits);
                }
                Ok(None) => {}
                Err(e) => note(e)?,
            }
            if let Some(keyframes) = v.keyframes.as_mut() {
                // Only keyframes are decoded (cheap): spread over the whole video.
                let opts = FrameOptions {
                    max_frames: 16,
                    timeout: budget.timeout,
                    ..FrameOptions::default()
                };
                match hash_keyframes(&spooled, &info, &opts) {
                    Ok(hashes) => keyframes.extend(hashes.into_iter().map(|k| k.pdq)),
                    Err(e) => note(e)?,
                }
            }
        }
        Err(e) => note(e)?,
    }
    if let Some(e) = unread {
        v.report.message = format!("{}; its frames could not be read: {e}", v.report.message);
    }
    Ok(())
}

/// The invisible watermark of a video stamped with `--reencode`, read from up to 24 of its
/// frames spread over it, or over its first `budget.first_ms` (any frames, not only
/// keyframes: a re-encoded copy may have few), each added to the search as it is decoded,
/// upright with their short side at most 540 px (the detector's fine grid is 512) and read
/// together. `src` is a sanitized video (its `moov` first: the decoder reads it front to
/// back).
fn video_watermark<S: pixseal_media::video::Source + ?Sized + Sync>(
    src: &S,
    info: &pixseal_media::VideoInfo,
    budget: FrameBudget,
) -> Result<Option<u64>, IngestError> {
    let opts = FrameOptions {
        shape: FrameShape::Upright { max_short: 540 },
        any_frame: true,
        max_frames: 24,
        min_gap_ms: 100,
        first_ms: budget.first_ms,
        timeout: budget.timeout,
        ..FrameOptions::default()
    };
    let mut frames = FrameWatermark::default();
    video::each_keyframe(src, info, &opts, |f| {
        frames.add(&Pixels::new(f.width, f.height, 3, f.rgb))
    })?;
    Ok(frames.detect())
}

/// A sanitized copy of a video in an encrypted spool under `dir` (the keyframe decoder reads it
/// front to back), and what the sanitize said.
fn sanitized_spool<S: pixseal_media::video::Source + ?Sized>(
    src: &S,
    limits: &VideoLimits,
    dir: &std::path::Path,
) -> Result<(pixseal_seal::Spool, pixseal_media::VideoInfo), IngestError> {
    let internal = |e: &dyn std::fmt::Display| IngestError::Internal(format!("video spool: {e}"));
    let mut spool = pixseal_seal::Spool::new_in(dir).map_err(|e| internal(&e))?;
    let info = video::sanitize(src, limits, &mut spool)?;
    std::io::Write::flush(&mut spool).map_err(|e| internal(&e))?;
    Ok((spool, info))
}

/// A video's verification from its manifest.
fn video_verification(report: Report) -> Verification {
    Verification {
        proof_id: report.proof_id().map(str::to_string),
        report,
        watermark: None,
        pdq: None,
        keyframes: None,
    }
}

/// The public view of a proof record (SPEC §5): no hashes beyond what its receipt carries.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProofView {
    #[schema(example = "px_0H8Z4K2M9QW3R")]
    pub proof_id: String,
    #[schema(format = DateTime)]
    pub issued_at: String,
    /// Display name of the issuing installation.
    pub issuer: String,
    pub status: ProofStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime, nullable = false)]
    pub purged_at: Option<String>,
    /// The signed deletion receipt once purged, in its public view (a version 1 receipt,
    /// which names the artifact, is left out).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub receipt: Option<pixseal_proof::SignedReceipt>,
    /// The signed C2PA manifest the proof was issued with (`application/c2pa`), kept past the
    /// purge: the credential of the stamped file, for copies that lost theirs.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub manifest_url: Option<String>,
}

/// The original credential of a proof, shown for a file that carries no manifest of its own
/// but was matched to the proof by its watermark or its likeness.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Credential {
    /// The manifest's label, `urn:c2pa:…`.
    pub manifest_id: String,
    /// Where the signed manifest store can be fetched (`application/c2pa`).
    pub manifest_url: String,
    /// In plain words: these bytes are not the signed ones.
    pub statement: String,
}

/// The service's verdict on an uploaded file: the offline verdict, and what this
/// installation knows of the proof it names.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Verified {
    #[serde(flatten)]
    pub verification: Verification,
    /// The proof record, for `verified`, `near_match`, and `watermark_only` when the picture
    /// matches its proof.
    pub record: Option<ProofView>,
    /// `near_match` and `watermark_only`: Hamming distance of the PDQ hashes (of 256).
    pub pdq_distance: Option<u32>,
    /// `watermark_only` with a known proof: whether the picture looks like the one the proof was
    /// issued for. The watermark is no secret (anyone can mark any picture with a real proof
    /// id), so the record is shown only on `matches`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof_match: Option<ProofMatch>,
    /// `watermark_only` and `near_match` with a record: the credential the proof was issued
    /// with, and a statement that this file is not the file it signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<Credential>,
}

/// Whether a picture whose watermark names a proof looks like the picture that proof was
/// issued for (PDQ within `pdq_threshold`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProofMatch {
    /// It does: the proof's record is shown.
    Matches,
    /// It does not: the watermark names a proof issued for another picture (for a video: none
    /// of its keyframes is near one stored for the proof).
    Mismatch,
    /// One of the two pictures is too small to hash, or a video's keyframes could not be
    /// hashed: nothing says they are the same, so the record is not shown.
    Unchecked,
}

impl Services {
    /// Verify a file held in memory for the duration of the call only: nothing of it is
    /// stored or logged.
    pub async fn verify(&self, body: Body) -> Result<Verified> {
        let slot = self.decode_slot().await?;
        let s = self.clone();
        let mut v = tokio::task::spawn_blocking(move || -> Result<_> {
            // Released when the work ends, also when the request stopped waiting for it.
            let _held = (slot, &body);
            let mut v = with_pipeline(s.limits, |p| {
                examine(&s.provenance.verifier, p, &s.video, body.bytes(), true)
            })?;
            if sniff_video(body.bytes()).is_some() {
                let (bytes, limits) = (&body.bytes()[..], &s.video);
                look_at_frames(
                    &mut v,
                    bytes,
                    limits,
                    &s.spool_dir,
                    true,
                    FrameBudget::SERVER,
                )?;
            }
            Ok(v)
        })
        .await??;
        let mut record = None;
        let mut distance = None;
        let mut proof_match = None;
        match v.report.verdict {
            // Only a manifest signed under a trusted anchor vouches for its proof id; an
            // untrusted or altered manifest may claim any id, so no record is attached to it.
            Verdict::Verified => {
                if let Some(id) = v.report.proof_id() {
                    record = self.record_of(id).await?;
                }
            }
            Verdict::WatermarkOnly => {
                if let Some(id) = v.proof_id.clone()
                    && let Some(r) = self.record_of(&id).await?
                {
                    let threshold = self.provenance.pdq_threshold;
                    let what = if v.keyframes.is_some() {
                        "video"
                    } else {
                        "picture"
                    };
                    // Ok: the distance, within the threshold; Err: beyond it (the distance when
                    // known); None: nothing to compare. A picture's one hash against the
                    // proof's; a video's keyframes against the proof's, through the index.
                    let likeness: Option<Result<u32, Option<u32>>> = match &v.keyframes {
                        None => {
                            let theirs = r.pdq.as_deref().and_then(|h| h.parse::<Pdq>().ok());
                            v.pdq.as_ref().zip(theirs).map(|(ours, theirs)| {
                                let d = theirs.distance(ours);
                                if d <= threshold { Ok(d) } else { Err(Some(d)) }
                            })
                        }
                        Some(k) if k.is_empty() => None,
                        Some(k) => Some(self.keyframes_near(k, &id).await?.ok_or(None)),
                    };
                    match likeness {
                        Some(Ok(d)) => {
                            distance = Some(d);
                            proof_match = Some(ProofMatch::Matches);
                            record = Some(r);
                        }
                        Some(Err(d)) => {
                            proof_match = Some(ProofMatch::Mismatch);
                            distance = d;
                            let how = match d {
                                Some(d) => format!("PDQ distance {d} of 256, over {threshold}"),
                                None => format!(
                                    "none of its keyframes within PDQ distance {threshold} of those stored for the proof"
                                ),
                            };
                            v.report.message = format!(
                                "the {what} carries the invisible watermark of proof {id}, but it does not look like the {what} that proof was issued for ({how}): the watermark may have been copied onto it; the proof's record is not shown"
                            );
                        }
                        None => {
                            proof_match = Some(ProofMatch::Unchecked);
                            let why = if v.keyframes.is_some() {
                                "its keyframes could not be hashed"
                            } else {
                                "it is too small"
                            };
                            v.report.message = format!(
                                "the {what} carries the invisible watermark of proof {id}, but {why} to check that it is the {what} that proof was issued for; the proof's record is not shown"
                            );
                        }
                    }
                }
            }
            Verdict::NotStamped => {
                if let Some(h) = &v.pdq
                    && let Some((id, d)) = self.nearest(h).await?
                {
                    v.report.verdict = Verdict::NearMatch;
                    v.report.message = format!(
                        "no manifest or watermark, but the picture looks like stamped proof {id} (PDQ distance {d} of 256)"
                    );
                    record = self.record_of(&id).await?;
                    distance = Some(d);
                }
                let mut closest: Option<(String, u32)> = None;
                for h in v.keyframes.iter().flatten() {
                    if let Some((id, d)) = self.nearest(h).await?
                        && closest.as_ref().is_none_or(|(_, best)| d < *best)
                    {
                        closest = Some((id, d));
                    }
                }
                if let Some((id, d)) = closest {
                    v.report.verdict = Verdict::NearMatch;
                    v.report.message = format!(
                        "no manifest, but the video's keyframes look like those of stamped proof {id} (PDQ distance {d} of 256)"
                    );
                    record = self.record_of(&id).await?;
                    distance = Some(d);
                }
            }
            _ => {}
        }
        if let Some(r) = &record {
            v.proof_id = Some(r.proof_id.clone());
        }
        // The manifest's own assertion (its verify_url may point anywhere when the manifest is
        // not trusted) is not repeated: `record` is what this installation vouches for.
        v.report.proof = None;
        let record = match &record {
            Some(r) => Some(self.public_record(r).await?),
            None => None,
        };
        let credential = match (&record, v.report.verdict) {
            (Some(r), Verdict::WatermarkOnly | Verdict::NearMatch) => self
                .manifest_id_of(&r.proof_id)
                .await?
                .map(|manifest_id| Credential {
                    manifest_url: self.manifest_url(&manifest_id),
                    manifest_id,
                    statement: format!(
                        "This file carries no C2PA manifest: it is not the file that was signed. It was matched to proof {} by its {}; the credential shown is the one signed for the stamped original, and its signature covers those bytes, not these.",
                        r.proof_id,
                        if v.report.verdict == Verdict::WatermarkOnly {
                            "invisible watermark and its likeness to the original"
                        } else {
                            "likeness to the original (perceptual hash)"
                        }
                    ),
                }),
            _ => None,
        };
        Ok(Verified {
            verification: v,
            record,
            pdq_distance: distance,
            proof_match,
            credential,
        })
    }

    /// The public record of a proof id (any spelling the parser accepts: lower case and
    /// Crockford aliases find it).
    pub async fn proof(&self, raw: &str) -> Result<ProofView> {
        let id: ProofId = raw.parse().map_err(|_| ServiceError::NotFound)?;
        let p = self
            .record_of(&id.to_string())
            .await?
            .ok_or(ServiceError::NotFound)?;
        self.public_record(&p).await
    }

    async fn record_of(&self, proof_id: &str) -> Result<Option<ProofRecord>> {
        match self.db.proof(proof_id).await {
            Ok(p) => Ok(Some(p)),
            Err(DbError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn public_record(&self, p: &ProofRecord) -> Result<ProofView> {
        let mut view = ProofView {
            proof_id: p.proof_id.clone(),
            issued_at: p.issued_at.clone(),
            issuer: self.provenance.issuer_name.clone(),
            status: p.status,
            purged_at: None,
            receipt: None,
            manifest_url: self
                .manifest_id_of(&p.proof_id)
                .await?
                .map(|m| self.manifest_url(&m)),
        };
        if p.status == ProofStatus::Purged {
            view.purged_at = p.purged_at.clone();
            if let Some(rid) = &p.receipt_id {
                view.receipt = crate::erase::public_view(&self.db.receipt(rid).await?)?;
            }
        }
        Ok(view)
    }

    /// The smallest distance within `pdq_threshold` between one of a video's keyframe hashes and
    /// the hashes stored under proof `id` (none when no keyframe comes that close).
    async fn keyframes_near(&self, keyframes: &[Pdq], id: &str) -> Result<Option<u32>> {
        let mut best: Option<u32> = None;
        for h in keyframes {
            for (proof, d) in self.within_threshold(h).await? {
                if proof == id && best.is_none_or(|b| d < b) {
                    best = Some(d);
                }
            }
        }
        Ok(best)
    }

    /// The closest stored PDQ within the threshold: (proof id, distance).
    async fn nearest(&self, h: &Pdq) -> Result<Option<(String, u32)>> {
        Ok(self.near(h, 1).await?.pop())
    }

    /// Every stored PDQ within `pdq_threshold` of `h`: (proof id, distance), closest first,
    /// through the near-match index (`pixseal_store::pdq_index`).
    pub(crate) async fn within_threshold(&self, h: &Pdq) -> Result<Vec<(String, u32)>> {
        Ok(self
            .db
            .pdq_near(&h.0, self.provenance.pdq_threshold)
            .await?)
    }
}
