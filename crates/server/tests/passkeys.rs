//! Passkeys and minting with a member present, over real HTTP (in-process server) on SQLite
//! and on PostgreSQL, with a software authenticator independent of our code (passkey-rs): an
//! API key alone mints nothing; a member enrolled by an administrator registers a passkey;
//! each code needs a fresh assertion with user verification over its own data; a replayed
//! assertion, another origin, no user verification, a counter going backwards, an assertion
//! made for another message and a revoked passkey are each refused with their own code; the
//! code's passkey signature is checked again at verification and handed out so anyone can check
//! it offline (done here by hand with p256, not through our verifier).

use std::ops::Deref;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use pixseal_service::ServerConfig;
use pixseal_testkit::TestApp;
use pixseal_testkit::passkey::SoftPasskey;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// `[server].public_url` is 127.0.0.1 by default: passkeys are then made for `localhost`.
const ORIGIN: &str = "http://localhost:8080";
const RECIPIENT: &str = "Bob@Example.org";
/// An integrating site's origin, for the tests that configure one.
const PARTNER: &str = "http://partner.localhost:8080";

struct TestServer(TestApp);

impl Deref for TestServer {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.0
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Sqlite,
    Postgres,
}

async fn spawn(kind: Kind) -> TestServer {
    spawn_with(kind, |_| {}).await
}

async fn spawn_with(kind: Kind, adjust: impl FnOnce(&mut pixseal_service::Config)) -> TestServer {
    let mut config = TestApp::config();
    config.server = ServerConfig {
        rate_limit_per_key: 0,
        rate_limit_per_ip: 0,
        rate_limit_verify_per_ip: 0,
        ..ServerConfig::default()
    };
    assert!(config.codes.require_presence, "presence is the default");
    if let Kind::Postgres = kind {
        config.server.database_url = pixseal_testkit::fresh_postgres_db("passkeys").into();
    }
    adjust(&mut config);
    TestServer(TestApp::spawn(config).await)
}

impl TestServer {
    async fn enroll(&self, tenant: &str, member: &str) -> (SoftPasskey, String) {
        let token = self.enrollment_token(tenant, member).await;
        let (pk, _, view) = self.register_passkey(&token).await;
        (pk, view["id"].as_str().unwrap().to_string())
    }

