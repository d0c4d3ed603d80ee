//! The real `pixseal serve` process: kill -9 in the middle of uploads leaves a consistent state
//! after restart (repair pass), and SIGTERM lets in-flight uploads finish.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(data: &Path, port: u16) -> Child {
    start_env(data, port, &[])
}

fn start_env(data: &Path, port: u16, env: &[(&str, &str)]) -> Child {
    let mut cmd = serve_command(data, port);
    cmd.envs(env.iter().copied())
        .env("PIXSEAL_LOG", "warn")
        .stderr(Stdio::null());
    ready(cmd.spawn().unwrap(), port)
}

/// `pixseal serve` on `port` with the data in `data`, repairing at once.
fn serve_command(data: &Path, port: u16) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args([
        "--data-dir",
        data.to_str().unwrap(),
        "serve",
        "--listen",
        &format!("127.0.0.1:{port}"),
    ])
    .env("PIXSEAL_SERVER_REPAIR_GRACE_SECS", "0")
    .stdin(Stdio::null())
    .stdout(Stdio::null());
    cmd
}

/// Wait until the server answers `/readyz`, or kill it and fail.
fn ready(mut child: Child, port: u16) -> Child {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok((200, _)) = http(port, "GET", "/readyz", None, b"") {
            return child;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("server did not become ready");
}

/// Minimal HTTP/1.1 client (Connection: close) returning (status, body).
fn http(
    port: u16,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| buf[i + 4..].to_vec())
        .unwrap_or_default();
    Ok((status, body))
}

fn key_for(data: &Path) -> String {
    key_for_env(data, &[])
}

/// A tenant and an admin key, made by the CLI with the server's environment (`env`).
fn key_for_env(data: &Path, env: &[(&str, &str)]) -> String {
    let d = data.to_str().unwrap();
    let r = pixseal_env(
        &[
            "--data-dir",
            d,
            "tenant",
            "create",
            "crash",
            "--region",
            "us",
        ],
        env,
    );
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let r = pixseal_env(
        &[
            "--data-dir",
            d,
            "apikey",
            "create",
            "--tenant",
            "crash",
            "--scope",
            "admin",
            "--json",
        ],
        env,
    );
    json_lines(&r)[0]["key"].as_str().unwrap().to_string()
}

