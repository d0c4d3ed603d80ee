//! `pixseal verify FILE --server URL` against a real service: the record found by the manifest,
//! by the watermark, by likeness; a copied watermark finds nothing; a purged proof's receipt is
//! checked with the server's key; an unreachable server is an error, never a silent pass.

mod common;

use std::path::{Path, PathBuf};

use common::{fixtures, json_lines, pixseal};
use pixseal_testkit::TestApp;
use serde_json::Value;

/// `pixseal --json verify FILE --server URL --trust ROOT` (run off the runtime serving the app).
async fn verify(dir: &Path, file: &Path, url: &str, root: &Path) -> (Option<i32>, Value) {
    let args: Vec<String> = [
        "--data-dir",
        dir.to_str().unwrap(),
        "--json",
        "verify",
        file.to_str().unwrap(),
        "--server",
        url,
        "--trust",
        root.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = pixseal(&args);
        let line = json_lines(&out).pop().unwrap_or(Value::Null);
        (out.status.code(), line)
    })
    .await
    .unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_asks_the_server_with_bindings_only() {
    let app = TestApp::spawn(TestApp::config()).await;
    let key = app
        .key(
            "cli",
            "us",
            &["artifacts:write", "artifacts:read", "artifacts:delete"],
        )
        .await;
    let root = app.data.path().join("c2pa/root.pem");
    let d = tempfile::tempdir().unwrap();
    let photo = std::fs::read(fixtures().join("photos/garden.jpg")).unwrap();
    let up: Value = app
        .client
        .post(format!("{}/v1/artifacts?visible=false", app.url))
        .bearer_auth(&key)
        .body(photo.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (id, proof_id) = (
        up["id"].as_str().unwrap().to_string(),
        up["proof_id"].as_str().unwrap().to_string(),
    );
    let stamped = app
        .client
        .get(format!("{}/v1/artifacts/{id}/content", app.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let stamped = write(d.path(), "stamped.webp", &stamped);
    let data = d.path().join("data");

    // By the manifest: verified, and the server's record.
    let (code, v) = verify(&data, &stamped, &app.url, &root).await;
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["verdict"], "verified", "{v}");
    assert_eq!(v["server"]["by"], "manifest", "{v}");
    assert_eq!(v["server"]["record"]["proof_id"], proof_id.as_str());
    assert_eq!(v["server"]["record"]["status"], "active");

    // By the watermark: a copy re-encoded without metadata.
    let img = image::load_from_memory(&std::fs::read(&stamped).unwrap()).unwrap();
    let copy = d.path().join("copy.jpg");
    img.to_rgb8().save(&copy).unwrap();
    let (code, v) = verify(&data, &copy, &app.url, &root).await;
    assert_eq!(code, Some(2), "not verified: {v}");
    assert_eq!(v["verdict"], "watermark_only", "{v}");
    assert_eq!(v["server"]["by"], "watermark", "{v}");
    assert_eq!(v["server"]["record"]["proof_id"], proof_id.as_str());

    // By likeness: the original upload (no manifest, no watermark) is a near match.
    let original = write(d.path(), "original.jpg", &photo);
    let (_, v) = verify(&data, &original, &app.url, &root).await;
    assert_eq!(v["verdict"], "near_match", "{v}");
    assert_eq!(v["server"]["by"], "pdq", "{v}");
    assert_eq!(v["proof_id"], proof_id.as_str());

    // The watermark copied onto another photo: the server finds nothing it vouches for.
    let street = fixtures().join("photos/street.webp");
    let forged = d.path().join("forged.png");
    let o = tokio::task::spawn_blocking({
        let (street, forged, proof_id) = (street.clone(), forged.clone(), proof_id.clone());
        move || {
            pixseal(&[
                "watermark",
                "embed",
                street.to_str().unwrap(),
                "-o",
                forged.to_str().unwrap(),
                "--id",
                &proof_id,
            ])
        }
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (_, v) = verify(&data, &forged, &app.url, &root).await;
    assert_eq!(v["verdict"], "watermark_only", "{v}");
    assert!(v["server"]["record"].is_null(), "{v}");
    assert!(
        v["server"]["note"]
            .as_str()
            .unwrap()
            .contains("does not look like"),
        "{v}"
    );

    // Deleted: purged, and the receipt checks out with the server's key.
    let r = app
        .client
        .delete(format!("{}/v1/artifacts/{id}", app.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let (code, v) = verify(&data, &stamped, &app.url, &root).await;
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["server"]["record"]["status"], "purged", "{v}");
    assert_eq!(v["server"]["receipt_signature_valid"], true, "{v}");

    // Nobody listening: an error with the offline verdict kept, and exit 2.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let (code, v) = verify(&data, &stamped, &closed, &root).await;
    assert_eq!(code, Some(2), "{v}");
    assert_eq!(v["verdict"], "verified", "{v}");
    assert!(v["server"]["error"].is_string(), "{v}");
}

/// A video's likeness is looked up by its keyframes' hashes (only those are sent): a copy of a
/// stored video re-encoded without its manifest is a near match of its proof; another video
/// is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_a_video_copy_by_its_keyframes() {
    use pixseal_testkit::video::{Clip, reencode_half_bitrate};
    let app = TestApp::spawn(TestApp::config()).await;
    let key = app
        .key("cli", "us", &["artifacts:write", "artifacts:read"])
        .await;
    let root = app.data.path().join("c2pa/root.pem");
    let d = tempfile::tempdir().unwrap();
    let clip = Clip {
        seconds: 2.0,
        width: 640,
        height: 360,
        ..Clip::default()
    };
    let up = app.upload(&key, clip.make()).await;
    let proof_id = up["proof_id"].as_str().unwrap().to_string();
    let stored = app.content(&key, up["id"].as_str().unwrap()).await;
    let data = d.path().join("data");

    let copy = write(d.path(), "copy.mp4", &reencode_half_bitrate(&stored));
    let (code, v) = verify(&data, &copy, &app.url, &root).await;
    assert_eq!(code, Some(2), "not verified: {v}");
    assert_eq!(v["verdict"], "near_match", "{v}");
    assert_eq!(v["server"]["by"], "pdq", "{v}");
    assert_eq!(v["proof_id"], proof_id.as_str(), "{v}");
    assert_eq!(v["server"]["record"]["proof_id"], proof_id.as_str(), "{v}");
    assert!(v["message"].as_str().unwrap().contains("keyframes"), "{v}");

    let other = Clip {
        pattern: "smptehdbars",
        ..clip
    };
    let other = write(d.path(), "other.mp4", &other.make());
    let (_, v) = verify(&data, &other, &app.url, &root).await;
    assert_eq!(v["verdict"], "not_stamped", "{v}");
    assert!(v["server"]["record"].is_null(), "{v}");
}
