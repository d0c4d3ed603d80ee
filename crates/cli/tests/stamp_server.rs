//! `pixseal stamp IN... --server URL` against a real service: the server's stamps written like
//! local ones, a challenge solved in Rust when the server asks for one, a refused input reported
//! with exit code 2, and a key without the stamp scope is exit code 1.

mod common;

use std::path::Path;

use common::{fixtures, json_lines, pixseal_env};
use pixseal_testkit::TestApp;
use serde_json::Value;

/// `pixseal --json stamp IN... -o OUT --server URL` with the key in the environment (run off
/// the runtime serving the app): exit code and JSON lines.
async fn stamp(dir: &Path, inputs: Vec<String>, url: &str, key: &str) -> (Option<i32>, Vec<Value>) {
    let (dir, url, key) = (dir.to_path_buf(), url.to_string(), key.to_string());
    tokio::task::spawn_blocking(move || {
        let data = dir.join("data");
        let out = dir.join("out");
        let mut args = vec![
            "--data-dir",
            data.to_str().unwrap(),
            "--json",
            "stamp",
            "-o",
            out.to_str().unwrap(),
            "--server",
            &url,
        ];
        args.extend(inputs.iter().map(String::as_str));
        let out = pixseal_env(&args, &[("PIXSEAL_API_KEY", &key)]);
        (out.status.code(), json_lines(&out))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_stamps_and_the_cli_solves_its_challenge() {
    let mut c = TestApp::config();
    // Every request needs a solved challenge here, so the solver always runs.
    c.stamp.challenge_over = 0;
    c.stamp.challenge_work_cost = 10;
    c.stamp.challenge_work = 200;
    let app = TestApp::spawn(c).await;
    let key = app.key("cli", "us", &["stamp"]).await;
    // Without a solved challenge this server stamps nothing.
    let r = app
        .client
        .post(format!("{}/v1/stamp", app.url))
        .bearer_auth(&key)
        .body(std::fs::read(fixtures().join("photos/garden.jpg")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "challenge_required", "{body}");
    let d = tempfile::tempdir().unwrap();
    let notes = d.path().join("notes.txt");
    std::fs::write(&notes, "not a picture").unwrap();
    let inputs = vec![
        fixtures().join("photos/garden.jpg").display().to_string(),
        fixtures().join("photos/street.webp").display().to_string(),
        notes.display().to_string(),
    ];
    let (code, lines) = stamp(d.path(), inputs, &app.url, &key).await;
    assert_eq!(code, Some(2), "a refused input is exit code 2: {lines:#?}");
    let ok: Vec<&Value> = lines.iter().filter(|l| l["status"] == "ok").collect();
    assert_eq!(ok.len(), 2, "{lines:#?}");
    let refused = lines.iter().find(|l| l["status"] == "error").unwrap();
    assert_eq!(refused["code"], "unsupported_format", "{refused}");
    let root = app.data.path().join("c2pa/root.pem");
    for l in ok {
        assert_eq!(l["challenge_solved"], true, "{l}");
        let out = Path::new(l["output"].as_str().unwrap()).to_path_buf();
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(
            l["sha256"].as_str().unwrap(),
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
        );
        // Offline, with the server's root: the server's own signature on what was written.
        let (dir, root2) = (d.path().join("data"), root.clone());
        let v = tokio::task::spawn_blocking(move || {
            let args = [
                "--data-dir",
                dir.to_str().unwrap(),
                "--json",
                "verify",
                out.to_str().unwrap(),
                "--trust",
                root2.to_str().unwrap(),
            ];
            json_lines(&pixseal_env(&args, &[])).pop().unwrap()
        })
        .await
        .unwrap();
        assert_eq!(v["verdict"], "verified", "{v:#}");
        assert_eq!(v["proof_id"], l["proof_id"], "{v:#}");
        let record = app.proof(l["proof_id"].as_str().unwrap()).await;
        assert_eq!(record["status"], "not_stored", "{record}");
    }

    let other = app.key("cli", "us", &["artifacts:write"]).await;
    let one = vec![fixtures().join("photos/garden.jpg").display().to_string()];
    let (code, lines) = stamp(d.path(), one, &app.url, &other).await;
    assert_eq!(code, Some(1), "{lines:#?}");
    assert_eq!(lines[0]["code"], "forbidden", "{lines:#?}");
}
