//! Videos through the HTTP routes: `POST /v1/artifacts` stores a phone clip sanitized and
//! signed (spooled encrypted, never held whole or written readable), the content route plays
//! it back in byte ranges, and `POST /v1/verify` judges the exact stored bytes: `verified`, a
//! sanitized copy without a manifest `not_stamped`, one with a changed sample `tampered`, and a
//! hostile one a 4xx naming the limit, never a 5xx.

use pixseal_media::video;
use pixseal_media::{VideoFormat, VideoLimits};
use pixseal_provenance::ProofAssertion;
use pixseal_provenance::manifest::{SoftBindings, StampActions, VideoClaim, sign_video};
use pixseal_testkit::TestApp;
use pixseal_testkit::video::{
    Clip, Metadata, PERSONAL, assert_no_metadata, find_box, packet_hashes, put_u32,
    reencode_half_bitrate,
};
use reqwest::StatusCode;
use serde_json::Value;

async fn verify(app: &TestApp, body: Vec<u8>) -> (StatusCode, Value) {
    let r = app
        .client
        .post(format!("{}/v1/verify", app.url))
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

#[tokio::test]
async fn videos_are_verified_by_their_manifest() {
    let app = TestApp::spawn(TestApp::config()).await;
    let clip = Clip {
        metadata: Metadata::UserData,
        ..Clip::default()
    }
    .make();
    let mut clean = Vec::new();
    video::sanitize(&clip[..], &VideoLimits::default(), &mut clean).unwrap();
    let proof = ProofAssertion {
        proof_id: "px_0H8Z4K2M9QW3R".into(),
        issued_at: "2026-12-07T00:00:00Z".into(),
        verify_url: format!("{}/v/px_0H8Z4K2M9QW3R", app.url),
    };
    let signer = app.state.services.provenance.signer.clone();
    let mut signed = std::io::Cursor::new(Vec::new());
    sign_video(
        &clean[..],
        VideoFormat::Mp4,
        &VideoLimits::default(),
        &mut signed,
        &VideoClaim {
            proof: &proof,
            reencoded: false,
            acts: &StampActions::default(),
            bindings: &SoftBindings::default(),
        },
        signer,
    )
    .unwrap();
    let signed = signed.into_inner();

    let (st, v) = verify(&app, signed.clone()).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["verdict"], "verified", "{v}");
    assert_eq!(v["proof_id"], "px_0H8Z4K2M9QW3R", "{v}");

    let (st, v) = verify(&app, clean).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["verdict"], "not_stamped", "{v}");

    let mut changed = signed.clone();
    let mdat = find_box(&changed, &["mdat"]).unwrap();
    changed[mdat.start + mdat.len() / 2] ^= 1;
    let (st, v) = verify(&app, changed).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["verdict"], "tampered", "{v}");

    // A 60-minute claim is refused before the C2PA reader walks the file.
    let mut long = signed;
    let mvhd = find_box(&long, &["moov", "mvhd"]).unwrap();
    let ts = u32::from_be_bytes(long[mvhd.start + 20..mvhd.start + 24].try_into().unwrap());
    put_u32(&mut long, mvhd.start + 24, ts * 3600);
    let (st, v) = verify(&app, long).await;
    assert!(st.is_client_error(), "{st} {v}");
    assert_eq!(v["error"]["code"], "video_too_long", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_seconds"),
        "{v}"
    );
}

const ALL: &[&str] = &["artifacts:write", "artifacts:read", "artifacts:delete"];

async fn upload(app: &TestApp, key: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let r = app
        .client
        .post(format!("{}/v1/artifacts?label=Alice", app.url))
        .bearer_auth(key)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

/// Every file under `dir`, read.
fn files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p, b));
        }
    }
    out
}

