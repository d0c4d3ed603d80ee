//! A video upload: the body spooled encrypted as it arrives, then sanitized, its keyframes
//! hashed, signed and sealed into the store, without the video ever held in memory whole or
//! written anywhere readable.

use std::io::{Read, Seek, Write};
use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use pixseal_media::video::{self, FrameOptions, Source};
use pixseal_media::{IngestError, VideoInfo};
use pixseal_proof::ProofId;
use pixseal_provenance::ProofAssertion;
use pixseal_provenance::manifest::{
    SoftBindings, StampActions, VideoClaim, hash_keyframes, sign_video,
};
use pixseal_seal::{KeyPlacement, ObjectRef, Sealer, Spool};
use pixseal_store::{Artifact, ArtifactState, BlobKey, ProofManifest};
use sha2::{Digest, Sha256};

use crate::artifacts::{UploadPlan, Uploaded, b64, seal_fields};
use crate::clock::DAY_MS;
use crate::{Outcome, Result, ServiceError, Services};

/// A spool read by the video module.
pub(crate) struct Spooled<'a>(pub(crate) &'a Spool);

impl Source for Spooled<'_> {
    fn size(&self) -> u64 {
        self.0.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.0.read_at(offset, buf)
    }
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// Pieces of the sealed blob as they are handed to the store.
const PIECE: usize = 1024 * 1024;

/// What the blocking part of a video upload made.
struct Made {
    info: VideoInfo,
    manifest: Vec<u8>,
    manifest_id: String,
    /// The keyframes' PDQ hashes, indexed for near matches.
    keyframes: Vec<[u8; 32]>,
    sha256: String,
    bytes: u64,
    /// The sealed blob, ciphertext only, waiting to be stored.
    sealed: std::fs::File,
    wrapped: pixseal_seal::WrappedKey,
    label: Option<String>,
    client_ip: String,
}

fn io_error(e: std::io::Error) -> ServiceError {
    ServiceError::internal(format!("video spool: {e}"))
}

