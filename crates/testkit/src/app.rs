//! `TestApp`: the HTTP service in process on a random loopback port, opened from a typed
//! configuration through the same `AppState::open` → `Services::open` path as `pixseal serve`.

use pixseal_server::AppState;
use pixseal_service::Config;
use pixseal_store::{Db, Scope};

/// A running service and what tests reach it with.
pub struct TestApp {
    /// `http://127.0.0.1:PORT` (`https://localhost:PORT` under TLS).
    pub url: String,
    pub state: AppState,
    /// The service's database (the same pool).
    pub db: Db,
    /// Its data directory (keys, dev certificates, local blobs, SQLite).
    pub data: tempfile::TempDir,
    pub client: reqwest::Client,
}

impl TestApp {
    /// The embedded defaults for tests: regions `us` and `eu` only.
    pub fn config() -> Config {
        let mut c = Config {
            regions: vec!["us".into(), "eu".into()],
            ..Config::default()
        };
        c.storage
            .regions
            .retain(|name, _| c.regions.iter().any(|r| r == name));
        c
    }

    /// Open `config` with its data directory replaced by a fresh temporary one, and serve it
    /// until the test's runtime ends.
    pub async fn spawn(config: Config) -> TestApp {
        Self::spawn_adjusted(config, |_| {}).await
    }

    /// [`TestApp::spawn`], with `adjust` applied to the opened state before it serves (to
    /// wrap a part, e.g. the receipt signer, in something a test observes).
    pub async fn spawn_adjusted(config: Config, adjust: impl FnOnce(&mut AppState)) -> TestApp {
        Self::spawn_on(config, Self::listener().await, adjust).await
    }

    /// A loopback port to serve on, bound before the service opens (so its configuration
    /// can name it, as `[server].public_url` does in a deployment).
    pub async fn listener() -> tokio::net::TcpListener {
        tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port")
    }

    /// [`TestApp::spawn_adjusted`] on `listener`.
    pub async fn spawn_on(
        mut config: Config,
        listener: tokio::net::TcpListener,
        adjust: impl FnOnce(&mut AppState),
    ) -> TestApp {
        let data = tempfile::tempdir().expect("temporary data directory");
        config.data_dir = data.path().to_path_buf();
        let tls = config.server.tls();
        let mut state = AppState::open(&config)
            .await
            .unwrap_or_else(|e| panic!("opening the service: {e}"));
        adjust(&mut state);
        let addr = listener.local_addr().expect("bound address");
        let url = if tls {
            format!("https://localhost:{}", addr.port())
        } else {
            format!("http://{addr}")
        };
        tokio::spawn(pixseal_server::serve(
            state.clone(),
            listener,
            std::future::pending(),
        ));
        TestApp {
            url,
            db: state.services.db.clone(),
            state,
            data,
            client: reqwest::Client::new(),
        }
    }

    /// A secret API key holding `scopes` for `tenant` (created in `region` with 30-day
    /// retention if it does not exist yet).
    pub async fn key(&self, tenant: &str, region: &str, scopes: &[&str]) -> String {
        let t = match self.db.tenant_by_name(tenant).await {
            Ok(t) => t,
            Err(_) => self
                .db
                .create_tenant(tenant, region, 30)
                .await
                .expect("tenant"),
        };
        let scopes: Vec<Scope> = scopes
            .iter()
            .map(|s| s.parse().expect("a known scope"))
            .collect();
        self.db.create_api_key(&t, &scopes).await.expect("key").1
    }

    /// `METHOD path` with an optional bearer key and JSON body (`Null` = none): the status and
    /// the JSON answer (`Null` when the answer is not JSON).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: serde_json::Value,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let mut r = self.client.request(
            method.parse().expect("an HTTP method"),
            format!("{}{path}", self.url),
        );
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        if !body.is_null() {
            r = r.json(&body);
        }
        let r = r.send().await.expect("the request is sent");
        let st = r.status();
        (st, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// `POST /v1/artifacts` with `bytes` as the raw body: the answer (with `id`, `proof_id`,
    /// `verify_url`). Panics unless 201.
    pub async fn upload(&self, key: &str, bytes: Vec<u8>) -> serde_json::Value {
        let r = self
            .client
            .post(format!("{}/v1/artifacts", self.url))
            .bearer_auth(key)
            .body(bytes)
            .send()
            .await
            .expect("upload request");
        let status = r.status();
        let v: serde_json::Value = r.json().await.expect("upload answer");
        assert_eq!(status, reqwest::StatusCode::CREATED, "upload: {v}");
        v
    }

    /// `GET /v1/artifacts/{id}/content`: the stored, stamped bytes. Panics unless 200.
    pub async fn content(&self, key: &str, id: &str) -> Vec<u8> {
        let r = self
            .client
            .get(format!("{}/v1/artifacts/{id}/content", self.url))
            .bearer_auth(key)
            .send()
            .await
            .expect("content request");
        assert_eq!(r.status(), reqwest::StatusCode::OK, "content of {id}");
        r.bytes().await.expect("content").to_vec()
    }

    /// `GET /v1/proofs/{proof_id}`: the public proof record. Panics unless 200.
    pub async fn proof(&self, proof_id: &str) -> serde_json::Value {
        let r = self
            .client
            .get(format!("{}/v1/proofs/{proof_id}", self.url))
            .send()
            .await
            .expect("proof request");
        assert_eq!(r.status(), reqwest::StatusCode::OK, "proof {proof_id}");
        r.json().await.expect("proof record")
    }

    /// `DELETE /v1/artifacts/{id}`: the signed receipt in the tenant's view (with `opening`).
    /// Panics unless 200.
    pub async fn delete(&self, key: &str, id: &str) -> serde_json::Value {
        let r = self
            .client
            .delete(format!("{}/v1/artifacts/{id}", self.url))
            .bearer_auth(key)
            .send()
            .await
            .expect("delete request");
        let status = r.status();
        let v: serde_json::Value = r.json().await.expect("delete answer");
        assert_eq!(status, reqwest::StatusCode::OK, "delete: {v}");
        v
    }
}

