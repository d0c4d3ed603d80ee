//! A real browser for the page tests: Debian's Chromium, headless, driven through ChromeDriver
//! (scripts/chromedriver.sh) with fantoccini, plus what WebDriver itself does not offer and the
//! tests need: the browser's console log (CSP violations land there), colour-scheme emulation
//! and the list of every URL a page loaded.

use std::sync::OnceLock;
use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use crate::run_start_script;

/// The ChromeDriver URL and the browser binary.
struct Driver {
    url: String,
    chromium: String,
}

fn driver() -> &'static Driver {
    static DRIVER: OnceLock<Driver> = OnceLock::new();
    DRIVER.get_or_init(|| {
        let env = run_start_script("chromedriver.sh")
            .unwrap_or_else(|e| panic!("ChromeDriver did not start (run scripts/setup.sh): {e}"));
        Driver {
            url: env["PIXSEAL_TEST_WEBDRIVER"].clone(),
            chromium: env["PIXSEAL_TEST_CHROMIUM"].clone(),
        }
    })
}

/// A headless browser window of a given size; closed by [`Browser::close`].
pub struct Browser {
    pub client: Client,
    /// Where the disk cache lives (inspected by tests that must leave nothing there).
    pub profile: tempfile::TempDir,
}

/// One console entry: `SEVERE`, `WARNING`, `INFO`…, and its text.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub level: String,
    pub message: String,
}

/// ChromeDriver's endpoints beyond the W3C set: the console log, DevTools commands, and
/// WebAuthn's virtual authenticators (W3C WebAuthn §11: a path under the session, a body).
#[derive(Debug)]
enum Extension {
    Log,
    Cdp(&'static str, Value),
    WebAuthn(http::Method, String, Option<Value>),
}

impl WebDriverCompatibleCommand for Extension {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session.unwrap_or_default();
        match self {
            Extension::Log => base.join(&format!("session/{session}/se/log")),
            Extension::Cdp(..) => base.join(&format!("session/{session}/goog/cdp/execute")),
            Extension::WebAuthn(_, path, _) => {
                base.join(&format!("session/{session}/webauthn/{path}"))
            }
        }
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = match self {
            Extension::Log => json!({"type": "browser"}),
            Extension::Cdp(cmd, params) => json!({"cmd": cmd, "params": params}),
            Extension::WebAuthn(method, _, body) => {
                return (method.clone(), body.as_ref().map(Value::to_string));
            }
        };
        (http::Method::POST, Some(body.to_string()))
    }
}

