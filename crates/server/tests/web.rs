//! The public pages through the real router: the proof page every stamp links to, the verify
//! page (no script needed), errors in words, and the headers that keep them to this origin.

use std::path::PathBuf;

use pixseal_testkit::TestApp;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::Value;

fn photo() -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/photos/garden.jpg");
    std::fs::read(p).unwrap()
}

/// Upload a photo through the API: the answer (with `proof_id` and `verify_url`) and the
/// stored, stamped bytes.
async fn stamped(app: &TestApp) -> (Value, Vec<u8>) {
    let key = app
        .key("web", "us", &["artifacts:write", "artifacts:read"])
        .await;
    let up = app.upload(&key, photo()).await;
    let bytes = app.content(&key, up["id"].as_str().unwrap()).await;
    (up, bytes)
}

/// GET a page: status, headers, body.
async fn get(app: &TestApp, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let r = app
        .client
        .get(format!("{}{path}", app.url))
        .send()
        .await
        .unwrap();
    (r.status(), r.headers().clone(), r.text().await.unwrap())
}

/// POST a file to the verify page as its form does.
async fn check(app: &TestApp, query: &str, name: &str, bytes: Vec<u8>) -> (StatusCode, String) {
    let form = Form::new().part("file", Part::bytes(bytes).file_name(name.to_string()));
    let r = app
        .client
        .post(format!("{}/verify{query}", app.url))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let ctype = r.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_string();
    let body = r.text().await.unwrap();
    assert!(ctype.starts_with("text/html"), "{status} {ctype}: {body}");
    (status, body)
}