impl Services {
    /// `POST /v1/artifacts` with a video (MP4 or MOV, sniffed by the caller from its first
    /// bytes): `body` is read as it arrives, within `[video].max_file_bytes`. The stored
    /// artifact is the sanitized video (samples untouched, no visible mark) with a signed C2PA
    /// manifest carrying its keyframes' PDQ hashes.
    pub async fn upload_video<S, E>(
        &self,
        plan: UploadPlan,
        client_ip: IpAddr,
        mut body: S,
    ) -> Result<Uploaded>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin + Send,
        E: std::fmt::Display,
    {
        let actor = plan.caller.actor();
        let id = uuid::Uuid::now_v7().to_string();
        let limit = self.video.max_file_bytes;
        // Each upload in the works holds up to three times its size on disk (encrypted):
        // only so many at once, the others told to come back.
        let _spooling = self
            .video_spools
            .sem
            .clone()
            .try_acquire_owned()
            .map_err(|_| ServiceError::Busy("too many video uploads in progress"))?;
        // The body goes to an encrypted spool on a blocking thread as it arrives.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let dir = self.spool_dir.clone();
        let writer = tokio::task::spawn_blocking(move || -> std::io::Result<(Spool, String)> {
            let mut spool = Spool::new_in(&dir).map_err(std::io::Error::other)?;
            let mut hash = Sha256::new();
            while let Some(piece) = rx.blocking_recv() {
                hash.update(&piece);
                spool.write_all(&piece)?;
            }
            spool.flush()?;
            Ok((spool, hex::encode(hash.finalize())))
        });
        let mut read = 0u64;
        while let Some(piece) = body.next().await {
            let piece = piece.map_err(|e| {
                ServiceError::invalid("corrupt", format!("the upload stopped: {e}"))
            })?;
            read += piece.len() as u64;
            if read > limit {
                let e = IngestError::FileTooLarge { size: read, limit };
                return Err(self.refused(&actor, &id, e.into()).await);
            }
            if tx.send(piece).await.is_err() {
                break;
            }
        }
        drop(tx);
        let (input, original_sha256) = writer.await?.map_err(io_error)?;

        let video_slot = self.video_slot().await?;
        let slot = self.decode_slot().await?;
        let proof_bits = ProofId::random().map_err(|e| ServiceError::internal(e.to_string()))?;
        let (created_at, created_ms) = self.clock.now();
        let proof = ProofAssertion {
            proof_id: proof_bits.to_string(),
            issued_at: created_at.clone(),
            verify_url: self.verify_url(&proof_bits.to_string()),
        };
        let tenant = plan.caller.tenant().clone();
        let keys = self.sealing_keys(&tenant.id, &tenant.region).await?;
        let own_key = !Arc::ptr_eq(&keys, &self.keys);
        let (s, artifact_id, label) = (self.clone(), id.clone(), plan.label.clone());
        let (tenant_id, region) = (tenant.id.clone(), tenant.region.clone());
        let made = tokio::task::spawn_blocking(move || -> Result<Made> {
            let _slots = (video_slot, slot);
            let dir = &s.spool_dir;
            let spool = || Spool::new_in(dir).map_err(ServiceError::from);
            let mut clean = spool()?;
            let info = video::sanitize(&Spooled(&input), &s.video, &mut clean)?;
            drop(input);
            clean.flush().map_err(io_error)?;
            let bindings = SoftBindings {
                keyframes: hash_keyframes(&Spooled(&clean), &info, &FrameOptions::default())?,
                ..SoftBindings::default()
            };
            let mut stamped = spool()?;
            let (_, signed) = sign_video(
                &Spooled(&clean),
                info.format,
                &s.video,
                &mut stamped,
                &VideoClaim {
                    proof: &proof,
                    reencoded: false,
                    acts: &StampActions::default(),
                    bindings: &bindings,
                },
                s.provenance.signer.clone(),
            )?;
            drop(clean);
            stamped.rewind().map_err(io_error)?;

            let keys = keys.as_ref();
            let key_err = |e| crate::tenant_keys::key_error(own_key, &tenant_id, e);
            let obj = ObjectRef {
                object_id: &artifact_id,
                tenant: &tenant_id,
                region: &region,
            };
            // Ciphertext only: the sealed blob may sit in a plain file until it is stored.
            let mut sealed = tempfile::tempfile_in(dir.as_ref()).map_err(io_error)?;
            // Hashed as the sealer reads it: one pass over the signed video.
            let mut hashing = Hashing {
                inner: &mut stamped,
                hash: Sha256::new(),
            };
            let summary = Sealer::new(keys, KeyPlacement::Detached)
                .seal(&mut hashing, &mut sealed, &obj)
                .map_err(key_err)?;
            let hash = hashing.hash;
            sealed.rewind().map_err(io_error)?;
            let (label, client_ip) =
                seal_fields(keys, &region, &artifact_id, label.as_deref(), client_ip)
                    .map_err(key_err)?;
            Ok(Made {
                info,
                manifest: signed.manifest,
                manifest_id: signed.manifest_id,
                keyframes: bindings.keyframes.iter().map(|k| k.pdq.0).collect(),
                sha256: hex::encode(hash.finalize()),
                bytes: stamped.len(),
                sealed,
                wrapped: summary.wrapped_key,
                label,
                client_ip,
            })
        })
        .await?;
        let made = match made {
            Ok(m) => m,
            Err(e) => return Err(self.refused(&actor, &id, e).await),
        };

        let (expires_at, expires_ms) =
            pixseal_store::meta::at_ms(created_ms + plan.retention_days * DAY_MS);
        let artifact = Artifact {
            id: id.clone(),
            tenant_id: tenant.id.clone(),
            region: tenant.region.clone(),
            proof_id: proof_bits.to_string(),
            state: ArtifactState::Pending,
            sha256: made.sha256,
            original_sha256,
            content_type: made.info.format.media_type().into(),
            width: made.info.width as i64,
            height: made.info.height as i64,
            bytes: made.bytes as i64,
            wrapped_key: b64().encode(made.wrapped.to_bytes()),
            label_sealed: made.label,
            client_ip_sealed: Some(made.client_ip),
            created_at,
            created_ms,
            expires_at,
            expires_ms,
        };
        let manifest = ProofManifest {
            proof_id: artifact.proof_id.clone(),
            manifest_id: made.manifest_id,
            manifest: b64().encode(&made.manifest),
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<Option<Bytes>>(2);
        let mut sealed = made.sealed;
        let feed = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            loop {
                let mut piece = Vec::with_capacity(PIECE);
                (&mut sealed).take(PIECE as u64).read_to_end(&mut piece)?;
                if piece.is_empty() {
                    let _ = tx.blocking_send(None);
                    return Ok(());
                }
                if tx.blocking_send(Some(Bytes::from(piece))).is_err() {
                    return Ok(());
                }
            }
        });
        let key = BlobKey::new(&id).map_err(|e| ServiceError::internal(e.to_string()))?;
        // Stored by a task of its own: a request that times out or whose client leaves must
        // not stop halfway (a pending row, or an S3 multipart upload never aborted); the task
        // finishes the store or undoes it.
        let (s, keyframes) = (self.clone(), made.keyframes);
        let stored = tokio::spawn(async move {
            let put = async {
                s.blobs.put_stream(&artifact.region, &key, rx).await?;
                feed.await?.map_err(io_error)
            };
            s.store_with(&artifact, None, &manifest, &keyframes, put)
                .await?;
            s.audit(&actor, "artifact.create", &artifact.id, Outcome::Ok)
                .await;
            Ok::<_, ServiceError>(artifact)
        });
        let artifact = stored.await??;
        Ok(Uploaded {
            artifact: self.view(&artifact),
            label: artifact.label_sealed.is_some(),
        })
    }

    /// A refused upload, audited with its code.
    async fn refused(&self, actor: &crate::Actor, id: &str, e: ServiceError) -> ServiceError {
        self.audit_detail(actor, "artifact.create", id, Outcome::Refused, e.code())
            .await;
        e
    }
}