impl Browser {
    /// A fresh browser (its own profile) with a `width`×`height` viewport (a phone's, touch
    /// and mobile layout, under 600 px).
    pub async fn open(width: u32, height: u32) -> Browser {
        let d = driver();
        let profile = tempfile::tempdir().expect("a browser profile directory");
        let args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-gpu".into(),
            "--no-first-run".into(),
            "--hide-scrollbars".into(),
            "--lang=en-US".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": d.chromium, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&d.url)
            .await
            .unwrap_or_else(|e| panic!("a Chromium session through {}: {e}", d.url));
        let b = Browser { client, profile };
        // A window has a minimum width; the viewport is set exactly, as a phone's would be.
        let params = json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600});
        b.client
            .issue_cmd(Extension::Cdp("Emulation.setDeviceMetricsOverride", params))
            .await
            .expect("viewport emulation");
        b
    }

    /// Pretend the system asks for a dark (or light) colour scheme.
    pub async fn prefer_dark(&self, dark: bool) {
        let scheme = if dark { "dark" } else { "light" };
        let params = json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]});
        self.client
            .issue_cmd(Extension::Cdp("Emulation.setEmulatedMedia", params))
            .await
            .expect("colour-scheme emulation");
    }

    /// A virtual authenticator for this browser, as a phone or laptop has built in: CTAP2,
    /// internal transport, discoverable credentials, user verification that succeeds (Face ID
    /// said yes) and presence given without a touch. Its id.
    pub async fn add_virtual_authenticator(&self) -> String {
        let options = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserConsenting": true,
            "isUserVerified": true,
        });
        let v = self
            .client
            .issue_cmd(Extension::WebAuthn(
                http::Method::POST,
                "authenticator".into(),
                Some(options),
            ))
            .await
            .expect("a virtual authenticator (WebDriver WebAuthn extension)");
        v.as_str().expect("an authenticator id").to_string()
    }

    /// Whether the virtual authenticator's user verification succeeds from now on.
    pub async fn set_user_verified(&self, authenticator: &str, verified: bool) {
        self.client
            .issue_cmd(Extension::WebAuthn(
                http::Method::POST,
                format!("authenticator/{authenticator}/uv"),
                Some(json!({"isUserVerified": verified})),
            ))
            .await
            .expect("setting user verification");
    }

    /// The credentials the virtual authenticator holds (`credentialId`, `rpId`,
    /// `isResidentCredential`, `signCount`…).
    pub async fn virtual_credentials(&self, authenticator: &str) -> Vec<Value> {
        let v = self
            .client
            .issue_cmd(Extension::WebAuthn(
                http::Method::GET,
                format!("authenticator/{authenticator}/credentials"),
                None,
            ))
            .await
            .expect("the authenticator's credentials");
        v.as_array().cloned().unwrap_or_default()
    }

    /// The console entries since the last call (ChromeDriver empties the log as it is read).
    pub async fn log(&self) -> Vec<LogEntry> {
        let v = self
            .client
            .issue_cmd(Extension::Log)
            .await
            .expect("the browser's console log");
        v.as_array()
            .into_iter()
            .flatten()
            .map(|e| LogEntry {
                level: e["level"].as_str().unwrap_or_default().to_string(),
                message: e["message"].as_str().unwrap_or_default().to_string(),
            })
            .collect()
    }

    /// Every URL the current page loaded (its own, its style sheets, scripts, pictures and
    /// fetches), from the Resource Timing API.
    pub async fn loaded_urls(&self) -> Vec<String> {
        let v = self
            .client
            .execute(
                "return [location.href, ...performance.getEntriesByType('resource').map(e => e.name)]",
                vec![],
            )
            .await
            .expect("resource timing");
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u.as_str().map(String::from))
            .collect()
    }

    /// Panic when the page loaded anything from another origin than `origin`, or the console
    /// holds an error (a CSP violation, a script error, a failed load).
    pub async fn assert_clean(&self, origin: &str) {
        for u in self.loaded_urls().await {
            assert!(
                u.starts_with(&format!("{origin}/")),
                "a request to another origin: {u}"
            );
        }
        // An error page's own status (a 404, a 415) is logged as a failed load of the page
        // itself: the tests check that status and its words; anything else is a fault.
        let page = self.client.current_url().await.expect("the page's URL");
        let own_status = format!("{page} - Failed to load resource");
        let errors: Vec<LogEntry> = self
            .log()
            .await
            .into_iter()
            .filter(|e| e.level == "SEVERE" || e.message.contains("Content Security Policy"))
            .filter(|e| !e.message.starts_with(&own_status))
            .collect();
        assert!(errors.is_empty(), "console errors: {errors:#?}");
    }

    /// The text of the first element matching `css`, once one exists (5 s at most).
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("element text")
    }

    /// The first element matching `css`, once one exists (5 s at most).
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(5))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
    }

    /// Wait until `script` (a JavaScript expression) is truthy, 10 s at most.
    pub async fn wait_until(&self, script: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let v = self
                .client
                .execute(&format!("return !!({script})"), vec![])
                .await
                .expect("a script");
            if v == Value::Bool(true) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still false after 10 s: {script}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Text on the page whose contrast with its background is under WCAG AA: 4.5:1, or 3:1
    /// for large text (24 px, or 18.66 px bold). Each entry names the element, its text, the
    /// two colours and the ratio. Backgrounds are the nearest opaque ones of the element and its
    /// ancestors (the page's own colours: no images behind text here).
    pub async fn contrast_failures(&self) -> Vec<String> {
        const SCRIPT: &str = r#"
            const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
            const lum = ([r, g, b]) => {
              const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
              return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
            };
            const background = (el) => {
              for (let e = el; e; e = e.parentElement) {
                const c = rgb(getComputedStyle(e).backgroundColor);
                if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
              }
              return rgb(getComputedStyle(document.documentElement).backgroundColor).slice(0, 3);
            };
            const out = [];
            const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
            const seen = new Set();
            for (let n = walker.nextNode(); n; n = walker.nextNode()) {
              const el = n.parentElement;
              if (!n.textContent.trim() || seen.has(el) || !el.checkVisibility()) continue;
              seen.add(el);
              const s = getComputedStyle(el);
              const fg = rgb(s.color).slice(0, 3), bg = background(el);
              const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
              const ratio = (a + 0.05) / (b + 0.05);
              const size = parseFloat(s.fontSize), bold = Number(s.fontWeight) >= 700;
              const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
              if (ratio < need) out.push(`${el.tagName.toLowerCase()}.${el.className} "${n.textContent.trim().slice(0, 40)}": ${s.color} on rgb(${bg}) = ${ratio.toFixed(2)} < ${need}`);
            }
            return out;
        "#;
        let v = self
            .client
            .execute(SCRIPT, vec![])
            .await
            .expect("the contrast check");
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(String::from))
            .collect()
    }

    /// A PNG of the whole page at the window's width (beyond the window's height).
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let metrics = self
            .client
            .issue_cmd(Extension::Cdp("Page.getLayoutMetrics", json!({})))
            .await
            .expect("the page's size");
        let size = &metrics["cssContentSize"];
        let clip =
            json!({"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1});
        let params = json!({"format": "png", "captureBeyondViewport": true, "clip": clip});
        let v = self
            .client
            .issue_cmd(Extension::Cdp("Page.captureScreenshot", params))
            .await
            .expect("a screenshot");
        base64::engine::general_purpose::STANDARD
            .decode(v["data"].as_str().expect("screenshot data"))
            .expect("base64 PNG")
    }

    /// End the session; the profile directory is handed back (what the browser left on disk).
    pub async fn close(self) -> tempfile::TempDir {
        let _ = self.client.close().await;
        self.profile
    }
}