/// The files under the `us` blob prefix, but for the installation's owner marker.
fn blob_files(data: &Path) -> Vec<String> {
    let dir = data.join("blobs/us");
    std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name != pixseal_store::OWNER_MARKER)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn kill_9_during_uploads_leaves_a_consistent_state_after_restart() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = start(data.path(), port);
    let key = Arc::new(key_for(data.path()));
    let photo = Arc::new(std::fs::read(fixtures().join("photos/garden.jpg")).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let created = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let attempts = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (key, photo, stop, created, attempts) = (
                key.clone(),
                photo.clone(),
                stop.clone(),
                created.clone(),
                attempts.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    attempts.fetch_add(1, Ordering::Relaxed);
                    if let Ok((201, body)) = http(port, "POST", "/v1/artifacts", Some(&key), &photo)
                    {
                        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                        created
                            .lock()
                            .unwrap()
                            .push(v["id"].as_str().unwrap().to_string());
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    server.kill().unwrap(); // SIGKILL, mid-upload
    server.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let confirmed = created.lock().unwrap().clone();
    assert!(
        confirmed.len() >= 3,
        "only {} uploads before the kill",
        confirmed.len()
    );

    let mut server = start(data.path(), port);
    // Every upload the client saw confirmed is intact...
    for id in &confirmed {
        let (st, body) = http(
            port,
            "GET",
            &format!("/v1/artifacts/{id}/content"),
            Some(&key),
            b"",
        )
        .unwrap();
        assert_eq!(st, 200, "{id}");
        assert!(body.starts_with(b"RIFF"));
    }
    // ...and after the repair pass, blobs and rows match one to one (no orphan, no temp file).
    let blobs = blob_files(data.path());
    assert!(blobs.len() >= confirmed.len());
    for b in &blobs {
        let (st, _) = http(port, "GET", &format!("/v1/artifacts/{b}"), Some(&key), b"").unwrap();
        assert_eq!(st, 200, "blob {b} has no live artifact row");
    }
    eprintln!(
        "{} attempts, {} confirmed, {} blobs after restart",
        attempts.load(Ordering::Relaxed),
        confirmed.len(),
        blobs.len()
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn sigterm_lets_in_flight_uploads_finish() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = start(data.path(), port);
    let key = key_for(data.path());
    let photo = std::fs::read(fixtures().join("photos/garden.jpg")).unwrap();
    let k2 = key.clone();
    let uploads: Vec<_> = (0..3)
        .map(|_| {
            let (k, p) = (k2.clone(), photo.clone());
            std::thread::spawn(move || {
                http(port, "POST", "/v1/artifacts", Some(&k), &p).map(|r| r.0)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    let pid = server.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let results: Vec<_> = uploads.into_iter().map(|t| t.join().unwrap()).collect();
    let mut server = server;
    let status = server.wait().unwrap();
    assert!(status.success(), "server exit {status:?}");
    // Each upload either completed (201) or was refused before it started (connection refused);
    // none was cut off half-way with a 5xx.
    for r in &results {
        match r {
            Ok(code) => assert_eq!(*code, 201, "{results:?}"),
            Err(e) => assert_eq!(
                e.kind(),
                std::io::ErrorKind::ConnectionRefused,
                "{results:?}"
            ),
        }
    }
    assert!(
        blob_files(data.path()).iter().all(|b| !b.contains('#')),
        "no temporary files"
    );
}

#[test]
fn deletion_receipt_verifies_offline_and_tampering_is_caught() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = start(data.path(), port);
    let key = key_for(data.path());
    let (receipt, key_doc) = upload_and_delete(port, &key);
    server.kill().unwrap();
    server.wait().unwrap();
    let work = tempfile::tempdir().unwrap();
    let rpath = work.path().join("receipt.json");
    let kpath = work.path().join("receipts.pem");
    std::fs::write(&rpath, &receipt).unwrap();
    let kd: serde_json::Value = serde_json::from_slice(&key_doc).unwrap();
    std::fs::write(&kpath, kd["public_key_pem"].as_str().unwrap()).unwrap();
    // Offline, with the published key (no data dir at all), and with the installation's own key.
    let r = pixseal(&[
        "receipt",
        "verify",
        rpath.to_str().unwrap(),
        "--pubkey",
        kpath.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let v = &json_lines(&r)[0];
    assert_eq!(v["verdict"], "valid");
    // DELETE answers the tenant's view: its opening names the artifact, checked against the
    // signed subject.
    let full: serde_json::Value = serde_json::from_slice(&receipt).unwrap();
    assert_eq!(v["version"], 2);
    assert_eq!(v["artifact_id"], full["opening"]["artifact_id"]);
    assert_eq!(v["original_sha256"], full["opening"]["original_sha256"]);
    let r = pixseal(&[
        "--data-dir",
        data.path().to_str().unwrap(),
        "receipt",
        "verify",
        rpath.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(0));
    // The public view (no opening) verifies too, and names no artifact.
    let mut public = full.clone();
    public.as_object_mut().unwrap().remove("opening");
    std::fs::write(&rpath, public.to_string()).unwrap();
    let r = pixseal(&[
        "receipt",
        "verify",
        rpath.to_str().unwrap(),
        "--pubkey",
        kpath.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(r.status.code(), Some(0));
    assert!(json_lines(&r)[0].get("artifact_id").is_none());
    // An opening naming another original: exit 2, tampered.
    let mut wrong = full.clone();
    wrong["opening"]["original_sha256"] = "0".repeat(64).into();
    std::fs::write(&rpath, wrong.to_string()).unwrap();
    let r = pixseal(&[
        "receipt",
        "verify",
        rpath.to_str().unwrap(),
        "--pubkey",
        kpath.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("error[tampered]"));
    // Any edited field: exit 2, tampered.
    let mut v: serde_json::Value = serde_json::from_slice(&receipt).unwrap();
    v["receipt"]["reason"] = "retention_expired".into();
    std::fs::write(&rpath, v.to_string()).unwrap();
    let r = pixseal(&[
        "receipt",
        "verify",
        rpath.to_str().unwrap(),
        "--pubkey",
        kpath.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("error[tampered]"));
    // The audit chain holds the CLI's and the service's actions, intact.
    let r = pixseal(&[
        "--data-dir",
        data.path().to_str().unwrap(),
        "audit",
        "verify",
        "--json",
    ]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let v = &json_lines(&r)[0];
    assert_eq!(v["verdict"], "intact");
    assert!(v["entries"].as_u64().unwrap() >= 4, "{v}");
    audit_checkpoint_catches_a_cut_tail(data.path());
}

/// Someone with write access to the database deletes the last audit entries and rewrites the
/// head: `audit verify` alone cannot tell, a signed checkpoint kept off the box can.
fn audit_checkpoint_catches_a_cut_tail(data: &Path) {
    let dir = data.to_str().unwrap();
    let r = pixseal(&["--data-dir", dir, "audit", "checkpoint"]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let cp: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let seen = cp["checkpoint"]["seq"].as_i64().unwrap();
    assert!(seen >= 4, "{cp}");
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("checkpoint.json");
    std::fs::write(&file, &r.stdout).unwrap();
    let against = || {
        pixseal(&[
            "--data-dir",
            dir,
            "audit",
            "verify",
            "--checkpoint",
            file.to_str().unwrap(),
            "--json",
        ])
    };
    // Later entries only extend it.
    let r = pixseal(&[
        "--data-dir",
        dir,
        "tenant",
        "create",
        "later",
        "--region",
        "us",
    ]);
    assert_eq!(r.status.code(), Some(0));
    let r = against();
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );

    // The cut: the last two entries the checkpoint saw (and everything after) go, and the
    // head is rewritten to what is left.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let db = pixseal_store::Db::connect(&format!(
            "sqlite://{}",
            data.join("pixseal.db").display()
        ))
        .await
        .unwrap();
        sqlx::query("DELETE FROM audit_log WHERE seq >= $1")
            .bind(seen - 1)
            .execute(db.pool())
            .await
            .unwrap();
        sqlx::query(
            "UPDATE audit_head SET seq = $1, hash = (SELECT hash FROM audit_log WHERE seq = $1) WHERE id = 1",
        )
        .bind(seen - 2)
        .execute(db.pool())
        .await
        .unwrap();
    });
    let r = pixseal(&["--data-dir", dir, "audit", "verify"]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "the chain alone still looks intact"
    );
    let r = against();
    assert_eq!(r.status.code(), Some(2));
    let v = &json_lines(&r)[0];
    assert_eq!(v["verdict"], "broken", "{v}");
    assert!(v["message"].as_str().unwrap().contains("cut"), "{v}");
    // A checkpoint whose numbers were edited is not this installation's signature.
    let mut forged = cp.clone();
    forged["checkpoint"]["seq"] = (seen - 2).into();
    std::fs::write(&file, forged.to_string()).unwrap();
    let r = against();
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("invalid_signature"));
}

/// `keys.receipt_provider = "transit"` (set through PIXSEAL_KEYS_RECEIPT_PROVIDER): the real
/// `pixseal serve` signs with OpenBao's ed25519 key, and `pixseal receipt verify --pubkey` with
/// the PEM served at /v1/keys/receipts accepts the receipt offline (no configuration, no key
/// service) and refuses it once a field is changed.
#[test]
fn transit_signed_receipt_verifies_offline_with_the_served_key() {
    let Some(bao) = pixseal_testkit::openbao("us eu rot shred") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let env = [
        ("PIXSEAL_KEYS_RECEIPT_PROVIDER", "transit"),
        ("PIXSEAL_KEYS_TRANSIT_ADDR", bao.addr.as_str()),
        ("PIXSEAL_KEYS_TRANSIT_TOKEN", bao.token.as_str()),
    ];
    let mut server = start_env(data.path(), port, &env);
    let key = key_for_env(data.path(), &env);
    let (receipt, key_doc) = upload_and_delete(port, &key);
    server.kill().unwrap();
    server.wait().unwrap();
    // No local receipt key was made: the private key lives in OpenBao only.
    assert!(!data.path().join("receipt-signing.pem").exists());
    let kd: serde_json::Value = serde_json::from_slice(&key_doc).unwrap();
    let rv: serde_json::Value = serde_json::from_slice(&receipt).unwrap();
    assert_eq!(
        rv["key_id"], kd["key_id"],
        "served key id = receipt's key id"
    );
    let work = tempfile::tempdir().unwrap();
    let rpath = work.path().join("receipt.json");
    let kpath = work.path().join("receipts.pem");
    std::fs::write(&rpath, &receipt).unwrap();
    std::fs::write(&kpath, kd["public_key_pem"].as_str().unwrap()).unwrap();
    let verify = |env: &[(&str, &str)], with_pubkey: bool| {
        let mut args = vec!["receipt", "verify", rpath.to_str().unwrap(), "--json"];
        if with_pubkey {
            args.extend(["--pubkey", kpath.to_str().unwrap()]);
        }
        pixseal_env(&args, env)
    };
    let r = verify(&[], true);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let v = &json_lines(&r)[0];
    assert_eq!(v["verdict"], "valid");
    assert_eq!(v["key_id"], kd["key_id"]);
    // Without --pubkey, the configured (Transit) key is used.
    let r = verify(&env, false);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    // `keys list` names the provider and the same key id.
    let r = pixseal_env(
        &[
            "--data-dir",
            data.path().to_str().unwrap(),
            "keys",
            "list",
            "--json",
        ],
        &env,
    );
    let lines = json_lines(&r);
    let rk = lines
        .iter()
        .find(|l| l["key"] == "receipt-signing")
        .expect("receipt-signing line");
    assert_eq!(rk["provider"], "transit");
    assert_eq!(rk["key_id"], kd["key_id"]);
    // A changed field: exit 2, tampered.
    let mut t = rv.clone();
    t["receipt"]["deleted_at"] = "2030-01-01T00:00:00Z".into();
    std::fs::write(&rpath, t.to_string()).unwrap();
    let r = verify(&[], true);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("error[tampered]"));
}

#[test]
fn rotate_then_rewrap_moves_every_stored_data_key_and_content_still_opens() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path().to_str().unwrap();
    let port = free_port();
    let mut server = start(data.path(), port);
    let key = key_for(data.path());
    let photo = std::fs::read(fixtures().join("photos/tiny.gif")).unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (st, body) = http(port, "POST", "/v1/artifacts", Some(&key), &photo).unwrap();
        assert_eq!(st, 201);
        ids.push(
            serde_json::from_slice::<serde_json::Value>(&body).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    server.kill().unwrap();
    server.wait().unwrap();
    let r = pixseal(&["--data-dir", d, "keys", "rewrap", "--json"]);
    assert_eq!(
        json_lines(&r)[0]["already_current"],
        2,
        "nothing to move before a rotation"
    );
    let r = pixseal(&["--data-dir", d, "keys", "rotate", "--region", "us"]);
    assert_eq!(r.status.code(), Some(0));
    let r = pixseal(&["--data-dir", d, "keys", "rewrap", "--json"]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let v = &json_lines(&r)[0];
    assert_eq!(
        (v["rewrapped"].as_u64(), v["failed"].as_u64()),
        (Some(2), Some(0)),
        "{v}"
    );
    let r = pixseal(&["--data-dir", d, "keys", "rewrap", "--json"]);
    assert_eq!(json_lines(&r)[0]["already_current"], 2);
    let mut server = start(data.path(), port);
    for id in &ids {
        let (st, body) = http(
            port,
            "GET",
            &format!("/v1/artifacts/{id}/content"),
            Some(&key),
            b"",
        )
        .unwrap();
        assert_eq!(st, 200);
        assert!(body.starts_with(b"RIFF"));
    }
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn purge_command_runs_a_pass_and_dry_run_deletes_nothing() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path().to_str().unwrap();
    let port = free_port();
    let mut server = start(data.path(), port);
    let key = key_for(data.path());
    let photo = std::fs::read(fixtures().join("photos/tiny.gif")).unwrap();
    let (st, body) = http(
        port,
        "POST",
        "/v1/artifacts?retention_days=7",
        Some(&key),
        &photo,
    )
    .unwrap();
    assert_eq!(st, 201);
    let id = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    server.kill().unwrap();
    server.wait().unwrap();
    for args in [
        &["purge", "--dry-run", "--json"][..],
        &["purge", "--json"][..],
    ] {
        let r = pixseal(&[&["--data-dir", d][..], args].concat());
        assert_eq!(
            r.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&r.stderr)
        );
        let v = &json_lines(&r)[0];
        assert_eq!(
            (v["due"].as_u64(), v["purged"].as_u64()),
            (Some(0), Some(0)),
            "nothing is due yet: {v}"
        );
        if v["dry_run"] == false {
            for count in [
                "failed",
                "resumed",
                "ips_forgotten",
                "codes_forgotten",
                "sessions_ended",
                "challenges_forgotten",
                "pickups_forgotten",
            ] {
                assert!(v[count].is_u64(), "a pass reports {count}: {v}");
            }
        }
    }
    let mut server = start(data.path(), port);
    let (st, _) = http(port, "GET", &format!("/v1/artifacts/{id}"), Some(&key), b"").unwrap();
    assert_eq!(
        st, 200,
        "an artifact within its retention survives a purge pass"
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

/// Uploads tiny.gif, deletes it, and returns the DELETE body (the receipt) and the served receipt
/// key document.
fn upload_and_delete(port: u16, key: &str) -> (Vec<u8>, Vec<u8>) {
    let photo = std::fs::read(fixtures().join("photos/tiny.gif")).unwrap();
    let (st, body) = http(port, "POST", "/v1/artifacts", Some(key), &photo).unwrap();
    assert_eq!(st, 201);
    let id = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, receipt) = http(
        port,
        "DELETE",
        &format!("/v1/artifacts/{id}"),
        Some(key),
        b"",
    )
    .unwrap();
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&receipt));
    let (_, key_doc) = http(port, "GET", "/v1/keys/receipts", None, b"").unwrap();
    (receipt, key_doc)
}

/// With the default log settings, stderr holds one JSON line per request (pixseal's own), and
/// no library's per-upload chatter (c2pa's `progress: phase=…` lines) gets into it.
#[test]
fn the_request_log_is_one_json_line_per_request() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let log_path = data.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut cmd = serve_command(data.path(), port);
    cmd.env_remove("PIXSEAL_LOG").stderr(log);
    let mut server = ready(cmd.spawn().unwrap(), port);
    let key = key_for(data.path());
    let (receipt, _) = upload_and_delete(port, &key);
    assert!(!receipt.is_empty());
    server.kill().unwrap();
    server.wait().unwrap();
    let text = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        !text.contains("phase="),
        "library chatter in the log:\n{text}"
    );
    let routes: Vec<&str> = lines
        .iter()
        .filter(|v| v["fields"]["message"] == "request")
        .filter_map(|v| v["fields"]["route"].as_str())
        .collect();
    for route in ["/v1/artifacts", "/v1/artifacts/{id}", "/v1/keys/receipts"] {
        assert_eq!(
            routes.iter().filter(|r| **r == route).count(),
            1,
            "one line for {route}:\n{text}"
        );
    }
    for v in &lines {
        let pixseal = v["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("pixseal"));
        let loud = matches!(v["level"].as_str(), Some("WARN" | "ERROR"));
        assert!(pixseal || loud, "a library's info line: {v}");
    }
}

/// Secrets given as files (`*_file` settings, named through the environment) reach no log
/// line — at `debug`, every library's included — no `/metrics` sample, no answer body and no
/// CLI output, while the service runs on them: PostgreSQL with a password in its URL, Transit
/// for the data keys and the receipt key.
#[test]
fn secrets_from_files_reach_no_log_metric_or_answer() {
    let Some(bao) = pixseal_testkit::openbao("us eu rot shred") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    // Trust authentication ignores the password, so a canary can stand in for one.
    let password = "PXCANARYdbpw7q";
    let db = pixseal_testkit::fresh_postgres_db("secrets").replacen(
        "postgres://postgres@",
        &format!("postgres://postgres:{password}@"),
        1,
    );
    let (token_file, db_file) = (secrets.path().join("token"), secrets.path().join("db"));
    std::fs::write(&token_file, format!("{}\n", bao.token)).unwrap();
    std::fs::write(&db_file, &db).unwrap();
    let env = [
        ("PIXSEAL_REGIONS", "[\"us\", \"eu\"]"),
        ("PIXSEAL_KEYS_PROVIDER", "transit"),
        ("PIXSEAL_KEYS_RECEIPT_PROVIDER", "transit"),
        ("PIXSEAL_KEYS_TRANSIT_ADDR", bao.addr.as_str()),
        (
            "PIXSEAL_KEYS_TRANSIT_TOKEN_FILE",
            token_file.to_str().unwrap(),
        ),
        (
            "PIXSEAL_SERVER_DATABASE_URL_FILE",
            db_file.to_str().unwrap(),
        ),
    ];
    let port = free_port();
    let log_path = data.path().join("server.log");
    let mut cmd = serve_command(data.path(), port);
    cmd.envs(env)
        .env("PIXSEAL_LOG", "debug")
        .stderr(std::fs::File::create(&log_path).unwrap());
    let mut server = ready(cmd.spawn().unwrap(), port);
    let key = key_for_env(data.path(), &env);
    let mut seen = Vec::new();
    let (receipt, key_doc) = upload_and_delete(port, &key);
    seen.extend([receipt, key_doc]);
    for (method, path, key) in [
        ("GET", "/metrics", None),
        ("GET", "/readyz", None),
        ("GET", "/v1/artifacts", Some("pxk_wrong")),
        ("GET", "/v1/artifacts/nope", Some(key.as_str())),
        ("POST", "/v1/codes/verify", None),
        ("GET", "/no/such/route", None),
    ] {
        let (status, body) = http(port, method, path, key, b"{").unwrap();
        assert!(status > 0, "{path}");
        seen.push(body);
    }
    let cli = pixseal_env(
        &[
            "--data-dir",
            data.path().to_str().unwrap(),
            "keys",
            "list",
            "--json",
        ],
        &env,
    );
    seen.extend([cli.stdout, cli.stderr]);
    server.kill().unwrap();
    server.wait().unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("\"request\""),
        "the log recorded the requests:\n{log}"
    );
    let token = bao.token.as_str();
    for secret in [password, token] {
        assert!(!log.contains(secret), "a secret in the server log");
        for s in &seen {
            assert!(
                !String::from_utf8_lossy(s).contains(secret),
                "a secret in an answer or CLI output: {}",
                String::from_utf8_lossy(s)
            );
        }
    }
}
