//! Verification codes end to end over real HTTP (in-process server, random port), on SQLite
//! and on PostgreSQL (fresh database): one-time use under 100 concurrent verifies, every
//! verdict, expiry on a moved clock, the live-code failure cap under brute force, revoke-all,
//! the level ladder (never raised by the account), level-4 device signatures, the verify rate
//! limit, and a scan of every table for anything in clear.

use std::ops::Deref;

use pixseal_codes::{DeviceKey, MessageCode, SignedCode, live, message_sha256, recipient_sha256};
use pixseal_service::{Actor, ServerConfig};
use pixseal_store::DbKind;
use pixseal_testkit::TestApp;
use reqwest::StatusCode;
use serde_json::{Value, json};

const DAY: i64 = 86_400_000;
const BODY: &str = "Hi Bob, please wire the deposit to IBAN PXBODY-CANARY-7731 today. — Alice";
const RECIPIENT: &str = "Bob.Recipient-Canary@Example.org";

/// The service in process, with this file's request helpers.
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

fn unlimited() -> ServerConfig {
    ServerConfig {
        rate_limit_per_key: 0,
        rate_limit_per_ip: 0,
        rate_limit_verify_per_ip: 0,
        ..ServerConfig::default()
    }
}

async fn spawn(kind: Kind, server: ServerConfig) -> TestServer {
    let mut config = TestApp::config();
    config.server = server;
    // These tests exercise the codes themselves; minting with a member present (the default)
    // has its own tests in passkeys.rs.
    config.codes.require_presence = false;
    if let Kind::Postgres = kind {
        config.server.database_url = pixseal_testkit::fresh_postgres_db("codes").into();
    }
    TestServer(TestApp::spawn(config).await)
}

impl TestServer {
    async fn issue(&self, key: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", "/v1/codes", Some(key), body).await
    }

