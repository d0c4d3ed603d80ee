//! Ephemeral stamping over HTTP (`POST /v1/stamp`): the stamped file comes back and nothing is
//! kept but its proof record, on SQLite and PostgreSQL; who may stamp; several pictures in one
//! request as a ZIP, a hostile one among them; past `challenge_over` pictures, a solved
//! proof-of-work challenge, good once.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use pixseal_service::Config;
use pixseal_store::DbKind;
use pixseal_testkit::TestApp;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use sqlx::Row;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn photo() -> Vec<u8> {
    std::fs::read(fixtures().join("photos/garden.jpg")).unwrap()
}

/// Rows per table of the service's database.
async fn row_counts(app: &TestApp) -> BTreeMap<String, i64> {
    let list = match app.db.kind() {
        DbKind::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        DbKind::Postgres => {
            "SELECT CAST(tablename AS TEXT) FROM pg_tables WHERE schemaname = 'public'"
        }
    };
    let names: Vec<String> = sqlx::query(list)
        .fetch_all(app.db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = BTreeMap::new();
    for name in names {
        let sql = format!("SELECT COUNT(*) FROM {name}");
        let n: i64 = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_one(app.db.pool())
            .await
            .unwrap()
            .get(0);
        out.insert(name, n);
    }
    out
}

/// Every file under the data directory but the database's own, with its size.
fn files(dir: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if !p
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("pixseal.db")
            {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, p.metadata().unwrap().len());
            }
        }
    }
    out
}