#[tokio::test]
async fn an_uploaded_video_is_stored_sanitized_signed_and_played_back_in_ranges() {
    let app = TestApp::spawn(TestApp::config()).await;
    let key = app.key("film", "us", ALL).await;
    let input = Clip::iphone_like().make();
    let (st, up) = upload(&app, &key, input.clone()).await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    assert_eq!(up["content_type"], "video/quicktime", "{up}");
    assert_eq!(
        (up["width"].as_i64(), up["height"].as_i64()),
        (Some(320), Some(240))
    );
    assert_eq!(up["label"], true, "{up}");
    let id = up["id"].as_str().unwrap();
    let stored = app.content(&key, id).await;
    assert_eq!(stored.len() as i64, up["bytes"].as_i64().unwrap());
    use sha2::Digest;
    assert_eq!(
        up["sha256"],
        hex::encode(sha2::Sha256::digest(&stored)),
        "{up}"
    );

    // What is stored is the clip without its metadata, its samples untouched, signed.
    assert_no_metadata(&stored, "the stored video");
    assert_eq!(packet_hashes(&stored), packet_hashes(&input));
    let (st, v) = verify(&app, stored.clone()).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["verdict"], "verified", "{v}");
    assert_eq!(v["proof_id"], up["proof_id"], "{v}");

    // Nothing of the clip reached the disk readable: no metadata, no samples in the clear,
    // and no spool left behind.
    let mdat = find_box(&input, &["mdat"]).unwrap();
    let sample = &input[mdat.start + 64..mdat.start + 128];
    for (path, bytes) in files(app.data.path()) {
        for s in PERSONAL {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "{} holds {s:?}",
                path.display()
            );
        }
        assert!(
            !bytes.windows(sample.len()).any(|w| w == sample),
            "{} holds the clip's samples",
            path.display()
        );
    }
    let spool = app.data.path().join("spool");
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);

    // A player's seek: the bytes asked for, from the segments that hold them.
    let r = app
        .client
        .get(format!("{}/v1/artifacts/{id}/content", app.url))
        .bearer_auth(&key)
        .header("range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["content-type"], "video/quicktime");
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 1000-1999/{}", stored.len()).as_str()
    );
    assert_eq!(r.bytes().await.unwrap(), &stored[1000..2000]);
}

#[tokio::test]
async fn hostile_or_oversized_video_uploads_are_refused_and_nothing_is_stored() {
    let mut config = TestApp::config();
    config.video.max_file_bytes = 400_000;
    let app = TestApp::spawn(config).await;
    let key = app.key("film", "us", ALL).await;
    let ok = Clip::plain().make();

    let mut long = ok.clone();
    let mvhd = find_box(&long, &["moov", "mvhd"]).unwrap();
    let ts = u32::from_be_bytes(long[mvhd.start + 20..mvhd.start + 24].try_into().unwrap());
    put_u32(&mut long, mvhd.start + 24, ts * 3600);
    let (st, v) = upload(&app, &key, long).await;
    assert!(st.is_client_error(), "{st} {v}");
    assert_eq!(v["error"]["code"], "video_too_long", "{v}");

    let mut big = ok.clone();
    big.resize(500_000, 0);
    let (st, v) = upload(&app, &key, big).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["error"]["code"], "file_too_large", "{v}");

    let cut = ok[..ok.len() - 1000].to_vec();
    let (st, v) = upload(&app, &key, cut).await;
    assert!(st.is_client_error(), "{st} {v}");

    let (st, list) = (
        StatusCode::OK,
        app.client
            .get(format!("{}/v1/artifacts", app.url))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap(),
    );
    assert_eq!(
        (st, list["total"].as_i64()),
        (StatusCode::OK, Some(0)),
        "{list}"
    );
    assert_eq!(
        std::fs::read_dir(app.data.path().join("spool"))
            .unwrap()
            .count(),
        0
    );
    // The limits hold a good clip too.
    let (st, v) = upload(&app, &key, ok).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
}

/// A 2-second 640×360 clip uploaded to a new service: the service, the clip, the upload's
/// answer and the stored (sanitized, signed) bytes.
async fn stored_clip() -> (TestApp, Clip, Value, Vec<u8>) {
    let app = TestApp::spawn(TestApp::config()).await;
    let key = app.key("film", "us", ALL).await;
    let clip = Clip {
        seconds: 2.0,
        width: 640,
        height: 360,
        ..Clip::default()
    };
    let (st, up) = upload(&app, &key, clip.make()).await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let stored = app.content(&key, up["id"].as_str().unwrap()).await;
    (app, clip, up, stored)
}