#[cfg(feature = "passkey")]
impl TestApp {
    /// An administrator enrolls `member` of `tenant` (as `pixseal codes enroll` does): the
    /// one-time token.
    pub async fn enrollment_token(&self, tenant: &str, member: &str) -> String {
        let t = self.db.tenant_by_name(tenant).await.expect("the tenant");
        let e = self
            .state
            .services
            .enroll_member(&t, member, &pixseal_service::Actor::Cli);
        e.await.expect("enrollment").enrollment_token
    }

    /// The origin passkey ceremonies must come from (the configured relying party's first).
    pub fn passkey_origin(&self) -> String {
        self.state.services.passkey_policy().origins[0].clone()
    }

    /// The member registers a fresh ES256 software passkey with `token`: the authenticator,
    /// the registration the browser sent and the stored passkey. Panics unless it is stored.
    pub async fn register_passkey(
        &self,
        token: &str,
    ) -> (
        crate::passkey::SoftPasskey,
        serde_json::Value,
        serde_json::Value,
    ) {
        use reqwest::StatusCode;
        let body = serde_json::json!({"enrollment_token": token});
        let (st, opts) = self
            .call("POST", "/v1/passkeys/registrations", None, body)
            .await;
        assert_eq!(st, StatusCode::OK, "registration options: {opts}");
        let mut pk = crate::passkey::SoftPasskey::es256();
        let origin = self.passkey_origin();
        let reg = pk
            .register(&origin, &opts["public_key"])
            .await
            .expect("a passkey");
        let (st, view) = self.call("POST", "/v1/passkeys", None, reg.clone()).await;
        assert_eq!(st, StatusCode::CREATED, "registration: {view}");
        (pk, reg, view)
    }

    /// Mint a message code the way a user does by default (`[codes].require_presence`): an
    /// administrator enrolls `member` of `tenant`, who registers a software passkey and signs
    /// the presence challenge for `body` (`message`/`message_sha256`, `recipient`, `ttl_days`)
    /// with user verification. The issued code's answer; panics unless every step succeeds.
    pub async fn passkey_code(
        &self,
        key: &str,
        tenant: &str,
        member: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        use reqwest::StatusCode;
        let token = self.enrollment_token(tenant, member).await;
        let (mut pk, _, _) = self.register_passkey(&token).await;
        let (st, c) = self
            .call("POST", "/v1/codes/presence", Some(key), body.clone())
            .await;
        assert_eq!(st, StatusCode::OK, "presence challenge: {c}");
        let o = &c["public_key"];
        let (rp, challenge) = (o["rpId"].as_str(), o["challenge"].as_str());
        let origin = self.passkey_origin();
        let credential = pk
            .assert(
                &origin,
                rp.expect("rpId"),
                challenge.expect("challenge"),
                true,
            )
            .await
            .expect("an assertion");
        let mut mint = body;
        let m = mint.as_object_mut().expect("a JSON object");
        m.remove("ttl_days");
        m.insert(
            "presence".into(),
            serde_json::json!({"id": c["presence_id"], "code": c["code"], "credential": credential}),
        );
        let (st, v) = self.call("POST", "/v1/codes", Some(key), mint).await;
        assert_eq!(st, StatusCode::CREATED, "minting: {v}");
        v
    }

    /// Start a live call session the way a user does by default: an administrator enrolls
    /// `member` of `tenant`, who registers a software passkey and signs the session's presence
    /// challenge with user verification. The `POST /v1/codes/live` answer (`session_id`,
    /// `code`…); panics unless every step succeeds.
    pub async fn passkey_live(&self, key: &str, tenant: &str, member: &str) -> serde_json::Value {
        use reqwest::StatusCode;
        let token = self.enrollment_token(tenant, member).await;
        let (mut pk, _, _) = self.register_passkey(&token).await;
        let (st, c) = self
            .call(
                "POST",
                "/v1/codes/live/presence",
                Some(key),
                serde_json::Value::Null,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "live presence challenge: {c}");
        let o = &c["public_key"];
        let (rp, challenge) = (o["rpId"].as_str(), o["challenge"].as_str());
        let credential = pk
            .assert(
                &self.passkey_origin(),
                rp.expect("rpId"),
                challenge.expect("challenge"),
                true,
            )
            .await
            .expect("an assertion");
        let body = serde_json::json!({"presence": {
            "id": c["presence_id"], "session_id": c["session_id"], "credential": credential,
        }});
        let (st, v) = self.call("POST", "/v1/codes/live", Some(key), body).await;
        assert_eq!(st, StatusCode::OK, "starting the session: {v}");
        v
    }
}
