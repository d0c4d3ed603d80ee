//! `/v1/licenses/*` over HTTP: activations racing for the last seats take exactly as many as
//! the licence has (SQLite and PostgreSQL), the device token verifies offline with the key
//! the server presents, and malformed or unknown requests get their own 4xx codes.

use std::collections::HashMap;

use pixseal_proof::{License, ReceiptPublicKey, SignedDeviceToken};
use pixseal_service::Actor;
use pixseal_testkit::TestApp;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn post(app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    let r = app
        .client
        .post(format!("{}{path}", app.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn device(n: u32) -> String {
    format!("{n:064x}")
}

async fn issue(app: &TestApp, seats: u32) -> (String, String) {
    app.key("acme", "us", &["stamp"]).await;
    let far = app.state.services.clock.now_ms() + 365 * 86_400_000;
    let l = app
        .state
        .services
        .issue_license(&Actor::Cli, "acme", seats, far)
        .await
        .unwrap();
    (l.id, l.key)
}

async fn seats_are_never_oversold(app: &TestApp) {
    let (id, key) = issue(app, 3).await;
    let attempts: Vec<_> = (0..8)
        .map(|n| {
            let (client, url) = (
                app.client.clone(),
                format!("{}/v1/licenses/activate", app.url),
            );
            let body = json!({"license_key": key, "device": device(n), "version": "0.1.0"});
            tokio::spawn(async move {
                let r = client.post(url).json(&body).send().await.unwrap();
                let status = r.status();
                (status, r.json::<Value>().await.unwrap_or(Value::Null))
            })
        })
        .collect();
    let mut answers = Vec::new();
    for a in attempts {
        answers.push(a.await.unwrap());
    }
    let mut by_status: HashMap<StatusCode, usize> = HashMap::new();
    for (st, body) in &answers {
        *by_status.entry(*st).or_default() += 1;
        if *st == StatusCode::CONFLICT {
            assert_eq!(body["error"]["code"], "seats_exhausted", "{body}");
        }
    }
    assert_eq!(by_status.get(&StatusCode::CREATED), Some(&3), "{answers:?}");
    assert_eq!(
        by_status.get(&StatusCode::CONFLICT),
        Some(&5),
        "{answers:?}"
    );
    let devices = app.state.services.license_devices(&id, None).await.unwrap();
    assert_eq!(devices.len(), 3);

    // The grant verifies offline with the key it names, and so does the licence key.
    let (_, grant) = answers
        .into_iter()
        .find(|(st, _)| *st == StatusCode::CREATED)
        .unwrap();
    let pk = ReceiptPublicKey::from_pem(grant["public_key"].as_str().unwrap()).unwrap();
    let token: SignedDeviceToken = serde_json::from_value(grant["device_token"].clone()).unwrap();
    token.verify(&pk).unwrap();
    assert_eq!(token.token.license, id);
    assert_eq!(License::open(&key, &pk).unwrap().seats, 3);
    // An active device activating again keeps its seat.
    let again = post(
        app,
        "/v1/licenses/activate",
        json!({"license_key": key, "device": token.token.device, "version": "0.1.1"}),
    )
    .await;
    assert_eq!(again.0, StatusCode::CREATED, "{}", again.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seats_are_never_oversold_on_sqlite() {
    seats_are_never_oversold(&TestApp::spawn(TestApp::config()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seats_are_never_oversold_on_postgres() {
    let mut c = TestApp::config();
    c.server.database_url = pixseal_testkit::fresh_postgres_db("licenses").into();
    seats_are_never_oversold(&TestApp::spawn(c).await).await;
}

#[tokio::test]
async fn bad_requests_get_their_own_codes() {
    let app = TestApp::spawn(TestApp::config()).await;
    let (id, key) = issue(&app, 1).await;
    let cases = [
        (
            "/v1/licenses/activate",
            json!({"license_key": "pixseal-license.e30.AA", "device": device(1), "version": "1"}),
            StatusCode::FORBIDDEN,
            "license_invalid",
        ),
        (
            "/v1/licenses/activate",
            json!({"license_key": key, "device": "not-hex", "version": "1"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "/v1/licenses/activate",
            json!({"license_key": key, "device": device(1), "version": "1", "name": "my laptop"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "/v1/licenses/check",
            json!({"license": id, "device": device(9), "version": "1"}),
            StatusCode::FORBIDDEN,
            "device_not_activated",
        ),
        (
            "/v1/licenses/check",
            json!({"license": "lic_unknown", "device": device(1), "version": "1"}),
            StatusCode::FORBIDDEN,
            "license_invalid",
        ),
        (
            "/v1/licenses/usage",
            json!({"license": id, "device": device(1), "images": -1, "bytes": 0, "version": "1"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "/v1/licenses/usage",
            json!({"license": id, "device": device(1), "images": 1u64 << 60, "bytes": 0, "version": "1"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (path, body, status, code) in cases {
        let (st, answer) = post(&app, path, body.clone()).await;
        assert_eq!(st, status, "{path} {body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{path} {body}: {answer}");
    }
    // A licence that ended refuses activation.
    app.state.services.clock.advance(400 * 86_400_000);
    let (st, answer) = post(
        &app,
        "/v1/licenses/activate",
        json!({"license_key": key, "device": device(1), "version": "1"}),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(answer["error"]["code"], "license_expired", "{answer}");
}