/// A copy of a stored video re-encoded at half its bit rate (its manifest gone with it) is
/// found by its keyframes' likeness: `near_match` with the proof's record; a different video
/// is not.
#[tokio::test]
async fn a_reencoded_copy_of_a_stored_video_is_a_near_match() {
    let (app, clip, up, stored) = stored_clip().await;

    let copy = reencode_half_bitrate(&stored);
    assert!(copy.len() < stored.len(), "{} {}", copy.len(), stored.len());
    let (st, v) = verify(&app, copy).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["verdict"], "near_match", "{v}");
    assert_eq!(v["proof_id"], up["proof_id"], "{v}");
    assert_eq!(v["record"]["proof_id"], up["proof_id"], "{v}");
    assert!(v["pdq_distance"].as_u64().unwrap() <= 31, "{v}");
    assert!(v["credential"]["manifest_url"].is_string(), "{v}");

    let other = Clip {
        pattern: "smptehdbars",
        ..clip
    }
    .make();
    let (st, v) = verify(&app, other).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["verdict"], "not_stamped", "{v}");
    assert!(v["record"].is_null(), "{v}");
}

/// `bytes` with its frames decoded, marked with the invisible watermark of `proof_id` and
/// encoded again (as `pixseal stamp --reencode` marks them), without a manifest or metadata.
fn with_watermark_of(bytes: &[u8], proof_id: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let (clean, out) = (dir.path().join("clean.mp4"), dir.path().join("marked.mp4"));
    let info = video::sanitize(
        bytes,
        &VideoLimits::default(),
        &mut std::fs::File::create(&clean).unwrap(),
    )
    .unwrap();
    let id: pixseal_proof::ProofId = proof_id.parse().unwrap();
    let mut marked = 0;
    video::reencode(
        &clean,
        &info,
        &out,
        &video::ReencodeOptions::default(),
        &mut |px| {
            pixseal_watermark::embed(px, id, pixseal_watermark::Strength::default()).unwrap();
            marked += 1;
        },
    )
    .unwrap();
    assert!(marked > 0);
    std::fs::read(out).unwrap()
}

/// `POST /v1/verify` reads the watermark in a manifest-less video's frames, and shows the
/// proof's record only when the video's keyframes look like those the proof was issued for: the
/// watermark is no secret, and anyone may put a real proof id on any video.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watermarked_video_is_matched_to_its_proof_by_its_keyframes() {
    let (app, clip, up, stored) = stored_clip().await;
    let proof_id = up["proof_id"].as_str().unwrap().to_string();

    // The stored video itself, its frames marked with its own proof id.
    let id = proof_id.clone();
    let marked = tokio::task::spawn_blocking(move || with_watermark_of(&stored, &id))
        .await
        .unwrap();
    let (st, v) = verify(&app, marked).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["verdict"], "watermark_only", "{v}");
    assert_eq!(v["proof_id"], proof_id.as_str(), "{v}");
    assert_eq!(v["proof_match"], "matches", "{v}");
    assert_eq!(v["record"]["proof_id"], proof_id.as_str(), "{v}");
    assert!(v["pdq_distance"].as_u64().unwrap() <= 31, "{v}");
    assert!(v["credential"]["manifest_url"].is_string(), "{v}");

    // Another video carrying the same proof id: read, but not vouched for.
    let other = Clip {
        pattern: "testsrc",
        ..clip
    }
    .make();
    let id = proof_id.clone();
    let forged = tokio::task::spawn_blocking(move || with_watermark_of(&other, &id))
        .await
        .unwrap();
    let (st, v) = verify(&app, forged).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["verdict"], "watermark_only", "{v}");
    assert_eq!(v["proof_id"], proof_id.as_str(), "{v}");
    assert_eq!(v["proof_match"], "mismatch", "{v}");
    assert!(v["record"].is_null(), "{v}");
    assert!(v["credential"].is_null(), "{v}");
    let message = v["message"].as_str().unwrap();
    assert!(
        message.contains("does not look like the video"),
        "{message}"
    );
}
