//! The pages in a real browser (headless Chromium through ChromeDriver): what a person sees and
//! does, with nothing loaded from another origin and no error or CSP violation in the console.
//! Needs Chromium and ChromeDriver (scripts/setup.sh installs both).

use std::path::{Path, PathBuf};

use pixseal_testkit::TestApp;
use pixseal_testkit::browser::Browser;
use serde_json::{Value, json};

/// A fixture's canonical path (ChromeDriver takes no `..` in a file to send).
fn fixture_path(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/photos")
        .join(name);
    std::fs::canonicalize(p)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/photos")
        .join(name);
    std::fs::read(p).unwrap()
}

/// A tenant key allowed to upload, read and delete.
async fn owner(app: &TestApp) -> String {
    app.key(
        "browser",
        "us",
        &[
            "artifacts:write",
            "artifacts:read",
            "artifacts:delete",
            "codes",
        ],
    )
    .await
}

/// Choose `file` in the file input `input` and click the `submit` button.
async fn choose_and_submit(b: &Browser, input: &str, submit: &str, file: &Path) {
    b.find(input)
        .await
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
    b.find(submit).await.click().await.unwrap();
}

/// Choose `file` in the page's file input and submit its form; the verdict page's headline.
async fn check_file(b: &Browser, app: &TestApp, file: &Path) -> String {
    b.client.goto(&format!("{}/verify", app.url)).await.unwrap();
    choose_and_submit(b, "input#file", "form button[type=submit]", file).await;
    b.wait_until("document.title !== 'Check a file · pixseal'")
        .await;
    b.assert_clean(&app.url).await;
    b.text("main h1").await
}