    async fn verify(&self, code: &str, message: &str, recipient: &str) -> Value {
        let (st, v) = self
            .call(
                "POST",
                "/v1/codes/verify",
                None,
                json!({"code": code, "message": message, "recipient": recipient}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        v
    }

    async fn live(&self, key: &str, session: Option<&str>) -> Value {
        let body = match session {
            Some(s) => json!({"session_id": s}),
            None => Value::Null,
        };
        let (st, v) = self.call("POST", "/v1/codes/live", Some(key), body).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        v
    }

    async fn live_verify(&self, session: &str, code: &str) -> String {
        let (st, v) = self
            .call(
                "POST",
                "/v1/codes/live/verify",
                None,
                json!({"session_id": session, "code": code}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        v["verdict"].as_str().unwrap().to_string()
    }

    /// Move the clock to one second into a fresh live-code window.
    fn to_window_start(&self) {
        let now = self.state.clock.now_ms();
        self.state
            .clock
            .advance(live::WINDOW_MS - now.rem_euclid(live::WINDOW_MS) + 1000);
    }

    async fn tenant(&self, name: &str) -> pixseal_store::Tenant {
        self.db.tenant_by_name(name).await.unwrap()
    }

    /// Every table's rows as text (PostgreSQL), or the database files' bytes (SQLite, with
    /// the WAL: free pages and not-yet-checkpointed writes are scanned too).
    async fn all_stored_text(&self) -> Vec<u8> {
        match self.db.kind() {
            DbKind::Sqlite => {
                let mut out = Vec::new();
                for entry in std::fs::read_dir(self.data.path()).unwrap() {
                    let p = entry.unwrap().path();
                    if p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("pixseal.db")
                    {
                        out.extend(std::fs::read(&p).unwrap());
                    }
                }
                assert!(out.len() > 4096, "the database files were found");
                out
            }
            DbKind::Postgres => {
                use sqlx::Row;
                let tables = sqlx::query(
                    "SELECT table_name::text AS t FROM information_schema.tables WHERE table_schema = 'public'",
                )
                .fetch_all(self.db.pool())
                .await
                .unwrap();
                let mut out = Vec::new();
                let mut names = Vec::new();
                for t in tables {
                    let name: String = t.try_get("t").unwrap();
                    let q = format!("SELECT row_to_json(x)::text AS j FROM \"{name}\" x");
                    // Table names come from the catalogue, quoted.
                    for r in sqlx::query(sqlx::AssertSqlSafe(q))
                        .fetch_all(self.db.pool())
                        .await
                        .unwrap()
                    {
                        let j: String = r.try_get("j").unwrap();
                        out.extend(j.into_bytes());
                        out.push(b'\n');
                    }
                    names.push(name);
                }
                for must in [
                    "message_codes",
                    "live_sessions",
                    "code_accounts",
                    "audit_log",
                    "code_level_events",
                ] {
                    assert!(names.iter().any(|n| n == must), "{must} scanned");
                }
                out
            }
        }
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    hay.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// Message codes: issue, every verdict, expiry on the moved clock, scopes; then nothing of the
/// message, recipient, codes or evidence is stored in clear anywhere.
async fn message_codes(s: &TestServer) {
    let key = s.key("acme", "us", &["codes"]).await;
    let (st, a) = s
        .issue(&key, json!({"message": BODY, "recipient": RECIPIENT}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{a}");
    let code = a["code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 16);
    assert!(code.parse::<MessageCode>().is_ok());
    assert_eq!(a["region"], "us");
    assert_eq!(a["device_signed"], false);
    // Default validity: 30 days.
    let created = time::OffsetDateTime::parse(
        a["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let expires = time::OffsetDateTime::parse(
        a["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!((expires - created).whole_days(), 30);

    // Unknown: a well-formed code never issued. A typo: 400 invalid_code before any lookup.
    let never = MessageCode::from_value(12345).to_string();
    assert_eq!(
        s.verify(&never, BODY, RECIPIENT).await["verdict"],
        "unknown"
    );
    assert!(
        s.verify(&never, BODY, RECIPIENT)
            .await
            .get("account")
            .is_none()
    );
    let mut typo = code.clone().into_bytes();
    typo[0] = if typo[0] == b'A' { b'B' } else { b'A' };
    let (st, e) = s
        .call("POST", "/v1/codes/verify", None, json!({"code": String::from_utf8(typo).unwrap(), "message": BODY, "recipient": RECIPIENT}))
        .await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_code"))
    );

    // Mismatch: another message, another recipient. Neither consumes the code.
    let v = s.verify(&code, &format!("{BODY}!"), RECIPIENT).await;
    assert_eq!(v["verdict"], "mismatch");
    assert_eq!(v["account"]["display_name"], "acme");
    assert_eq!(
        s.verify(&code, BODY, "eve@example.org").await["verdict"],
        "mismatch"
    );

    // Valid once — the recipient typed differently (case, spaces, lowercase code) is the same
    // recipient, and the message hash stands for the message.
    let v = s
        .call("POST", "/v1/codes/verify", None, json!({"code": code.to_lowercase().replace('-', " "), "message_sha256": message_sha256(BODY.as_bytes()).to_uppercase(), "recipient": format!("  {}", RECIPIENT.to_uppercase())}))
        .await
        .1;
    assert_eq!(v["verdict"], "valid", "{v}");
    assert_eq!(v["account"]["level"], 0);
    assert_eq!(v["account"]["level_name"], "registered");
    // Used.
    assert_eq!(s.verify(&code, BODY, RECIPIENT).await["verdict"], "used");
    // A changed message is reported even on a used code.
    assert_eq!(
        s.verify(&code, "other", RECIPIENT).await["verdict"],
        "mismatch"
    );

    // Expired, on the service's clock: ttl_days 1 → valid just before, expired at the instant.
    let (_, one) = s
        .issue(
            &key,
            json!({"message": BODY, "recipient": RECIPIENT, "ttl_days": 1}),
        )
        .await;
    let (_, full) = s
        .issue(
            &key,
            json!({"message_sha256": message_sha256(BODY.as_bytes()), "recipient": RECIPIENT}),
        )
        .await;
    let (_, late) = s
        .issue(&key, json!({"message": BODY, "recipient": RECIPIENT}))
        .await;
    s.state.clock.advance(DAY + 1000);
    assert_eq!(
        s.verify(one["code"].as_str().unwrap(), BODY, RECIPIENT)
            .await["verdict"],
        "expired"
    );
    assert_eq!(
        s.verify(full["code"].as_str().unwrap(), BODY, RECIPIENT)
            .await["verdict"],
        "valid"
    );
    s.state.clock.advance(29 * DAY);
    assert_eq!(
        s.verify(late["code"].as_str().unwrap(), BODY, RECIPIENT)
            .await["verdict"],
        "expired"
    );
    // More than the configured validity is refused; so is a malformed request.
    for bad in [
        json!({"message": BODY, "recipient": RECIPIENT, "ttl_days": 31}),
        json!({"message": BODY, "message_sha256": message_sha256(b"x"), "recipient": RECIPIENT}),
        json!({"recipient": RECIPIENT}),
        json!({"message_sha256": "abc", "recipient": RECIPIENT}),
        json!({"message": BODY, "recipient": " "}),
        json!({"message": BODY, "recipient": RECIPIENT, "signature": "AAAA"}),
    ] {
        let (st, e) = s.issue(&key, bad.clone()).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad} → {e}");
    }

    // Revoked: revoke-all, then verify (the right message and recipient).
    let (_, r1) = s
        .issue(&key, json!({"message": BODY, "recipient": RECIPIENT}))
        .await;
    let (st, rv) = s.call("DELETE", "/v1/codes", Some(&key), Value::Null).await;
    assert_eq!(st, StatusCode::OK);
    assert!(rv["revoked_message_codes"].as_u64().unwrap() >= 1);
    assert_eq!(
        s.verify(r1["code"].as_str().unwrap(), BODY, RECIPIENT)
            .await["verdict"],
        "revoked"
    );

    // Scopes: no key 401, a key without `codes` 403; verification needs no key.
    assert_eq!(
        s.issue("pxk_nope", json!({"message": BODY, "recipient": RECIPIENT}))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let other = s.key("acme", "us", &["artifacts:read"]).await;
    assert_eq!(
        s.issue(&other, json!({"message": BODY, "recipient": RECIPIENT}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.call("DELETE", "/v1/codes", Some(&other), Value::Null)
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    // Every issue, verify and revoke is in the audit log, and the chain is intact.
    let entries = s.db.audit_entries().await.unwrap();
    let count = |a: &str| entries.iter().filter(|e| e.action == a).count();
    assert!(count("code.issue") >= 5 + 6, "issues and refusals audited");
    assert!(count("code.verify") >= 10);
    assert_eq!(count("code.revoke_all"), 1);
    assert_eq!(s.db.audit_verify().await.unwrap().1, None);

    // A live session and a level change with evidence, then scan everything that is stored.
    let session = s.live(&key, None).await;
    let lcode = session["code"].as_str().unwrap().to_string();
    let t = s.tenant("acme").await;
    s.state
        .set_code_level(
            &t,
            1,
            "liveness check by PXEVIDENCE-CANARY",
            None,
            &Actor::Cli,
        )
        .await
        .unwrap();
    let stored = s.all_stored_text().await;
    let canon = code.replace('-', "");
    for needle in [
        "PXBODY-CANARY",
        BODY,
        "Recipient-Canary",
        &RECIPIENT.to_lowercase(),
        &code,
        &canon,
        one["code"].as_str().unwrap(),
        &one["code"].as_str().unwrap().replace('-', ""),
        &r1["code"].as_str().unwrap().replace('-', ""),
        "PXEVIDENCE-CANARY",
        &recipient_sha256(RECIPIENT),
    ] {
        assert!(
            !contains(&stored, needle),
            "the database holds {needle:?} in clear"
        );
    }
    // The scan does see what is meant to be stored: the message's SHA-256, the session id.
    assert!(contains(&stored, &message_sha256(BODY.as_bytes())));
    assert!(contains(&stored, session["session_id"].as_str().unwrap()));
    assert_eq!(lcode.len(), 4);
}

#[tokio::test]
async fn message_codes_on_sqlite() {
    message_codes(&spawn(Kind::Sqlite, unlimited()).await).await;
}

#[tokio::test]
async fn message_codes_on_postgres() {
    message_codes(&spawn(Kind::Postgres, unlimited()).await).await;
}

/// 100 concurrent verifies of one code: exactly one `valid`, 99 `used`.
async fn one_time(s: &TestServer) {
    let key = s.key("race", "us", &["codes"]).await;
    for round in 0..2 {
        let (st, a) = s
            .issue(&key, json!({"message": BODY, "recipient": RECIPIENT}))
            .await;
        assert_eq!(st, StatusCode::CREATED);
        let code = a["code"].as_str().unwrap().to_string();
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (c, url, code) = (s.client.clone(), s.url.clone(), code.clone());
                tokio::spawn(async move {
                    let r = c
                        .post(format!("{url}/v1/codes/verify"))
                        .json(&json!({"code": code, "message": BODY, "recipient": RECIPIENT}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), StatusCode::OK);
                    r.json::<Value>().await.unwrap()["verdict"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
            })
            .collect();
        let mut verdicts = Vec::new();
        for t in tasks {
            verdicts.push(t.await.unwrap());
        }
        let valid = verdicts.iter().filter(|v| *v == "valid").count();
        let used = verdicts.iter().filter(|v| *v == "used").count();
        assert_eq!((valid, used), (1, 99), "round {round}: {verdicts:?}");
    }
}

/// The one-time claim and its audit entry are one transaction: when the entry cannot be
/// written, the verification fails and the code is still unused (not consumed unrecorded);
/// once the log accepts entries again the code verifies, with exactly one `code.verify` entry.
async fn claim_and_audit_together(s: &TestServer) {
    let key = s.key("audited", "us", &["codes"]).await;
    let (st, a) = s
        .issue(&key, json!({"message": BODY, "recipient": RECIPIENT}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{a}");
    let code = a["code"].as_str().unwrap().to_string();
    // The next audit sequence number is taken by a stray row: every append fails.
    let (seq, _) = s.db.audit_head().await.unwrap();
    let block = |sql: &'static str| sqlx::query(sql).bind(seq + 1).execute(s.db.pool());
    block(
        "INSERT INTO audit_log (seq, at, actor, action, object, outcome, detail, prev_hash, hash) \
         VALUES ($1, 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x')",
    )
    .await
    .unwrap();
    let (st, v) = s
        .call(
            "POST",
            "/v1/codes/verify",
            None,
            json!({"code": code, "message": BODY, "recipient": RECIPIENT}),
        )
        .await;
    assert!(st.is_server_error(), "{st} {v}");
    let verified = |e: &pixseal_store::AuditEntry| e.action == "code.verify" && e.outcome == "ok";
    assert!(!s.db.audit_entries().await.unwrap().iter().any(verified));
    block("DELETE FROM audit_log WHERE seq = $1").await.unwrap();
    let v = s.verify(&code, BODY, RECIPIENT).await;
    assert_eq!(v["verdict"], "valid", "the code was not used up: {v}");
    let entries = s.db.audit_entries().await.unwrap();
    assert_eq!(entries.iter().filter(|e| verified(e)).count(), 1);
    let v = s.verify(&code, BODY, RECIPIENT).await;
    assert_eq!(v["verdict"], "used", "{v}");
}

#[tokio::test]
async fn claim_and_audit_together_on_sqlite() {
    claim_and_audit_together(&spawn(Kind::Sqlite, unlimited()).await).await;
}

#[tokio::test]
async fn claim_and_audit_together_on_postgres() {
    claim_and_audit_together(&spawn(Kind::Postgres, unlimited()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_time_under_100_concurrent_verifies_on_sqlite() {
    one_time(&spawn(Kind::Sqlite, unlimited()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_time_under_100_concurrent_verifies_on_postgres() {
    one_time(&spawn(Kind::Postgres, unlimited()).await).await;
}

/// A wrong-code run against a live session: 5 tries, then locked — the right code included —
/// until the next window; the next lock lasts twice as long; concurrent guessing gets no more
/// than the cap either.
async fn live_brute_force(s: &TestServer) {
    let key = s.key("caller", "us", &["codes"]).await;
    s.to_window_start();
    let sess = s.live(&key, None).await;
    let sid = sess["session_id"].as_str().unwrap().to_string();
    assert!(sid.starts_with("ls_"));
    let right = sess["code"].as_str().unwrap().to_string();
    assert_eq!(
        s.live(&key, Some(&sid)).await["code"],
        right.as_str(),
        "stable within the window"
    );
    let guesses: Vec<String> = (0..10_000)
        .map(|i| format!("{i:04}"))
        .filter(|g| *g != right)
        .take(200)
        .collect();
    let mut verdicts = Vec::new();
    for g in &guesses {
        verdicts.push(s.live_verify(&sid, g).await);
    }
    assert_eq!(
        verdicts.iter().filter(|v| *v == "mismatch").count(),
        5,
        "{verdicts:?}"
    );
    assert!(verdicts[5..].iter().all(|v| v == "locked"));
    assert_eq!(
        s.live_verify(&sid, &right).await,
        "locked",
        "the right code gets nowhere while locked"
    );

    // Next window: unlocked; the current code is valid once per window.
    s.state.clock.advance(live::WINDOW_MS);
    let now_code = s.live(&key, Some(&sid)).await["code"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.live_verify(&sid, &now_code).await, "valid");
    assert_eq!(s.live_verify(&sid, &now_code).await, "used");
    // The previous window's code still counts once (clock skew) in the next window.
    s.state.clock.advance(live::WINDOW_MS);
    let newer = s.live(&key, Some(&sid)).await["code"]
        .as_str()
        .unwrap()
        .to_string();
    if newer != now_code {
        // Already verified in its window: used; two windows old: mismatch.
        assert_eq!(s.live_verify(&sid, &now_code).await, "used");
    }
    assert_eq!(s.live_verify(&sid, &newer).await, "valid");

    // Lock twice in a row: the second lock lasts two windows.
    let wrong: Vec<String> = (0..10_000)
        .map(|i| format!("{i:04}"))
        .filter(|g| *g != newer)
        .take(12)
        .collect();
    for g in &wrong[..6] {
        s.live_verify(&sid, g).await;
    }
    s.state.clock.advance(live::WINDOW_MS);
    let c3 = s.live(&key, Some(&sid)).await["code"]
        .as_str()
        .unwrap()
        .to_string();
    let wrong3: Vec<String> = (0..10_000)
        .map(|i| format!("{i:04}"))
        .filter(|g| *g != c3 && *g != newer)
        .take(6)
        .collect();
    let v: Vec<String> = {
        let mut v = Vec::new();
        for g in &wrong3 {
            v.push(s.live_verify(&sid, g).await);
        }
        v
    };
    assert_eq!(v.iter().filter(|x| *x == "mismatch").count(), 5, "{v:?}");
    s.state.clock.advance(live::WINDOW_MS);
    let c4 = s.live(&key, Some(&sid)).await["code"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        s.live_verify(&sid, &c4).await,
        "locked",
        "second lock: still locked one window later"
    );
    s.state.clock.advance(live::WINDOW_MS);
    let c5 = s.live(&key, Some(&sid)).await["code"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        s.live_verify(&sid, &c5).await,
        "valid",
        "unlocked after two windows"
    );

    // 100 concurrent wrong guesses on a fresh session: at most the cap is ever compared.
    s.to_window_start();
    let fresh = s.live(&key, None).await;
    let fsid = fresh["session_id"].as_str().unwrap().to_string();
    let fright = fresh["code"].as_str().unwrap().to_string();
    let tasks: Vec<_> = (0..10_000)
        .map(|i| format!("{i:04}"))
        .filter(|g| *g != fright)
        .take(100)
        .map(|g| {
            let (c, url, sid) = (s.client.clone(), s.url.clone(), fsid.clone());
            tokio::spawn(async move {
                let r = c
                    .post(format!("{url}/v1/codes/live/verify"))
                    .json(&json!({"session_id": sid, "code": g}))
                    .send()
                    .await
                    .unwrap();
                r.json::<Value>().await.unwrap()["verdict"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
        })
        .collect();
    let mut verdicts = Vec::new();
    for t in tasks {
        verdicts.push(t.await.unwrap());
    }
    assert_eq!(
        verdicts.iter().filter(|v| *v == "mismatch").count(),
        5,
        "{verdicts:?}"
    );
    assert_eq!(verdicts.iter().filter(|v| *v == "locked").count(), 95);
    assert_eq!(s.live_verify(&fsid, &fright).await, "locked");
    // Unknown session; malformed code.
    assert_eq!(s.live_verify("ls_0000000000000", "1234").await, "unknown");
    let (st, _) = s
        .call(
            "POST",
            "/v1/codes/live/verify",
            None,
            json!({"session_id": fsid, "code": "12a4"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // Another account cannot read this session's codes.
    let other = s.key("other", "us", &["codes"]).await;
    assert_eq!(
        s.call(
            "POST",
            "/v1/codes/live",
            Some(&other),
            json!({"session_id": fsid})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_code_brute_force_hits_the_cap_on_sqlite() {
    live_brute_force(&spawn(Kind::Sqlite, unlimited()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_code_brute_force_hits_the_cap_on_postgres() {
    live_brute_force(&spawn(Kind::Postgres, unlimited()).await).await;
}

/// GET /v1/codes lists the account's outstanding codes (ids, message hashes; never a code);
/// DELETE /v1/codes/{id} revokes one: it then verifies as `revoked` and leaves the list, the
/// others still verify; another account's id, a used or already revoked one is 404; without
/// the `codes` scope, 403.
async fn list_and_revoke_one(s: &TestServer) {
    let key = s.key("lister", "us", &["codes"]).await;
    let other = s.key("other-lister", "us", &["codes"]).await;
    let no_scope = s.key("no-codes", "us", &["artifacts:read"]).await;
    let mut issued = Vec::new();
    for i in 0..3 {
        let (st, a) = s
            .issue(
                &key,
                json!({"message": format!("{BODY} #{i}"), "recipient": RECIPIENT}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{a}");
        issued.push(a);
    }
    let (_, theirs) = s
        .issue(&other, json!({"message": BODY, "recipient": RECIPIENT}))
        .await;
    let (st, list) = s.call("GET", "/v1/codes", Some(&key), Value::Null).await;
    assert_eq!(st, StatusCode::OK, "{list}");
    let ids = |l: &Value| -> Vec<String> {
        l["codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    let mut listed = ids(&list);
    listed.sort();
    let mut mine: Vec<String> = issued
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    mine.sort();
    assert_eq!(listed, mine, "{list}");
    assert_eq!(list["truncated"], false);
    for c in issued.iter() {
        assert!(
            !list.to_string().contains(c["code"].as_str().unwrap()),
            "never a code"
        );
    }

    let target = issued[1]["id"].as_str().unwrap();
    let (st, r) = s
        .call(
            "DELETE",
            &format!("/v1/codes/{target}"),
            Some(&key),
            Value::Null,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["id"], target);
    let v = s
        .verify(
            issued[1]["code"].as_str().unwrap(),
            &format!("{BODY} #1"),
            RECIPIENT,
        )
        .await;
    assert_eq!(v["verdict"], "revoked", "{v}");
    let v = s
        .verify(
            issued[0]["code"].as_str().unwrap(),
            &format!("{BODY} #0"),
            RECIPIENT,
        )
        .await;
    assert_eq!(v["verdict"], "valid", "{v}");
    let (_, list) = s.call("GET", "/v1/codes", Some(&key), Value::Null).await;
    assert_eq!(
        ids(&list),
        vec![issued[2]["id"].as_str().unwrap().to_string()],
        "{list}"
    );

    // Revoked again, used, another account's, unknown: 404 alike; no scope: 403.
    for id in [
        target,
        issued[0]["id"].as_str().unwrap(),
        theirs["id"].as_str().unwrap(),
        "no-such-code",
    ] {
        let (st, r) = s
            .call(
                "DELETE",
                &format!("/v1/codes/{id}"),
                Some(&key),
                Value::Null,
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{id}: {r}");
    }
    let v = s
        .verify(theirs["code"].as_str().unwrap(), BODY, RECIPIENT)
        .await;
    assert_eq!(
        v["verdict"], "valid",
        "the other account's code is untouched: {v}"
    );
    for (method, path) in [
        ("GET", "/v1/codes".to_string()),
        ("DELETE", format!("/v1/codes/{target}")),
    ] {
        let (st, _) = s.call(method, &path, Some(&no_scope), Value::Null).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{method} {path}");
    }
    let revoked =
        s.db.audit_entries()
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "code.revoke" && e.object == target)
            .count();
    assert_eq!(revoked, 1);
    // The account issued 3 codes, 1 verified: flagged when a third may be verified, not when
    // none may.
    let flagged = |percent: u8| {
        let st = s.state.clone();
        async move {
            st.flagged_code_accounts(24, 3, percent)
                .await
                .unwrap()
                .into_iter()
                .map(|a| (a.tenant, a.issued, a.verified))
                .collect::<Vec<_>>()
        }
    };
    assert!(flagged(34).await.contains(&("lister".to_string(), 3, 1)));
    assert!(flagged(0).await.iter().all(|a| a.0 != "lister"));
}

/// An account may issue `[codes].max_codes_per_hour` message codes an hour: the next is 429
/// `code_quota_exceeded` with Retry-After, even when many are asked at once; another account is
/// not affected; an hour later it may issue again.
async fn minting_is_capped(kind: Kind) {
    let mut config = TestApp::config();
    config.server = unlimited();
    config.codes.max_codes_per_hour = 3;
    config.codes.require_presence = false;
    if let Kind::Postgres = kind {
        config.server.database_url = pixseal_testkit::fresh_postgres_db("codes").into();
    }
    let s = TestServer(TestApp::spawn(config).await);
    let key = s.key("busy-minter", "us", &["codes"]).await;
    let other = s.key("quiet-minter", "us", &["codes"]).await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (c, url, key) = (s.client.clone(), s.url.clone(), key.clone());
            tokio::spawn(async move {
                let r = c
                    .post(format!("{url}/v1/codes"))
                    .bearer_auth(key)
                    .json(&json!({"message": format!("{BODY} {i}"), "recipient": RECIPIENT}))
                    .send()
                    .await
                    .unwrap();
                let retry = r.headers().get("retry-after").is_some();
                let st = r.status();
                let v: Value = r.json().await.unwrap();
                (st, v["error"]["code"].as_str().map(String::from), retry)
            })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            (StatusCode::CREATED, _, _) => created += 1,
            (st, code, retry) => {
                assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
                assert_eq!(code.as_deref(), Some("code_quota_exceeded"));
                assert!(retry, "Retry-After");
            }
        }
    }
    assert_eq!(created, 3, "exactly the cap, even at once");
    let (st, v) = s
        .issue(&other, json!({"message": BODY, "recipient": RECIPIENT}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    s.state.clock.advance(3_600_000 + 1000);
    let (st, v) = s
        .issue(&key, json!({"message": BODY, "recipient": RECIPIENT}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "an hour later: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn minting_is_capped_on_sqlite() {
    minting_is_capped(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn minting_is_capped_on_postgres() {
    minting_is_capped(Kind::Postgres).await;
}

#[tokio::test]
async fn list_and_revoke_one_on_sqlite() {
    list_and_revoke_one(&spawn(Kind::Sqlite, unlimited()).await).await;
}

#[tokio::test]
async fn list_and_revoke_one_on_postgres() {
    list_and_revoke_one(&spawn(Kind::Postgres, unlimited()).await).await;
}

/// One DELETE /v1/codes kills every outstanding code: message codes and live sessions; another
/// account's codes are untouched; new codes work again.
#[tokio::test]
async fn revoke_all_kills_message_and_live_codes() {
    let s = spawn(Kind::Sqlite, unlimited()).await;
    let key = s.key("rev", "eu", &["codes"]).await;
    let bystander = s.key("bystander", "us", &["codes"]).await;
    let mut codes = Vec::new();
    for _ in 0..3 {
        codes.push(
            s.issue(&key, json!({"message": BODY, "recipient": RECIPIENT}))
                .await
                .1["code"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let kept = s
        .issue(&bystander, json!({"message": BODY, "recipient": RECIPIENT}))
        .await
        .1;
    s.to_window_start();
    let l1 = s.live(&key, None).await;
    let l2 = s.live(&key, None).await;
    let (st, v) = s.call("DELETE", "/v1/codes", Some(&key), Value::Null).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        (
            v["revoked_message_codes"].as_u64(),
            v["revoked_live_sessions"].as_u64()
        ),
        (Some(3), Some(2))
    );
    for c in &codes {
        assert_eq!(s.verify(c, BODY, RECIPIENT).await["verdict"], "revoked");
    }
    for l in [&l1, &l2] {
        let sid = l["session_id"].as_str().unwrap();
        assert_eq!(
            s.live_verify(sid, l["code"].as_str().unwrap()).await,
            "revoked"
        );
        let (st, e) = s
            .call(
                "POST",
                "/v1/codes/live",
                Some(&key),
                json!({"session_id": sid}),
            )
            .await;
        assert_eq!(
            (st, e["error"]["code"].as_str()),
            (StatusCode::GONE, Some("revoked"))
        );
    }
    assert_eq!(
        s.verify(kept["code"].as_str().unwrap(), BODY, RECIPIENT)
            .await["verdict"],
        "valid"
    );
    let fresh = s
        .issue(&key, json!({"message": BODY, "recipient": RECIPIENT}))
        .await
        .1;
    assert_eq!(fresh["region"], "eu");
    assert_eq!(
        s.verify(fresh["code"].as_str().unwrap(), BODY, RECIPIENT)
            .await["verdict"],
        "valid"
    );
    let l3 = s.live(&key, None).await;
    assert_eq!(
        s.live_verify(
            l3["session_id"].as_str().unwrap(),
            l3["code"].as_str().unwrap()
        )
        .await,
        "valid"
    );
}

/// No API call raises a level — not with the `codes` scope, not with `admin`: there is no such
/// route, unknown fields are refused, and registering a device key can only lower a level.
/// The system's path (codes::set_level) goes one step at a time, with evidence.
#[tokio::test]
async fn an_account_cannot_raise_its_own_level() {
    let s = spawn(Kind::Sqlite, unlimited()).await;
    let key = s.key("climber", "us", &["codes", "admin"]).await;
    for (m, p) in [
        ("PUT", "/v1/codes/account"),
        ("POST", "/v1/codes/account"),
        ("PATCH", "/v1/codes/account"),
        ("PUT", "/v1/codes/level"),
        ("POST", "/v1/codes/level"),
    ] {
        let (st, _) = s.call(m, p, Some(&key), json!({"level": 4})).await;
        assert!(
            st == StatusCode::METHOD_NOT_ALLOWED || st == StatusCode::NOT_FOUND,
            "{m} {p}: {st}"
        );
    }
    let (st, e) = s
        .issue(
            &key,
            json!({"message": BODY, "recipient": RECIPIENT, "level": 4}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    let (st, e) = s.call("PUT", "/v1/codes/device-key", Some(&key), json!({"public_key": pixseal_codes::public_key_text(&DeviceKey::generate().unwrap().public_key()), "level": 4})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    let dev = DeviceKey::generate().unwrap();
    let (st, v) = s
        .call(
            "PUT",
            "/v1/codes/device-key",
            Some(&key),
            json!({"public_key": pixseal_codes::public_key_text(&dev.public_key())}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["level"], 0, "a device key alone raises nothing");
    let (_, a) = s
        .call("GET", "/v1/codes/account", Some(&key), Value::Null)
        .await;
    assert_eq!(a["level"], 0);

    // The system: one step at a time, evidence required, level 4 only with a device key.
    let t = s.tenant("climber").await;
    let set = |to: i64, ev: &'static str| {
        let (st, t) = (s.state.clone(), t.clone());
        async move {
            st.set_code_level(&t, to, ev, Some("Climber Inc."), &Actor::Cli)
                .await
        }
    };
    assert_eq!(
        set(2, "skip").await.unwrap_err().code(),
        "level_not_allowed"
    );
    assert_eq!(set(1, " ").await.unwrap_err().code(), "level_not_allowed");
    for l in 1..=4 {
        set(l, "checked").await.unwrap();
    }
    let (_, a) = s
        .call("GET", "/v1/codes/account", Some(&key), Value::Null)
        .await;
    assert_eq!(
        (a["level"].as_i64(), a["display_name"].as_str()),
        (Some(4), Some("Climber Inc."))
    );
    assert_eq!(s.db.code_level_events(&t.id).await.unwrap().len(), 4);
    // A new device key from the API (maybe a stolen API key): back to level 3, not vetted.
    let (_, v) = s.call("PUT", "/v1/codes/device-key", Some(&key), json!({"public_key": pixseal_codes::public_key_text(&DeviceKey::generate().unwrap().public_key())})).await;
    assert_eq!(v["level"], 3);
    let audit = s.db.audit_entries().await.unwrap();
    assert_eq!(audit.iter().filter(|e| e.action == "code.level").count(), 4);
    assert!(
        audit
            .iter()
            .any(|e| e.action == "code.device_key" && e.detail.ends_with("level=4->3"))
    );
}

/// Level 4: codes must carry the device's signature over (code, message hash, recipient hash,
/// expiry); missing or bad signatures are refused at issue, and a stored signature that no
/// longer verifies fails verification.
#[tokio::test]
async fn level_4_codes_need_a_valid_device_signature() {
    let s = spawn(Kind::Sqlite, unlimited()).await;
    let key = s.key("gold", "us", &["codes"]).await;
    let dev = DeviceKey::generate().unwrap();
    let (st, _) = s
        .call(
            "PUT",
            "/v1/codes/device-key",
            Some(&key),
            json!({"public_key": pixseal_codes::public_key_text(&dev.public_key())}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    // An unsigned code issued at level 3 never vouches for more than level 3.
    let t = s.tenant("gold").await;
    for l in 1..=3 {
        s.state
            .set_code_level(&t, l, "checked", None, &Actor::Cli)
            .await
            .unwrap();
    }
    let (_, l3) = s
        .issue(&key, json!({"message": BODY, "recipient": RECIPIENT}))
        .await;
    s.state
        .set_code_level(&t, 4, "device enrolled", None, &Actor::Cli)
        .await
        .unwrap();

    let now_s = s.state.clock.now_ms() / 1000;
    let mint = |msg: &str, rcpt: &str, exp: i64| SignedCode {
        code: MessageCode::random().unwrap(),
        message_sha256: message_sha256(msg.as_bytes()),
        recipient_sha256: recipient_sha256(rcpt),
        expires_s: exp,
    };
    let rfc = |secs: i64| pixseal_store::meta::at_ms(secs * 1000).0;
    // Missing signature: refused.
    let (st, e) = s
        .issue(&key, json!({"message": BODY, "recipient": RECIPIENT}))
        .await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("signature_required"))
    );
    // Signed by another key, over another recipient, another expiry, garbage: refused.
    let c = mint(BODY, RECIPIENT, now_s + 3600);
    let stranger = DeviceKey::generate().unwrap();
    let other_rcpt = mint(BODY, "eve@example.org", now_s + 3600);
    let bad = [
        (c.code, c.expires_s, stranger.sign(&c)),
        (other_rcpt.code, other_rcpt.expires_s, dev.sign(&other_rcpt)),
        (c.code, c.expires_s + 1, dev.sign(&c)),
        (c.code, c.expires_s, "bm90IGEgc2lnbmF0dXJl".to_string()),
    ];
    for (code, exp, sig) in bad {
        let (st, e) = s.issue(&key, json!({"message": BODY, "recipient": RECIPIENT, "code": code.to_string(), "expires_at": rfc(exp), "signature": sig})).await;
        assert_eq!(
            (st, e["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_signature")),
            "{e}"
        );
    }
    // Longer than 30 days: refused even when signed.
    let far = mint(BODY, RECIPIENT, now_s + 31 * 86_400);
    let (st, _) = s.issue(&key, json!({"message": BODY, "recipient": RECIPIENT, "code": far.code.to_string(), "expires_at": rfc(far.expires_s), "signature": dev.sign(&far)})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // Properly signed: issued, verifies at level 4.
    let (st, ok) = s.issue(&key, json!({"message": BODY, "recipient": RECIPIENT, "code": c.code.to_string(), "expires_at": rfc(c.expires_s), "signature": dev.sign(&c)})).await;
    assert_eq!(st, StatusCode::CREATED, "{ok}");
    assert_eq!(ok["device_signed"], true);
    assert_eq!(ok["code"], c.code.to_string().as_str());
    let v = s.verify(&c.code.to_string(), BODY, RECIPIENT).await;
    assert_eq!(
        (
            v["verdict"].as_str(),
            v["account"]["level"].as_i64(),
            v["device_signed"].as_bool()
        ),
        (Some("valid"), Some(4), Some(true))
    );
    // The level-3 code is unsigned: it says level 3 though the account is at 4 now.
    let v = s
        .verify(l3["code"].as_str().unwrap(), BODY, RECIPIENT)
        .await;
    assert_eq!(
        (v["verdict"].as_str(), v["account"]["level"].as_i64()),
        (Some("valid"), Some(3))
    );
    // The same code twice: conflict.
    let (st, _) = s.issue(&key, json!({"message": BODY, "recipient": RECIPIENT, "code": c.code.to_string(), "expires_at": rfc(c.expires_s), "signature": dev.sign(&c)})).await;
    assert_eq!(st, StatusCode::CONFLICT);
    // A signature swapped in the database: the verifier catches it, and the code is not used up.
    let c2 = mint(BODY, RECIPIENT, now_s + 7200);
    let (st, _) = s.issue(&key, json!({"message": BODY, "recipient": RECIPIENT, "code": c2.code.to_string(), "expires_at": rfc(c2.expires_s), "signature": dev.sign(&c2)})).await;
    assert_eq!(st, StatusCode::CREATED);
    sqlx::query(
        "UPDATE message_codes SET signature = $1 WHERE signature IS NOT NULL AND used_ms IS NULL",
    )
    .bind(dev.sign(&c))
    .execute(s.db.pool())
    .await
    .unwrap();
    assert_eq!(
        s.verify(&c2.code.to_string(), BODY, RECIPIENT).await["verdict"],
        "invalid_signature"
    );
    assert_eq!(
        s.verify(&c2.code.to_string(), BODY, RECIPIENT).await["verdict"],
        "invalid_signature"
    );
}

/// The public verify routes have their own, stricter per-IP budget that a made-up bearer token
/// does not reset; authenticated routes keep theirs.
#[tokio::test]
async fn verify_routes_have_a_stricter_rate_limit() {
    let cfg = ServerConfig {
        rate_limit_per_key: 100,
        rate_limit_per_ip: 100,
        rate_limit_verify_per_ip: 3,
        rate_limit_period_secs: 60,
        ..ServerConfig::default()
    };
    let s = spawn(Kind::Sqlite, cfg).await;
    let key = s.key("rl", "us", &["codes"]).await;
    let never = MessageCode::from_value(99).to_string();
    let body = json!({"code": never, "message": BODY, "recipient": RECIPIENT});
    for _ in 0..3 {
        assert_eq!(
            s.call("POST", "/v1/codes/verify", None, body.clone())
                .await
                .0,
            StatusCode::OK
        );
    }
    let (st, e) = s.call("POST", "/v1/codes/verify", None, body.clone()).await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
    assert_eq!(
        s.call(
            "POST",
            "/v1/codes/verify",
            Some("pxk_made_up_1"),
            body.clone()
        )
        .await
        .0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        s.call(
            "POST",
            "/v1/codes/live/verify",
            Some("pxk_made_up_2"),
            json!({"session_id": "ls_x", "code": "1234"})
        )
        .await
        .0,
        StatusCode::TOO_MANY_REQUESTS,
        "live verification shares the class"
    );
    assert_eq!(
        s.issue(&key, json!({"message": BODY, "recipient": RECIPIENT}))
            .await
            .0,
        StatusCode::CREATED
    );
}

/// The code secret is per region, created once, wrapped by the key provider; a second instance
/// on the same database uses the same secret (codes issued by one verify on the other).
#[tokio::test]
async fn code_secret_is_wrapped_per_region_and_shared() {
    let s = spawn(Kind::Postgres, unlimited()).await;
    let key = s.key("multi", "us", &["codes"]).await;
    let ek = s.key("multi-eu", "eu", &["codes"]).await;
    let a = s
        .issue(&key, json!({"message": BODY, "recipient": RECIPIENT}))
        .await
        .1;
    let b = s
        .issue(&ek, json!({"message": BODY, "recipient": RECIPIENT}))
        .await
        .1;
    let us = s.db.code_key("us").await.unwrap().unwrap();
    let eu = s.db.code_key("eu").await.unwrap().unwrap();
    assert_ne!(us, eu);
    // Same state (same key file), fresh cache: verifies both regions' codes.
    let again = s.state.with_empty_caches();
    for c in [&a, &b] {
        let v = again
            .verify_code(
                &Actor::Anonymous,
                pixseal_service::codes::VerifyRequest {
                    code: c["code"].as_str().unwrap().into(),
                    message: Some(BODY.into()),
                    message_sha256: None,
                    recipient: RECIPIENT.into(),
                },
            )
            .await
            .unwrap();
        let v = serde_json::to_value(v).unwrap();
        assert_eq!(v["verdict"], "valid");
    }
    // Expired codes are forgotten by the purge pass 30 days after their expiry.
    s.state.clock.advance(61 * DAY);
    let r = s
        .state
        .purge_at(s.state.clock.now_ms(), 10, 600_000)
        .await
        .unwrap();
    assert_eq!(r.codes_forgotten, 2);
    assert_eq!(
        s.verify(a["code"].as_str().unwrap(), BODY, RECIPIENT).await["verdict"],
        "unknown"
    );
}
