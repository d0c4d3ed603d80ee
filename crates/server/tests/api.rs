//! The service end to end over real HTTP: an in-process server on a random port per test, on
//! SQLite and on PostgreSQL (fresh database), and once with Transit (OpenBao) + S3 (SeaweedFS).

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pixseal_seal::{KeyProviderKind, ReceiptProviderKind};
use pixseal_service::{Config, RateLimitBackend, ServerConfig};
use pixseal_store::{ArtifactState, StorageBackend};
use pixseal_testkit::TestApp;
use reqwest::StatusCode;
use serde_json::Value;

/// The service in process, with this file's request helpers.
struct TestServer(TestApp);

impl Deref for TestServer {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.0
    }
}

enum Parts {
    Embedded,
    Postgres,
    /// PostgreSQL, Transit keys and Transit-signed receipts, S3 blobs (the production shape).
    TransitS3,
    /// SQLite, local keys and blobs, receipts signed by Transit reached at this address.
    TransitReceipts(String),
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

async fn spawn(parts: Parts) -> TestServer {
    spawn_with(parts, ServerConfig::default()).await
}

/// The configuration of `parts` with these `[server]` settings.
fn config(parts: &Parts, server: ServerConfig) -> Config {
    let mut c = TestApp::config();
    c.server = server;
    c.provenance.issuer_name = "pixseal (ephemeral identity)".into();
    if let Parts::Postgres | Parts::TransitS3 = parts {
        c.server.database_url = pixseal_testkit::fresh_postgres_db("api").into();
    }
    if let Parts::TransitS3 | Parts::TransitReceipts(_) = parts {
        let bao = pixseal_testkit::openbao("us eu rot shred")
            .expect("OpenBao (PIXSEAL_SKIP_TRANSIT unset)");
        c.keys.receipt_provider = ReceiptProviderKind::Transit;
        c.keys.transit_addr = bao.addr.clone();
        c.keys.transit_token = bao.token.clone().into();
    }
    if let Parts::TransitReceipts(addr) = parts {
        c.keys.transit_addr = addr.clone();
    }
    if let Parts::TransitS3 = parts {
        let s3 = pixseal_testkit::seaweedfs();
        c.keys.provider = KeyProviderKind::Transit;
        c.storage.backend = StorageBackend::S3;
        c.storage.endpoint = s3.endpoint.clone();
        c.storage.access_key_id = s3.access_key.clone();
        c.storage.secret_access_key = s3.secret_key.clone().into();
        c.storage.allow_http = true;
        // A prefix of its own: each test is another installation (its own database), and an
        // installation never opens on another's prefix.
        let run = uuid::Uuid::new_v4().simple().to_string();
        for (name, r) in c.storage.regions.iter_mut() {
            r.bucket = format!("pixseal-{name}");
            r.prefix = format!("{run}/{name}");
        }
    }
    c
}

async fn spawn_with(parts: Parts, server: ServerConfig) -> TestServer {
    TestServer(TestApp::spawn(config(&parts, server)).await)
}

impl TestServer {
    async fn upload(&self, key: &str, body: Vec<u8>, query: &str) -> (StatusCode, Value) {
        let r = self
            .client
            .post(format!("{}/v1/artifacts{query}", self.url))
            .bearer_auth(key)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// GET a public route (no key) and parse its JSON body.
    async fn public_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        self.client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `GET /v1/matches/byBinding`: status and JSON body.
    async fn by_binding(&self, alg: &str, value: &str) -> (StatusCode, Value) {
        let r = self
            .client
            .get(format!("{}/v1/matches/byBinding", self.url))
            .query(&[("alg", alg), ("value", value)])
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap())
    }

    /// `POST /v1/matches/byContent` with a raw body: status and JSON body.
    async fn by_content(&self, body: Vec<u8>) -> (StatusCode, Value) {
        let r = self
            .client
            .post(format!("{}/v1/matches/byContent", self.url))
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap())
    }

    async fn get(&self, key: &str, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.url))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    }
}

const ALL: &[&str] = &["artifacts:write", "artifacts:read", "artifacts:delete"];