/// What every page must hold to: HTML, the strict policy, scripts only as this origin's
/// module files (never inline), no inline style.
fn assert_page(headers: &reqwest::header::HeaderMap, body: &str) {
    let h = |n: &str| headers.get(n).map(|v| v.to_str().unwrap().to_string());
    assert!(h("content-type").unwrap().starts_with("text/html"));
    let csp = h("content-security-policy").expect("a CSP on every page");
    for directive in [
        "default-src 'none'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "script-src 'self'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(h("referrer-policy").as_deref(), Some("no-referrer"));
    for (i, _) in body.match_indices("<script") {
        let tag = &body[i..body[i..].find("</script>").map_or(body.len(), |e| i + e)];
        assert!(
            tag.starts_with(r#"<script type="module" src="/assets/"#) && tag.ends_with('>'),
            "an inline or foreign script: {tag}"
        );
    }
    assert!(
        !body.contains("style="),
        "a page with an inline style: {body}"
    );
    assert!(
        !body.contains("http://") && !body.contains("https://"),
        "a page naming another origin: {body}"
    );
}

#[tokio::test]
async fn the_verify_url_of_a_stamp_opens_its_proof_page() {
    let app = TestApp::spawn(TestApp::config()).await;
    let (up, _) = stamped(&app).await;
    let proof_id = up["proof_id"].as_str().unwrap();
    let verify_url = up["verify_url"].as_str().unwrap();
    let path = format!("/v/{proof_id}");
    assert!(verify_url.ends_with(&path), "{verify_url}");
    let (status, headers, body) = get(&app, &path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_page(&headers, &body);
    let record: Value = app
        .client
        .get(format!("{}/v1/proofs/{proof_id}", app.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for field in ["proof_id", "issued_at", "issuer"] {
        let v = record[field].as_str().unwrap();
        assert!(
            body.contains(v),
            "the page does not show {field} {v}: {body}"
        );
    }
    assert!(body.contains("Active"), "{body}");
    assert!(body.contains("What it does not say"), "{body}");
    assert!(record["manifest_url"].is_string(), "{record}");
    assert!(
        body.contains(&format!("/v1/proofs/{proof_id}/manifest")),
        "{body}"
    );

    // The style sheet is this origin's, served as CSS.
    let (status, headers, css) = get(&app, "/assets/pixseal.css").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(css.contains("prefers-color-scheme: dark"));
}

#[tokio::test]
async fn unknown_proofs_get_the_same_not_found_page() {
    let app = TestApp::spawn(TestApp::config()).await;
    let mut pages = Vec::new();
    for id in [
        "px_0000000000000",
        "px_ZZZZZZZZZZZZZ",
        "not-a-proof-id",
        "%3Cscript%3E",
    ] {
        let (status, headers, body) = get(&app, &format!("/v/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}: {body}");
        assert_page(&headers, &body);
        assert!(body.contains("Not found"), "{body}");
        assert!(!body.contains("<script"), "{body}");
        pages.push(body);
    }
    // Nothing in the page tells a malformed id from an unknown one.
    assert!(pages.windows(2).all(|w| w[0] == w[1]), "{pages:#?}");
}

#[tokio::test]
async fn the_verify_page_says_each_verdict_in_words() {
    let app = TestApp::spawn(TestApp::config()).await;
    let (status, headers, body) = get(&app, "/verify").await;
    assert_eq!(status, StatusCode::OK);
    assert_page(&headers, &body);
    assert!(body.contains(r#"enctype="multipart/form-data""#), "{body}");

    let (up, stored) = stamped(&app).await;
    let proof_id = up["proof_id"].as_str().unwrap();
    let (status, body) = check(&app, "", "stored.webp", stored.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("Verified"), "{body}");
    assert!(
        body.contains("has not changed since it was signed"),
        "{body}"
    );
    assert!(body.contains(&format!("/v/{proof_id}")), "{body}");
    assert!(body.contains("This file was not stored."), "{body}");
    assert!(body.contains("claimSignature.validated"), "{body}");

    // From a proof page: the file belongs to that proof, or it does not.
    let (_, body) = check(
        &app,
        &format!("?proof={proof_id}"),
        "a.webp",
        stored.clone(),
    )
    .await;
    assert!(body.contains("This file belongs to proof"), "{body}");
    let (_, body) = check(&app, "?proof=px_0000000000000", "a.webp", stored.clone()).await;
    assert!(
        body.contains("This file does not belong to proof"),
        "{body}"
    );

    // One changed byte in the middle of the picture: changed after signing.
    let mut altered = stored.clone();
    let mid = altered.len() / 2;
    altered[mid] ^= 0x55;
    let (status, body) = check(&app, "", "altered.webp", altered).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains("Changed after signing") || body.contains("Not stamped"),
        "{body}"
    );

    // The original photo, which carries nothing: it looks like the stamped one.
    let (status, body) = check(&app, "", "garden.jpg", photo()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("Looks like a stamped photo"), "{body}");
    // An unrelated picture: not stamped.
    let other = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/photos/alpha.png"),
    )
    .unwrap();
    let (status, body) = check(&app, "", "alpha.png", other).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("Not stamped"), "{body}");

    // Not a picture: refused in words, with its code, as a page.
    let (status, body) = check(&app, "", "notes.txt", b"just some text".to_vec()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert!(body.contains("Not a picture pixseal reads"), "{body}");
    assert!(body.contains("unsupported_format"), "{body}");
    assert!(!body.contains("{\"error\""), "raw JSON on a page: {body}");
}

/// Upload and delete a photo through the API: the tenant's view of its receipt.
async fn deleted(app: &TestApp) -> Value {
    let key = app
        .key(
            "web",
            "us",
            &["artifacts:write", "artifacts:read", "artifacts:delete"],
        )
        .await;
    let up = app.upload(&key, photo()).await;
    app.delete(&key, up["id"].as_str().unwrap()).await
}

#[tokio::test]
async fn a_receipt_page_shows_the_public_view_and_how_to_check_it() {
    let app = TestApp::spawn(TestApp::config()).await;
    let tenant_view = deleted(&app).await;
    let rid = tenant_view["receipt"]["receipt_id"].as_str().unwrap();
    let artifact_id = tenant_view["opening"]["artifact_id"].as_str().unwrap();
    let (status, headers, body) = get(&app, &format!("/r/{rid}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_page(&headers, &body);
    for shown in [
        rid,
        tenant_view["receipt"]["proof_id"].as_str().unwrap(),
        tenant_view["receipt"]["subject"].as_str().unwrap(),
        tenant_view["key_id"].as_str().unwrap(),
        tenant_view["signature"].as_str().unwrap(),
        "deleted by its owner",
        "pixseal receipt verify",
        "BEGIN PUBLIC KEY",
        r#"src="/assets/receipt.js""#,
    ] {
        assert!(
            body.contains(shown),
            "the page does not show {shown}: {body}"
        );
    }
    // The public view: nothing that opens the subject.
    assert!(!body.contains(artifact_id), "{body}");
    assert!(!body.contains("opening"), "{body}");
    // The proof page links it.
    let proof = tenant_view["receipt"]["proof_id"].as_str().unwrap();
    let (_, _, page) = get(&app, &format!("/v/{proof}")).await;
    assert!(page.contains(&format!("/r/{rid}")), "{page}");
    // Unknown receipts: not found, in words.
    for id in ["rcpt_00000000000000000000000000000000", "nope"] {
        let (status, headers, body) = get(&app, &format!("/r/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_page(&headers, &body);
    }
    // The module is this origin's JavaScript.
    let (status, headers, js) = get(&app, "/assets/receipt.js").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(js.contains("crypto.subtle.verify"), "{js}");
}

/// POST the /check page's form.
async fn check_code<V: serde::Serialize>(
    app: &TestApp,
    fields: &[(&str, V)],
) -> (StatusCode, String) {
    let r = app
        .client
        .post(format!("{}/check", app.url))
        .form(fields)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

#[tokio::test]
async fn the_check_page_answers_codes_in_words_within_the_verify_budget() {
    let mut config = TestApp::config();
    config.server.rate_limit_verify_per_ip = 5;
    let app = TestApp::spawn(config).await;
    let (status, headers, body) = get(&app, "/check?code=ABCD-1234").await;
    assert_eq!(status, StatusCode::OK);
    assert_page(&headers, &body);
    assert!(body.contains(r#"value="ABCD-1234""#), "{body}");

    let key = app.key("web", "us", &["codes"]).await;
    let message = "Hello Bob,\nthe invoice is attached.";
    let body = serde_json::json!({"message": message, "recipient": "bob@example.com"});
    let issued: Value = app.passkey_code(&key, "web", "alice", body).await;
    let code = issued["code"].as_str().unwrap();
    // A browser sends the text area's line break as CRLF: the same message.
    let typed = message.replace('\n', "\r\n");
    let msg = |m: &str, r: &str| {
        [
            ("kind", "message".to_string()),
            ("code", code.to_string()),
            ("message", m.to_string()),
            ("recipient", r.to_string()),
        ]
    };
    let (status, body) = check_code(
        &app,
        &msg(
            "Hello Bob,\r\nthe invoice is NOT attached.",
            "bob@example.com",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("Warning: this does not match"), "{body}");
    assert!(body.contains("Do not trust this message"), "{body}");
    let (status, body) = check_code(&app, &msg(&typed, " Bob@Example.com")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("Valid code"), "{body}");
    assert!(body.contains("Level 0"), "{body}");
    assert!(body.contains("passkey, the person verified"), "{body}");
    let (_, body) = check_code(&app, &msg(&typed, "bob@example.com")).await;
    assert!(body.contains("Already checked"), "{body}");
    let (_, body) = check_code(
        &app,
        &[
            ("kind", "live"),
            ("session_id", "ls_0000000000000"),
            ("code", "1234"),
        ],
    )
    .await;
    assert!(body.contains("Unknown code"), "{body}");
    // A form that is not one: refused in words.
    let (status, body) = check_code(&app, &[("kind", "other"), ("code", "x")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("invalid_request"), "{body}");
    assert!(body.contains("Request refused"), "{body}");
    // Five answers spent the address's verify budget: the page is limited like the API.
    let (status, body) = check_code(&app, &msg("x", "bob@example.com")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let api = app
        .client
        .post(format!("{}/v1/codes/verify", app.url))
        .json(&serde_json::json!({"code": code, "message": "x", "recipient": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// A browser's view of the dashboard: one cookie (the session), no redirects followed.
struct Jar {
    client: reqwest::Client,
    base: String,
    cookie: std::sync::Mutex<Option<String>>,
}

impl Jar {
    fn new(app: &TestApp) -> Jar {
        Jar {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.url.clone(),
            cookie: std::sync::Mutex::new(None),
        }
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> reqwest::Response {
        let cookie = self.cookie.lock().unwrap().clone();
        let rb = match cookie {
            Some(c) => rb.header("cookie", c),
            None => rb,
        };
        let r = rb.send().await.unwrap();
        if let Some(set) = r.headers().get("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_string();
            *self.cookie.lock().unwrap() = (!pair.ends_with('=')).then_some(pair);
        }
        r
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(format!("{}{path}", self.base))
    }
}

/// The dashboard's CSRF token, from its page.
fn csrf_of(page: &str) -> String {
    let at = page.find("data-csrf=\"").expect("a signed-in page") + "data-csrf=\"".len();
    page[at..at + 32].to_string()
}

#[tokio::test]
async fn the_dashboard_session_is_a_cookie_bound_to_a_live_key_and_checked_for_csrf() {
    let app = TestApp::spawn(TestApp::config()).await;
    let key = app
        .key(
            "dash",
            "us",
            &["artifacts:write", "artifacts:read", "artifacts:delete"],
        )
        .await;
    let up = app.upload(&key, photo()).await;
    let id = up["id"].as_str().unwrap();
    let c = Jar::new(&app);

    // Signed out: the sign-in form, and nothing of the account's.
    let r = c.get("/app").await;
    let (status, headers) = (r.status(), r.headers().clone());
    let body = r.text().await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_page(&headers, &body);
    assert!(body.contains(r#"action="/app/sign-in""#), "{body}");
    let r = c.get(&format!("/app/artifacts/{id}/content")).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // A wrong key, and a key without artifacts:read: refused in words.
    let r = c
        .send(c.post("/app/sign-in").form(&[("key", "pxk_nope")]))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("unknown or was revoked"));
    let writer = app.key("dash", "us", &["artifacts:write"]).await;
    let r = c
        .send(c.post("/app/sign-in").form(&[("key", writer.as_str())]))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Another site cannot sign a visitor in (to an account of its choosing).
    let r = c
        .send(
            c.post("/app/sign-in")
                .header("sec-fetch-site", "cross-site")
                .form(&[("key", key.as_str())]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get("set-cookie").is_none());

    // Signing in sets an HttpOnly, SameSite=Strict cookie holding a session, not the key.
    let r = c
        .send(c.post("/app/sign-in").form(&[("key", key.as_str())]))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for part in [
        "pixseal_session=pxs_",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=28800",
    ] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains(&key), "{cookie}");

    // The gallery: locked (metadata, no picture), the CSRF token in the page.
    let r = c.get("/app").await;
    let (headers, page) = (r.headers().clone(), r.text().await.unwrap());
    assert_page(&headers, &page);
    assert!(page.contains(id) && page.contains("Locked"), "{page}");
    assert!(page.contains(up["proof_id"].as_str().unwrap()), "{page}");
    assert!(
        !page.contains("<img"),
        "a picture in the locked gallery: {page}"
    );
    let csrf = csrf_of(&page);

    // Content only for this session, never cached.
    let r = c.get(&format!("/app/artifacts/{id}/content")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "private, no-store");
    assert_eq!(
        r.bytes().await.unwrap().to_vec(),
        app.content(&key, id).await
    );

    // A state change without the token, with another, or from another site: refused.
    let del = format!("/app/artifacts/{id}/delete");
    let r = c.send(c.post(&del)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .send(c.post(&del).header("x-csrf-token", "0".repeat(32)))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .send(
            c.post(&del)
                .header("x-csrf-token", &csrf)
                .header("sec-fetch-site", "cross-site"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.content(&key, id).await.len() as i64,
        up["bytes"].as_i64().unwrap()
    );
    // With it: deleted, the owner's receipt.
    let r = c.send(c.post(&del).header("x-csrf-token", &csrf)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let receipt: Value = r.json().await.unwrap();
    assert!(receipt["opening"]["artifact_id"] == id, "{receipt}");

    // Revoking the key ends the session at once.
    let tenant = app.db.tenant_by_name("dash").await.unwrap();
    let live = app.db.list_api_keys(&tenant).await.unwrap();
    let k = live.iter().find(|k| k.scopes.len() == 3).unwrap();
    app.db.revoke_api_key(&tenant, &k.id).await.unwrap();
    let page = c.get("/app").await.text().await.unwrap();
    assert!(
        page.contains(r#"action="/app/sign-in""#),
        "still signed in: {page}"
    );

    // Signing out ends a session too (and needs its token).
    let key2 = app.key("dash", "us", &["artifacts:read"]).await;
    c.send(c.post("/app/sign-in").form(&[("key", key2.as_str())]))
        .await;
    let page = c.get("/app").await.text().await.unwrap();
    let csrf = csrf_of(&page);
    let r = c.send(c.post("/app/sign-out").form(&[("csrf", "x")])).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .send(c.post("/app/sign-out").form(&[("csrf", csrf.as_str())]))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = c.get("/app").await.text().await.unwrap();
    assert!(page.contains(r#"action="/app/sign-in""#), "{page}");
}

#[tokio::test]
async fn artifacts_are_listed_newest_first_a_page_at_a_time() {
    let app = TestApp::spawn(TestApp::config()).await;
    let key = app
        .key("list", "us", &["artifacts:write", "artifacts:read"])
        .await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            app.upload(&key, photo()).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // Another tenant's artifacts are not listed.
    let other = app
        .key("list-other", "us", &["artifacts:write", "artifacts:read"])
        .await;
    app.upload(&other, photo()).await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = vec![("limit", "2".to_string())];
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let r = app
            .client
            .get(format!("{}/v1/artifacts", app.url))
            .bearer_auth(&key)
            .query(&q)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let page: Value = r.json().await.unwrap();
        assert_eq!(page["total"], 5);
        let items = page["artifacts"].as_array().unwrap();
        assert!(items.len() <= 2);
        for a in items {
            assert_eq!(a["retention_days"], 30);
            seen.push(a["id"].as_str().unwrap().to_string());
        }
        match page["next"].as_str() {
            Some(n) => cursor = Some(n.to_string()),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids, "newest first, each once");
    let r = app
        .client
        .get(format!("{}/v1/artifacts?cursor=nonsense", app.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

/// Under TLS the session cookie is `__Host-` prefixed and `Secure` (this host only, HTTPS only),
/// the dashboard is sent with HSTS, and the plain-HTTP cookie name is not accepted.
#[tokio::test]
async fn under_tls_the_session_cookie_is_secure_and_host_only() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key_pem) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key_pem, ck.signing_key.serialize_pem()).unwrap();
    let mut config = TestApp::config();
    config.server.tls_cert = cert.display().to_string();
    config.server.tls_key = key_pem.display().to_string();
    let app = TestApp::spawn(config).await;
    let port: u16 = app.url.rsplit(':').next().unwrap().parse().unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ck.cert.pem().as_bytes()).unwrap())
        .resolve(
            "localhost",
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        )
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let key = app.key("tls", "us", &["artifacts:read"]).await;
    let r = client
        .post(format!("{}/app/sign-in", app.url))
        .form(&[("key", key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for part in [
        "__Host-pixseal_session=pxs_",
        "; Secure",
        "; HttpOnly",
        "; SameSite=Strict",
        "; Path=/",
    ] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_string();
    let r = client
        .get(format!("{}/app", app.url))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("strict-transport-security"));
    assert!(
        r.text().await.unwrap().contains("data-csrf"),
        "not signed in"
    );
    let plain_name = pair.replacen("__Host-", "", 1);
    let page = client
        .get(format!("{}/app", app.url))
        .header("cookie", plain_name)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"action="/app/sign-in""#), "{page}");
}

/// The dashboard lists the account's licences and the devices on their seats (counts only);
/// an admin session deactivates one, with the CSRF token; a read-only session sees no button.
#[tokio::test]
async fn the_dashboard_shows_seats_and_an_admin_deactivates_a_device() {
    let app = TestApp::spawn(TestApp::config()).await;
    let admin = app.key("seats", "us", &["admin"]).await;
    let reader = app.key("seats", "us", &["artifacts:read"]).await;
    let s = &app.state.services;
    let far = s.clock.now_ms() + 30 * 86_400_000;
    let l = s
        .issue_license(&pixseal_service::Actor::Cli, "seats", 2, far)
        .await
        .unwrap();
    let device = "ab".repeat(32);
    let r = app
        .client
        .post(format!("{}/v1/licenses/usage", app.url))
        .json(&serde_json::json!({"license": l.id, "device": device, "images": 3, "bytes": 5, "version": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "not activated yet");
    let r = app
        .client
        .post(format!("{}/v1/licenses/activate", app.url))
        .json(&serde_json::json!({"license_key": l.key, "device": device, "version": "0.1.0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    let c = Jar::new(&app);
    let r = c
        .send(c.post("/app/sign-in").form(&[("key", reader.as_str())]))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = c.get("/app").await.text().await.unwrap();
    assert!(
        page.contains("Licences and seats") && page.contains(&l.id),
        "{page}"
    );
    assert!(
        page.contains("1 of 2 seats") && page.contains(&device[..12]),
        "{page}"
    );
    assert!(
        !page.contains("Deactivate"),
        "a read-only session got the button"
    );

    let c = Jar::new(&app);
    c.send(c.post("/app/sign-in").form(&[("key", admin.as_str())]))
        .await;
    let page = c.get("/app").await.text().await.unwrap();
    assert!(page.contains("Deactivate"), "{page}");
    let csrf = csrf_of(&page);
    let to = format!("/app/licenses/{}/deactivate", l.id);
    let r = c
        .send(c.post(&to).form(&[
            ("csrf", "0".repeat(32).as_str()),
            ("device", device.as_str()),
        ]))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .send(
            c.post(&to)
                .form(&[("csrf", csrf.as_str()), ("device", device.as_str())]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let devices = s.license_devices(&l.id, None).await.unwrap();
    assert_eq!(devices[0].state, pixseal_store::DeviceState::Deactivated);
    let page = c.get("/app").await.text().await.unwrap();
    assert!(
        page.contains("0 of 2 seats") && page.contains("deactivated"),
        "{page}"
    );
}
