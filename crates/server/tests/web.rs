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
    let up: Value = app
        .client
        .post(format!("{}/v1/artifacts", app.url))
        .bearer_auth(&key)
        .body(photo())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = up["id"].as_str().unwrap();
    let bytes = app
        .client
        .get(format!("{}/v1/artifacts/{id}/content", app.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
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

/// What every page must hold to: HTML, the strict policy, no script and no inline style.
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
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(h("referrer-policy").as_deref(), Some("no-referrer"));
    assert!(!body.contains("<script"), "a page with a script: {body}");
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
        assert!(!body.contains("<script>"), "{body}");
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