async fn lifecycle(s: &TestServer) {
    let key = s.key("acme", "us", ALL).await;
    let input = std::fs::read(fixtures().join("metadata/jpeg-all.jpg")).unwrap();
    let (st, up) = s
        .upload(
            &key,
            input.clone(),
            "?label=Jane%20Doe%20PXCANARY-LABEL&retention_days=7",
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let id = up["id"].as_str().unwrap().to_string();
    assert!(up["proof_id"].as_str().unwrap().starts_with("px_"));
    assert_eq!(up["region"], "us");
    assert_eq!(up["original_sha256"].as_str().unwrap().len(), 64);
    let created = up["created_at"].as_str().unwrap();
    assert!(created.ends_with('Z'));

    let meta: Value = s
        .get(&key, &format!("/v1/artifacts/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(meta["label"], "Jane Doe PXCANARY-LABEL");
    assert_eq!(meta["sha256"], up["sha256"]);

    let r = s.get(&key, &format!("/v1/artifacts/{id}/content")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/webp");
    assert_eq!(r.headers()["cache-control"], "private, no-store");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let webp = r.bytes().await.unwrap();
    let img = image::load_from_memory(&webp).unwrap();
    assert_eq!((img.width(), img.height()), (160, 120));
    assert!(
        !webp.windows(8).any(|w| w == b"PXCANARY"),
        "metadata survived into the artifact"
    );

    // Nothing identifying or plaintext at rest: no canary, no label, no original bytes.
    for f in walk(s.data.path()) {
        let bytes = std::fs::read(&f).unwrap();
        for needle in [
            &b"PXCANARY"[..],
            b"Jane Doe",
            &input[200..264],
            &webp[100..164],
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds {:?}",
                f.display(),
                String::from_utf8_lossy(&needle[..8])
            );
        }
    }

    // Another tenant: 404, never 403. No key / bad key: 401. Missing scope: 403.
    let other = s.key("globex", "us", ALL).await;
    assert_eq!(
        s.get(&other, &format!("/v1/artifacts/{id}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get(&other, &format!("/v1/artifacts/{id}/content"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let r = s
        .client
        .get(format!("{}/v1/artifacts/{id}", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(
        s.get("pxk_not-a-key", &format!("/v1/artifacts/{id}"))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let read_only = s.key("acme", "us", &["artifacts:read"]).await;
    let (st, body) = s.upload(&read_only, input.clone(), "").await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let r = s
        .client
        .delete(format!("{}/v1/artifacts/{id}", s.url))
        .bearer_auth(&read_only)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // A revoked key stops working at once.
    let doomed = s.key("acme", "us", &["artifacts:read"]).await;
    assert_eq!(
        s.get(&doomed, &format!("/v1/artifacts/{id}"))
            .await
            .status(),
        StatusCode::OK
    );
    let k = s.db.api_key_by_secret(&doomed).await.unwrap();
    s.db.revoke_api_key(&k.tenant, &k.id).await.unwrap();
    assert_eq!(
        s.get(&doomed, &format!("/v1/artifacts/{id}"))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // Retention outside the allowed set.
    let (st, body) = s.upload(&key, input.clone(), "?retention_days=5").await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("retention_not_allowed"))
    );

    // Delete: 200, then gone for everyone.
    let r = s
        .client
        .delete(format!("{}/v1/artifacts/{id}", s.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The owner gets the tenant's view: a version 2 receipt and the opening of its subject.
    let signed: pixseal_proof::SignedReceipt = r.json().await.unwrap();
    let pixseal_proof::Receipt::V2(r2) = &signed.receipt else {
        panic!("a version 2 receipt: {signed:?}")
    };
    let opening = signed
        .opening
        .clone()
        .expect("the tenant's view has the opening");
    assert_eq!(opening.artifact_id, id);
    assert_eq!(
        opening.original_sha256,
        up["original_sha256"].as_str().unwrap()
    );
    assert_eq!(r2.subject, opening.subject().unwrap());
    assert_eq!(r2.proof_id, up["proof_id"].as_str().unwrap());
    assert_eq!(r2.created_at, created);
    assert!(r2.deleted_at.ends_with('Z'));
    // Verifiable with the published key, served again by id, and any change breaks it.
    let key_doc: Value = s.public_json("/v1/keys/receipts").await;
    let pem = key_doc["public_key_pem"].as_str().unwrap();
    assert_eq!(key_doc["key_id"], signed.key_id.as_str());
    signed.verify_pem(pem).unwrap();
    let rid = signed.receipt.receipt_id().to_string();
    // Without a key: the public view, which names neither the artifact nor the original, and
    // verifies offline from what it shows.
    let r = s
        .client
        .get(format!("{}/v1/receipts/{rid}", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    for secret in [&id, up["original_sha256"].as_str().unwrap(), &opening.salt] {
        assert!(
            !text.contains(secret),
            "the public receipt shows {secret}: {text}"
        );
    }
    let public: pixseal_proof::SignedReceipt = serde_json::from_str(&text).unwrap();
    assert_eq!(public, signed.public());
    public.verify_pem(pem).unwrap();
    // With the tenant's key: the tenant's view again, as DELETE gave it.
    let again: pixseal_proof::SignedReceipt = s
        .get(&key, &format!("/v1/receipts/{rid}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again, signed);
    // Another tenant's key, or the tenant's key without a read or delete scope: the public
    // view. A key that is not one: 401, not a quiet downgrade.
    let stranger = s.key("stranger", "us", ALL).await;
    let writer = s.key("acme", "us", &["artifacts:write"]).await;
    for k in [&stranger, &writer] {
        let v: pixseal_proof::SignedReceipt = s
            .get(k, &format!("/v1/receipts/{rid}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(v, public);
    }
    assert_eq!(
        s.get("pxk_not-a-key", &format!("/v1/receipts/{rid}"))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // An opening that names another artifact or original does not open the subject.
    let mut forged = signed.clone();
    forged.opening.as_mut().unwrap().original_sha256 = "0".repeat(64);
    assert_eq!(
        forged.verify_pem(pem),
        Err(pixseal_proof::ReceiptError::SubjectMismatch)
    );
    let mut forged = signed.clone();
    if let pixseal_proof::Receipt::V2(r) = &mut forged.receipt {
        r.deleted_at = "2030-01-01T00:00:00Z".into();
    }
    assert!(forged.verify_pem(pem).is_err());
    // A second DELETE finds nothing, and no second receipt exists.
    let r = s
        .client
        .delete(format!("{}/v1/artifacts/{id}", s.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        s.get(&key, &format!("/v1/artifacts/{id}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get(&key, &format!("/v1/artifacts/{id}/content"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

async fn hostile_inputs(s: &TestServer) {
    let key = s.key("hostile", "eu", ALL).await;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "unsupported_format"),
        (
            "html",
            b"<html><script>PXCANARY-HTML</script></html>".to_vec(),
            "unsupported_format",
        ),
        (
            "truncated",
            std::fs::read(fixtures().join("photos/garden.jpg")).unwrap()[..5000].to_vec(),
            "truncated",
        ),
        ("bomb", png_header(100_000, 100_000), "dimensions_too_large"),
    ];
    for (name, body, code) in cases {
        let (st, v) = s.upload(&key, body, "").await;
        assert!(st.is_client_error(), "{name}: {st}");
        assert_eq!(v["error"]["code"], code, "{name}: {v}");
        assert!(!v.to_string().contains("PXCANARY"), "{name}: input echoed");
    }
    // Over the body limit: 413 with a JSON body.
    let big = vec![0u8; ServerConfig::default().max_body_bytes as usize + 10];
    let (st, v) = s.upload(&key, big, "").await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(v["error"]["code"], "file_too_large");
    // Multipart works too, and the server is still healthy afterwards.
    let part = reqwest::multipart::Part::bytes(
        std::fs::read(fixtures().join("photos/alpha.png")).unwrap(),
    )
    .file_name("a.png");
    let r = s
        .client
        .post(format!("{}/v1/artifacts", s.url))
        .bearer_auth(&key)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = s
        .client
        .get(format!("{}/readyz", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
}

fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    b.extend_from_slice(&13u32.to_be_bytes());
    b.extend_from_slice(b"IHDR");
    b.extend_from_slice(&ihdr);
    b.extend_from_slice(&[0, 0, 0, 0]);
    b.extend_from_slice(&[0, 0, 0, 4]);
    b.extend_from_slice(b"IDAT\0\0\0\0\0\0\0\0");
    b
}

fn walk(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// A photo of noise, so its stamped copy spans many 64 KiB segments.
fn noisy_png(width: u32, height: u32) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let img = image::RgbImage::from_fn(width, height, |_, _| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let [r, g, b, ..] = state.to_le_bytes();
        image::Rgb([r, g, b])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// `GET …/content` with a `Range` header (and `If-Range` when given): status, headers, body.
async fn ranged(
    s: &TestServer,
    key: &str,
    id: &str,
    range: &str,
    if_range: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let mut r = s
        .client
        .get(format!("{}/v1/artifacts/{id}/content", s.url))
        .bearer_auth(key)
        .header("range", range);
    if let Some(v) = if_range {
        r = r.header("if-range", v);
    }
    let r = r.send().await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    (status, headers, r.bytes().await.unwrap().to_vec())
}

/// The content route answers byte ranges from the stored segments that hold them: a player
/// can seek, and (with `damage`, on local blobs) a damaged segment elsewhere in the file
/// does not stop a range that does not need it, while the whole file then fails.
async fn byte_ranges(s: &TestServer, damage: Option<&Path>) {
    let key = s.key("ranges", "us", ALL).await;
    let (status, up) = s.upload(&key, noisy_png(1200, 900), "?visible=false").await;
    assert_eq!(status, StatusCode::CREATED, "{up}");
    let id = up["id"].as_str().unwrap();
    let r = s.get(&key, &format!("/v1/artifacts/{id}/content")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    let whole = r.bytes().await.unwrap().to_vec();
    let len = whole.len();
    assert!(
        len > 4 * 65536,
        "the stamped noise is {len} bytes, fewer than 4 segments"
    );
    assert_eq!(up["bytes"].as_u64(), Some(len as u64), "{up}");

    let seg = 65536;
    for (range, want) in [
        ("bytes=0-99".to_string(), 0..100),
        // Across a segment boundary, and across several.
        (
            format!("bytes={}-{}", seg - 10, seg + 9),
            seg - 10..seg + 10,
        ),
        (format!("bytes=100-{}", 3 * seg), 100..3 * seg + 1),
        ("bytes=-500".to_string(), len - 500..len),
        (format!("bytes={}-", len - 10), len - 10..len),
        // An end past the file is cut to the file.
        (format!("bytes={}-{}", len - 3, len + 1000), len - 3..len),
    ] {
        let (status, h, body) = ranged(s, &key, id, &range, None).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            h["content-range"],
            format!("bytes {}-{}/{len}", want.start, want.end - 1).as_str(),
            "{range}"
        );
        assert_eq!(
            h["content-length"],
            want.len().to_string().as_str(),
            "{range}"
        );
        assert_eq!(h["cache-control"], "private, no-store");
        assert_eq!(body, &whole[want.clone()], "{range}");
    }
    // Outside the file, or not byte ranges: 416 naming the length, with a JSON body.
    for range in [
        format!("bytes={len}-"),
        "bytes=-0".into(),
        "bytes=5-x".into(),
    ] {
        let (status, h, body) = ranged(s, &key, id, &range, None).await;
        assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(h["content-range"], format!("bytes */{len}").as_str());
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "range_not_satisfiable", "{v}");
    }
    // Several ranges, a unit other than bytes, or an If-Range no validator of ours can
    // match: the whole file.
    let (status, _, body) = ranged(s, &key, id, "bytes=0-1,5-9", None).await;
    assert_eq!((status, body.len()), (StatusCode::OK, len));
    let (status, _, body) = ranged(s, &key, id, "lines=0-5", None).await;
    assert_eq!((status, body.len()), (StatusCode::OK, len));
    let (status, _, body) = ranged(s, &key, id, "bytes=0-1", Some("\"x\"")).await;
    assert_eq!((status, body == whole), (StatusCode::OK, true));
    // Another tenant's key gets nothing, ranged or not.
    let other = s.key("ranges-other", "us", ALL).await;
    let (status, _, _) = ranged(s, &other, id, "bytes=0-99", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let Some(blobs) = damage else { return };
    let blob = blobs.join("us").join(id);
    let mut sealed = std::fs::read(&blob).unwrap();
    // Cut at a segment boundary, the blob would open as a shorter file: it is refused, even
    // for a range the cut did not touch.
    let cut = (len - 1) / seg * (seg + 16);
    let head = sealed.len() - (len + len.div_ceil(seg) * 16);
    std::fs::write(&blob, &sealed[..head + cut]).unwrap();
    let (status, _, _) = ranged(s, &key, id, "bytes=0-99", None).await;
    assert!(status.is_server_error(), "{status}");
    std::fs::write(&blob, &sealed).unwrap();
    let (status, _, _) = ranged(s, &key, id, "bytes=0-99", None).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    let last = sealed.len() - 5;
    sealed[last] ^= 1;
    std::fs::write(&blob, &sealed).unwrap();
    let (status, _, body) = ranged(s, &key, id, "bytes=0-99", None).await;
    assert_eq!(
        (status, body.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &whole[..100])
    );
    let (status, _, _) = ranged(s, &key, id, "bytes=-10", None).await;
    assert!(status.is_server_error(), "{status}");
    // The whole file: refused, or cut short (its first window opened before the damage).
    let r = s.get(&key, &format!("/v1/artifacts/{id}/content")).await;
    if r.status() == StatusCode::OK {
        assert!(r.bytes().await.is_err(), "a damaged file was served whole");
    } else {
        assert!(r.status().is_server_error(), "{}", r.status());
    }
}

#[tokio::test]
async fn embedded_sqlite_local_keys_local_blobs() {
    let s = spawn(Parts::Embedded).await;
    lifecycle(&s).await;
    hostile_inputs(&s).await;
    // The audit chain recorded the actions and is intact; it names no label, IP or secret.
    let (n, broken) = s.db.audit_verify().await.unwrap();
    assert!(n >= 8 && broken.is_none(), "{n} {broken:?}");
    let entries = s.db.audit_entries().await.unwrap();
    for action in [
        "artifact.create",
        "artifact.read",
        "artifact.content",
        "artifact.delete",
        "auth",
    ] {
        assert!(
            entries.iter().any(|e| e.action == action),
            "no {action} entry"
        );
    }
    assert!(
        entries
            .iter()
            .all(|e| !format!("{e:?}").contains("Jane") && !format!("{e:?}").contains("pxk_"))
    );
    // Every response carries a request id; /metrics counts requests by route and status.
    let r = s
        .client
        .get(format!("{}/healthz", s.url))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let r = s
        .client
        .get(format!("{}/healthz", s.url))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["x-request-id"].len(),
        32,
        "malformed ids are replaced"
    );
    let m = s
        .client
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains(
            r#"pixseal_http_requests_total{method="POST",route="/v1/artifacts",status="201"} 2"#
        ),
        "{m}"
    );
    assert!(
        m.contains(r#"route="/v1/artifacts/{id}",status="404""#),
        "{m}"
    );
    assert!(
        m.contains("pixseal_http_request_duration_seconds_bucket"),
        "{m}"
    );
    byte_ranges(&s, Some(&s.data.path().join("blobs"))).await;
}

#[tokio::test]
async fn postgres_local_keys_local_blobs() {
    let s = spawn(Parts::Postgres).await;
    lifecycle(&s).await;
    hostile_inputs(&s).await;
}

#[tokio::test]
async fn postgres_transit_keys_s3_blobs() {
    let s = spawn(Parts::TransitS3).await;
    lifecycle(&s).await;
    byte_ranges(&s, None).await;
}

/// Two installations never share a blob prefix: the second one refuses to open on the first's
/// (before writing or sweeping anything), and a repair pass skips a prefix whose marker names
/// another installation instead of deleting what it cannot account for.
#[tokio::test]
async fn a_blob_prefix_belongs_to_one_installation() {
    let shared = tempfile::tempdir().unwrap();
    let mut config = TestApp::config();
    config.storage.path = shared.path().display().to_string();
    let first = TestApp::spawn(config.clone()).await;
    let key = first.key("mine", "us", ALL).await;
    let photo = std::fs::read(fixtures().join("photos/tiny.gif")).unwrap();
    let r = first
        .client
        .post(format!("{}/v1/artifacts", first.url))
        .bearer_auth(&key)
        .body(photo)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Another installation (its own database and keys) pointed at the same blob store.
    let other_data = tempfile::tempdir().unwrap();
    config.data_dir = other_data.path().to_path_buf();
    let e = match pixseal_server::AppState::open(&config).await {
        Ok(_) => panic!("a second installation opened on the first one's blob prefix"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("belong to another installation"), "{e}");
    assert!(shared.path().join("us").join(&id).exists());

    // Were the marker ever another's (two installations set up on one prefix before markers
    // existed), the sweep leaves the prefix alone.
    let marker = shared.path().join("us/.pixseal-installation");
    let ours = std::fs::read_to_string(&marker).unwrap();
    std::fs::write(&marker, "someone-else").unwrap();
    let stray = shared
        .path()
        .join("us/01936f6e-0000-7000-8000-000000000001");
    std::fs::write(&stray, b"another installation's blob").unwrap();
    let r = first.state.repair_with_grace(60_000).await.unwrap();
    assert_eq!((r.foreign_prefixes, r.orphan_blobs), (1, 0), "{r:?}");
    assert!(stray.exists() && shared.path().join("us").join(&id).exists());
    // Its own prefix again: the stray blob, which no row of ours accounts for, is swept.
    std::fs::write(&marker, ours).unwrap();
    let r = first.state.repair_with_grace(60_000).await.unwrap();
    assert_eq!((r.foreign_prefixes, r.orphan_blobs), (0, 1), "{r:?}");
    assert!(!stray.exists() && shared.path().join("us").join(&id).exists());
}

/// The repair pass removes exactly what crashes leave: stale `pending` rows with their blobs,
/// blobs without rows, temporary files; live artifacts are untouched. A `deleting` row is not
/// dropped without a receipt: the purge pass finishes it, receipt and all.
#[tokio::test]
async fn repair_pass_removes_only_leftovers() {
    let mut config = TestApp::config();
    config.regions = vec!["us".into()];
    config.storage.regions.retain(|k, _| k == "us");
    let app = TestApp::spawn(config).await;
    let (db, data, state) = (&app.db, &app.data, &app.state);
    let t = db.create_tenant("t", "us", 30).await.unwrap();
    let (_, now) = pixseal_store::meta::now();
    let row = |id: &str, st: &str, created_ms: i64| pixseal_store::Artifact {
        id: id.into(),
        tenant_id: t.id.clone(),
        region: "us".into(),
        proof_id: format!("px_{id}"),
        state: st.parse().unwrap(),
        sha256: "0".repeat(64),
        original_sha256: "0".repeat(64),
        content_type: "image/webp".into(),
        width: 1,
        height: 1,
        bytes: 1,
        wrapped_key: String::new(),
        label_sealed: None,
        client_ip_sealed: None,
        created_at: String::new(),
        created_ms,
        expires_at: String::new(),
        expires_ms: now + 1,
    };
    let put = |name: &str| {
        let p = data.path().join("blobs/us").join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    };
    for (id, st, age) in [
        ("live", "active", 999_999),
        ("stale", "pending", 999_999),
        ("young", "pending", 0),
        ("dying", "deleting", 0),
    ] {
        db.insert_artifact(&row(id, st, now - age)).await.unwrap();
        put(id);
    }
    put("orphan");
    put("live#1234");
    let report = state.repair_with_grace(60_000).await.unwrap();
    assert_eq!(
        report,
        pixseal_service::RepairReport {
            unfinished_rows: 1,
            orphan_blobs: 2,
            foreign_prefixes: 0,
        }
    );
    let mut left: Vec<String> = std::fs::read_dir(data.path().join("blobs/us"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        vec![".pixseal-installation", "dying", "live", "young"],
        "the owner marker is kept"
    );
    assert!(
        db.artifact_exists("live").await.unwrap() && db.artifact_exists("young").await.unwrap()
    );
    assert!(!db.artifact_exists("stale").await.unwrap());
    assert!(
        db.artifact_exists("dying").await.unwrap(),
        "left for the purge pass"
    );
    // A second pass finds nothing.
    assert_eq!(
        state.repair_with_grace(60_000).await.unwrap(),
        pixseal_service::RepairReport::default()
    );
    // The purge pass finishes the deletion (one an older version left without a decided
    // receipt): blob and row gone, a signed receipt stored.
    let r = state.purge_at(now, 10, 600_000).await.unwrap();
    assert_eq!((r.resumed, r.purged, r.failed), (1, 0, 0), "{r:?}");
    assert!(!db.artifact_exists("dying").await.unwrap());
    assert!(!data.path().join("blobs/us/dying").exists());
    let stored = db.receipt_of_artifact("dying").await.unwrap().unwrap();
    let signed: pixseal_proof::SignedReceipt = serde_json::from_str(&stored.signed_json).unwrap();
    signed
        .verify(state.receipts.public_key().verifying_key())
        .unwrap();
    assert_eq!(
        signed.receipt.reason(),
        "deleted_by_owner",
        "not yet expired"
    );
}

/// Every case of ../shared/tools/make_bad_inputs.py over HTTP: refusals are 4xx JSON with an
/// allowed code, acceptances are 201, nothing is a 5xx, and the server is healthy afterwards.
#[tokio::test]
async fn shared_bad_input_families_over_http() {
    let tool =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/tools/make_bad_inputs.py");
    if !tool.exists() {
        eprintln!(
            "../shared/tools absent: skipped (the fixture-based hostile cases above still ran)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("python3")
        .arg(&tool)
        .arg("generate")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
    let s = spawn(Parts::Embedded).await;
    let key = s.key("bad", "us", ALL).await;
    let mut failures = Vec::new();
    for case in manifest["cases"].as_array().unwrap() {
        let file = case["file"].as_str().unwrap();
        let body = std::fs::read(dir.path().join(file)).unwrap();
        let (st, v) = s.upload(&key, body, "").await;
        let code = v["error"]["code"].as_str().unwrap_or("");
        let allowed: Vec<&str> = case["codes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c.as_str())
            .collect();
        let ok = match case["expect"].as_str().unwrap() {
            "accept" => st == StatusCode::CREATED,
            "reject" => {
                st.is_client_error()
                    && (allowed.is_empty() || allowed.contains(&code) || code == "file_too_large")
            }
            _ => {
                st == StatusCode::CREATED
                    || (st.is_client_error() && (allowed.is_empty() || allowed.contains(&code)))
            }
        };
        for canary in case["canaries"].as_array().unwrap() {
            if v.to_string().contains(canary.as_str().unwrap()) {
                failures.push(format!("{file}: canary echoed"));
            }
        }
        if !ok {
            failures.push(format!("{file}: {st} {v}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let r = s
        .client
        .get(format!("{}/readyz", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// Today's API as (method, path): what the generated document must list, no more, no less.
const API: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("post", "/v1/artifacts"),
    ("get", "/v1/artifacts"),
    ("get", "/v1/artifacts/{id}"),
    ("delete", "/v1/artifacts/{id}"),
    ("get", "/v1/artifacts/{id}/content"),
    ("get", "/v1/receipts/{id}"),
    ("get", "/v1/keys/receipts"),
    ("post", "/v1/codes"),
    ("get", "/v1/codes"),
    ("delete", "/v1/codes"),
    ("delete", "/v1/codes/{id}"),
    ("post", "/v1/codes/verify"),
    ("post", "/v1/codes/live"),
    ("post", "/v1/codes/live/verify"),
    ("get", "/v1/codes/account"),
    ("put", "/v1/codes/device-key"),
    ("post", "/v1/codes/presence"),
    ("post", "/v1/codes/live/presence"),
    ("post", "/v1/passkeys/registrations"),
    ("post", "/v1/passkeys"),
    ("delete", "/v1/passkeys/{id}"),
    ("get", "/v1/members"),
    ("post", "/v1/verify"),
    ("post", "/v1/stamp"),
    ("get", "/v1/challenge"),
    ("get", "/v1/pickups/{token}"),
    ("post", "/v1/licenses/activate"),
    ("post", "/v1/licenses/check"),
    ("post", "/v1/licenses/usage"),
    ("get", "/v1/proofs/{proof_id}"),
    ("get", "/v1/proofs/{proof_id}/manifest"),
    ("get", "/v1/manifests/{manifest_id}"),
    ("get", "/v1/matches/byBinding"),
    ("post", "/v1/matches/byContent"),
    ("get", "/v1/services/supportedAlgorithms"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

/// The document generated from the router documents exactly today's API and is what
/// /openapi.json serves; each documented route answers something other than the fallback's
/// 404 for an unknown path, and no method on these paths is served undocumented.
/// The document names stored states and scopes by the text the API sends, not by the Rust
/// variant names.
#[test]
fn openapi_enums_are_the_wire_text() {
    let doc = serde_json::to_value(pixseal_server::openapi()).unwrap();
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["ProofStatus"]["enum"],
        serde_json::json!(["active", "purged", "not_stored"])
    );
}

#[tokio::test]
async fn openapi_matches_the_router() {
    let doc = serde_json::to_value(pixseal_server::openapi()).unwrap();
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "delete", "put", "patch"] {
            if item.get(method).is_some() {
                documented.push((method.to_string(), path.clone()));
            }
        }
    }
    let mut served: Vec<(String, String)> = API
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    documented.sort();
    served.sort();
    assert_eq!(documented, served);
    // Every method on every path, unauthenticated: past the default per-address budget.
    let s = spawn_with(
        Parts::Embedded,
        ServerConfig {
            rate_limit_per_ip: 10_000,
            ..ServerConfig::default()
        },
    )
    .await;
    let r = s
        .client
        .get(format!("{}/openapi.json", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/json");
    let live: Value = r.json().await.unwrap();
    // utoipa 5 writes OpenAPI 3.1.
    assert_eq!(live["openapi"], "3.1.0");
    assert_eq!(live, doc);
    // Picture routes take the raw picture as well as the form (what `Upload` reads).
    for path in [
        "/v1/artifacts",
        "/v1/verify",
        "/v1/matches/byContent",
        "/v1/stamp",
    ] {
        let content = &doc["paths"][path]["post"]["requestBody"]["content"];
        for ty in ["application/octet-stream", "image/*", "multipart/form-data"] {
            assert!(
                content.get(ty).is_some(),
                "POST {path} does not document {ty}"
            );
        }
    }
    let url = |p: &str| {
        format!(
            "{}{}",
            s.url,
            p.replace("{id}", "00000000-0000-7000-8000-000000000000")
        )
    };
    // Status and body of an unauthenticated `m p`.
    let call = async |m: &str, p: &str| {
        let method = m.to_uppercase().parse().unwrap();
        let r = s.client.request(method, url(p)).send().await.unwrap();
        (r.status(), r.text().await.unwrap_or_default())
    };
    for (m, p) in API {
        let (_, body) = call(m, p).await;
        // Unauthenticated calls to protected routes are 401 (route exists), public ones 200.
        assert!(
            !body.contains("no such route"),
            "{m} {p} fell through to the fallback"
        );
    }
    // Served but undocumented: anything but the fallback's 404 or a 405 for a method the
    // document does not list. HEAD is left out: axum answers it wherever GET is routed.
    let mut paths: Vec<&str> = API.iter().map(|(_, p)| *p).collect();
    paths.sort();
    paths.dedup();
    for p in paths {
        for m in ["get", "post", "delete", "put", "patch"] {
            let (status, body) = call(m, p).await;
            let unrouted = status == StatusCode::METHOD_NOT_ALLOWED
                || (status == StatusCode::NOT_FOUND && body.contains("no such route"));
            assert!(
                unrouted || documented.contains(&(m.to_string(), p.to_string())),
                "{m} {p} is served ({status}) but not documented"
            );
        }
    }
}

/// With a certificate configured, the service speaks TLS itself and sends HSTS; plain HTTP
/// answers carry no HSTS.
#[tokio::test]
async fn tls_with_hsts_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let cfg = ServerConfig {
        tls_cert: cert.display().to_string(),
        tls_key: key.display().to_string(),
        ..ServerConfig::default()
    };
    let s = spawn_with(Parts::Embedded, cfg).await;
    let port: u16 = s.url.rsplit(':').next().unwrap().parse().unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ck.cert.pem().as_bytes()).unwrap())
        .resolve(
            "localhost",
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        )
        .build()
        .unwrap();
    let r = client
        .get(format!("{}/healthz", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["strict-transport-security"],
        "max-age=63072000; includeSubDomains"
    );
    // Plain HTTP to the TLS port gets no answer as HTTP.
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    let p = spawn(Parts::Embedded).await;
    let r = p
        .client
        .get(format!("{}/healthz", p.url))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("strict-transport-security").is_none());
}

const DAY: i64 = 86_400_000;

/// Retention ends exactly at `expires_at`: not a millisecond before. After the purge the
/// artifact, its blob and its wrapped key are gone, and a retention receipt exists.
#[tokio::test]
async fn artifacts_expire_exactly_at_their_date() {
    let s = spawn(Parts::Embedded).await;
    let key = s.key("ret", "us", ALL).await;
    let photo = std::fs::read(fixtures().join("photos/tiny.gif")).unwrap();
    let (st, up) = s.upload(&key, photo, "?retention_days=7").await;
    assert_eq!(st, StatusCode::CREATED);
    let id = up["id"].as_str().unwrap().to_string();
    let t = s.db.tenant_by_name("ret").await.unwrap();
    let a = s.db.artifact(&t.id, &id).await.unwrap();
    assert_eq!(a.expires_ms - a.created_ms, 7 * DAY);
    let state = s.state.clone();
    let r = state
        .purge_at(a.expires_ms - 1, 100, 600_000)
        .await
        .unwrap();
    assert_eq!(r.purged, 0, "purged early");
    assert_eq!(
        s.get(&key, &format!("/v1/artifacts/{id}")).await.status(),
        StatusCode::OK
    );
    let r = state.purge_at(a.expires_ms, 100, 600_000).await.unwrap();
    assert_eq!(r.purged, 1);
    assert_eq!(
        s.get(&key, &format!("/v1/artifacts/{id}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert!(
        !s.db.artifact_exists(&id).await.unwrap(),
        "row (and wrapped key) gone"
    );
    assert!(
        !s.data.path().join("blobs/us").join(&id).exists(),
        "blob gone"
    );
    assert_eq!(s.db.receipt_count().await.unwrap(), 1);
    // Idempotent: a second pass finds nothing.
    assert_eq!(
        state
            .purge_at(a.expires_ms + DAY, 100, 600_000)
            .await
            .unwrap()
            .purged,
        0
    );
}

/// Two purge workers on one PostgreSQL purge everything exactly once; a claim left by a dead
/// worker is taken over after the stale period; client IPs are forgotten after 30 days.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_purge_workers_on_postgres_never_double_delete() {
    let s = spawn(Parts::Postgres).await;
    let t = s.db.create_tenant("bulk", "us", 30).await.unwrap();
    let (_, now) = pixseal_store::meta::now();
    let n = 120;
    for i in 0..n {
        let id = format!("bulk-{i:04}");
        let a = pixseal_store::Artifact {
            id: id.clone(),
            tenant_id: t.id.clone(),
            region: "us".into(),
            proof_id: format!("px_bulk{i:04}"),
            state: ArtifactState::Active,
            sha256: "0".repeat(64),
            original_sha256: "1".repeat(64),
            content_type: "image/webp".into(),
            width: 1,
            height: 1,
            bytes: 1,
            wrapped_key: String::new(),
            label_sealed: None,
            client_ip_sealed: Some("sealed-ip".into()),
            created_at: String::new(),
            created_ms: now - 40 * DAY,
            expires_at: String::new(),
            expires_ms: now - 1 - i as i64,
        };
        s.db.insert_artifact(&a).await.unwrap();
        let p = s.data.path().join("blobs/us").join(&id);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"sealed").unwrap();
    }
    // One more, not yet due, whose IP is older than 30 days: kept, but its IP forgotten.
    let keep = pixseal_store::Artifact {
        id: "keep".into(),
        tenant_id: t.id.clone(),
        region: "us".into(),
        proof_id: "px_keep".into(),
        state: ArtifactState::Active,
        sha256: "0".repeat(64),
        original_sha256: "1".repeat(64),
        content_type: "image/webp".into(),
        width: 1,
        height: 1,
        bytes: 1,
        wrapped_key: String::new(),
        label_sealed: None,
        client_ip_sealed: Some("sealed-ip".into()),
        created_at: String::new(),
        created_ms: now - 31 * DAY,
        expires_at: String::new(),
        expires_ms: now + DAY,
    };
    s.db.insert_artifact(&keep).await.unwrap();
    let (a, b) = (s.state.clone(), s.state.clone());
    let (ra, rb) = tokio::join!(
        tokio::spawn(async move { a.purge_at(now, 7, 600_000).await.unwrap() }),
        tokio::spawn(async move { b.purge_at(now, 7, 600_000).await.unwrap() }),
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.purged + rb.purged, n as u64, "{ra:?} {rb:?}");
    assert!(
        ra.purged > 0 && rb.purged > 0,
        "both workers took part: {ra:?} {rb:?}"
    );
    assert_eq!(ra.failed + rb.failed, 0);
    assert_eq!(
        s.db.receipt_count().await.unwrap(),
        n as i64,
        "exactly one receipt per artifact"
    );
    assert!(s.db.artifact_exists("keep").await.unwrap());
    let kept = s.db.artifact(&t.id, "keep").await.unwrap();
    assert_eq!(
        kept.client_ip_sealed, None,
        "IP older than 30 days forgotten"
    );

    // A worker that claimed a row and died: taken over only once the claim is stale.
    let mut dead = keep.clone();
    dead.id = "dead".into();
    dead.proof_id = "px_dead".into();
    dead.expires_ms = now - DAY;
    s.db.insert_artifact(&dead).await.unwrap();
    assert_eq!(
        s.db.claim_due(now, 600_000, 10).await.unwrap().len(),
        1,
        "first worker claims it, then dies"
    );
    assert_eq!(
        s.state
            .purge_at(now + 1000, 10, 600_000)
            .await
            .unwrap()
            .purged,
        0,
        "fresh claim respected"
    );
    assert_eq!(
        s.state
            .purge_at(now + 700_000, 10, 600_000)
            .await
            .unwrap()
            .purged,
        1,
        "stale claim taken over"
    );
    assert!(!s.db.artifact_exists("dead").await.unwrap());
}

fn limited(
    backend: RateLimitBackend,
    redis_url: &str,
    prefix: &str,
    per_key: u32,
    period: u64,
) -> ServerConfig {
    ServerConfig {
        rate_limit_backend: backend,
        rate_limit_redis_url: redis_url.into(),
        rate_limit_prefix: prefix.into(),
        rate_limit_per_key: per_key,
        rate_limit_per_ip: per_key,
        rate_limit_period_secs: period,
        ..ServerConfig::default()
    }
}

async fn status_of(s: &TestServer, key: &str) -> (StatusCode, Option<String>, Value) {
    let r = s
        .get(key, "/v1/artifacts/00000000-0000-7000-8000-000000000000")
        .await;
    let st = r.status();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (st, retry, r.json().await.unwrap_or(Value::Null))
}

/// In-process limits: the burst passes, the next request is 429 with Retry-After and the JSON
/// error body; health is never limited; another key has its own budget.
#[tokio::test]
async fn rate_limits_in_process() {
    let s = spawn_with(
        Parts::Embedded,
        limited(RateLimitBackend::Memory, "", "", 3, 60),
    )
    .await;
    let key = s.key("rl", "us", ALL).await;
    for _ in 0..3 {
        assert_eq!(status_of(&s, &key).await.0, StatusCode::NOT_FOUND);
    }
    let (st, retry, body) = status_of(&s, &key).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry.unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(body["error"]["code"], "rate_limited");
    let other = s.key("rl", "us", ALL).await;
    assert_eq!(status_of(&s, &other).await.0, StatusCode::NOT_FOUND);
    for _ in 0..5 {
        assert_eq!(
            s.client
                .get(format!("{}/healthz", s.url))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
    }
}

/// Redis limits hold across two instances sharing one Redis and reset when the period has
/// passed; with Redis down the service falls back to in-process limits (no 500s).
#[tokio::test]
async fn rate_limits_shared_through_redis_and_redis_outage() {
    let prefix = format!(
        "pixseal:test:{}:{}:",
        std::process::id(),
        pixseal_store::meta::now().1
    );
    let cfg = limited(
        RateLimitBackend::Redis,
        "redis://127.0.0.1:6379",
        &prefix,
        4,
        2,
    );
    // Two instances sharing PostgreSQL and Redis, as in production.
    let shared = config(&Parts::Postgres, cfg);
    let a = TestServer(TestApp::spawn(shared.clone()).await);
    let key = a.key("shared", "us", ALL).await;
    let b = TestServer(TestApp::spawn(shared).await);
    let mut codes = Vec::new();
    for i in 0..6 {
        let s = if i % 2 == 0 { &a } else { &b };
        codes.push(status_of(s, &key).await.0.as_u16());
    }
    // Every request spends the one budget of the key, whichever instance answers.
    assert_eq!(codes.iter().filter(|c| **c == 429).count(), 2, "{codes:?}");
    assert!(codes[..4].iter().all(|c| *c != 429), "{codes:?}");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_ne!(
        status_of(&a, &key).await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "budget refilled after the period"
    );

    let down = spawn_with(
        Parts::Embedded,
        limited(
            RateLimitBackend::Redis,
            "redis://127.0.0.1:1",
            &prefix,
            2,
            60,
        ),
    )
    .await;
    let k = down.key("down", "us", ALL).await;
    let codes: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(status_of(&down, &k).await.0.as_u16());
        }
        v
    };
    assert_eq!(
        codes,
        vec![404, 404, 429],
        "fallback still limits, and nothing is a 5xx"
    );
}

/// GET a public route (an unknown proof: 404) with these headers; the status.
async fn public_status(s: &TestServer, headers: &[(&str, &str)]) -> u16 {
    let mut r = s
        .client
        .get(format!("{}/v1/proofs/px_0000000000000000", s.url));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap().status().as_u16()
}

fn random_token(i: usize) -> String {
    format!("Bearer pxk_made_up_{i}_{}", uuid_like(i))
}

fn uuid_like(i: usize) -> String {
    format!(
        "{:032x}",
        (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
    )
}

/// Made-up bearer tokens buy no budget: requests whose token is not a valid key are counted
/// per client address like requests without one, while a valid key keeps its own budget.
#[tokio::test]
async fn made_up_tokens_are_limited_per_address() {
    let s = spawn_with(
        Parts::Embedded,
        ServerConfig {
            rate_limit_per_ip: 5,
            rate_limit_per_key: 50,
            rate_limit_auth_failures_per_ip: 1000,
            ..ServerConfig::default()
        },
    )
    .await;
    let key = s.key("rl-tokens", "us", ALL).await;
    let mut codes = Vec::new();
    for i in 0..8 {
        codes.push(public_status(&s, &[("authorization", &random_token(i))]).await);
    }
    assert_eq!(codes, [404, 404, 404, 404, 404, 429, 429, 429]);
    assert_eq!(public_status(&s, &[]).await, 429, "the same address budget");
    assert_eq!(
        status_of(&s, &key).await.0,
        StatusCode::NOT_FOUND,
        "a valid key is counted per key"
    );
}

/// Failed authentications have their own budget per address: past it, tokens from there are
/// refused (429) without being looked up, and what is audited stays bounded (the route's
/// template, never an attacker-sized path).
#[tokio::test]
async fn failed_authentications_are_bounded() {
    let s = spawn_with(
        Parts::Embedded,
        ServerConfig {
            rate_limit_per_ip: 1000,
            rate_limit_auth_failures_per_ip: 3,
            ..ServerConfig::default()
        },
    )
    .await;
    let long_id = "A".repeat(4000);
    let mut codes = Vec::new();
    for i in 0..10 {
        let r = s
            .client
            .get(format!("{}/v1/artifacts/{long_id}", s.url))
            .header("authorization", random_token(i))
            .send()
            .await
            .unwrap();
        codes.push(r.status().as_u16());
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.headers().contains_key("retry-after"));
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
        }
    }
    // Three failures fit the budget, the fourth is looked up and spends past it, the rest are
    // refused at the door.
    assert_eq!(codes, [401, 401, 401, 401, 429, 429, 429, 429, 429, 429]);
    let audited: Vec<_> =
        s.db.audit_entries()
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "auth")
            .collect();
    assert_eq!(audited.len(), 4, "one entry per lookup, none once refused");
    for e in &audited {
        assert_eq!(e.object, "/v1/artifacts/{id}");
        assert!(e.object.len() + e.detail.len() < 100);
    }
}

/// Behind a trusted proxy the forwarded address is the client: it is what rate limits count
/// (IPv6 by /64) and what an upload keeps sealed. From anyone else the headers are ignored.
#[tokio::test]
async fn forwarded_addresses_only_from_trusted_proxies() {
    let limited_to = |proxies: Vec<&str>| ServerConfig {
        rate_limit_per_ip: 2,
        trusted_proxies: proxies.iter().map(|p| p.parse().unwrap()).collect(),
        ..ServerConfig::default()
    };
    let direct = spawn_with(Parts::Embedded, limited_to(vec![])).await;
    let mut codes = Vec::new();
    for i in 0..3 {
        let xff = format!("198.51.100.{i}");
        codes.push(public_status(&direct, &[("x-forwarded-for", &xff)]).await);
    }
    assert_eq!(
        codes,
        [404, 404, 429],
        "headers from an untrusted peer change nothing"
    );

    let behind = spawn_with(Parts::Embedded, limited_to(vec!["127.0.0.1/32"])).await;
    let xff = |ip: &'static str| [("x-forwarded-for", ip)];
    for _ in 0..2 {
        assert_eq!(public_status(&behind, &xff("198.51.100.1")).await, 404);
    }
    assert_eq!(public_status(&behind, &xff("198.51.100.1")).await, 429);
    assert_eq!(public_status(&behind, &xff("198.51.100.2")).await, 404);
    // A client-written first hop is not believed: the proxy appended the real one.
    assert_eq!(
        public_status(&behind, &xff("203.0.113.50, 198.51.100.1")).await,
        429
    );
    let fwd = |v: &'static str| [("forwarded", v)];
    assert_eq!(
        public_status(&behind, &fwd("for=\"[2001:db8:1:2::1]\"")).await,
        404
    );
    assert_eq!(
        public_status(&behind, &fwd("for=\"[2001:db8:1:2::ffff]:443\"")).await,
        404
    );
    assert_eq!(
        public_status(&behind, &fwd("for=\"[2001:db8:1:2:aaaa::7]\"")).await,
        429,
        "one /64 is one client"
    );
    assert_eq!(
        public_status(&behind, &fwd("for=\"[2001:db8:1:3::1]\"")).await,
        404
    );

    let key = behind.key("proxied", "us", ALL).await;
    let jpeg = std::fs::read(fixtures().join("metadata/jpeg-all.jpg")).unwrap();
    let r = behind
        .client
        .post(format!("{}/v1/artifacts", behind.url))
        .bearer_auth(&key)
        .header("x-forwarded-for", "192.0.2.77")
        .body(jpeg)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let up: Value = r.json().await.unwrap();
    let id = up["id"].as_str().unwrap();
    let tenant = behind.db.tenant_by_name("proxied").await.unwrap();
    let a = behind.db.artifact(&tenant.id, id).await.unwrap();
    let ip = pixseal_seal::open_field(
        behind.state.services.keys.as_ref(),
        "us",
        &format!("artifacts.client_ip.{id}"),
        a.client_ip_sealed.as_deref().unwrap(),
    )
    .unwrap();
    assert_eq!(&ip[..], b"192.0.2.77");
}

async fn verify_upload(s: &TestServer, body: Vec<u8>) -> Value {
    let r = s
        .client
        .post(format!("{}/v1/verify", s.url))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// Invented HTTP methods are one `OTHER` label: 50 of them add one series to the public
/// /metrics, not 50.
#[tokio::test]
async fn odd_methods_add_no_metric_series() {
    let s = spawn(Parts::Embedded).await;
    let series = |m: &str| {
        m.lines()
            .filter(|l| l.starts_with("pixseal_http_requests_total{"))
            .count()
    };
    let metrics = async || {
        let r = s
            .client
            .get(format!("{}/metrics", s.url))
            .send()
            .await
            .unwrap();
        r.text().await.unwrap()
    };
    let before = series(&metrics().await);
    for i in 0..50 {
        let method = reqwest::Method::from_bytes(format!("PXODD{i}").as_bytes()).unwrap();
        s.client
            .request(method, format!("{}/healthz", s.url))
            .send()
            .await
            .unwrap();
    }
    let m = metrics().await;
    assert!(!m.contains("PXODD"), "{m}");
    assert!(m.contains(r#"method="OTHER""#), "{m}");
    // The 50 requests, plus the first /metrics call itself, are at most a few series.
    assert!(
        series(&m) <= before + 3,
        "{} series after 50 odd methods (was {before})",
        series(&m)
    );
}

/// A phone's HEIC is accepted like a JPEG: uploaded, stamped and stored (as WebP), its stored
/// copy verifies, and the HEIC itself is recognised by `POST /v1/verify` as what was stamped.
#[tokio::test]
async fn phone_heic_uploads_and_verifies() {
    let s = spawn(Parts::Embedded).await;
    let key = s.key("phone", "us", ALL).await;
    let heic = std::fs::read(fixtures().join("photos/garden-phone.heic")).unwrap();
    let (st, up) = s.upload(&key, heic.clone(), "?retention_days=7").await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let id = up["id"].as_str().unwrap();
    let stored = s.get(&key, &format!("/v1/artifacts/{id}/content")).await;
    assert_eq!(stored.headers()["content-type"], "image/webp");
    let stored = stored.bytes().await.unwrap().to_vec();
    let v = verify_upload(&s, stored).await;
    assert_eq!(v["verdict"], "verified", "{v:#}");
    assert_eq!(v["proof_id"], up["proof_id"]);
    // The HEIC itself carries no manifest or watermark, but looks like what was stamped from it.
    let v = verify_upload(&s, heic).await;
    assert_eq!(v["verdict"], "near_match", "{v:#}");
    assert_eq!(v["proof_id"], up["proof_id"]);
}

/// A watermark carrying a proof this service never issued (another installation's): the verdict is
/// still `watermark_only` and names the proof, with no record.
#[tokio::test]
async fn watermark_of_an_unknown_proof_is_still_named() {
    let s = spawn(Parts::Embedded).await;
    let img = image::open(fixtures().join("photos/garden.jpg"))
        .unwrap()
        .to_rgb8();
    let (w, h) = img.dimensions();
    let mut px = pixseal_media::Pixels::new(w, h, 3, img.into_raw());
    let id = pixseal_proof::ProofId(0x0bad_cafe_0123_4567);
    let applied = pixseal_provenance::apply_watermarks(
        &mut px,
        id.0,
        "2026-11-26",
        &pixseal_provenance::MarkOptions::default(),
    );
    assert!(applied.actions.watermarked && !applied.actions.visible_mark);
    let mut png = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_raw(w, h, px.data)
        .unwrap()
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();
    let v = verify_upload(&s, png.into_inner()).await;
    assert_eq!(v["verdict"], "watermark_only", "{v:#}");
    assert_eq!(v["proof_id"], id.to_string());
    assert_eq!(v["record"], Value::Null);
}

/// Another photo (fixtures/photos/street.webp) marked with this proof's watermark: a forgery,
/// since the watermark carries no secret. PNG.
fn forged_with(proof_id: &str) -> Vec<u8> {
    let other =
        image::load_from_memory(&std::fs::read(fixtures().join("photos/street.webp")).unwrap())
            .unwrap()
            .to_rgb8();
    let (w, h) = other.dimensions();
    let mut px = pixseal_media::Pixels::new(w, h, 3, other.into_raw());
    let id: pixseal_proof::ProofId = proof_id.parse().unwrap();
    pixseal_watermark::embed(&mut px, id, pixseal_watermark::Strength::default()).unwrap();
    let img = image::RgbImage::from_raw(w, h, px.data).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn reencode(webp: &[u8], scale_pct: u32, format: image::ImageFormat) -> Vec<u8> {
    let img = image::load_from_memory(webp).unwrap();
    let img = if scale_pct == 100 {
        img
    } else {
        img.resize(
            img.width() * scale_pct / 100,
            img.height() * scale_pct / 100,
            image::imageops::FilterType::Triangle,
        )
    };
    let mut out = std::io::Cursor::new(Vec::new());
    img.to_rgb8().write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// Uploads come back stamped (a C2PA manifest the service's verifier trusts); POST /v1/verify
/// gives verified / tampered / near_match / not_stamped without storing anything; the public
/// proof record survives the purge (with its receipt and its PDQ hash).
#[tokio::test]
async fn verify_and_public_proof_records() {
    let s = spawn(Parts::Embedded).await;
    let key = s.key("prov", "us", ALL).await;
    let photo = std::fs::read(fixtures().join("photos/garden.jpg")).unwrap();
    let (st, up) = s
        .upload(&key, photo.clone(), "?retention_days=7&visible=false")
        .await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let (id, proof_id) = (
        up["id"].as_str().unwrap().to_string(),
        up["proof_id"].as_str().unwrap().to_string(),
    );
    let webp = s
        .get(&key, &format!("/v1/artifacts/{id}/content"))
        .await
        .bytes()
        .await
        .unwrap()
        .to_vec();
    assert!(
        webp.windows(4).any(|w| w == b"C2PA"),
        "WebP carries a C2PA chunk"
    );

    let v = verify_upload(&s, webp.clone()).await;
    assert_eq!(v["verdict"], "verified", "{v:#}");
    assert_eq!(v["proof_id"], proof_id.as_str());
    assert_eq!(v["record"]["status"], "active");
    assert_eq!(v["record"]["issuer"], "pixseal (ephemeral identity)");
    assert!(
        v["claim_generator"]
            .as_str()
            .unwrap()
            .starts_with("pixseal/")
    );

    let mut bad = webp.clone();
    let at = bad.windows(4).position(|w| w == b"VP8 ").unwrap() + 300;
    bad[at] ^= 0x04;
    let v = verify_upload(&s, bad).await;
    assert_eq!(v["verdict"], "tampered", "{v:#}");
    assert_eq!(v["record"], Value::Null, "an altered file gets no record");

    // Metadata stripped (re-encoded): the invisible watermark still names the proof, and the
    // public record comes with it.
    for fmt in [image::ImageFormat::Png, image::ImageFormat::Jpeg] {
        let v = verify_upload(&s, reencode(&webp, 100, fmt)).await;
        assert_eq!(v["verdict"], "watermark_only", "{fmt:?}: {v:#}");
        assert_eq!(v["proof_id"], proof_id.as_str());
        assert_eq!(v["record"]["status"], "active", "{v:#}");
        assert_eq!(v["proof_match"], "matches", "{v:#}");
        assert!(v["pdq_distance"].as_u64().unwrap() <= 31, "{v:#}");
    }
    // The watermark is no secret: another picture marked with this proof's id claims the
    // proof but gets neither its issuer nor its date.
    let forged = forged_with(&proof_id);
    let v = verify_upload(&s, forged).await;
    assert_eq!(v["verdict"], "watermark_only", "{v:#}");
    assert_eq!(v["proof_match"], "mismatch", "{v:#}");
    assert_eq!(v["record"], Value::Null, "{v:#}");
    assert!(v["pdq_distance"].as_u64().unwrap() > 31, "{v:#}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("does not look like"),
        "{v:#}"
    );
    // Resized to 320×240 as well, after the WebP stamp and before a JPEG: at that size the
    // watermark is not always read (docs/watermark.md), but the proof is still found, by the
    // watermark or else by the perceptual hash.
    let v = verify_upload(&s, reencode(&webp, 50, image::ImageFormat::Jpeg)).await;
    assert!(
        v["verdict"] == "watermark_only" || v["verdict"] == "near_match",
        "{v:#}"
    );
    assert_eq!(v["proof_id"], proof_id.as_str());
    assert_eq!(v["record"]["status"], "active", "{v:#}");
    // The picture as it was before stamping (no manifest, no watermark): only the perceptual
    // hash links it to the proof.
    let v = verify_upload(&s, photo.clone()).await;
    assert_eq!(v["verdict"], "near_match", "{v:#}");
    assert_eq!(v["proof_id"], proof_id.as_str());
    assert!(v["pdq_distance"].as_u64().unwrap() <= 31);
    let other = std::fs::read(fixtures().join("photos/street.webp")).unwrap();
    let v = verify_upload(&s, other).await;
    assert_eq!(v["verdict"], "not_stamped", "{v:#}");

    let r = s
        .client
        .get(format!("{}/v1/proofs/{proof_id}", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["status"], "active");
    assert_eq!(p["proof_id"], proof_id.as_str());
    assert!(p.get("receipt").is_none());
    let lower = proof_id.to_lowercase();
    let r = s
        .client
        .get(format!("{}/v1/proofs/{lower}", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "proof ids are case-insensitive");
    for bogus in ["px_0000000000000", "nope", "px_0H8Z4K2M9QW3R"] {
        let r = s
            .client
            .get(format!("{}/v1/proofs/{bogus}", s.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{bogus}");
    }

    // After the purge: the record says purged and carries the receipt; the PDQ hash stays.
    let t = s.db.tenant_by_name("prov").await.unwrap();
    let a = s.db.artifact(&t.id, &id).await.unwrap();
    let r = s.state.purge_at(a.expires_ms, 100, 600_000).await.unwrap();
    assert_eq!(r.purged, 1);
    let p: Value = s.public_json(&format!("/v1/proofs/{proof_id}")).await;
    assert_eq!(p["status"], "purged", "{p:#}");
    assert_eq!(p["receipt"]["receipt"]["proof_id"], proof_id.as_str());
    assert_eq!(p["receipt"]["receipt"]["reason"], "retention_expired");
    let shown = p.to_string();
    assert!(
        !shown.contains(&id) && !shown.contains(up["original_sha256"].as_str().unwrap()),
        "the public record names the artifact: {shown}"
    );
    let v = verify_upload(&s, reencode(&webp, 100, image::ImageFormat::Png)).await;
    assert_eq!(v["verdict"], "watermark_only", "{v:#}");
    assert_eq!(v["record"]["status"], "purged");
    let v = verify_upload(&s, photo).await;
    assert_eq!(v["verdict"], "near_match", "{v:#}");
    assert_eq!(v["record"]["status"], "purged");
    let v = verify_upload(&s, webp).await;
    assert_eq!(v["verdict"], "verified");
    assert_eq!(v["record"]["status"], "purged");
}

/// A TCP relay to OpenBao that can be cut (new connections dropped, open ones aborted), to
/// take the key service away from a running server.
struct Relay {
    addr: String,
    up: Arc<std::sync::atomic::AtomicBool>,
    conns: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    async fn start(target: &str) -> Relay {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("http://{}", l.local_addr().unwrap());
        let target = target.trim_start_matches("http://").to_string();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let conns = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (u, c) = (up.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = l.accept().await else {
                    continue;
                };
                if !u.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection closed
                }
                let target = target.clone();
                c.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                }));
            }
        });
        Relay { addr, up, conns }
    }

    fn set(&self, up: bool) {
        self.up.store(up, std::sync::atomic::Ordering::SeqCst);
        if !up {
            for h in self.conns.lock().unwrap().drain(..) {
                h.abort();
            }
        }
    }
}

/// OpenBao's own view of the receipt key's public half (32 raw bytes, base64), PEM-encoded by
/// our verifier type only to compare with what the server serves.
async fn bao_receipt_key_pem(bao: &pixseal_testkit::Bao) -> String {
    let v: Value = reqwest::Client::new()
        .get(format!("{}/v1/transit/keys/pixseal-receipts", bao.addr))
        .header("X-Vault-Token", &bao.root_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"]["type"], "ed25519", "{v}");
    let latest = v["data"]["latest_version"].as_u64().unwrap().to_string();
    let raw = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        v["data"]["keys"][&latest]["public_key"].as_str().unwrap(),
    )
    .unwrap();
    pixseal_proof::ReceiptPublicKey::from_raw(&raw)
        .unwrap()
        .pem()
        .to_string()
}

/// `/readyz` is public and unlimited, so it probes the held keys at most once per interval:
/// many concurrent calls share one probe, and with the key service cut the last result stands
/// (no call reached it), while a real deletion still fails at once with `key_unavailable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_probes_the_held_keys_at_most_once_per_interval() {
    let Some(bao) = pixseal_testkit::openbao("us eu rot shred") else {
        return;
    };
    let relay = Relay::start(&bao.addr).await;
    let s = spawn_with(
        Parts::TransitReceipts(relay.addr.clone()),
        ServerConfig {
            readiness_interval_ms: 600_000,
            ..ServerConfig::default()
        },
    )
    .await;
    let key = s.key("probe", "us", ALL).await;
    let photo = std::fs::read(fixtures().join("photos/garden.jpg")).unwrap();
    let (st, up) = s.upload(&key, photo, "").await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let calls: Vec<_> = (0..20)
        .map(|_| tokio::spawn(s.client.get(format!("{}/readyz", s.url)).send()))
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap().unwrap().status(), StatusCode::OK);
    }
    relay.set(false);
    let ready: Value = s.public_json("/readyz").await;
    assert_eq!(
        ready["receipt_signer"], "ok",
        "the last probe stands: {ready}"
    );
    let r = s
        .client
        .delete(format!(
            "{}/v1/artifacts/{}",
            s.url,
            up["id"].as_str().unwrap()
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "key_unavailable", "{body}");
}

/// Deletion receipts signed by the Ed25519 key held in Transit: DELETE answers with a receipt
/// that GET /v1/receipts/{id} returns unchanged and that verifies with the key served at
/// /v1/keys/receipts (which is OpenBao's key, with the receipt's key id); a changed field fails;
/// the purge's receipts are signed the same way. With the key service cut, DELETE is
/// `key_unavailable` and nothing was deleted; once it is back, the same DELETE succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transit_signed_deletion_receipts_over_http() {
    let Some(bao) = pixseal_testkit::openbao("us eu rot shred") else {
        return;
    };
    let relay = Relay::start(&bao.addr).await;
    let every_call = ServerConfig {
        readiness_interval_ms: 0,
        ..ServerConfig::default()
    };
    let s = spawn_with(Parts::TransitReceipts(relay.addr.clone()), every_call).await;
    let key = s.key("rcpt", "us", ALL).await;
    let photo = std::fs::read(fixtures().join("photos/garden.jpg")).unwrap();
    let mut ids = Vec::new();
    // Expiry times have a resolution of one second: the third artifact expires a week later.
    for days in [7, 7, 15] {
        let (st, up) = s
            .upload(&key, photo.clone(), &format!("?retention_days={days}"))
            .await;
        assert_eq!(st, StatusCode::CREATED, "{up}");
        ids.push((
            up["id"].as_str().unwrap().to_string(),
            up["proof_id"].as_str().unwrap().to_string(),
        ));
    }

    // The served key is OpenBao's ed25519 key.
    let key_doc: Value = s.public_json("/v1/keys/receipts").await;
    let pem = key_doc["public_key_pem"].as_str().unwrap().to_string();
    assert_eq!(key_doc["alg"], "Ed25519");
    assert_eq!(pem, bao_receipt_key_pem(bao).await);
    let served_id = pixseal_proof::ReceiptPublicKey::from_pem(&pem).unwrap();
    assert_eq!(
        key_doc["key_id"],
        served_id.key_id(),
        "key id derived from the key"
    );

    // DELETE → receipt; verifies with the served key; served again by id; any change fails.
    let (id, proof_id) = &ids[0];
    let r = s
        .client
        .delete(format!("{}/v1/artifacts/{id}", s.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let signed: pixseal_proof::SignedReceipt = r.json().await.unwrap();
    assert_eq!(signed.opening.as_ref().unwrap().artifact_id, *id);
    assert_eq!(signed.receipt.proof_id(), *proof_id);
    assert_eq!(signed.receipt.reason(), "deleted_by_owner");
    assert_eq!(signed.key_id, key_doc["key_id"].as_str().unwrap());
    signed.verify_pem(&pem).unwrap();
    let again: pixseal_proof::SignedReceipt = s
        .public_json(&format!("/v1/receipts/{}", signed.receipt.receipt_id()))
        .await;
    assert_eq!(again, signed.public());
    again.verify_pem(&pem).unwrap();
    let json = serde_json::to_value(&signed).unwrap();
    for field in ["subject", "proof_id", "sha256", "deleted_at", "reason"] {
        let mut j = json.clone();
        j["receipt"][field] = Value::String("changed".into());
        let t: pixseal_proof::SignedReceipt = serde_json::from_value(j).unwrap();
        assert_eq!(
            t.verify_pem(&pem),
            Err(pixseal_proof::ReceiptError::BadSignature),
            "{field}"
        );
    }

    // The purge signs through Transit too: the public proof record carries a valid receipt.
    let t = s.db.tenant_by_name("rcpt").await.unwrap();
    let a = s.db.artifact(&t.id, &ids[1].0).await.unwrap();
    let purge_at = s.db.artifact(&t.id, &ids[2].0).await.unwrap().expires_ms;
    let r = s.state.purge_at(a.expires_ms, 1, 600_000).await.unwrap();
    assert_eq!((r.purged, r.failed), (1, 0), "{r:?}");
    let p: Value = s.public_json(&format!("/v1/proofs/{}", ids[1].1)).await;
    assert_eq!(p["status"], "purged", "{p:#}");
    let purged: pixseal_proof::SignedReceipt =
        serde_json::from_value(p["receipt"].clone()).unwrap();
    assert_eq!(purged.receipt.reason(), "retention_expired");
    assert_eq!(
        purged.opening, None,
        "the public record shows the public view"
    );
    purged.verify_pem(&pem).unwrap();

    // Key service cut: DELETE is key_unavailable (503) and the artifact is untouched.
    let (id3, _) = &ids[2];
    relay.set(false);
    let r = s
        .client
        .delete(format!("{}/v1/artifacts/{id3}", s.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "key_unavailable", "{body}");
    assert_eq!(
        s.get(&key, &format!("/v1/artifacts/{id3}/content"))
            .await
            .status(),
        StatusCode::OK,
        "nothing deleted without a receipt"
    );
    // A purge pass due then fails for it, leaves it claimed, and deletes nothing.
    let r = s.state.purge_at(purge_at, 10, 600_000).await.unwrap();
    assert_eq!((r.purged, r.failed), (0, 1), "{r:?}");
    assert!(s.db.artifact_exists(id3).await.unwrap());
    let r = s
        .client
        .get(format!("{}/readyz", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ready: Value = r.json().await.unwrap();
    assert_eq!(ready["receipt_signer"], "unavailable", "{ready}");
    // Back: the stale claim is taken over and the artifact purged with a valid receipt.
    relay.set(true);
    let r = s.state.purge_at(purge_at + 1, 10, 0).await.unwrap();
    assert_eq!((r.purged, r.failed), (1, 0), "{r:?}");
    assert!(!s.db.artifact_exists(id3).await.unwrap());
    assert_eq!(s.db.receipt_count().await.unwrap(), 3);
    let r = s
        .client
        .get(format!("{}/readyz", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// What an upload's answer says about the picture: (status, error code or "WxH").
async fn upload_outcome(s: &TestServer, key: &str, body: &[u8]) -> (StatusCode, String) {
    let (st, v) = s.upload(key, body.to_vec(), "?visible=false").await;
    let what = match v["error"]["code"].as_str() {
        Some(code) => code.to_string(),
        None => format!("{}x{}", v["width"], v["height"]),
    };
    (st, what)
}

/// The server as one worker (one decode at a time): hostile and valid pictures in a shuffled
/// order give each picture what a service of its own gives it.
#[tokio::test]
async fn any_order_through_one_worker_gives_what_a_fresh_service_gives() {
    let inputs = pixseal_testkit::hostile::mixed_inputs();
    let one_worker = ServerConfig {
        decode_concurrency: 1,
        rate_limit_per_key: 0,
        rate_limit_per_ip: 0,
        ..ServerConfig::default()
    };
    let mut alone = Vec::new();
    for (_, bytes) in &inputs {
        let s = spawn_with(Parts::Embedded, one_worker.clone()).await;
        let key = s.key("t", "us", ALL).await;
        alone.push(upload_outcome(&s, &key, bytes).await);
    }
    assert!(alone.iter().filter(|(st, _)| st.is_client_error()).count() >= 6);
    assert!(
        alone.iter().all(|(st, _)| !st.is_server_error()),
        "{alone:?}"
    );
    let s = spawn_with(Parts::Embedded, one_worker).await;
    let key = s.key("t", "us", ALL).await;
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for round in 0..3 {
        let mut order: Vec<usize> = (0..inputs.len()).collect();
        for i in (1..order.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            order.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        for i in order {
            let got = upload_outcome(&s, &key, &inputs[i].1).await;
            assert_eq!(got, alone[i], "round {round}: {}", inputs[i].0);
        }
    }
}

/// The configured receipt signer, slowed down and recording every receipt it is asked to
/// sign: what a race test counts.
struct RecordingSigner {
    inner: Arc<dyn pixseal_proof::ReceiptSigner>,
    signed: std::sync::Mutex<Vec<pixseal_proof::Receipt>>,
}

impl pixseal_proof::ReceiptSigner for RecordingSigner {
    fn provider(&self) -> &'static str {
        self.inner.provider()
    }
    fn public_key(&self) -> &pixseal_proof::ReceiptPublicKey {
        self.inner.public_key()
    }
    fn sign(
        &self,
        receipt: pixseal_proof::Receipt,
    ) -> Result<pixseal_proof::SignedReceipt, pixseal_proof::ReceiptError> {
        self.signed.lock().unwrap().push(receipt.clone());
        // A slow signer (a key service) widens every race window around the signature.
        std::thread::sleep(std::time::Duration::from_millis(30));
        self.inner.sign(receipt)
    }
    fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, pixseal_proof::ReceiptError> {
        self.inner.sign_message(message)
    }
}

/// `parts` served with a recording receipt signer.
async fn spawn_recording(parts: Parts) -> (TestServer, Arc<RecordingSigner>) {
    let mut rec = None;
    let app = TestApp::spawn_adjusted(config(&parts, ServerConfig::default()), |state| {
        let r = Arc::new(RecordingSigner {
            inner: state.services.receipts.clone(),
            signed: Default::default(),
        });
        state.services.receipts = r.clone();
        rec = Some(r);
    })
    .await;
    (TestServer(app), rec.unwrap())
}

/// DELETE `id` `n` times at once: each answer's (status, body).
async fn concurrent_deletes(
    s: &TestServer,
    key: &str,
    id: &str,
    n: usize,
) -> Vec<(StatusCode, Value)> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (client, url, key) = (
                s.client.clone(),
                format!("{}/v1/artifacts/{id}", s.url),
                key.to_string(),
            );
            tokio::spawn(async move {
                let r = client.delete(url).bearer_auth(key).send().await.unwrap();
                (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// One artifact, one receipt: whatever raced, every receipt ever signed for `id` is one and
/// the same statement, it is the one stored and the one the public proof record names.
async fn one_receipt(
    s: &TestServer,
    rec: &RecordingSigner,
    id: &str,
    proof_id: &str,
) -> pixseal_proof::SignedReceipt {
    let signed = rec.signed.lock().unwrap().clone();
    assert!(!signed.is_empty(), "nothing signed");
    assert!(
        signed.iter().all(|r| *r == signed[0]),
        "different receipts signed for one artifact: {signed:#?}"
    );
    assert_eq!(s.db.receipt_count().await.unwrap(), 1);
    let stored =
        s.db.receipt_of_artifact(id)
            .await
            .unwrap()
            .expect("a stored receipt");
    assert_eq!(stored.receipt_id, signed[0].receipt_id());
    assert!(!s.db.artifact_exists(id).await.unwrap());
    assert!(
        !s.data.path().join("blobs/us").join(id).exists(),
        "blob gone"
    );
    let p: Value = s.public_json(&format!("/v1/proofs/{proof_id}")).await;
    assert_eq!(p["status"], "purged", "{p:#}");
    let public: pixseal_proof::SignedReceipt =
        serde_json::from_value(p["receipt"].clone()).unwrap();
    assert_eq!(public.receipt, signed[0]);
    public
        .verify(s.state.receipts.public_key().verifying_key())
        .unwrap();
    public
}

async fn upload_tiny(s: &TestServer, key: &str) -> (String, String) {
    let photo = std::fs::read(fixtures().join("photos/tiny.gif")).unwrap();
    let (st, up) = s.upload(key, photo, "?retention_days=7").await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    (
        up["id"].as_str().unwrap().to_string(),
        up["proof_id"].as_str().unwrap().to_string(),
    )
}

/// Many DELETEs of one artifact at once: exactly one answers the receipt (tenant's view),
/// every other one `not_found`; exactly one receipt is ever signed.
async fn racing_deletes(parts: Parts) {
    let (s, rec) = spawn_recording(parts).await;
    let key = s.key("race", "us", ALL).await;
    let (id, proof_id) = upload_tiny(&s, &key).await;
    let answers = concurrent_deletes(&s, &key, &id, 8).await;
    let ok: Vec<_> = answers
        .iter()
        .filter(|(st, _)| *st == StatusCode::OK)
        .collect();
    assert_eq!(ok.len(), 1, "{answers:?}");
    for (st, body) in answers.iter().filter(|(st, _)| *st != StatusCode::OK) {
        assert_eq!(
            (*st, body["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found"))
        );
    }
    assert_eq!(rec.signed.lock().unwrap().len(), 1, "only the winner signs");
    let public = one_receipt(&s, &rec, &id, &proof_id).await;
    let full: pixseal_proof::SignedReceipt = serde_json::from_value(ok[0].1.clone()).unwrap();
    assert_eq!(full.public(), public);
    assert_eq!(full.opening.as_ref().unwrap().artifact_id, id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_deletes_sign_one_receipt_on_sqlite() {
    racing_deletes(Parts::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_deletes_sign_one_receipt_on_postgres() {
    racing_deletes(Parts::Postgres).await;
}

/// DELETEs racing two purge passes on an expired artifact (the passes run a week ahead, so
/// they also take over the DELETEs' fresh deletions as stale): whoever wins, one receipt is
/// signed (possibly by several finishers, always the same statement), one is stored, and
/// every 200 answer is that receipt.
async fn delete_racing_purge(parts: Parts) {
    let (s, rec) = spawn_recording(parts).await;
    let key = s.key("race", "us", ALL).await;
    for round in 0..3 {
        rec.signed.lock().unwrap().clear();
        let (id, proof_id) = upload_tiny(&s, &key).await;
        let t = s.db.tenant_by_name("race").await.unwrap();
        let due = s.db.artifact(&t.id, &id).await.unwrap().expires_ms;
        let (a, b) = (s.state.clone(), s.state.clone());
        let stale = if round == 0 { 600_000 } else { 10 * DAY };
        let (deletes, pa, pb) = tokio::join!(
            concurrent_deletes(&s, &key, &id, 4),
            tokio::spawn(async move { a.purge_at(due, 10, stale).await.unwrap() }),
            tokio::spawn(async move { b.purge_at(due, 10, stale).await.unwrap() }),
        );
        let (pa, pb) = (pa.unwrap(), pb.unwrap());
        assert_eq!(pa.failed + pb.failed, 0, "{pa:?} {pb:?}");
        let public = one_receipt(&s, &rec, &id, &proof_id).await;
        for (st, body) in &deletes {
            match *st {
                StatusCode::OK => {
                    let r: pixseal_proof::SignedReceipt =
                        serde_json::from_value(body.clone()).unwrap();
                    assert_eq!(r.public(), public);
                    assert_eq!(r.receipt.reason(), "deleted_by_owner");
                }
                StatusCode::NOT_FOUND => {}
                other => panic!("{other}: {body}"),
            }
        }
        let owner_won = deletes.iter().any(|(st, _)| *st == StatusCode::OK);
        assert_eq!(
            public.receipt.reason(),
            if owner_won {
                "deleted_by_owner"
            } else {
                "retention_expired"
            }
        );
        // The receipt of round 0 is consumed; the next round starts from an empty count.
        sqlx::query("DELETE FROM receipts")
            .execute(s.db.pool())
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_racing_purge_signs_one_receipt_on_sqlite() {
    delete_racing_purge(Parts::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_racing_purge_signs_one_receipt_on_postgres() {
    delete_racing_purge(Parts::Postgres).await;
}

/// A DELETE that fails half-way (the blob cannot be deleted) leaves a `deleting` row: no
/// longer served, not dropped by the repair pass, and finished by the purge pass once stale,
/// with a signed receipt and the proof marked purged.
#[tokio::test]
async fn a_delete_that_fails_half_way_is_finished_by_the_purge_pass() {
    let (s, rec) = spawn_recording(Parts::Embedded).await;
    let key = s.key("half", "us", ALL).await;
    let (id, proof_id) = upload_tiny(&s, &key).await;
    // The blob's path becomes a non-empty directory: deleting it fails.
    let blob = s.data.path().join("blobs/us").join(&id);
    std::fs::remove_file(&blob).unwrap();
    std::fs::create_dir_all(blob.join("x")).unwrap();
    let answers = concurrent_deletes(&s, &key, &id, 1).await;
    assert!(answers[0].0.is_server_error(), "{answers:?}");
    assert_eq!(
        s.get(&key, &format!("/v1/artifacts/{id}")).await.status(),
        StatusCode::NOT_FOUND,
        "no longer served"
    );
    assert!(s.db.artifact_exists(&id).await.unwrap());
    assert_eq!(
        s.state.repair_with_grace(0).await.unwrap().unfinished_rows,
        0
    );
    assert!(s.db.artifact_exists(&id).await.unwrap(), "repair leaves it");
    let (_, now) = pixseal_store::meta::now();
    // Fresh: its eraser may still be at work.
    assert_eq!(s.state.purge_at(now, 10, 600_000).await.unwrap().resumed, 0);
    // Stale, the blob store still failing: retried, nothing lost.
    let r = s.state.purge_at(now + 700_000, 10, 600_000).await.unwrap();
    assert_eq!((r.resumed, r.failed), (0, 1), "{r:?}");
    std::fs::remove_dir_all(&blob).unwrap();
    let r = s
        .state
        .purge_at(now + 1_400_000, 10, 600_000)
        .await
        .unwrap();
    assert_eq!((r.resumed, r.failed), (1, 0), "{r:?}");
    let public = one_receipt(&s, &rec, &id, &proof_id).await;
    assert_eq!(public.receipt.reason(), "deleted_by_owner");
    // Its tenant gets the full view by receipt id.
    let full: pixseal_proof::SignedReceipt = s
        .get(
            &key,
            &format!("/v1/receipts/{}", public.receipt.receipt_id()),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(full.opening.as_ref().unwrap().artifact_id, id);
    full.verify(s.state.receipts.public_key().verifying_key())
        .unwrap();
}

/// The stored copy exactly as `GET /v1/artifacts/{id}/content` hands it back (WebP, with and
/// without the visible mark), read by the reference C2PA reader: `Trusted` with the service's
/// root, `Valid` with only the signer's credential questioned without it.
#[tokio::test]
async fn stored_copies_are_valid_in_the_reference_reader() {
    let s = spawn(Parts::Embedded).await;
    let key = s.key("interop", "us", ALL).await;
    let root = s.data.path().join("c2pa/root.pem");
    let root = root.to_str().unwrap();
    let photo = std::fs::read(fixtures().join("photos/garden.jpg")).unwrap();
    for visible in ["true", "false"] {
        let (st, up) = s
            .upload(
                &key,
                photo.clone(),
                &format!("?visible={visible}&label=interop"),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{up}");
        let id = up["id"].as_str().unwrap();
        let stored = s.get(&key, &format!("/v1/artifacts/{id}/content")).await;
        assert_eq!(stored.status(), StatusCode::OK);
        let bytes = stored.bytes().await.unwrap();
        let file = s.data.path().join(format!("stored-{visible}.webp"));
        std::fs::write(&file, &bytes).unwrap();
        let file = file.to_str().unwrap();
        let read = |trust: Option<&str>| -> Value {
            let mut args = vec!["read", file];
            args.extend(trust.map(|t| ["--trust", t]).iter().flatten());
            serde_json::from_str(&pixseal_testkit::c2pa_ref(&args)[0]).unwrap()
        };
        let r = read(Some(root));
        assert_eq!(r["state"], "Trusted", "visible={visible}: {r:#}");
        assert_eq!(r["failure"], serde_json::json!([]), "{r:#}");
        assert_eq!(
            r["assertions"]["org.pixseal.proof"]["proof_id"],
            up["proof_id"]
        );
        let algs: Vec<&Value> = r["assertion_list"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["label"] == "c2pa.soft-binding")
            .map(|a| &a["data"]["alg"])
            .collect();
        assert_eq!(
            algs,
            ["org.pixseal.watermark.1", "org.pixseal.pdq.1"],
            "{r:#}"
        );
        let r = read(None);
        assert_eq!(r["state"], "Valid", "visible={visible}: {r:#}");
        assert_eq!(
            r["failure"],
            serde_json::json!(["signingCredential.untrusted"])
        );
        let v = verify_upload(&s, bytes.to_vec()).await;
        assert_eq!(v["verdict"], "verified", "{v:#}");
    }
}

/// With `[provenance].tsa_url` set, stored copies carry the authority's RFC 3161 time-stamp,
/// which /v1/verify reports (not trusted: only pixseal's root is an anchor) and the reference
/// reader trusts once given the authority's root. With the authority down, an upload is 503
/// `tsa_unavailable` and nothing is stored.
#[tokio::test]
async fn uploads_are_time_stamped_and_refused_without_the_authority() {
    let tsa = pixseal_testkit::tsa();
    let mut c = config(&Parts::Embedded, ServerConfig::default());
    c.provenance.tsa_url = tsa.url.clone();
    let s = TestServer(TestApp::spawn(c).await);
    let key = s.key("stamped", "us", ALL).await;
    let photo = std::fs::read(fixtures().join("photos/garden.jpg")).unwrap();
    let (st, up) = s.upload(&key, photo.clone(), "").await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let id = up["id"].as_str().unwrap();
    let bytes = s
        .get(&key, &format!("/v1/artifacts/{id}/content"))
        .await
        .bytes()
        .await
        .unwrap();
    let v = verify_upload(&s, bytes.to_vec()).await;
    assert_eq!(v["verdict"], "verified", "{v:#}");
    assert_eq!(v["timestamp"]["trusted"], false, "{v:#}");
    assert_eq!(v["timestamp"]["code"], "timeStamp.untrusted", "{v:#}");

    let file = s.data.path().join("stored.webp");
    std::fs::write(&file, &bytes).unwrap();
    let bundle = s.data.path().join("roots.pem");
    let roots = [s.data.path().join("c2pa/root.pem"), tsa.root_pem.clone()]
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&bundle, roots).unwrap();
    let r: Value = serde_json::from_str(
        &pixseal_testkit::c2pa_ref(&[
            "read",
            file.to_str().unwrap(),
            "--trust",
            bundle.to_str().unwrap(),
        ])[0],
    )
    .unwrap();
    assert_eq!(r["state"], "Trusted", "{r:#}");
    assert!(
        r["success"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("timeStamp.trusted")),
        "{r:#}"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = config(&Parts::Embedded, ServerConfig::default());
    c.provenance.tsa_url = format!("http://127.0.0.1:{closed}/");
    c.provenance.tsa_timeout_secs = 2;
    let down = TestServer(TestApp::spawn(c).await);
    let key = down.key("stamped", "us", ALL).await;
    let (st, body) = down.upload(&key, photo, "").await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "tsa_unavailable", "{body}");
    assert!(down.db.unfinished(i64::MAX).await.unwrap().is_empty());
    let blobs: Vec<PathBuf> = walk(&down.data.path().join("blobs"))
        .into_iter()
        .filter(|p| !p.ends_with(".pixseal-installation"))
        .collect();
    assert!(blobs.is_empty(), "stored without a time-stamp: {blobs:?}");
}

/// The credential outlives the artifact, and the Soft Binding Resolution API finds it: by the
/// watermark's binding value, by the PDQ binding value, by a re-encoded copy; never for a
/// picture onto which the watermark was copied; unknown algorithms and bad values are 400.
#[tokio::test]
async fn durable_credentials_and_the_resolution_api() {
    let s = spawn(Parts::Embedded).await;
    let key = s.key("resolve", "us", ALL).await;
    let photo = std::fs::read(fixtures().join("photos/garden.jpg")).unwrap();
    let (st, up) = s.upload(&key, photo, "?retention_days=7").await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let (id, proof_id) = (
        up["id"].as_str().unwrap().to_string(),
        up["proof_id"].as_str().unwrap().to_string(),
    );
    let webp = s
        .get(&key, &format!("/v1/artifacts/{id}/content"))
        .await
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let report = pixseal_provenance::Verifier::new("").verify(&webp);
    let binding = |alg: &str| {
        report
            .soft_bindings
            .iter()
            .find(|b| b.alg == alg)
            .unwrap_or_else(|| panic!("no {alg} binding: {report:#?}"))
            .value
            .clone()
    };
    let (wm, pdq) = (
        binding("org.pixseal.watermark.1"),
        binding("org.pixseal.pdq.1"),
    );
    // Delete: the artifact is gone, the manifest is not.
    let r = s
        .client
        .delete(format!("{}/v1/artifacts/{id}", s.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = s
        .client
        .get(format!("{}/v1/proofs/{proof_id}/manifest", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/c2pa");
    let store = r.bytes().await.unwrap();
    assert!(
        webp.windows(store.len()).any(|w| w == store.as_ref()),
        "the kept store is the one embedded in the stamped file"
    );
    let record: Value = s.public_json(&format!("/v1/proofs/{proof_id}")).await;
    assert_eq!(record["status"], "purged");
    let manifest_url = record["manifest_url"].as_str().unwrap().to_string();
    let manifest_id = manifest_url.rsplit('/').next().unwrap().to_string();
    assert!(manifest_id.starts_with("urn:c2pa:"), "{manifest_url}");

    for (alg, value) in [
        ("org.pixseal.watermark.1", &wm),
        ("org.pixseal.pdq.1", &pdq),
    ] {
        let (st, m) = s.by_binding(alg, value).await;
        assert_eq!(st, StatusCode::OK, "{m}");
        assert_eq!(
            m["matches"][0]["manifestId"],
            manifest_id.as_str(),
            "{alg}: {m}"
        );
        assert_eq!(m["matches"][0]["proofId"], proof_id.as_str());
        assert_eq!(m["matches"][0]["similarityScore"], 100, "{alg}: {m}");
        assert!(
            m["matches"][0]["endpoint"]
                .as_str()
                .unwrap()
                .ends_with(&manifest_id)
        );
    }
    let (st, m) = s
        .by_binding("org.pixseal.watermark.1", "AAAAAAAAAAA=")
        .await;
    assert_eq!(
        (st, m["matches"].clone()),
        (StatusCode::OK, Value::Array(vec![]))
    );
    let (st, m) = s.by_binding("com.example.wm", &wm).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(m["error"]["code"], "unsupported_algorithm", "{m}");
    let (st, m) = s.by_binding("org.pixseal.pdq.1", "not base64!").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(m["error"]["code"], "invalid_request", "{m}");

    let r = s
        .client
        .get(format!("{}/v1/manifests/{manifest_id}", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap(), store);
    let r = s
        .client
        .get(format!("{}/v1/manifests/urn:c2pa:nope", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let copy = reencode(&webp, 75, image::ImageFormat::Jpeg);
    let (st, m) = s.by_content(copy.clone()).await;
    assert_eq!(st, StatusCode::OK, "{m}");
    assert_eq!(m["matches"][0]["manifestId"], manifest_id.as_str(), "{m}");
    // A stripped copy is shown the original credential, said to be not these bytes.
    let v = verify_upload(&s, copy).await;
    assert_eq!(
        v["credential"]["manifest_id"],
        manifest_id.as_str(),
        "{v:#}"
    );
    assert!(
        v["credential"]["statement"]
            .as_str()
            .unwrap()
            .contains("not the file that was signed"),
        "{v:#}"
    );
    // Another picture carrying this proof's watermark resolves to nothing.
    let forged = forged_with(&proof_id);
    let (st, m) = s.by_content(forged).await;
    assert_eq!(st, StatusCode::OK, "{m}");
    assert_eq!(m["matches"], Value::Array(vec![]), "{m}");
    let (st, m) = s.by_content(b"not a picture".to_vec()).await;
    assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{m}");
}

/// Both signing keys on a PKCS#11 token (SoftHSM2): an upload's manifest is signed by the
/// token's claim key and verifies, a deletion receipt is signed by its Ed25519 key and verifies
/// with the key `pkcs11-tool` reads off the token. The claim key taken off the token: `/readyz`
/// says `claim_signer: unavailable` and an upload is 503 `key_unavailable` with nothing stored.
#[tokio::test]
#[allow(
    clippy::await_holding_lock,
    reason = "the token's lock serializes this process's tests, each on a runtime of its own"
)]
async fn keys_on_a_token_sign_uploads_and_receipts_and_a_lost_key_is_503() {
    let Some(t) = pixseal_testkit::softhsm::softhsm() else {
        return;
    };
    let _token = t.lock();
    use pixseal_testkit::softhsm::KeyKind;
    t.generate("api-c2pa", KeyKind::P256);
    t.generate("api-receipts", KeyKind::Ed25519);
    let mut c = config(
        &Parts::Embedded,
        ServerConfig {
            readiness_interval_ms: 0,
            ..ServerConfig::default()
        },
    );
    c.provenance.signer = pixseal_provenance::SignerKind::Pkcs11;
    c.keys.receipt_provider = ReceiptProviderKind::Pkcs11;
    c.pkcs11.module = t.module.clone();
    c.pkcs11.token_label = t.token_label.clone();
    c.pkcs11.pin = t.pin.clone().into();
    c.pkcs11.claim_key_label = "api-c2pa".into();
    c.pkcs11.receipt_key_label = "api-receipts".into();
    let s = TestServer(TestApp::spawn(c).await);
    let key = s.key("held", "us", ALL).await;
    let photo = std::fs::read(fixtures().join("photos/garden.jpg")).unwrap();
    let (st, up) = s.upload(&key, photo.clone(), "").await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let id = up["id"].as_str().unwrap().to_string();
    let bytes = s
        .get(&key, &format!("/v1/artifacts/{id}/content"))
        .await
        .bytes()
        .await
        .unwrap();
    let v = verify_upload(&s, bytes.to_vec()).await;
    assert_eq!(v["verdict"], "verified", "{v:#}");
    let ready: Value = s.public_json("/readyz").await;
    assert_eq!(ready["status"], "ok", "{ready}");
    assert_eq!(ready["claim_signer"], "ok", "{ready}");

    let receipt: pixseal_proof::SignedReceipt =
        serde_json::from_value(s.delete(&key, &id).await).unwrap();
    let exported = t.exported_public_key("api-receipts");
    let public = pixseal_proof::ReceiptPublicKey::from_raw(&exported[12..]).unwrap();
    receipt.verify_pem(public.pem()).unwrap();
    let served: Value = s.public_json("/v1/keys/receipts").await;
    assert_eq!(served["key_id"], public.key_id(), "{served}");

    t.delete("api-c2pa");
    let r = s
        .client
        .get(format!("{}/readyz", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ready: Value = r.json().await.unwrap();
    assert_eq!(ready["claim_signer"], "unavailable", "{ready}");
    assert_eq!(ready["receipt_signer"], "ok", "{ready}");
    let before = walk(&s.data.path().join("blobs")).len();
    let (st, body) = s.upload(&key, photo, "").await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "key_unavailable", "{body}");
    assert!(!body.to_string().contains(&t.pin), "{body}");
    assert!(s.db.unfinished(i64::MAX).await.unwrap().is_empty());
    assert_eq!(
        walk(&s.data.path().join("blobs")).len(),
        before,
        "nothing stored"
    );
}

/// OpenBao admin call with the root token: (status, JSON body).
async fn bao_admin(
    bao: &pixseal_testkit::Bao,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .request(method, format!("{}/v1/{path}", bao.addr))
        .header("X-Vault-Token", &bao.root_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Creates the aes256-gcm96 Transit key `name` with the root token.
async fn create_bao_key(bao: &pixseal_testkit::Bao, name: &str) {
    let (st, body) = bao_admin(
        bao,
        reqwest::Method::POST,
        &format!("transit/keys/{name}"),
        serde_json::json!({"type": "aes256-gcm96"}),
    )
    .await;
    assert!(st.is_success(), "{st} {body}");
}

/// A server whose region master keys are in `bao`'s Transit.
async fn transit_server(bao: &pixseal_testkit::Bao) -> TestServer {
    let mut c = config(&Parts::Embedded, ServerConfig::default());
    c.keys.provider = KeyProviderKind::Transit;
    c.keys.transit_addr = bao.addr.clone();
    c.keys.transit_token = bao.token.clone().into();
    TestServer(TestApp::spawn(c).await)
}

/// Every read of `ids` (content and metadata) answers 503 `key_unavailable` naming the tenant
/// whose key it is; returns the messages.
async fn assert_shredded(
    s: &TestServer,
    key: &str,
    ids: &[String],
    tenant_id: &str,
) -> Vec<String> {
    let mut messages = Vec::new();
    for id in ids {
        for path in [
            format!("/v1/artifacts/{id}/content"),
            format!("/v1/artifacts/{id}"),
        ] {
            let r = s.get(key, &path).await;
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "key_unavailable", "{body}");
            let message = body["error"]["message"].as_str().unwrap().to_owned();
            assert!(message.contains(tenant_id), "says whose key: {message}");
            messages.push(message);
        }
    }
    messages
}

/// The purge, run past the expiry of the last of `ids`, deletes all of them and fails none
/// (it needs no data key) and signs a receipt for each.
async fn assert_purged(s: &TestServer, tenant_id: &str, ids: &[String]) {
    let a = s.db.artifact(tenant_id, ids.last().unwrap()).await.unwrap();
    let receipts = s.db.receipt_count().await.unwrap();
    let r = s
        .state
        .purge_at(a.expires_ms + 1, 100, 600_000)
        .await
        .unwrap();
    assert!(r.purged as usize >= ids.len() && r.failed == 0, "{r:?}");
    for id in ids {
        assert!(!s.db.artifact_exists(id).await.unwrap());
    }
    assert!(s.db.receipt_count().await.unwrap() >= receipts + ids.len() as i64);
}

/// A tenant's own master key in Transit, and crypto-shredding by deleting it: the tenant's
/// artifacts (blob and label) are sealed under its key, the other tenant's under the region's;
/// once the key is deleted, the tenant's content and label answer 503 `key_unavailable` naming
/// the tenant, the other tenant's still open, a copy of the database and blobs taken before
/// opens none of the tenant's blobs with any key pixseal's token or the root token can reach,
/// and the purge still deletes the tenant's artifacts and signs their receipts.
#[tokio::test]
async fn deleting_a_tenants_key_shreds_its_artifacts_and_no_one_elses() {
    let bao =
        pixseal_testkit::openbao("us eu rot shred").expect("OpenBao (PIXSEAL_SKIP_TRANSIT unset)");
    let key_name = format!("pixseal-tenant-shred-{}", std::process::id());
    create_bao_key(bao, &key_name).await;
    let s = transit_server(bao).await;
    let owner = s.key("owner", "us", ALL).await;
    let other = s.key("other", "us", ALL).await;
    // Only keys that are a tenant's: a region's key is refused.
    let e = s
        .state
        .set_tenant_key(&pixseal_service::Actor::Cli, "owner", "pixseal-us", None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "invalid_key", "{e}");
    let e = s
        .state
        .move_to_tenant_key(&pixseal_service::Actor::Cli, "owner")
        .await
        .unwrap_err();
    assert_eq!(e.code(), "no_tenant_key", "{e}");

    // Sealed before the tenant had its key: an artifact and a code-level event's evidence,
    // under the region's key, moved onto the tenant's key below.
    let photo = std::fs::read(fixtures().join("photos/garden.jpg")).unwrap();
    let (st, up) = s.upload(&owner, photo.clone(), "?label=Jane%20Doe").await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let mut mine = vec![up["id"].as_str().unwrap().to_string()];
    let tenant = s.db.tenant_by_name("owner").await.unwrap();
    s.state
        .set_code_level(
            &tenant,
            1,
            "checked",
            Some("Owner Inc."),
            &pixseal_service::Actor::Cli,
        )
        .await
        .unwrap();

    s.state
        .set_tenant_key(&pixseal_service::Actor::Cli, "owner", &key_name, None)
        .await
        .unwrap();
    for _ in 0..2 {
        let (st, up) = s.upload(&owner, photo.clone(), "?label=Jane%20Doe").await;
        assert_eq!(st, StatusCode::CREATED, "{up}");
        mine.push(up["id"].as_str().unwrap().to_string());
    }
    let (st, up) = s.upload(&other, photo.clone(), "?label=Someone").await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let theirs = up["id"].as_str().unwrap().to_string();
    let header_key = |id: &str| {
        let blob = walk(&s.data.path().join("blobs"))
            .into_iter()
            .find(|p| p.to_string_lossy().contains(id))
            .unwrap();
        pixseal_seal::read_header(std::fs::File::open(blob).unwrap())
            .unwrap()
            .key_name
    };
    assert_eq!(header_key(&mine[0]), "pixseal-us");
    assert_eq!(header_key(&mine[1]), key_name);
    assert_eq!(header_key(&theirs), "pixseal-us");
    let stored_key = |a: &pixseal_store::Artifact| {
        pixseal_seal::WrappedKey::from_bytes(
            &base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &a.wrapped_key)
                .unwrap(),
        )
        .unwrap()
        .key_name
    };
    let sealed_keys = |a: &pixseal_store::Artifact| {
        [
            a.label_sealed.as_deref().unwrap(),
            a.client_ip_sealed.as_deref().unwrap(),
        ]
        .map(|f| pixseal_seal::field_key_name(f).unwrap())
    };
    let before = s.db.artifact(&tenant.id, &mine[0]).await.unwrap();
    assert_eq!(stored_key(&before), "pixseal-us");
    let blob_path = walk(&s.data.path().join("blobs"))
        .into_iter()
        .find(|p| p.to_string_lossy().contains(&mine[0]))
        .unwrap();
    let blob_before = std::fs::read(&blob_path).unwrap();

    // keys rewrap --tenant: the older artifact (data key, label, client address) and the
    // evidence move onto the tenant's key; the blob is untouched; a second run moves nothing.
    let r = s
        .state
        .move_to_tenant_key(&pixseal_service::Actor::Cli, "owner")
        .await
        .unwrap();
    assert_eq!((r.moved, r.already, r.failed.len()), (2, 2, 0), "{r:?}");
    let after = s.db.artifact(&tenant.id, &mine[0]).await.unwrap();
    assert_eq!(stored_key(&after), key_name);
    assert_eq!(sealed_keys(&after), [key_name.clone(), key_name.clone()]);
    assert_ne!(after.label_sealed, before.label_sealed);
    assert_eq!(std::fs::read(&blob_path).unwrap(), blob_before);
    let events = s.db.code_level_events(&tenant.id).await.unwrap();
    assert_eq!(
        pixseal_seal::field_key_name(&events[0].evidence_sealed).unwrap(),
        key_name
    );
    let r = s
        .state
        .move_to_tenant_key(&pixseal_service::Actor::Cli, "owner")
        .await
        .unwrap();
    assert_eq!((r.moved, r.already, r.failed.len()), (0, 4, 0), "{r:?}");
    let theirs_row =
        s.db.artifact(&s.db.tenant_by_name("other").await.unwrap().id, &theirs)
            .await
            .unwrap();
    assert_eq!(stored_key(&theirs_row), "pixseal-us", "no one else's moves");
    for id in &mine {
        let r = s.get(&owner, &format!("/v1/artifacts/{id}/content")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.bytes().await.unwrap().len() as i64,
            s.db.artifact(&tenant.id, id).await.unwrap().bytes
        );
    }
    assert_eq!(
        s.get(&owner, &format!("/v1/artifacts/{}/content", mine[0]))
            .await
            .status(),
        StatusCode::OK
    );
    let meta: Value = s
        .get(&owner, &format!("/v1/artifacts/{}", mine[0]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(meta["label"], "Jane Doe", "{meta}");

    // What an attacker (or a backup) holds: the database and the blobs, copied now.
    let copy = tempfile::tempdir().unwrap();
    for p in walk(s.data.path()) {
        let to = copy.path().join(p.strip_prefix(s.data.path()).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&p, &to).unwrap();
    }

    // The tenant deletes its key.
    let (st, body) = bao_admin(
        bao,
        reqwest::Method::POST,
        &format!("transit/keys/{key_name}/config"),
        serde_json::json!({"deletion_allowed": true}),
    )
    .await;
    assert!(st.is_success(), "{st} {body}");
    let (st, body) = bao_admin(
        bao,
        reqwest::Method::DELETE,
        &format!("transit/keys/{key_name}"),
        Value::Null,
    )
    .await;
    assert!(st.is_success(), "{st} {body}");

    assert_shredded(&s, &owner, &mine, &tenant.id).await;
    assert_eq!(
        s.get(&other, &format!("/v1/artifacts/{theirs}/content"))
            .await
            .status(),
        StatusCode::OK
    );
    let meta: Value = s
        .get(&other, &format!("/v1/artifacts/{theirs}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(meta["label"], "Someone", "{meta}");

    // The copy: none of the tenant's blobs opens, with the app token or the root token, under
    // the tenant's key or the region's; the other tenant's does.
    let copied = pixseal_store::Db::connect(&format!(
        "sqlite://{}",
        copy.path().join("pixseal.db").display()
    ))
    .await
    .unwrap();
    let wrapped: std::collections::HashMap<String, String> = copied
        .wrapped_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _, _, w)| (id, w))
        .collect();
    let providers: Vec<pixseal_seal::TransitKeyProvider> = [&bao.token, &bao.root_token]
        .iter()
        .flat_map(|token| {
            [key_name.as_str(), "pixseal-us"].map(|k| {
                let mut cfg = pixseal_seal::TransitConfig::new(&bao.addr, token, &["us"]);
                cfg.keys = [("us".to_string(), k.to_string())].into();
                pixseal_seal::TransitKeyProvider::new(cfg).unwrap()
            })
        })
        .collect();
    let copied_blobs = copy.path().join("blobs");
    let open = move |id: &str, tenant_id: &str, p: &pixseal_seal::TransitKeyProvider| {
        let blob = walk(&copied_blobs)
            .into_iter()
            .find(|b| b.to_string_lossy().contains(id))
            .unwrap();
        let w = pixseal_seal::WrappedKey::from_bytes(
            &base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &wrapped[id])
                .unwrap(),
        )
        .unwrap();
        let obj = pixseal_seal::ObjectRef {
            object_id: id,
            tenant: tenant_id,
            region: "us",
        };
        pixseal_seal::Sealer::new(p, pixseal_seal::KeyPlacement::Detached).open_bytes(
            &std::fs::read(blob).unwrap(),
            &obj,
            Some(&w),
        )
    };
    let (mine_c, theirs_c) = (mine.clone(), theirs.clone());
    let other_id = s.db.tenant_by_name("other").await.unwrap().id;
    let tenant_id = tenant.id.clone();
    let opened = tokio::task::spawn_blocking(move || {
        let mine_opened: usize = mine_c
            .iter()
            .map(|id| {
                providers
                    .iter()
                    .filter(|p| open(id, &tenant_id, p).is_ok())
                    .count()
            })
            .sum();
        let theirs_opened = providers
            .iter()
            .filter(|p| open(&theirs_c, &other_id, p).is_ok())
            .count();
        (mine_opened, theirs_opened)
    })
    .await
    .unwrap();
    assert_eq!(
        opened,
        (0, 2),
        "the tenant's blobs open nowhere; the other's with either token"
    );

    // The purge still deletes the shredded artifacts and signs their receipts.
    assert_purged(&s, &tenant.id, &mine).await;
}

/// A tenant's key in the tenant's own Vault (a second OpenBao server), reached with a token of
/// the tenant's that may only use that key: new artifacts and the moved older one are under it
/// (their data keys open there, and not in pixseal's Transit); the token is stored only sealed;
/// a token that may not use the key is refused at `set-key`; the tenant revoking the token is
/// crypto-shredding (503 naming the tenant, others untouched) until it gives pixseal a new one;
/// the purge still deletes and signs receipts.
#[tokio::test]
async fn a_tenants_own_vault_holds_its_key_and_revoking_the_token_shreds() {
    let bao =
        pixseal_testkit::openbao("us eu rot shred").expect("OpenBao (PIXSEAL_SKIP_TRANSIT unset)");
    let theirs_bao = pixseal_testkit::tenant_openbao().expect("the tenant's OpenBao");
    assert_ne!(bao.addr, theirs_bao.addr, "two servers");
    let key_name = format!("acme-master-{}", std::process::id());
    create_bao_key(theirs_bao, &key_name).await;
    // The tenant's policy for pixseal's token (docs/keys.md): use this one key, nothing else.
    let policy = format!(
        "path \"transit/datakey/plaintext/{k}\" {{ capabilities = [\"update\"] }}\n\
         path \"transit/decrypt/{k}\" {{ capabilities = [\"update\"] }}\n\
         path \"transit/encrypt/{k}\" {{ capabilities = [\"update\"] }}\n\
         path \"transit/rewrap/{k}\" {{ capabilities = [\"update\"] }}\n\
         path \"transit/keys/{k}\" {{ capabilities = [\"read\"] }}\n",
        k = key_name
    );
    let (st, body) = bao_admin(
        theirs_bao,
        reqwest::Method::PUT,
        "sys/policies/acl/pixseal-access",
        serde_json::json!({ "policy": policy }),
    )
    .await;
    assert!(st.is_success(), "{st} {body}");
    let new_token = || async {
        let (st, body) = bao_admin(
            theirs_bao,
            reqwest::Method::POST,
            "auth/token/create",
            serde_json::json!({"policies": ["pixseal-access"], "no_default_policy": true, "ttl": "1h"}),
        )
        .await;
        assert!(st.is_success(), "{st} {body}");
        body["auth"]["client_token"].as_str().unwrap().to_owned()
    };
    let token = new_token().await;
    // What the tenant's token can do there: exactly what pixseal needs.
    let as_token = |method: reqwest::Method, path: String, body: Value| {
        let (addr, token) = (theirs_bao.addr.clone(), token.clone());
        async move {
            reqwest::Client::new()
                .request(method, format!("{addr}/v1/{path}"))
                .header("X-Vault-Token", token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let plaintext = serde_json::json!({"plaintext": "aGVsbG8="});
    assert!(
        as_token(
            reqwest::Method::POST,
            format!("transit/encrypt/{key_name}"),
            plaintext.clone()
        )
        .await
        .is_success()
    );
    for (method, path) in [
        (
            reqwest::Method::GET,
            format!("transit/export/encryption-key/{key_name}"),
        ),
        (reqwest::Method::GET, format!("transit/backup/{key_name}")),
        (reqwest::Method::DELETE, format!("transit/keys/{key_name}")),
        (
            reqwest::Method::POST,
            format!("transit/keys/{key_name}/config"),
        ),
        (
            reqwest::Method::POST,
            format!("transit/keys/{key_name}/rotate"),
        ),
        (reqwest::Method::POST, "transit/keys/another".to_string()),
        (
            reqwest::Method::POST,
            "transit/encrypt/pixseal-us".to_string(),
        ),
        (reqwest::Method::GET, "transit/keys/pixseal-us".to_string()),
        (
            reqwest::Method::GET,
            "sys/policies/acl/pixseal-access".to_string(),
        ),
    ] {
        let st = as_token(method.clone(), path.clone(), plaintext.clone()).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{method} {path}");
    }

    let s = transit_server(bao).await;
    let owner = s.key("acme", "us", ALL).await;
    let other = s.key("bystander", "us", ALL).await;
    let photo = std::fs::read(fixtures().join("photos/garden.jpg")).unwrap();
    let (st, up) = s.upload(&owner, photo.clone(), "?label=Old").await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let mut mine = vec![up["id"].as_str().unwrap().to_string()];
    let (st, up) = s.upload(&other, photo.clone(), "?label=Someone").await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let theirs = up["id"].as_str().unwrap().to_string();

    let vault = |token: &str| pixseal_service::tenant_keys::OwnVault {
        addr: theirs_bao.addr.clone(),
        mount: "transit".into(),
        ca_pem: None,
        token: token.to_string().into(),
    };
    // A token that may not use the key (pixseal's own app token of the tenant's server, whose
    // policy names other keys) is refused before anything is sealed under it.
    let e = s
        .state
        .set_tenant_key(
            &pixseal_service::Actor::Cli,
            "acme",
            &key_name,
            Some(vault(&theirs_bao.token)),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "invalid_key", "{e}");
    s.state
        .set_tenant_key(
            &pixseal_service::Actor::Cli,
            "acme",
            &key_name,
            Some(vault(&token)),
        )
        .await
        .unwrap();
    let tenant = s.db.tenant_by_name("acme").await.unwrap();
    let row = &s.db.tenant_keys(&tenant.id).await.unwrap()[0];
    let stored = row.vault.as_ref().unwrap();
    assert_eq!(stored.addr, theirs_bao.addr);
    assert!(!stored.token_sealed.contains(&token));
    let db_bytes = std::fs::read(s.data.path().join("pixseal.db")).unwrap();
    assert!(
        !db_bytes.windows(token.len()).any(|w| w == token.as_bytes()),
        "the tenant's token is never stored in the clear"
    );

    let (st, up) = s.upload(&owner, photo.clone(), "?label=New").await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    mine.push(up["id"].as_str().unwrap().to_string());
    let r = s
        .state
        .move_to_tenant_key(&pixseal_service::Actor::Cli, "acme")
        .await
        .unwrap();
    assert_eq!((r.moved, r.already, r.failed.len()), (1, 1, 0), "{r:?}");
    // Every data key of the tenant's opens in the tenant's Vault, and in pixseal's it does not
    // even exist.
    for id in &mine {
        let a = s.db.artifact(&tenant.id, id).await.unwrap();
        let w = pixseal_seal::WrappedKey::from_bytes(
            &base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &a.wrapped_key)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(w.key_name, key_name);
        let ct = serde_json::json!({"ciphertext": String::from_utf8(w.ciphertext).unwrap()});
        let (st, _) = bao_admin(
            theirs_bao,
            reqwest::Method::POST,
            &format!("transit/decrypt/{key_name}"),
            ct.clone(),
        )
        .await;
        assert!(st.is_success(), "opens in the tenant's Vault");
        let (st, _) = bao_admin(
            bao,
            reqwest::Method::POST,
            &format!("transit/decrypt/{key_name}"),
            ct,
        )
        .await;
        assert!(!st.is_success(), "not in pixseal's");
        let r = s.get(&owner, &format!("/v1/artifacts/{id}/content")).await;
        assert_eq!(r.status(), StatusCode::OK);
    }

    // The tenant revokes pixseal's token: its artifacts are unreadable, no one else's.
    let (st, body) = bao_admin(
        theirs_bao,
        reqwest::Method::POST,
        "auth/token/revoke",
        serde_json::json!({ "token": token }),
    )
    .await;
    assert!(st.is_success(), "{st} {body}");
    for message in assert_shredded(&s, &owner, &mine, &tenant.id).await {
        assert!(!message.contains(&token), "{message}");
    }
    let (st, up) = s.upload(&owner, photo.clone(), "").await;
    assert_eq!(
        st,
        StatusCode::SERVICE_UNAVAILABLE,
        "nothing new sealed: {up}"
    );
    let meta: Value = s
        .get(&other, &format!("/v1/artifacts/{theirs}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(meta["label"], "Someone", "{meta}");

    // The tenant gives pixseal a new token: its artifacts open again.
    let token2 = new_token().await;
    s.state
        .set_tenant_key(
            &pixseal_service::Actor::Cli,
            "acme",
            &key_name,
            Some(vault(&token2)),
        )
        .await
        .unwrap();
    let meta: Value = s
        .get(&owner, &format!("/v1/artifacts/{}", mine[0]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(meta["label"], "Old", "{meta}");

    // The purge deletes the tenant's artifacts and signs their receipts.
    assert_purged(&s, &tenant.id, &mine).await;
}