    /// The presence challenge for a code bound to `message`.
    async fn presence(&self, key: &str, message: &str) -> Value {
        let (st, v) = self
            .call(
                "POST",
                "/v1/codes/presence",
                Some(key),
                json!({"message": message, "recipient": RECIPIENT, "ttl_days": 7}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        v
    }

    /// `POST /v1/codes` with `challenge` answered by `credential`, for `message`.
    async fn mint(
        &self,
        key: &str,
        message: &str,
        challenge: &Value,
        credential: &Value,
    ) -> (StatusCode, Value) {
        self.call(
            "POST",
            "/v1/codes",
            Some(key),
            json!({
                "message": message,
                "recipient": RECIPIENT,
                "presence": {
                    "id": challenge["presence_id"],
                    "code": challenge["code"],
                    "credential": credential,
                },
            }),
        )
        .await
    }
}

/// The authenticator answers `challenge` from `origin`, verifying the user or not.
async fn sign(pk: &mut SoftPasskey, challenge: &Value, origin: &str, uv: bool) -> Value {
    let opts = &challenge["public_key"];
    assert_eq!(opts["userVerification"], "required");
    pk.assert(
        origin,
        opts["rpId"].as_str().unwrap(),
        opts["challenge"].as_str().unwrap(),
        uv,
    )
    .await
    .unwrap()
}

fn refused(r: &(StatusCode, Value)) -> (StatusCode, &str) {
    (r.0, r.1["error"]["code"].as_str().unwrap_or("?"))
}

/// What the docs tell a third party to do with a verdict's `signature`, done by hand.
fn check_offline(sig: &Value, code: &str, message: &str, expires_at: &str) {
    let recipient_sha = hex::encode(Sha256::digest(RECIPIENT.trim().to_lowercase()));
    let code = code.replace('-', "");
    let text = format!(
        "pixseal-code-passkey-v1\ncode={code}\nmessage_sha256={}\nrecipient_sha256={recipient_sha}\nexpires={}\n",
        hex::encode(Sha256::digest(message)),
        unix(expires_at)
    );
    check_signed_text(sig, &text);
}

fn unix(at: &str) -> i64 {
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

/// The signature's assertion is a UV assertion on `ORIGIN` over SHA-256(`text`), by the
/// public key it names (p256 directly, not our verifier).
fn check_signed_text(sig: &Value, text: &str) {
    let want_challenge = B64URL.encode(Sha256::digest(text));
    let a = &sig["assertion"]["response"];
    let b = |k: &str| B64URL.decode(a[k].as_str().unwrap()).unwrap();
    let (auth, cdj, der) = (b("authenticatorData"), b("clientDataJSON"), b("signature"));
    let cd: Value = serde_json::from_slice(&cdj).unwrap();
    assert_eq!(cd["type"], "webauthn.get");
    assert_eq!(cd["challenge"], want_challenge.as_str());
    assert_eq!(cd["origin"], ORIGIN);
    assert_eq!(
        &auth[..32],
        &Sha256::digest(sig["rp_id"].as_str().unwrap())[..]
    );
    assert_eq!(auth[32] & 0x05, 0x05, "UP and UV set");
    let pk = sig["public_key"].as_str().unwrap();
    let point = B64URL
        .decode(pk.strip_prefix("p256:").expect("an ES256 key"))
        .unwrap();
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
    let s = p256::ecdsa::DerSignature::from_bytes(&der).unwrap();
    let mut signed = auth.clone();
    signed.extend_from_slice(&Sha256::digest(&cdj));
    use p256::ecdsa::signature::Verifier;
    vk.verify(&signed, &s)
        .expect("the passkey signed exactly this code");
}

async fn minting_needs_a_member_present(kind: Kind) {
    let s = spawn(kind).await;
    let key = s.key("acme", "us", &["codes"]).await;

    // An API key alone mints nothing; nor can it start without a passkey.
    let r = s
        .call(
            "POST",
            "/v1/codes",
            Some(&key),
            json!({"message": "m0", "recipient": RECIPIENT}),
        )
        .await;
    assert_eq!(
        refused(&r),
        (StatusCode::FORBIDDEN, "presence_required"),
        "{r:?}"
    );
    let r = s
        .call(
            "POST",
            "/v1/codes/presence",
            Some(&key),
            json!({"message": "m0", "recipient": RECIPIENT}),
        )
        .await;
    assert_eq!(refused(&r), (StatusCode::FORBIDDEN, "no_passkey"), "{r:?}");

    // An administrator enrolls Alice; she registers a passkey with the one-time token.
    let token = s.enrollment_token("acme", "alice").await;
    let r = s
        .call(
            "POST",
            "/v1/passkeys/registrations",
            None,
            json!({"enrollment_token": "x".repeat(43)}),
        )
        .await;
    assert_eq!(
        refused(&r),
        (StatusCode::FORBIDDEN, "enrollment_invalid"),
        "{r:?}"
    );
    let (mut pk, reg, view) = s.register_passkey(&token).await;
    assert_eq!(
        s.passkey_origin(),
        ORIGIN,
        "the default relying party of a 127.0.0.1 URL"
    );
    assert_eq!(view["algorithm"], "ES256");
    let passkey_id = view["id"].as_str().unwrap().to_string();
    // The same response again, and the token again: both spent.
    let r = s.call("POST", "/v1/passkeys", None, reg).await;
    assert_eq!(
        refused(&r),
        (StatusCode::FORBIDDEN, "registration_unknown"),
        "{r:?}"
    );
    let r = s
        .call(
            "POST",
            "/v1/passkeys/registrations",
            None,
            json!({"enrollment_token": token}),
        )
        .await;
    assert_eq!(
        refused(&r),
        (StatusCode::FORBIDDEN, "enrollment_invalid"),
        "{r:?}"
    );

    // One assertion with UV over this code's data mints exactly this code.
    let c1 = s.presence(&key, "pay invoice 1").await;
    let a1 = sign(&mut pk, &c1, ORIGIN, true).await;
    let r = s.mint(&key, "pay invoice 1", &c1, &a1).await;
    assert_eq!(r.0, StatusCode::CREATED, "{r:?}");
    assert_eq!(r.1["code"], c1["code"]);
    assert_eq!(r.1["device_signed"], true);
    // Replayed.
    let r = s.mint(&key, "pay invoice 1", &c1, &a1).await;
    assert_eq!(
        refused(&r),
        (StatusCode::FORBIDDEN, "presence_unknown"),
        "{r:?}"
    );

    // The verifier sees who signed and why; the signature checks offline.
    let (st, v) = s
        .call(
            "POST",
            "/v1/codes/verify",
            None,
            json!({"code": c1["code"], "message": "pay invoice 1", "recipient": RECIPIENT}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        (v["verdict"].as_str(), v["device_signed"].as_bool()),
        (Some("valid"), Some(true)),
        "{v}"
    );
    let sig = &v["signature"];
    assert_eq!(sig["kind"], "passkey");
    assert_eq!(sig["rp_id"], "localhost");
    assert_eq!(sig["key_id"], passkey_id.as_str());
    assert!(
        sig["checked"]
            .as_array()
            .unwrap()
            .contains(&json!("user_verified"))
    );
    check_offline(
        sig,
        c1["code"].as_str().unwrap(),
        "pay invoice 1",
        v["expires_at"].as_str().unwrap(),
    );

    // An assertion made for one message does not mint a code for another.
    let c2 = s.presence(&key, "pay invoice 2").await;
    let a2 = sign(&mut pk, &c2, ORIGIN, true).await;
    let r = s.mint(&key, "pay invoice 666", &c2, &a2).await;
    assert_eq!(
        refused(&r),
        (StatusCode::FORBIDDEN, "presence_mismatch"),
        "{r:?}"
    );
    // Signed on a look-alike origin (phishing).
    let c3 = s.presence(&key, "pay invoice 3").await;
    let a3 = sign(&mut pk, &c3, "http://evil.localhost:8080", true).await;
    let r = s.mint(&key, "pay invoice 3", &c3, &a3).await;
    assert_eq!(
        refused(&r),
        (StatusCode::FORBIDDEN, "presence_origin"),
        "{r:?}"
    );
    // No user verification (presence only).
    let c4 = s.presence(&key, "pay invoice 4").await;
    let a4 = sign(&mut pk, &c4, ORIGIN, false).await;
    let r = s.mint(&key, "pay invoice 4", &c4, &a4).await;
    assert_eq!(
        refused(&r),
        (StatusCode::FORBIDDEN, "presence_not_verified"),
        "{r:?}"
    );
    // The counter must move forward: an older assertion after a newer one is refused.
    let c5 = s.presence(&key, "pay invoice 5").await;
    let a5 = sign(&mut pk, &c5, ORIGIN, true).await;
    let c6 = s.presence(&key, "pay invoice 6").await;
    let a6 = sign(&mut pk, &c6, ORIGIN, true).await;
    let r = s.mint(&key, "pay invoice 6", &c6, &a6).await;
    assert_eq!(r.0, StatusCode::CREATED, "{r:?}");
    let r = s.mint(&key, "pay invoice 5", &c5, &a5).await;
    assert_eq!(
        refused(&r),
        (StatusCode::FORBIDDEN, "passkey_counter"),
        "{r:?}"
    );
    // A revoked passkey mints nothing more.
    let c7 = s.presence(&key, "pay invoice 7").await;
    let a7 = sign(&mut pk, &c7, ORIGIN, true).await;
    let (st, _) = s
        .call(
            "DELETE",
            &format!("/v1/passkeys/{passkey_id}"),
            Some(&key),
            Value::Null,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let r = s.mint(&key, "pay invoice 7", &c7, &a7).await;
    assert_eq!(
        refused(&r),
        (StatusCode::FORBIDDEN, "passkey_revoked"),
        "{r:?}"
    );
    let (_, members) = s.call("GET", "/v1/members", Some(&key), Value::Null).await;
    assert_eq!(members["presence_required"], true);
    assert_eq!(members["members"][0]["name"], "alice");
    assert!(
        members["members"][0]["passkeys"][0]["revoked_at"].is_string(),
        "{members}"
    );

    // Another account's key cannot use acme's presence challenges.
    let other = s.key("globex", "us", &["codes"]).await;
    let r = s
        .call(
            "POST",
            "/v1/codes/presence",
            Some(&other),
            json!({"message": "x", "recipient": RECIPIENT}),
        )
        .await;
    assert_eq!(refused(&r), (StatusCode::FORBIDDEN, "no_passkey"), "{r:?}");

    // The signature is checked again at every verification: an edited row does not verify.
    sqlx::query("UPDATE message_codes SET expires_ms = expires_ms + 5000 WHERE used_ms IS NULL")
        .execute(s.db.pool())
        .await
        .unwrap();
    let (_, v) = s
        .call(
            "POST",
            "/v1/codes/verify",
            None,
            json!({"code": c6["code"], "message": "pay invoice 6", "recipient": RECIPIENT}),
        )
        .await;
    assert_eq!(v["verdict"], "invalid_signature", "{v}");
}

/// `[codes].max_codes_per_member_hour` caps each member; another member of the same account
/// still mints; the audit log names the member for each registration.
async fn each_member_is_capped(kind: Kind) {
    let s = spawn_with(kind, |c| {
        c.codes.max_codes_per_member_hour = 2;
        c.codes.max_codes_per_hour = 0;
    })
    .await;
    let key = s.key("acme", "us", &["codes"]).await;
    let (mut alice, _) = s.enroll("acme", "alice").await;
    let (mut carol, _) = s.enroll("acme", "carol").await;
    for i in 0..3 {
        let msg = format!("alice {i}");
        let c = s.presence(&key, &msg).await;
        let a = sign(&mut alice, &c, ORIGIN, true).await;
        let r = s.mint(&key, &msg, &c, &a).await;
        if i < 2 {
            assert_eq!(r.0, StatusCode::CREATED, "{r:?}");
        } else {
            assert_eq!(
                refused(&r),
                (StatusCode::TOO_MANY_REQUESTS, "code_quota_exceeded"),
                "{r:?}"
            );
            assert!(
                r.1["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("this member"),
                "{r:?}"
            );
        }
    }
    let c = s.presence(&key, "carol 0").await;
    let a = sign(&mut carol, &c, ORIGIN, true).await;
    let r = s.mint(&key, "carol 0", &c, &a).await;
    assert_eq!(r.0, StatusCode::CREATED, "{r:?}");
    let registered =
        s.db.audit_entries()
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "passkey.register" && e.outcome == "ok")
            .filter(|e| e.actor.starts_with("member:"))
            .count();
    assert_eq!(registered, 2);
}

async fn live_call_sessions_need_a_member_present(kind: Kind) {
    let s = spawn(kind).await;
    let key = s.key("acme", "us", &["codes"]).await;
    let r = s
        .call("POST", "/v1/codes/live", Some(&key), json!({}))
        .await;
    assert_eq!(
        refused(&r),
        (StatusCode::FORBIDDEN, "presence_required"),
        "{r:?}"
    );
    let (mut alice, alice_key) = s.enroll("acme", "alice").await;
    let challenge = || async {
        let (st, c) = s
            .call("POST", "/v1/codes/live/presence", Some(&key), Value::Null)
            .await;
        assert_eq!(st, StatusCode::OK, "{c}");
        c
    };
    let start = |c: &Value, session: &Value, credential: Value| json!({"presence": {"id": c["presence_id"], "session_id": session, "credential": credential}});

    // The assertion vouches for one session: another id does not match what was signed.
    let c = challenge().await;
    let a = sign(&mut alice, &c, ORIGIN, true).await;
    let r = s
        .call(
            "POST",
            "/v1/codes/live",
            Some(&key),
            start(&c, &json!("ls_0000000000000"), a),
        )
        .await;
    assert_eq!(
        refused(&r),
        (StatusCode::FORBIDDEN, "presence_mismatch"),
        "{r:?}"
    );
    let c = challenge().await;
    let no_uv = sign(&mut alice, &c, ORIGIN, false).await;
    let r = s
        .call(
            "POST",
            "/v1/codes/live",
            Some(&key),
            start(&c, &c["session_id"], no_uv),
        )
        .await;
    assert_eq!(
        refused(&r),
        (StatusCode::FORBIDDEN, "presence_not_verified"),
        "{r:?}"
    );

    let c = challenge().await;
    let a = sign(&mut alice, &c, ORIGIN, true).await;
    let body = start(&c, &c["session_id"], a);
    let (st, live) = s
        .call("POST", "/v1/codes/live", Some(&key), body.clone())
        .await;
    assert_eq!(st, StatusCode::OK, "{live}");
    assert_eq!(live["session_id"], c["session_id"]);
    assert_eq!(live["session_expires_at"], c["session_expires_at"]);
    let r = s.call("POST", "/v1/codes/live", Some(&key), body).await;
    assert_eq!(
        refused(&r),
        (StatusCode::FORBIDDEN, "presence_unknown"),
        "a replay: {r:?}"
    );
    // The running session's current code needs no new gesture.
    let (st, now) = s
        .call(
            "POST",
            "/v1/codes/live",
            Some(&key),
            json!({"session_id": live["session_id"]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{now}");

    let (st, v) = s
        .call(
            "POST",
            "/v1/codes/live/verify",
            None,
            json!({"session_id": live["session_id"], "code": now["code"]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["verdict"], "valid", "{v}");
    assert_eq!(v["signature"]["kind"], "session_passkey", "{v}");
    assert_eq!(v["signature"]["key_id"], alice_key.as_str(), "{v}");
    // The codes are the server's: not device-signed, whatever signed the session's start.
    assert_eq!(v["device_signed"], false, "{v}");
    let text = format!(
        "pixseal-live-passkey-v1\nsession={}\nexpires={}\n",
        live["session_id"].as_str().unwrap(),
        unix(live["session_expires_at"].as_str().unwrap())
    );
    check_signed_text(&v["signature"], &text);

    // Checked again at every verification, before a try is spent: an edited session does
    // not verify.
    sqlx::query("UPDATE live_sessions SET expires_ms = expires_ms + 5000")
        .execute(s.db.pool())
        .await
        .unwrap();
    let (_, v) = s
        .call(
            "POST",
            "/v1/codes/live/verify",
            None,
            json!({"session_id": live["session_id"], "code": "0000"}),
        )
        .await;
    assert_eq!(v["verdict"], "invalid_signature", "{v}");

    // A code's presence cannot start a session; presence does not go with a running one.
    let (_, m) = s
        .call(
            "POST",
            "/v1/codes/presence",
            Some(&key),
            json!({"message": "m", "recipient": RECIPIENT}),
        )
        .await;
    let a = sign(&mut alice, &m, ORIGIN, true).await;
    let r = s
        .call(
            "POST",
            "/v1/codes/live",
            Some(&key),
            start(&m, &json!("ls_0000000000000"), a),
        )
        .await;
    assert_eq!(
        refused(&r),
        (StatusCode::FORBIDDEN, "presence_unknown"),
        "{r:?}"
    );
    let c = challenge().await;
    let a = sign(&mut alice, &c, ORIGIN, true).await;
    let mut both = start(&c, &c["session_id"], a);
    both["session_id"] = live["session_id"].clone();
    let r = s.call("POST", "/v1/codes/live", Some(&key), both).await;
    assert_eq!(r.0, StatusCode::BAD_REQUEST, "{r:?}");

    // Refused starts are audited with their code, as started ones are with their member.
    let starts: Vec<String> =
        s.db.audit_entries()
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "code.live.start")
            .map(|e| format!("{} {}", e.outcome, e.detail.split('=').next().unwrap()))
            .collect();
    let want = [
        "refused presence_required",
        "refused presence_mismatch",
        "refused presence_not_verified",
        "ok presence member",
        "refused presence_unknown",
        "refused presence_unknown",
    ];
    assert_eq!(starts, want, "{starts:#?}");
}

#[tokio::test]
async fn live_call_sessions_need_a_member_present_on_sqlite() {
    live_call_sessions_need_a_member_present(Kind::Sqlite).await;
}

#[tokio::test]
async fn live_call_sessions_need_a_member_present_on_postgres() {
    live_call_sessions_need_a_member_present(Kind::Postgres).await;
}

/// `method path` from the dashboard's own pages: the session cookie, the CSRF token when
/// given, and `Sec-Fetch-Site: same-origin` as a browser sends it.
async fn page_call(
    s: &TestApp,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    csrf: Option<&str>,
    body: Value,
) -> (StatusCode, Option<String>, String) {
    let mut r = s
        .client
        .request(method.parse().unwrap(), format!("{}{path}", s.url))
        .header("sec-fetch-site", "same-origin");
    if let Some(c) = cookie {
        r = r.header("cookie", format!("pixseal_session={c}"));
    }
    if let Some(t) = csrf {
        r = r.header("x-csrf-token", t);
    }
    if !body.is_null() {
        r = r.json(&body);
    } else if method == "POST" {
        r = r.json(&json!({}));
    }
    let r = r.send().await.unwrap();
    let st = r.status();
    let set = r
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_string());
    let session = set.and_then(|v| {
        v.strip_prefix("pixseal_session=")
            .and_then(|v| v.split(';').next())
            .map(str::to_string)
    });
    (st, session, r.text().await.unwrap())
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// The sign-in page's answer to an assertion: status, session cookie, body.
async fn try_sign_in(s: &TestApp, body: Value) -> (StatusCode, Option<String>, String) {
    page_call(s, "POST", "/app/sign-in/passkey", None, None, body).await
}

/// A sign-in challenge from the dashboard's page.
async fn sign_in_challenge(s: &TestApp) -> Value {
    let (st, _, body) = page_call(
        s,
        "POST",
        "/app/sign-in/passkey/options",
        None,
        None,
        Value::Null,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let v = json_of(&body);
    let o = &v["public_key"];
    assert_eq!(o["userVerification"], "required");
    assert_eq!(
        o["allowCredentials"],
        json!([]),
        "any discoverable passkey answers"
    );
    v
}

async fn members_sign_in_with_a_passkey_and_mint_from_the_dashboard(kind: Kind) {
    // An integrating site trusted to mint codes (its page asks the member's passkey) is not
    // trusted to open dashboard sessions.
    let s = spawn_with(kind, |c| {
        c.codes.passkey_origins = vec![ORIGIN.into(), PARTNER.into()];
    })
    .await;
    let admin = s.key("acme", "us", &["codes"]).await;
    let (mut alice, alice_key) = s.enroll("acme", "alice").await;
    let (mut carol, _) = s.enroll("acme", "carol").await;
    let finish = |c: &Value, credential: Value| json!({"sign_in_id": c["sign_in_id"], "credential": credential});

    // Refusals first, each with its own code; none of them opens a session.
    let c = sign_in_challenge(&s).await;
    let no_uv = sign(&mut alice, &c, ORIGIN, false).await;
    let r = try_sign_in(&s, finish(&c, no_uv)).await;
    assert_eq!(
        (r.0, json_of(&r.2)["error"]["code"].clone()),
        (StatusCode::FORBIDDEN, json!("presence_not_verified")),
        "{r:?}"
    );
    assert!(r.1.is_none());
    let c = sign_in_challenge(&s).await;
    let elsewhere = sign(&mut alice, &c, "http://evil.localhost:8080", true).await;
    let r = try_sign_in(&s, finish(&c, elsewhere)).await;
    assert_eq!(json_of(&r.2)["error"]["code"], "presence_origin", "{r:?}");
    let c = sign_in_challenge(&s).await;
    let partner = sign(&mut alice, &c, PARTNER, true).await;
    let r = try_sign_in(&s, finish(&c, partner)).await;
    assert_eq!(json_of(&r.2)["error"]["code"], "presence_origin", "{r:?}");
    // Another site's page cannot sign a visitor in, nor can a form (not JSON).
    let c = sign_in_challenge(&s).await;
    let good = sign(&mut alice, &c, ORIGIN, true).await;
    let cross = s
        .client
        .post(format!("{}/app/sign-in/passkey", s.url))
        .header("sec-fetch-site", "cross-site")
        .json(&finish(&c, good.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    let form = s
        .client
        .post(format!("{}/app/sign-in/passkey", s.url))
        .header("content-type", "text/plain")
        .body(finish(&c, good.clone()).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::FORBIDDEN);

    // Alice signs in: a member's session, in an HttpOnly cookie.
    let r = try_sign_in(&s, finish(&c, good.clone())).await;
    assert_eq!(r.0, StatusCode::OK, "{r:?}");
    assert_eq!(json_of(&r.2)["to"], "/app");
    let session = r.1.expect("a session cookie");
    assert!(session.starts_with("pxm_"), "{session}");
    // The same assertion again: its challenge was taken.
    let r = try_sign_in(&s, finish(&c, good)).await;
    assert_eq!(json_of(&r.2)["error"]["code"], "sign_in_unknown", "{r:?}");

    let (st, _, home) = page_call(&s, "GET", "/app", Some(&session), None, Value::Null).await;
    assert_eq!(st, StatusCode::OK);
    // A member's session mints codes; the account's photos are for its keys.
    assert!(!home.contains(r#"id="gallery""#), "{home}");
    assert!(
        home.contains("Signed in with the passkey of <strong>alice</strong>"),
        "{home}"
    );
    assert!(home.contains(r#"href="/app/codes""#));
    let (st, _, form) = page_call(&s, "GET", "/app/codes", Some(&session), None, Value::Null).await;
    assert_eq!(st, StatusCode::OK);
    let csrf = form
        .split("data-csrf=\"")
        .nth(1)
        .and_then(|v| v.split('"').next())
        .expect("the page's CSRF token")
        .to_string();

    // The new-code page's calls: alice's passkeys only, and only from this site's page.
    let target = json!({"message": "Meet at 10", "recipient": RECIPIENT, "ttl_days": 7});
    let r = page_call(
        &s,
        "POST",
        "/app/codes/presence",
        Some(&session),
        None,
        target.clone(),
    )
    .await;
    assert_eq!(json_of(&r.2)["error"]["code"], "csrf", "{r:?}");
    let app: &TestApp = &s;
    let presence = || {
        let (session, csrf, target) = (session.clone(), csrf.clone(), target.clone());
        async move {
            let r = page_call(
                app,
                "POST",
                "/app/codes/presence",
                Some(&session),
                Some(&csrf),
                target,
            )
            .await;
            assert_eq!(r.0, StatusCode::OK, "{r:?}");
            json_of(&r.2)
        }
    };
    let c = presence().await;
    let allowed: Vec<&str> = c["public_key"]["allowCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(allowed, [alice_key.as_str()]);
    let mint = |c: &Value, credential: Value| {
        json!({"message": "Meet at 10", "recipient": RECIPIENT,
               "presence": {"id": c["presence_id"], "code": c["code"], "credential": credential}})
    };
    // Carol's passkey cannot sign alice's code, even in the same account.
    let by_carol = sign(&mut carol, &c, ORIGIN, true).await;
    let r = page_call(
        &s,
        "POST",
        "/app/codes",
        Some(&session),
        Some(&csrf),
        mint(&c, by_carol),
    )
    .await;
    assert_eq!(json_of(&r.2)["error"]["code"], "passkey_unknown", "{r:?}");
    // Not from another site, even with the token; and never without the passkey, even where
    // the account lets its API keys mint without one.
    let cross = s
        .client
        .post(format!("{}/app/codes/presence", s.url))
        .header("cookie", format!("pixseal_session={session}"))
        .header("x-csrf-token", &csrf)
        .header("sec-fetch-site", "cross-site")
        .json(&target)
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    let acme = s.db.tenant_by_name("acme").await.unwrap();
    s.state
        .services
        .set_presence(
            &acme,
            Some(pixseal_store::Presence::Optional),
            &pixseal_service::Actor::Cli,
        )
        .await
        .unwrap();
    let bare = json!({"message": "Meet at 10", "recipient": RECIPIENT});
    let r = page_call(
        &s,
        "POST",
        "/app/codes",
        Some(&session),
        Some(&csrf),
        bare.clone(),
    )
    .await;
    assert_eq!(json_of(&r.2)["error"]["code"], "presence_required", "{r:?}");
    let (st, v) = s.call("POST", "/v1/codes", Some(&admin), bare).await;
    assert_eq!(st, StatusCode::CREATED, "the account's key may: {v}");
    let c = presence().await;
    let by_alice = sign(&mut alice, &c, ORIGIN, true).await;
    let r = page_call(
        &s,
        "POST",
        "/app/codes",
        Some(&session),
        Some(&csrf),
        mint(&c, by_alice),
    )
    .await;
    assert_eq!(r.0, StatusCode::CREATED, "{r:?}");
    let issued = json_of(&r.2);
    assert_eq!(issued["code"], c["code"]);
    assert_eq!(issued["device_signed"], true);
    let (st, v) = s
        .call(
            "POST",
            "/v1/codes/verify",
            None,
            json!({"code": c["code"], "message": "Meet at 10", "recipient": RECIPIENT}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["signature"]["kind"], "passkey", "{v}");

    // Nor does it reach the photos or the administration.
    let up = s
        .client
        .post(format!("{}/app/artifacts", s.url))
        .header("cookie", format!("pixseal_session={session}"))
        .header("x-csrf-token", &csrf)
        .header("sec-fetch-site", "same-origin")
        .body(vec![0u8; 16])
        .send()
        .await
        .unwrap();
    assert_eq!(up.status(), StatusCode::FORBIDDEN);
    // Revoking the passkey ends the session it opened.
    let (st, v) = s
        .call(
            "DELETE",
            &format!("/v1/passkeys/{alice_key}"),
            Some(&admin),
            Value::Null,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, _, home) = page_call(&s, "GET", "/app", Some(&session), None, Value::Null).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        home.contains("Sign in with a passkey"),
        "the sign-in page again"
    );
    let r = page_call(
        &s,
        "POST",
        "/app/codes/presence",
        Some(&session),
        Some(&csrf),
        target.clone(),
    )
    .await;
    assert_eq!(r.0, StatusCode::UNAUTHORIZED, "{r:?}");
    // And a revoked passkey signs in no more.
    let c = sign_in_challenge(&s).await;
    let again = sign(&mut alice, &c, ORIGIN, true).await;
    let r = try_sign_in(&s, finish(&c, again)).await;
    assert_eq!(json_of(&r.2)["error"]["code"], "passkey_revoked", "{r:?}");

    let audit = s.db.audit_entries().await.unwrap();
    let opened: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "session.create")
        .map(|e| {
            let who = e.actor.split(':').next().unwrap();
            format!(
                "{who} {} {}",
                e.outcome,
                e.detail.split('=').next().unwrap()
            )
        })
        .collect();
    let want = [
        "member refused presence_not_verified",
        "member refused presence_origin",
        "member refused presence_origin",
        "member ok passkey",
        "anonymous refused sign_in_unknown",
        "member refused passkey_revoked",
    ];
    assert_eq!(opened, want, "{opened:#?}");
}

#[tokio::test]
async fn members_sign_in_with_a_passkey_and_mint_from_the_dashboard_on_sqlite() {
    members_sign_in_with_a_passkey_and_mint_from_the_dashboard(Kind::Sqlite).await;
}

#[tokio::test]
async fn members_sign_in_with_a_passkey_and_mint_from_the_dashboard_on_postgres() {
    members_sign_in_with_a_passkey_and_mint_from_the_dashboard(Kind::Postgres).await;
}

/// A reached account cap refuses the presence challenge itself: no member's gesture is asked
/// for a code that could not be minted.
async fn a_reached_cap_asks_for_no_gesture(kind: Kind) {
    let s = spawn_with(kind, |c| c.codes.max_codes_per_hour = 1).await;
    let key = s.key("acme", "us", &["codes"]).await;
    let (mut alice, _) = s.enroll("acme", "alice").await;
    let c = s.presence(&key, "first").await;
    let a = sign(&mut alice, &c, ORIGIN, true).await;
    let r = s.mint(&key, "first", &c, &a).await;
    assert_eq!(r.0, StatusCode::CREATED, "{r:?}");
    let r = s
        .call(
            "POST",
            "/v1/codes/presence",
            Some(&key),
            json!({"message": "second", "recipient": RECIPIENT}),
        )
        .await;
    assert_eq!(
        refused(&r),
        (StatusCode::TOO_MANY_REQUESTS, "code_quota_exceeded"),
        "{r:?}"
    );
    assert!(
        r.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("this account")
    );
}

#[tokio::test]
async fn a_reached_cap_asks_for_no_gesture_on_sqlite() {
    a_reached_cap_asks_for_no_gesture(Kind::Sqlite).await;
}

#[tokio::test]
async fn a_reached_cap_asks_for_no_gesture_on_postgres() {
    a_reached_cap_asks_for_no_gesture(Kind::Postgres).await;
}

#[tokio::test]
async fn each_member_is_capped_on_sqlite() {
    each_member_is_capped(Kind::Sqlite).await;
}

#[tokio::test]
async fn each_member_is_capped_on_postgres() {
    each_member_is_capped(Kind::Postgres).await;
}

#[tokio::test]
async fn minting_needs_a_member_present_on_sqlite() {
    minting_needs_a_member_present(Kind::Sqlite).await;
}

#[tokio::test]
async fn minting_needs_a_member_present_on_postgres() {
    minting_needs_a_member_present(Kind::Postgres).await;
}