async fn verify(app: &TestApp, bytes: Vec<u8>) -> Value {
    let r = app
        .client
        .post(format!("{}/v1/verify", app.url))
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

async fn stamp(app: &TestApp, key: Option<&str>, query: &str, body: Vec<u8>) -> reqwest::Response {
    let mut req = app
        .client
        .post(format!("{}/v1/stamp{query}", app.url))
        .body(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().await.unwrap()
}

async fn error_code(r: reqwest::Response) -> (StatusCode, String) {
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    (
        status,
        v["error"]["code"].as_str().unwrap_or_default().to_string(),
    )
}

/// The stamped file comes back; the database gains only the proof's rows (and the audit
/// entry), the data directory not a byte; the file verifies with the installation's root and
/// its watermark names its proof once the manifest is stripped.
async fn nothing_kept_but_the_proof(app: &TestApp) {
    let key = app.key("stamper", "us", &["stamp"]).await;
    let rows_before = row_counts(app).await;
    let files_before = files(app.data.path());

    let r = stamp(
        app,
        Some(&key),
        "?label=kept%20nowhere&format=jpeg",
        photo(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let header = |n: &str| r.headers()[n].to_str().unwrap().to_string();
    let proof_id = header("pixseal-proof-id");
    assert_eq!(header("content-type"), "image/jpeg");
    assert_eq!(header("cache-control"), "no-store");
    assert!(header("pixseal-verify-url").ends_with(&format!("/v/{proof_id}")));
    let sha = header("pixseal-sha256");
    let bytes = r.bytes().await.unwrap().to_vec();
    assert_eq!(
        sha,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
    );

    let rows_after = row_counts(app).await;
    let changed: Vec<(&String, i64)> = rows_after
        .iter()
        .filter(|(t, n)| rows_before.get(*t) != Some(n))
        .map(|(t, n)| (t, n - rows_before.get(t).copied().unwrap_or(0)))
        .collect();
    let want: Vec<(String, i64)> = [
        ("audit_log", 1),
        ("pdq_slices", 16),
        ("proof_manifests", 1),
        ("proofs", 1),
    ]
    .iter()
    .map(|(t, n)| (t.to_string(), *n))
    .collect();
    assert_eq!(
        changed
            .iter()
            .map(|(t, n)| ((*t).clone(), *n))
            .collect::<Vec<_>>(),
        want
    );
    assert_eq!(
        files(app.data.path()),
        files_before,
        "nothing written to disk"
    );
    // The label went into the pixels only.
    let stored: Vec<String> = sqlx::query("SELECT sha256 || original_sha256 || status FROM proofs")
        .fetch_all(app.db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(stored.iter().all(|s| !s.contains("kept nowhere")));

    let v = verify(app, bytes.clone()).await;
    assert_eq!(v["verdict"], "verified", "{v:#}");
    assert_eq!(v["proof_id"], proof_id.as_str(), "{v:#}");
    assert_eq!(v["record"]["status"], "not_stored", "{v:#}");

    let img = image::load_from_memory(&bytes).unwrap().to_rgb8();
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let v = verify(app, png.into_inner()).await;
    assert_eq!(v["verdict"], "watermark_only", "{v:#}");
    assert_eq!(v["proof_id"], proof_id.as_str(), "{v:#}");

    let record: Value = app
        .client
        .get(format!("{}/v1/proofs/{proof_id}", app.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(record["status"], "not_stored", "{record:#}");
    let manifest = app
        .client
        .get(format!("{}/v1/proofs/{proof_id}/manifest", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(manifest.status(), StatusCode::OK);
}

#[tokio::test]
async fn nothing_kept_but_the_proof_on_sqlite() {
    let app = TestApp::spawn(TestApp::config()).await;
    nothing_kept_but_the_proof(&app).await;
}

#[tokio::test]
async fn nothing_kept_but_the_proof_on_postgres() {
    let mut c = TestApp::config();
    c.server.database_url = pixseal_testkit::fresh_postgres_db("stamp").into();
    let app = TestApp::spawn(c).await;
    nothing_kept_but_the_proof(&app).await;
}

/// A key needs the stamp scope; without a key only an installation that allows it stamps,
/// and never with a label; bad options are 400 before the body is read.
#[tokio::test]
async fn who_may_stamp() {
    let app = TestApp::spawn(TestApp::config()).await;
    let other = app.key("t", "us", &["artifacts:write"]).await;
    let (st, code) = error_code(stamp(&app, Some(&other), "", photo()).await).await;
    assert_eq!((st, code.as_str()), (StatusCode::FORBIDDEN, "forbidden"));
    let (st, code) = error_code(stamp(&app, None, "", photo()).await).await;
    assert_eq!(
        (st, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let (st, code) = error_code(stamp(&app, Some("pxk_made_up"), "", photo()).await).await;
    assert_eq!(
        (st, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );

    let key = app.key("t", "us", &["stamp"]).await;
    for query in [
        "?format=gif",
        "?quality=0",
        "?quality=101",
        "?max_edge=0",
        "?visible=maybe",
    ] {
        let (st, code) = error_code(stamp(&app, Some(&key), query, photo()).await).await;
        assert_eq!(
            (st, code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{query}"
        );
    }
    let r = stamp(
        &app,
        Some(&key),
        "?format=png&max_edge=300&visible=false",
        photo(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/png");
    let img = image::load_from_memory(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(img.width().max(img.height()), 300);

    let mut c: Config = TestApp::config();
    c.stamp.anonymous = true;
    let open = TestApp::spawn(c).await;
    let r = stamp(&open, None, "", photo()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let (st, code) = error_code(stamp(&open, None, "?label=Official", photo()).await).await;
    assert_eq!(
        (st, code.as_str()),
        (StatusCode::BAD_REQUEST, "label_not_allowed")
    );
}

fn form(parts: &[(&str, Vec<u8>)]) -> Form {
    parts.iter().fold(Form::new(), |f, (name, bytes)| {
        f.part(
            "file",
            Part::bytes(bytes.clone()).file_name(name.to_string()),
        )
    })
}

/// A ZIP answer's entries by name, and its parsed `manifest.json`.
async fn unzip(r: reqwest::Response) -> (BTreeMap<String, Vec<u8>>, Value) {
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/zip");
    let bytes = r.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut entries = BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        entries.insert(f.name().to_string(), bytes);
    }
    let manifest = serde_json::from_slice(&entries["manifest.json"]).unwrap();
    (entries, manifest)
}

/// Several pictures: a ZIP of the stamped files and a manifest; a hostile picture among them
/// is listed with its error and the others still come back; over `max_files` is refused; all
/// refused is the first one's error.
#[tokio::test]
async fn several_pictures_come_back_as_a_zip() {
    let app = TestApp::spawn(TestApp::config()).await;
    let key = app.key("t", "us", &["stamp"]).await;
    let street = std::fs::read(fixtures().join("photos/street.webp")).unwrap();
    let mut truncated = photo();
    truncated.truncate(2000);
    let sent = [
        ("../garden.jpg", photo()),
        ("broken.jpg", truncated.clone()),
        ("street.webp", street),
        ("notes.txt", b"not a picture at all".to_vec()),
    ];
    let r = app
        .client
        .post(format!("{}/v1/stamp?format=webp", app.url))
        .bearer_auth(&key)
        .multipart(form(&sent))
        .send()
        .await
        .unwrap();
    let (mut entries, m) = unzip(r).await;
    let names: Vec<&String> = entries.keys().collect();
    assert_eq!(names, ["01-garden.webp", "03-street.webp", "manifest.json"]);
    assert_eq!(m["stamped"], 2, "{m:#}");
    let files = m["files"].as_array().unwrap();
    assert_eq!(files.len(), 4);
    assert_eq!(files[0]["name"], "../garden.jpg");
    assert_eq!(files[1]["error"]["code"], "truncated", "{m:#}");
    assert_eq!(files[3]["error"]["code"], "unsupported_format", "{m:#}");
    for i in [0, 2] {
        let bytes = entries.remove(files[i]["file"].as_str().unwrap()).unwrap();
        assert_eq!(
            files[i]["sha256"].as_str().unwrap(),
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
        );
        let v = verify(&app, bytes).await;
        assert_eq!(v["verdict"], "verified", "{v:#}");
        assert_eq!(v["proof_id"], files[i]["proof_id"], "{v:#}");
    }

    // The first picture refused: the archive starts with the second, the manifest lists both.
    let r = app
        .client
        .post(format!("{}/v1/stamp", app.url))
        .bearer_auth(&key)
        .multipart(form(&[
            ("bad.jpg", truncated.clone()),
            ("good.jpg", photo()),
        ]))
        .send()
        .await
        .unwrap();
    let (mut entries, m) = unzip(r).await;
    assert_eq!(m["files"][0]["error"]["code"], "truncated", "{m:#}");
    assert_eq!(m["files"][1]["file"], "02-good.jpg", "{m:#}");
    let bytes = entries.remove("02-good.jpg").unwrap();
    assert_eq!(verify(&app, bytes).await["verdict"], "verified");

    let r = app
        .client
        .post(format!("{}/v1/stamp", app.url))
        .bearer_auth(&key)
        .multipart(form(&[("a.jpg", truncated.clone()), ("b.jpg", truncated)]))
        .send()
        .await
        .unwrap();
    let (st, code) = error_code(r).await;
    assert_eq!(
        (st, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "truncated")
    );
}

/// A challenge from GET /v1/challenge, solved as a client would (ALTCHA's own solver), as the
/// Pixseal-Challenge header value.
async fn solved(app: &TestApp) -> String {
    let r = app
        .client
        .get(format!("{}/v1/challenge?route=stamp", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let challenge: altcha::Challenge = r.json().await.unwrap();
    let solution = altcha::solve_challenge(altcha::SolveChallengeOptions::new(&challenge))
        .unwrap()
        .expect("solved");
    let json = serde_json::json!({ "challenge": challenge, "solution": solution });
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, json.to_string())
}

async fn stamp_many(
    app: &TestApp,
    key: &str,
    n: usize,
    challenge: Option<&str>,
) -> reqwest::Response {
    let small = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 90]));
    let mut png = std::io::Cursor::new(Vec::new());
    small.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let parts: Vec<(&str, Vec<u8>)> = (0..n).map(|_| ("p.png", png.get_ref().clone())).collect();
    let mut req = app
        .client
        .post(format!("{}/v1/stamp", app.url))
        .bearer_auth(key)
        .multipart(form(&parts));
    if let Some(c) = challenge {
        req = req.header("pixseal-challenge", c);
    }
    req.send().await.unwrap()
}

/// Five pictures need no challenge, six do; a solved challenge admits up to `max_files` once,
/// then is refused as replayed; junk is refused as invalid; past `max_files` even a solved
/// challenge does not help; a challenge is only issued for a known route.
#[tokio::test]
async fn bulk_needs_a_solved_challenge() {
    let mut c = TestApp::config();
    c.stamp.challenge_work_cost = 10;
    c.stamp.challenge_work = 200;
    c.stamp.max_files = 8;
    let app = TestApp::spawn(c).await;
    let key = app.key("bulk", "us", &["stamp"]).await;

    let r = stamp_many(&app, &key, 5, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let (st, code) = error_code(stamp_many(&app, &key, 6, None).await).await;
    assert_eq!(
        (st, code.as_str()),
        (StatusCode::FORBIDDEN, "challenge_required")
    );

    let header = solved(&app).await;
    let (_, m) = unzip(stamp_many(&app, &key, 8, Some(&header)).await).await;
    assert_eq!(m["stamped"], 8, "{m:#}");
    let (st, code) = error_code(stamp_many(&app, &key, 6, Some(&header)).await).await;
    assert_eq!(
        (st, code.as_str()),
        (StatusCode::FORBIDDEN, "challenge_replayed")
    );
    // A challenge is checked whenever one is sent, even where none is needed.
    let (st, code) = error_code(stamp_many(&app, &key, 1, Some("junk")).await).await;
    assert_eq!(
        (st, code.as_str()),
        (StatusCode::FORBIDDEN, "challenge_invalid")
    );

    let (st, code) = error_code(stamp_many(&app, &key, 9, Some(&solved(&app).await)).await).await;
    assert_eq!(
        (st, code.as_str()),
        (StatusCode::BAD_REQUEST, "too_many_files")
    );

    let r = app
        .client
        .get(format!("{}/v1/challenge?route=elsewhere", app.url))
        .send()
        .await
        .unwrap();
    let (st, code) = error_code(r).await;
    assert_eq!(
        (st, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
}

async fn get(app: &TestApp, url: &str) -> reqwest::Response {
    app.client.get(url).send().await.unwrap()
}

/// A proof record as served, once its status is `want` (the erasure after a pickup runs just
/// after the download's last byte is handed over).
async fn proof_when(app: &TestApp, proof_id: &str, want: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let p = app.proof(proof_id).await;
        if p["status"] == want {
            return p;
        }
        assert!(std::time::Instant::now() < deadline, "still {p:#}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A receipt as publicly served, checked against the installation's receipt key.
async fn checked_receipt(app: &TestApp, rid: &str) -> pixseal_proof::SignedReceipt {
    let key: Value = get(app, &format!("{}/v1/keys/receipts", app.url))
        .await
        .json()
        .await
        .unwrap();
    let r: pixseal_proof::SignedReceipt = get(app, &format!("{}/v1/receipts/{rid}", app.url))
        .await
        .json()
        .await
        .unwrap();
    r.verify_pem(key["public_key_pem"].as_str().unwrap())
        .unwrap();
    r
}

/// `deliver=link`: the file waits sealed (a blob, an artifact row, a pickup row), is handed out
/// once to whoever holds the link (no key), verifies, and is then erased with a signed
/// `picked_up` receipt; a second download is 410 naming that receipt. Only the proof is left.
async fn a_pickup_link_gives_the_file_once(app: &TestApp) {
    let key = app.key("courier", "eu", &["stamp"]).await;
    let rows_before = row_counts(app).await;
    let files_before = files(app.data.path());
    let r = stamp(app, Some(&key), "?deliver=link", photo()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(r.headers().get("pixseal-proof-id").is_none());
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["stamped"], 1, "{m:#}");
    let f = &m["files"][0];
    let proof_id = f["proof_id"].as_str().unwrap().to_string();
    let link = f["pickup"]["url"].as_str().unwrap();
    let (_, token) = link.split_once("/v1/pickups/").expect("a pickup link");
    let url = format!("{}/v1/pickups/{token}", app.url);
    assert!(f["pickup"]["expires_at"].is_string(), "{m:#}");
    let rows = row_counts(app).await;
    assert_eq!(rows["artifacts"], rows_before["artifacts"] + 1);
    assert_eq!(rows["pickups"], rows_before["pickups"] + 1);
    assert_eq!(
        proof_when(app, &proof_id, "active").await["status"],
        "active"
    );
    let waiting = files(app.data.path());
    let blobs: Vec<_> = waiting
        .keys()
        .filter(|k| !files_before.contains_key(*k))
        .collect();
    assert_eq!(blobs.len(), 1, "one sealed blob waits: {blobs:?}");
    let sealed = std::fs::read(app.data.path().join(blobs[0])).unwrap();

    // Whoever holds the link gets the file, once.
    let r = get(app, &url).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(r.headers()["pixseal-proof-id"], proof_id.as_str());
    assert_eq!(r.headers()["cache-control"], "no-store");
    let bytes = r.bytes().await.unwrap().to_vec();
    assert_eq!(
        f["sha256"].as_str().unwrap(),
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
    );
    for at in [bytes.len() / 4, bytes.len() / 2, bytes.len() - 64] {
        let piece = &bytes[at..at + 32];
        assert!(
            !sealed.windows(32).any(|w| w == piece),
            "the waiting blob holds the file sealed, not in clear"
        );
    }
    let v = verify(app, bytes).await;
    assert_eq!(v["verdict"], "verified", "{v:#}");
    assert_eq!(v["proof_id"], proof_id.as_str());

    let p = proof_when(app, &proof_id, "purged").await;
    let rid = p["receipt"]["receipt"]["receipt_id"]
        .as_str()
        .expect("a receipt")
        .to_string();
    let receipt = checked_receipt(app, &rid).await;
    assert_eq!(receipt.receipt.reason(), "picked_up");
    assert_eq!(receipt.receipt.proof_id(), proof_id);

    let r = get(app, &url).await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::GONE, "{body:#}");
    assert_eq!(body["error"]["code"], "pickup_gone");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(&rid), "{message}");
    assert!(message.contains("downloaded once"), "{message}");

    let rows = row_counts(app).await;
    assert_eq!(
        rows["artifacts"], rows_before["artifacts"],
        "the artifact is gone"
    );
    assert_eq!(files(app.data.path()), files_before, "and its blob");
    // A made-up link is simply unknown.
    let (st, code) =
        error_code(get(app, &format!("{}/v1/pickups/{}", app.url, "A".repeat(43))).await).await;
    assert_eq!((st, code.as_str()), (StatusCode::NOT_FOUND, "not_found"));
}

#[tokio::test]
async fn a_pickup_link_gives_the_file_once_on_sqlite() {
    a_pickup_link_gives_the_file_once(&TestApp::spawn(TestApp::config()).await).await;
}

#[tokio::test]
async fn a_pickup_link_gives_the_file_once_on_postgres() {
    let mut c = TestApp::config();
    c.server.database_url = pixseal_testkit::fresh_postgres_db("pickup").into();
    a_pickup_link_gives_the_file_once(&TestApp::spawn(c).await).await;
}

/// A download that breaks off gives the link back; while one runs a second is 409; a link not
/// used in time is erased by the purge pass (`retention_expired`) and then answers 410; link
/// delivery needs a key; several pictures give a link each, with a refused one listed.
#[tokio::test]
async fn pickup_links_break_off_overlap_and_expire() {
    let app = TestApp::spawn(TestApp::config()).await;
    let key = app.key("courier", "us", &["stamp"]).await;
    let (st, code) = error_code(stamp(&app, None, "?deliver=link", photo()).await).await;
    assert_eq!(
        (st, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let (st, code) = error_code(stamp(&app, Some(&key), "?deliver=post", photo()).await).await;
    assert_eq!(
        (st, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );

    let mut truncated = photo();
    truncated.truncate(2000);
    let r = app
        .client
        .post(format!("{}/v1/stamp?deliver=link", app.url))
        .bearer_auth(&key)
        .multipart(form(&[
            ("a.jpg", photo()),
            ("b.jpg", truncated),
            ("c.jpg", photo()),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["stamped"], 2, "{m:#}");
    assert_eq!(m["files"][1]["error"]["code"], "truncated", "{m:#}");
    let token = |i: usize| {
        m["files"][i]["pickup"]["url"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string()
    };

    // Held by one download: a second is refused; broken off, the link works again.
    let first = app.state.open_pickup(&token(0)).await.unwrap();
    let err = app.state.open_pickup(&token(0)).await.err().unwrap();
    assert_eq!(err.code(), "pickup_in_progress");
    drop(first);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let again = loop {
        match app.state.open_pickup(&token(0)).await {
            Ok(d) => break d,
            Err(e) => {
                assert_eq!(e.code(), "pickup_in_progress");
                assert!(
                    std::time::Instant::now() < deadline,
                    "the claim never came back"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    drop(again);

    // Not picked up in time: the purge pass erases it; the link then says gone.
    let proof_id = m["files"][2]["proof_id"].as_str().unwrap();
    let later = app.state.clock.now_ms() + 11 * 60_000;
    let report = app.state.purge_at(later, 100, 600_000).await.unwrap();
    assert_eq!(report.purged, 2, "{report:?}");
    let p = proof_when(&app, proof_id, "purged").await;
    let rid = p["receipt"]["receipt"]["receipt_id"].as_str().unwrap();
    let receipt = checked_receipt(&app, rid).await;
    assert_eq!(receipt.receipt.reason(), "retention_expired");
    let r = get(&app, &format!("{}/v1/pickups/{}", app.url, token(2))).await;
    let (st, code) = error_code(r).await;
    assert_eq!((st, code.as_str()), (StatusCode::GONE, "pickup_gone"));
}

/// Anonymous stamping: `anonymous_free_per_hour` requests from one address, then each needs a
/// solved challenge (which admits it).
#[tokio::test]
async fn anonymous_stamping_past_the_free_budget_needs_a_challenge() {
    let mut c = TestApp::config();
    c.stamp.anonymous = true;
    c.stamp.anonymous_free_per_hour = 2;
    c.stamp.challenge_work_cost = 10;
    c.stamp.challenge_work = 200;
    let app = TestApp::spawn(c).await;
    for _ in 0..2 {
        assert_eq!(
            stamp(&app, None, "", photo()).await.status(),
            StatusCode::OK
        );
    }
    let (st, code) = error_code(stamp(&app, None, "", photo()).await).await;
    assert_eq!(
        (st, code.as_str()),
        (StatusCode::FORBIDDEN, "challenge_required")
    );
    let r = app
        .client
        .post(format!("{}/v1/stamp", app.url))
        .header("pixseal-challenge", solved(&app).await)
        .body(photo())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A key holder is not counted against the address.
    let key = app.key("t", "us", &["stamp"]).await;
    assert_eq!(
        stamp(&app, Some(&key), "", photo()).await.status(),
        StatusCode::OK
    );
}