#[tokio::test]
async fn the_verify_page_gives_each_verdict_in_a_browser() {
    let app = TestApp::spawn(TestApp::config()).await;
    let key = owner(&app).await;
    let up = app.upload(&key, fixture("garden.jpg")).await;
    let stamped = app.content(&key, up["id"].as_str().unwrap()).await;

    // The stamped file; a copy whose manifest is gone (decoded and saved again as PNG, as a
    // screenshot or a re-upload would); the stamped file with bytes changed; an unrelated one.
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let stripped = {
        let img = image::load_from_memory(&stamped).unwrap();
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    };
    let mut tampered = stamped.clone();
    let mid = tampered.len() / 2;
    for b in &mut tampered[mid..mid + 64] {
        *b ^= 0x55;
    }
    let b = Browser::open(1280, 900).await;
    b.client.goto(&format!("{}/verify", app.url)).await.unwrap();
    b.assert_clean(&app.url).await;

    let h1 = check_file(&b, &app, &write("stamped.webp", &stamped)).await;
    assert_eq!(h1, "Verified");
    let lead = b.text("main p.lead").await;
    assert!(
        lead.contains("has not changed since it was signed"),
        "{lead}"
    );
    let page = b.text("main").await;
    assert!(page.contains(up["proof_id"].as_str().unwrap()), "{page}");
    assert!(page.contains("This file was not stored."), "{page}");

    let h1 = check_file(&b, &app, &write("stripped.png", &stripped)).await;
    assert_eq!(h1, "Watermark found");
    assert!(
        b.text("main")
            .await
            .contains(up["proof_id"].as_str().unwrap()),
        "the watermark's proof is named"
    );

    let h1 = check_file(&b, &app, &write("tampered.webp", &tampered)).await;
    assert!(
        [
            "Changed after signing",
            "Not stamped",
            "This file was refused"
        ]
        .contains(&h1.as_str()),
        "{h1}"
    );
    assert_ne!(h1, "Verified");

    let h1 = check_file(&b, &app, &write("alpha.png", &fixture("alpha.png"))).await;
    assert_eq!(h1, "Not stamped");

    // Several files at once: each one's verdict, under its name, on the same page.
    b.client.goto(&format!("{}/verify", app.url)).await.unwrap();
    let several = [
        write("one.webp", &stamped),
        write("two.png", &stripped),
        write("three.png", &fixture("alpha.png")),
    ];
    let paths: Vec<&str> = several.iter().map(|p| p.to_str().unwrap()).collect();
    b.find("input#file")
        .await
        .send_keys(&paths.join("\n"))
        .await
        .unwrap();
    b.find("form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_until("document.querySelectorAll('#results article.result').length === 3 && !document.getElementById('results').hasAttribute('aria-busy')").await;
    let verdicts = b
        .client
        .execute(
            "return [...document.querySelectorAll('#results article.result')].map(a => [a.getAttribute('aria-label'), a.querySelector('h1').textContent])",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        verdicts,
        json!([
            ["one.webp", "Verified"],
            ["two.png", "Watermark found"],
            ["three.png", "Not stamped"]
        ])
    );
    assert!(
        b.text("#results")
            .await
            .contains("None of them was stored.")
    );
    b.assert_clean(&app.url).await;

    // Not a picture: refused in words, not raw JSON.
    let h1 = check_file(&b, &app, &write("notes.txt", b"hello")).await;
    assert_eq!(h1, "Not a picture pixseal reads");
    assert!(!b.text("main").await.contains("{\""));
    b.close().await;
}

/// Put `json` in the receipt page's paste box, check it, and return the result's class and text.
async fn paste(b: &Browser, json: &Value) -> (String, String) {
    b.client
        .execute(
            "document.getElementById('paste-result').className = ''; \
             document.getElementById('paste-result').textContent = ''; \
             document.getElementById('paste-text').value = arguments[0];",
            vec![Value::String(json.to_string())],
        )
        .await
        .unwrap();
    b.find("#paste-form button").await.click().await.unwrap();
    b.wait_until("document.getElementById('paste-result').textContent !== ''")
        .await;
    let el = b.find("#paste-result").await;
    (
        el.attr("class").await.unwrap().unwrap_or_default(),
        el.text().await.unwrap(),
    )
}

#[tokio::test]
async fn a_receipt_is_checked_in_the_browser_and_a_changed_one_is_refused() {
    let app = TestApp::spawn(TestApp::config()).await;
    let key = owner(&app).await;
    let up = app.upload(&key, fixture("garden.jpg")).await;
    let tenant_view = app.delete(&key, up["id"].as_str().unwrap()).await;
    let rid = tenant_view["receipt"]["receipt_id"].as_str().unwrap();

    let b = Browser::open(1280, 900).await;
    b.client
        .goto(&format!("{}/r/{rid}", app.url))
        .await
        .unwrap();
    b.wait_until("document.getElementById('signature-check').classList.contains('good') || document.getElementById('signature-check').classList.contains('bad')").await;
    let status = b.text("#signature-check").await;
    assert!(status.starts_with("Signature valid"), "{status}");
    assert!(
        status.contains(tenant_view["key_id"].as_str().unwrap()),
        "{status}"
    );

    // The owner's view, with the opening of its subject: valid, and the opening checked.
    let (class, text) = paste(&b, &tenant_view).await;
    assert!(class.contains("good"), "{class}: {text}");
    assert!(text.contains("opening matches"), "{text}");

    // Each change is caught: a signed field, the opening, an added field, another key id.
    let changes: [(&[&str], Value, &str); 4] = [
        (
            &["receipt", "deleted_at"],
            json!("2020-01-01T00:00:00Z"),
            "does not verify",
        ),
        (
            &["opening", "artifact_id"],
            json!("0192aaaa-0000-7000-8000-000000000000"),
            "does not open",
        ),
        (&["receipt", "note"], json!("added later"), "note"),
        (
            &["key_id"],
            json!("0000000000000000"),
            "not by this service",
        ),
    ];
    for (path, value, why) in changes {
        let mut changed = tenant_view.clone();
        let field = path.iter().fold(&mut changed, |v, k| &mut v[*k]);
        *field = value;
        let (class, text) = paste(&b, &changed).await;
        assert!(
            class.contains("bad") && text.contains(why),
            "{path:?}: {class}: {text}"
        );
    }

    let (class, text) = paste(&b, &json!("not a receipt")).await;
    assert!(class.contains("bad"), "{class}: {text}");

    b.assert_clean(&app.url).await;
    b.close().await;
}

/// Fill the message-code form and submit it: the answer's headline.
async fn check_message(
    b: &Browser,
    app: &TestApp,
    code: &str,
    message: &str,
    recipient: &str,
) -> String {
    b.client.goto(&format!("{}/check", app.url)).await.unwrap();
    b.find("#m-code").await.send_keys(code).await.unwrap();
    b.find("#m-message").await.send_keys(message).await.unwrap();
    b.find("#m-recipient")
        .await
        .send_keys(recipient)
        .await
        .unwrap();
    b.find("#m-recipient")
        .await
        .send_keys("\u{E007}") // Enter submits the form, as a keyboard user would.
        .await
        .unwrap();
    b.wait_until("document.getElementById('verdict') !== null")
        .await;
    b.assert_clean(&app.url).await;
    b.text("main h1").await
}

#[tokio::test]
async fn codes_are_checked_in_a_browser_valid_mismatched_and_used() {
    let app = TestApp::spawn(TestApp::config()).await;
    let key = owner(&app).await;
    let message = "Hi Ann,\nplease pay invoice 2231 to the usual account.";
    let body = json!({"message": message, "recipient": "ann@example.com"});
    let issued: Value = app.passkey_code(&key, "browser", "ann", body).await;
    let code = issued["code"].as_str().unwrap();
    let b = Browser::open(1280, 900).await;

    let forged = message.replace("2231", "2232");
    let h1 = check_message(&b, &app, code, &forged, "ann@example.com").await;
    assert_eq!(h1, "Warning: this does not match");
    assert!(b.text("main").await.contains("Do not trust this message"));

    let h1 = check_message(&b, &app, code, message, "Ann@Example.com").await;
    assert_eq!(h1, "Valid code");
    let verdict = b.text("#verdict").await;
    assert!(verdict.contains("Level 0"), "{verdict}");
    assert!(
        verdict.contains("passkey, the person verified"),
        "{verdict}"
    );

    let h1 = check_message(&b, &app, code, message, "ann@example.com").await;
    assert_eq!(h1, "Already checked");

    // A live call code: the session's current code, then a wrong one.
    let live: Value = app.passkey_live(&key, "browser", "ann").await;
    let session = live["session_id"].as_str().unwrap();
    b.client
        .goto(&format!("{}/check?session={session}", app.url))
        .await
        .unwrap();
    let prefilled = b.find("#l-session").await.prop("value").await.unwrap();
    assert_eq!(prefilled.as_deref(), Some(session));
    b.find("#l-code")
        .await
        .send_keys(live["code"].as_str().unwrap())
        .await
        .unwrap();
    b.find("#l-code").await.send_keys("\u{E007}").await.unwrap();
    b.wait_until("document.getElementById('verdict') !== null")
        .await;
    assert_eq!(b.text("main h1").await, "Valid code");
    b.assert_clean(&app.url).await;
    b.close().await;
}

/// The pages at phone and desktop width, light and dark: nothing wider than the screen, the
/// colour scheme followed, every text at WCAG AA contrast, and, with PIXSEAL_SCREENSHOTS set to a directory (docs/img), the
/// pictures the README shows.
#[tokio::test]
async fn pages_fit_phone_and_desktop_in_light_and_dark() {
    let mut c = TestApp::config();
    c.stamp.anonymous = true;
    let app = TestApp::spawn(c).await;
    let key = owner(&app).await;
    let up = app.upload(&key, fixture("garden.jpg")).await;
    let proof = up["proof_id"].as_str().unwrap().to_string();
    let gone = app.upload(&key, fixture("garden.jpg")).await;
    let receipt = app.delete(&key, gone["id"].as_str().unwrap()).await;
    let rid = receipt["receipt"]["receipt_id"]
        .as_str()
        .unwrap()
        .to_string();
    // The dashboard's seats: a licence with one device that reported a batch.
    let s = &app.state.services;
    let far = s.clock.now_ms() + 365 * 86_400_000;
    let lic = s
        .issue_license(&pixseal_service::Actor::Cli, "browser", 5, far)
        .await
        .unwrap();
    let device = "5e".repeat(32);
    for (path, body) in [
        (
            "activate",
            json!({"license_key": lic.key, "device": device, "version": "0.1.0"}),
        ),
        (
            "usage",
            json!({"license": lic.id, "device": device, "images": 128, "bytes": 412_000_000u64, "version": "0.1.0"}),
        ),
    ] {
        let r = app
            .client
            .post(format!("{}/v1/licenses/{path}", app.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }
    let out = std::env::var_os("PIXSEAL_SCREENSHOTS").map(PathBuf::from);

    let pages = [
        ("proof", format!("/v/{proof}")),
        ("verify", "/verify".to_string()),
        ("check", "/check".to_string()),
        ("receipt", format!("/r/{rid}")),
        ("not-found", "/v/px_0000000000000".to_string()),
        ("dashboard", "/app".to_string()),
        ("verdict", "/verify".to_string()),
        ("stamp", "/stamp".to_string()),
        ("new-code", "/app/codes".to_string()),
        ("enroll", "/enroll".to_string()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let stamped = dir.path().join("stamped.webp");
    std::fs::write(
        &stamped,
        app.content(&key, up["id"].as_str().unwrap()).await,
    )
    .unwrap();
    for (device, width, height) in [("phone", 390, 844), ("desktop", 1280, 900)] {
        let b = Browser::open(width, height).await;
        sign_in(&b, &app, &key).await;
        for dark in [false, true] {
            b.prefer_dark(dark).await;
            for (name, path) in &pages {
                b.client.goto(&format!("{}{path}", app.url)).await.unwrap();
                if *name == "verdict" {
                    b.find("input#file")
                        .await
                        .send_keys(stamped.to_str().unwrap())
                        .await
                        .unwrap();
                    b.find("form button[type=submit]")
                        .await
                        .click()
                        .await
                        .unwrap();
                    b.wait_until("document.title.startsWith('Verified')").await;
                }
                if *name == "stamp" {
                    b.find("input#file")
                        .await
                        .send_keys(&fixture_path("garden.jpg"))
                        .await
                        .unwrap();
                    b.find("#stamp-form button[type=submit]")
                        .await
                        .click()
                        .await
                        .unwrap();
                    b.wait_until("document.querySelector('#stamped img')?.complete === true")
                        .await;
                }
                if *name == "receipt" {
                    b.wait_until(
                        "document.getElementById('signature-check').classList.contains('good')",
                    )
                    .await;
                }
                b.assert_clean(&app.url).await;
                let low = b.contrast_failures().await;
                assert!(low.is_empty(), "{name} {device} dark={dark}: {low:#?}");
                let overflow = b
                    .client
                    .execute(
                        "return document.documentElement.scrollWidth - window.innerWidth",
                        vec![],
                    )
                    .await
                    .unwrap();
                assert!(
                    overflow.as_i64().unwrap() <= 0,
                    "{name} is {overflow} px wider than a {width} px screen"
                );
                let png = b.screenshot().await;
                let img = image::load_from_memory(&png).unwrap().to_rgb8();
                assert_eq!(img.width(), width, "{name} {device}");
                let px = img.get_pixel(2, img.height() - 2).0;
                let luma =
                    (u32::from(px[0]) * 299 + u32::from(px[1]) * 587 + u32::from(px[2]) * 114)
                        / 1000;
                if dark {
                    assert!(luma < 60, "{name} {device} dark: background {px:?}");
                } else {
                    assert!(luma > 200, "{name} {device} light: background {px:?}");
                }
                if let Some(dir) = &out {
                    let scheme = if dark { "dark" } else { "light" };
                    std::fs::create_dir_all(dir).unwrap();
                    std::fs::write(dir.join(format!("{name}-{device}-{scheme}.png")), &png)
                        .unwrap();
                }
            }
        }
        // The contrast check finds what it looks for: grey on white is refused.
        b.prefer_dark(false).await;
        b.client.goto(&format!("{}/verify", app.url)).await.unwrap();
        b.client
            .execute(
                "const p = document.createElement('p'); p.textContent = 'faint words'; \
                 p.style.color = '#999999'; document.querySelector('main .card').append(p);",
                vec![],
            )
            .await
            .unwrap();
        let low = b.contrast_failures().await;
        assert!(low.len() == 1 && low[0].contains("faint words"), "{low:#?}");
        b.close().await;
    }
}

/// Whether any file under `dir` holds `needle`.
fn holds(dir: &Path, needle: &[u8]) -> Option<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p)
                && bytes.windows(needle.len()).any(|w| w == needle)
            {
                return Some(p);
            }
        }
    }
    None
}

#[tokio::test]
async fn the_dashboard_is_locked_until_decrypt_and_deletes_with_a_checked_receipt() {
    let app = TestApp::spawn(TestApp::config()).await;
    let key = owner(&app).await;
    let up = app.upload(&key, fixture("garden.jpg")).await;
    let id = up["id"].as_str().unwrap();
    let stored = app.content(&key, id).await;

    let b = Browser::open(1280, 900).await;
    sign_in(&b, &app, &key).await;
    b.assert_clean(&app.url).await;
    // The key is not kept by the browser: only an HttpOnly session cookie, unreadable here.
    let cookies = b
        .client
        .execute("return document.cookie", vec![])
        .await
        .unwrap();
    assert_eq!(cookies, json!(""));

    // Locked by default: the item's metadata, no picture anywhere on the page.
    let item = format!("#gallery li[data-id='{id}']");
    let text = b.text(&item).await;
    assert!(
        text.contains("Locked") && text.contains(up["proof_id"].as_str().unwrap()),
        "{text}"
    );
    let images = b
        .client
        .execute("return document.images.length", vec![])
        .await
        .unwrap();
    assert_eq!(images, json!(0));

    // Decrypt: the picture from memory (a blob: URL), shown at its size; closed, it is gone.
    b.find(&format!("{item} button.decrypt"))
        .await
        .click()
        .await
        .unwrap();
    b.wait_until("document.getElementById('decrypted')?.complete && document.getElementById('decrypted').naturalWidth > 0").await;
    let src = b
        .find("#decrypted")
        .await
        .attr("src")
        .await
        .unwrap()
        .unwrap();
    assert!(src.starts_with("blob:"), "{src}");
    let width = b
        .client
        .execute(
            "return document.getElementById('decrypted').naturalWidth",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(width, up["width"]);
    b.find("#viewer-close").await.click().await.unwrap();
    b.wait_until(
        "document.getElementById('decrypted') === null && !document.getElementById('viewer').open",
    )
    .await;
    let revoked = b
        .client
        .execute_async(
            // Loaded as a picture (which the policy allows from blob:): a live URL loads.
            "const done = arguments[arguments.length - 1]; const i = new Image(); \
             i.onload = () => done('readable'); i.onerror = () => done('revoked'); i.src = arguments[0];",
            vec![json!(src)],
        )
        .await
        .unwrap();
    assert_eq!(
        revoked,
        json!("revoked"),
        "the object URL outlived the viewer"
    );
    // That failed load is the console's only entry.
    let log = b.log().await;
    assert!(log.iter().all(|e| e.message.starts_with(&src)), "{log:#?}");
    b.assert_clean(&app.url).await;

    // Delete, confirmed: the receipt shown, and its page checks the signature.
    b.find(&format!("{item} button.delete"))
        .await
        .click()
        .await
        .unwrap();
    b.find("#confirm-delete").await.click().await.unwrap();
    b.wait_until("document.getElementById('receipt').open")
        .await;
    let words = b.text("#receipt-words").await;
    assert!(words.contains("rcpt_"), "{words}");
    let gone = b
        .client
        .execute(
            &format!("return document.querySelector(\"{item}\") === null"),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(gone, json!(true));
    let href = b
        .find("#receipt-link")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let download = b
        .find("#receipt-download")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert!(download.starts_with("blob:"), "{download}");
    b.assert_clean(&app.url).await;
    b.client.goto(&format!("{}{href}", app.url)).await.unwrap();
    b.wait_until("document.getElementById('signature-check').classList.contains('good')")
        .await;
    let r = app
        .client
        .get(format!("{}/v1/artifacts/{id}", app.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::NOT_FOUND);

    // Nothing of the decrypted picture reached the browser's disk (its cache included), where
    // the style sheet, which may be cached, did: the search finds what is there.
    let profile = b.close().await;
    let css = app
        .client
        .get(format!("{}/assets/pixseal.css", app.url))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(
        holds(profile.path(), &css[100..164]).is_some(),
        "the disk cache was not where it was looked for"
    );
    let mid = stored.len() / 2;
    assert_eq!(
        holds(profile.path(), &stored[mid..mid + 64]),
        None,
        "the picture was written to the browser's disk"
    );
}

/// A video uploaded from the dashboard's picker is stored, and locked like a picture;
/// "Decrypt" plays it from the content route, which the browser reads in byte ranges (a seek
/// far into it loads), and closing stops it. Nothing of it reaches the browser's disk. AV1
/// and Opus: codecs any Chromium build plays.
#[tokio::test]
async fn the_dashboard_uploads_a_video_and_plays_it_seeking_in_it() {
    use pixseal_testkit::video::{Audio, Clip, Codec};
    let app = TestApp::spawn(TestApp::config()).await;
    let key = owner(&app).await;
    let clip = Clip {
        codec: Codec::Av1,
        audio: Some(Audio::Opus),
        seconds: 3.0,
        ..Clip::default()
    }
    .make();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clip.mp4");
    std::fs::write(&file, &clip).unwrap();

    // Uploaded from the dashboard's picker, as a person would.
    let b = Browser::open(1280, 900).await;
    sign_in(&b, &app, &key).await;
    choose_and_submit(
        &b,
        "#upload-file",
        "#upload-form button[type=submit]",
        &file,
    )
    .await;
    b.wait_until("document.querySelectorAll('#gallery li').length === 1")
        .await;
    let id = b
        .client
        .execute(
            "return document.querySelector('#gallery li').dataset.id",
            vec![],
        )
        .await
        .unwrap();
    let id = id.as_str().unwrap();
    let stored = app.content(&key, id).await;
    assert_ne!(stored, clip, "stored sanitized and signed, not as sent");
    let item = format!("#gallery li[data-id='{id}']");
    let text = b.text(&item).await;
    assert!(text.contains("Locked") && text.contains("Video"), "{text}");
    let media = b
        .client
        .execute(
            "return document.querySelectorAll('video, img').length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(media, json!(0));

    b.find(&format!("{item} button.decrypt"))
        .await
        .click()
        .await
        .unwrap();
    b.wait_until(
        "document.getElementById('decrypted')?.readyState >= 1 && document.getElementById('decrypted').duration > 2",
    )
    .await;
    let size = b
        .client
        .execute(
            "const v = document.getElementById('decrypted'); return [v.videoWidth, v.videoHeight]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(size, json!([320, 240]));
    b.client
        .execute(
            "const v = document.getElementById('decrypted'); v.currentTime = 2.5;",
            vec![],
        )
        .await
        .unwrap();
    b.wait_until(
        "(() => { const v = document.getElementById('decrypted'); return !v.seeking && v.readyState >= 2 && v.currentTime > 2; })()",
    )
    .await;
    b.find("#viewer-close").await.click().await.unwrap();
    b.wait_until(
        "document.getElementById('decrypted') === null && !document.getElementById('viewer').open",
    )
    .await;
    b.assert_clean(&app.url).await;

    let profile = b.close().await;
    let mid = stored.len() / 2;
    assert_eq!(
        holds(profile.path(), &stored[mid..mid + 64]),
        None,
        "the video was written to the browser's disk"
    );
}

/// Sign `key` in on the dashboard and wait for the gallery.
async fn sign_in(b: &Browser, app: &TestApp, key: &str) {
    b.client.goto(&format!("{}/app", app.url)).await.unwrap();
    b.find("#key").await.send_keys(key).await.unwrap();
    b.find("#key").await.send_keys("\u{E007}").await.unwrap();
    b.wait_until("document.getElementById('gallery') !== null")
        .await;
}

#[tokio::test]
async fn photos_uploaded_from_the_dashboard_by_picker_or_drop_land_in_the_gallery() {
    let app = TestApp::spawn(TestApp::config()).await;
    let key = owner(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("garden.jpg");
    std::fs::write(&photo, fixture("garden.jpg")).unwrap();
    let b = Browser::open(1280, 900).await;
    sign_in(&b, &app, &key).await;
    assert!(b.text("main").await.contains("No photos stored."));

    // The picker, with a 7-day retention and no visible mark.
    b.find("#upload-file")
        .await
        .send_keys(photo.to_str().unwrap())
        .await
        .unwrap();
    b.find("#retention option[value='7']")
        .await
        .click()
        .await
        .unwrap();
    b.find("#visible").await.click().await.unwrap();
    b.find("#upload-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_until("document.querySelectorAll('#gallery li').length === 1")
        .await;
    assert!(b.text("#gallery li").await.contains("7 days"));
    b.assert_clean(&app.url).await;

    // A drop of a file onto the zone, as a desktop's file manager does.
    let bytes = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        fixture("alpha.png"),
    );
    b.client
        .execute(
            "const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0)); \
             const dt = new DataTransfer(); \
             dt.items.add(new File([bytes], 'alpha.png', { type: 'image/png' })); \
             document.getElementById('drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));",
            vec![json!(bytes)],
        )
        .await
        .unwrap();
    b.wait_until("document.querySelectorAll('#gallery li').length === 2")
        .await;
    b.assert_clean(&app.url).await;

    // Both stored, newest first, as the API lists them.
    let listed: Value = app
        .client
        .get(format!("{}/v1/artifacts", app.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = listed["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    let shown = b
        .client
        .execute(
            "return [...document.querySelectorAll('#gallery li')].map(li => li.dataset.id)",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(shown, json!(ids));
    assert_eq!(listed["artifacts"][1]["retention_days"], 7);
    b.close().await;
}

#[tokio::test]
async fn older_photos_are_appended_a_page_at_a_time() {
    let app = TestApp::spawn(TestApp::config()).await;
    let key = owner(&app).await;
    for _ in 0..26 {
        app.upload(&key, fixture("alpha.png")).await;
    }
    let b = Browser::open(1280, 900).await;
    sign_in(&b, &app, &key).await;
    let count = "document.querySelectorAll('#gallery li').length";
    assert_eq!(
        b.client
            .execute(&format!("return {count}"), vec![])
            .await
            .unwrap(),
        json!(24)
    );
    b.find("#more").await.click().await.unwrap();
    b.wait_until(&format!(
        "{count} === 26 && document.getElementById('more') === null"
    ))
    .await;
    let unique = b
        .client
        .execute(
            "return new Set([...document.querySelectorAll('#gallery li')].map(li => li.dataset.id)).size",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(unique, json!(26));
    b.assert_clean(&app.url).await;
    b.close().await;
}

/// The stamp page: one photo comes back as a download with its proof; a second one, past the
/// address's free anonymous requests, after the page solved the challenge the service asked
/// for; seven at once (past `challenge_over`) make the page solve it in its Web Worker first,
/// and come back as one download per photo, a refused one named with its reason; every proof
/// is on record as not stored. An installation without anonymous stamping says so instead.
#[tokio::test]
async fn the_stamp_page_stamps_one_or_many_and_solves_the_challenge_for_bulk() {
    let mut c = TestApp::config();
    c.stamp.anonymous = true;
    c.stamp.anonymous_free_per_hour = 1;
    c.stamp.challenge_work_cost = 50;
    c.stamp.challenge_work = 200;
    let app = TestApp::spawn(c).await;
    let b = Browser::open(1280, 900).await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let stamp = |paths: Vec<PathBuf>| {
        let b = &b;
        async move {
            let joined: Vec<&str> = paths.iter().map(|p| p.to_str().unwrap()).collect();
            // A fresh choice, and no status left from the batch before.
            b.client
                .execute(
                    "document.getElementById('file').value = ''; document.getElementById('stamp-status').className = ''; delete document.getElementById('stamp-form').dataset.solvedMs;",
                    vec![],
                )
                .await
                .unwrap();
            b.find("input#file")
                .await
                .send_keys(&joined.join("\n"))
                .await
                .unwrap();
            b.find("#stamp-form button[type=submit]")
                .await
                .click()
                .await
                .unwrap();
            b.wait_until("document.getElementById('stamp-status').className.startsWith('badge')")
                .await;
            b.text("#stamp-status").await
        }
    };
    // What each result offers: [name, download file name, proof id, bytes, is a blob: link].
    let results = || async {
        // The page's CSP keeps even its own blob: URLs from fetch(); each link says its size.
        b.client
            .execute(
                "return [...document.querySelectorAll('#stamped li')].map(li => {
                   const a = li.querySelector('a[download]');
                   const proof = li.querySelector('a[href^=\"/v/\"]');
                   return [li.getAttribute('aria-label'), a && a.download, proof && proof.textContent.slice(6),
                           a ? Number(a.dataset.bytes) : 0, a ? a.href.startsWith('blob:') : false];
                 })",
                vec![],
            )
            .await
            .unwrap()
    };

    // How long the page's last challenge took to solve (absent: it solved none).
    let solved_ms = || async {
        b.client
            .execute(
                "return document.getElementById('stamp-form').dataset.solvedMs",
                vec![],
            )
            .await
            .unwrap()
    };

    b.client.goto(&format!("{}/stamp", app.url)).await.unwrap();
    let said = stamp(vec![write("garden.jpg", &fixture("garden.jpg"))]).await;
    assert_eq!(said, "Stamped. Nothing but its proof was kept.");
    let one = results().await;
    let proof = one[0][2].as_str().unwrap().to_string();
    assert_eq!(one[0][0], "garden.jpg");
    assert_eq!(one[0][1], format!("{proof}.jpg"));
    assert!(one[0][3].as_u64().unwrap() > 10_000, "{one}");
    assert_eq!(one[0][4], true, "{one}");
    assert!(solved_ms().await.is_null(), "no challenge for one photo");

    let mut seven = Vec::new();
    for i in 0..6 {
        let name = if i % 2 == 0 {
            "garden.jpg"
        } else {
            "street.webp"
        };
        seven.push(write(&format!("{i}-{name}"), &fixture(name)));
    }
    seven.push(write("notes.txt", b"not a photo"));
    let said = stamp(seven).await;
    assert_eq!(said, "6 of 7 stamped. Nothing but their proofs was kept.");
    let solved = solved_ms().await;
    assert!(
        solved.is_string(),
        "the challenge was solved in the page: {solved}"
    );
    let many = results().await;
    let many = many.as_array().unwrap();
    assert_eq!(many.len(), 7, "{many:?}");
    assert_eq!(many[6][0], "notes.txt");
    assert!(
        b.text("#stamped")
            .await
            .contains("Not stamped: not a supported image")
    );
    let mut proofs = vec![proof];
    for r in &many[..6] {
        assert!(r[3].as_u64().unwrap() > 1000, "{r}");
        proofs.push(r[2].as_str().unwrap().to_string());
    }
    for p in &proofs {
        let record = app.proof(p).await;
        assert_eq!(record["status"], "not_stored", "{record}");
    }
    b.assert_clean(&app.url).await;

    // The address's one free anonymous request is spent: the service asks for a challenge
    // even for one photo (Chromium logs that 403 as a failed load, so this comes after the
    // console check), and the page solves it and sends the photo again.
    let said = stamp(vec![write("again.jpg", &fixture("garden.jpg"))]).await;
    assert_eq!(said, "Stamped. Nothing but its proof was kept.");
    let solved = solved_ms().await;
    assert!(solved.is_string(), "solved when asked: {solved}");

    let closed = TestApp::spawn(TestApp::config()).await;
    b.client
        .goto(&format!("{}/stamp", closed.url))
        .await
        .unwrap();
    assert!(
        b.text("main")
            .await
            .contains("Not open on this installation")
    );
    let form = b
        .client
        .execute(
            "return document.getElementById('stamp-form') === null",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(form, Value::Bool(true), "no form where stamping is closed");
    b.close().await;
}

/// Passkeys in a real browser, with Chromium's virtual authenticator (WebDriver's WebAuthn
/// extension) in place of Face ID: a member registers one with the enrollment token an
/// administrator gave, signs in to the dashboard with it, and creates a code on the new-code
/// page; the check page says a passkey signed it. When user verification fails, no code.
#[tokio::test]
async fn members_register_a_passkey_sign_in_and_create_a_code_in_a_browser() {
    passkeys_in_a_browser(false).await;
}

/// The same in a browser without WebAuthn's JSON helpers (`parse…OptionsFromJSON`,
/// `PublicKeyCredential.toJSON`, as in browsers before 2024): `passkey.js` converts by hand, and
/// the server takes what it builds.
#[tokio::test]
async fn passkeys_work_without_the_browsers_json_helpers() {
    passkeys_in_a_browser(true).await;
}

/// Take WebAuthn's JSON helpers away from the page, as an older browser lacks them.
async fn without_json_helpers(b: &Browser) {
    let gone = b
        .client
        .execute(
            "delete PublicKeyCredential.parseCreationOptionsFromJSON; \
             delete PublicKeyCredential.parseRequestOptionsFromJSON; \
             delete PublicKeyCredential.prototype.toJSON; \
             return PublicKeyCredential.parseCreationOptionsFromJSON === undefined \
               && PublicKeyCredential.parseRequestOptionsFromJSON === undefined \
               && PublicKeyCredential.prototype.toJSON === undefined",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(gone, Value::Bool(true), "the helpers could not be removed");
}

async fn passkeys_in_a_browser(legacy: bool) {
    // WebAuthn needs a domain: the service is told it lives at localhost, as a deployment's
    // public_url names its host.
    let listener = TestApp::listener().await;
    let site = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let mut config = TestApp::config();
    config.server.public_url = site.clone();
    let app = TestApp::spawn_on(config, listener, |_| {}).await;
    owner(&app).await;
    let token = app.enrollment_token("browser", "alice").await;
    let b = Browser::open(1280, 900).await;
    let authenticator = b.add_virtual_authenticator().await;

    b.client.goto(&format!("{site}/enroll")).await.unwrap();
    if legacy {
        without_json_helpers(&b).await;
    }
    b.find("#enrollment-token")
        .await
        .send_keys(&token)
        .await
        .unwrap();
    b.find("#enroll-form button").await.click().await.unwrap();
    b.wait_until("document.getElementById('enroll-status').textContent.includes('registered')")
        .await;
    let status = b.text("#enroll-status").await;
    assert!(
        status.starts_with("Passkey registered for alice"),
        "{status}"
    );
    b.assert_clean(&site).await;
    let held = b.virtual_credentials(&authenticator).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["rpId"], "localhost");
    assert_eq!(
        held[0]["isResidentCredential"], true,
        "a discoverable passkey"
    );

    // Sign in with it: no name typed, the passkey says whose account it is.
    b.client.goto(&format!("{site}/app")).await.unwrap();
    if legacy {
        without_json_helpers(&b).await;
    }
    b.find("#passkey-sign-in").await.click().await.unwrap();
    b.wait_until("document.getElementById('signed-in-as') !== null")
        .await;
    let who = b.text("#signed-in-as").await;
    assert!(who.contains("alice"), "{who}");
    b.assert_clean(&site).await;

    // A code for a message, signed by the passkey.
    let message = "Hi Ann, the new account number is in the letter, not in this mail.";
    let create = |message: &'static str| {
        let b = &b;
        async move {
            b.find("#new-code").await.click().await.unwrap();
            b.find("#code-message").await;
            if legacy {
                without_json_helpers(b).await;
            }
            b.find("#code-message")
                .await
                .send_keys(message)
                .await
                .unwrap();
            b.find("#code-recipient")
                .await
                .send_keys("ann@example.com")
                .await
                .unwrap();
            b.find("#code-form button").await.click().await.unwrap();
            b.wait_until(
                "!document.getElementById('code-result').hidden || \
                 document.getElementById('code-status').classList.contains('bad')",
            )
            .await;
        }
    };
    create(message).await;
    let status = b.text("#code-status").await;
    assert_eq!(status, "Code created.");
    let code = b.text("#code-value").await;
    assert!(
        b.text("#code-signed")
            .await
            .contains("Signed with your passkey")
    );
    b.assert_clean(&site).await;
    let h1 = check_message(&b, &app, &code, message, "ann@example.com").await;
    assert_eq!(h1, "Valid code");
    let verdict = b.text("#verdict").await;
    assert!(
        verdict.contains("passkey, the person verified"),
        "{verdict}"
    );

    // The face is not recognised: the authenticator refuses, and no code is made.
    b.set_user_verified(&authenticator, false).await;
    b.client.goto(&format!("{site}/app")).await.unwrap();
    create("Another message").await;
    let status = b.text("#code-status").await;
    assert!(status.starts_with("No code"), "{status}");
    assert!(
        b.find("#code-result")
            .await
            .attr("hidden")
            .await
            .unwrap()
            .is_some()
    );
    let issued: Vec<String> = app
        .db
        .audit_entries()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "code.issue")
        .map(|e| format!("{} {}", e.actor.split(':').next().unwrap(), e.outcome))
        .collect();
    assert_eq!(issued, ["member ok"], "one code, minted by the member");
    b.close().await;
}
