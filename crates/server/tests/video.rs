//! `POST /v1/verify` with MP4/MOV videos: a video signed by this installation is `verified`, a
//! sanitized one without a manifest `not_stamped`, one with a changed sample `tampered`, and a
//! hostile one a 4xx naming the limit, never a 5xx.

use pixseal_media::VideoLimits;
use pixseal_media::video;
use pixseal_provenance::ProofAssertion;
use pixseal_provenance::manifest::{SoftBindings, embed_video};
use pixseal_testkit::TestApp;
use pixseal_testkit::video::{Clip, Metadata, find_box, put_u32};
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
    embed_video(
        "video/mp4",
        &mut std::io::Cursor::new(&clean),
        &mut signed,
        &proof,
        &SoftBindings::default(),
        signer.as_ref(),
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
