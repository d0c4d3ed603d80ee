//! Licences end to end, with the real binary on both sides: `pixseal license issue` on the
//! server's data, devices (each its own machine id and data directory) activating against a
//! running service, seats running out, counts sent after a batch through a recording proxy
//! (what the server received equals the local log, field for field, and names no file),
//! `--offline` and `usage_sync = false` sending nothing, a token run out, a state file moved
//! or edited, a deactivated device and a revoked licence refused at their next batch.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use common::*;
use pixseal_testkit::TestApp;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every byte clients sent through the proxy, one entry per connection in the order they
/// were accepted: `None` while the connection is still open.
type Captured = Arc<Mutex<Vec<Option<Vec<u8>>>>>;

/// The connections accepted so far, once every one of them has closed (a client process can
/// exit before the proxy has finished recording its connection).
async fn settled(c: &Captured) -> Vec<Vec<u8>> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let done: Option<Vec<Vec<u8>>> = c.lock().unwrap().iter().cloned().collect();
        if let Some(done) = done {
            return done;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a proxied connection stayed open"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A TCP proxy in front of `upstream` recording what clients send (the licence server's view
/// of a device, byte for byte).
async fn recording_proxy(upstream: String) -> (String, Captured) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let captured: Captured = Arc::default();
    let log = captured.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let upstream = upstream.clone();
            let log = log.clone();
            let slot = {
                let mut l = log.lock().unwrap();
                l.push(None);
                l.len() - 1
            };
            tokio::spawn(async move {
                let mut server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
                let (mut cr, mut cw) = client.split();
                let (mut sr, mut sw) = server.split();
                let up = async {
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 8192];
                    loop {
                        let n = cr.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        if sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = sw.shutdown().await;
                    seen
                };
                let down = tokio::io::copy(&mut sr, &mut cw);
                let (seen, _) = tokio::join!(up, down);
                log.lock().unwrap()[slot] = Some(seen);
            });
        }
    });
    (url, captured)
}

/// The JSON bodies of the requests in `raw` (one connection may carry several).
fn bodies(raw: &[u8]) -> Vec<Value> {
    let text = String::from_utf8_lossy(raw);
    text.split("\r\n\r\n")
        .skip(1)
        .filter_map(|chunk| {
            let end = chunk.find("POST ").unwrap_or(chunk.len());
            serde_json::from_str(chunk[..end].trim()).ok()
        })
        .collect()
}

/// `pixseal ARGS`, run off the runtime that serves the app.
async fn off_runtime(args: Vec<&str>) -> Output {
    let args: Vec<String> = args.into_iter().map(String::from).collect();
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        pixseal(&a)
    })
    .await
    .unwrap()
}

/// A device: its own machine id, data directory and configuration.
struct Dev {
    dir: PathBuf,
    config: PathBuf,
}

impl Dev {
    fn new(root: &Path, name: &str, machine_id: &str, extra: &str) -> Dev {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("machine-id"), format!("{machine_id}\n")).unwrap();
        let config = dir.join("pixseal.toml");
        std::fs::write(
            &config,
            format!(
                "[license]\nmachine_id_file = {:?}\n{extra}",
                dir.join("machine-id")
            ),
        )
        .unwrap();
        Dev { dir, config }
    }

    fn args<'a>(&'a self, rest: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec![
            "--config",
            self.config.to_str().unwrap(),
            "--data-dir",
            self.dir.to_str().unwrap(),
        ];
        a.extend(rest);
        a
    }

    async fn run(&self, rest: &[&str]) -> Output {
        off_runtime(self.args(rest)).await
    }

    async fn sanitize(&self, extra: &[&str]) -> Output {
        let out = self.dir.join("out");
        let photos = fixtures().join("photos");
        let (g, s) = (photos.join("garden.jpg"), photos.join("street.webp"));
        let mut a = vec!["sanitize", g.to_str().unwrap(), s.to_str().unwrap()];
        a.extend(["-o", out.to_str().unwrap()]);
        a.extend(extra);
        self.run(&a).await
    }

    fn log(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("license/usage.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn inputs() -> Vec<PathBuf> {
    let photos = fixtures().join("photos");
    vec![photos.join("garden.jpg"), photos.join("street.webp")]
}

/// The server's side, run as an operator would: the CLI on the service's own data.
struct Operator {
    config: PathBuf,
}

impl Operator {
    fn new(app: &TestApp) -> Operator {
        let config = app.data.path().join("operator.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = {:?}\nregions = [\"us\", \"eu\"]\n",
                app.data.path()
            ),
        )
        .unwrap();
        Operator { config }
    }

    async fn run(&self, rest: &[&str]) -> Output {
        let mut args = vec!["--config", self.config.to_str().unwrap(), "--json"];
        args.extend(rest);
        off_runtime(args).await
    }

    /// A licence for tenant `acme` (made here), valid through 2099: the issue command's lines.
    async fn issue(&self, app: &TestApp, seats: u32) -> Vec<Value> {
        app.key("acme", "us", &["stamp"]).await;
        let seats = seats.to_string();
        let args = ["license", "issue", "--tenant", "acme", "--seats", &seats];
        self.json(&[&args[..], &["--expires", "2099-12-31"]].concat())
            .await
    }

    async fn json(&self, rest: &[&str]) -> Vec<Value> {
        let out = self.run(rest).await;
        assert!(out.status.success(), "{rest:?}: {}", stderr(&out));
        json_lines(&out)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_activate_report_counts_only_and_are_refused_when_turned_off() {
    let app = TestApp::spawn(TestApp::config()).await;
    let op = Operator::new(&app);
    let issued = op.issue(&app, 2).await;
    let key = issued[0]["key"].as_str().unwrap().to_string();
    let lic = issued[0]["id"].as_str().unwrap().to_string();
    assert_eq!(issued[0]["expires_at"], "2099-12-31T23:59:59Z");

    let upstream = app.url.trim_start_matches("http://").to_string();
    let (proxy, captured) = recording_proxy(upstream).await;
    let root = tempfile::tempdir().unwrap();
    let a = Dev::new(root.path(), "a", "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a", "");
    let b = Dev::new(root.path(), "b", "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "");
    let c = Dev::new(root.path(), "c", "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c", "");

    // Two seats: a and b get one, c is told they are taken.
    for d in [&a, &b] {
        let out = d
            .run(&["--json", "license", "activate", &key, "--server", &proxy])
            .await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(json_lines(&out)[0]["state"], "active");
    }
    let out = c
        .run(&["license", "activate", &key, "--server", &proxy])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("seats_exhausted"), "{}", stderr(&out));
    // A key with one character changed is refused by the server.
    let mut forged = key.clone();
    let i = forged.len() - 5;
    let swapped = if &forged[i..=i] == "A" { "B" } else { "A" };
    forged.replace_range(i..=i, swapped);
    let out = c
        .run(&["license", "activate", &forged, "--server", &proxy])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("license_invalid"), "{}", stderr(&out));

    // A batch on device a: processed offline, then the counts are sent, logged first.
    let before = settled(&captured).await.len();
    let out = a.sanitize(&["--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("[sync] sent usage update"),
        "{}",
        stderr(&out)
    );
    let log = a.log();
    let sent: Vec<&Value> = log.iter().filter_map(|e| e.get("sent")).collect();
    let last = *sent.last().unwrap();
    let bytes: u64 = inputs()
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(last["images"], 2);
    assert_eq!(last["bytes"], bytes);
    assert_eq!(last["license"], lic.as_str());
    let mut fields: Vec<&String> = last.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(fields, ["bytes", "device", "images", "license", "version"]);
    assert_eq!(log.last().unwrap()["reply"], "accepted");
    // What the server received is what the log says, field for field, and nothing more.
    let conns = settled(&captured).await[before..].to_vec();
    assert_eq!(conns.len(), 1, "one connection after the batch");
    let received = bodies(&conns[0]);
    assert_eq!(received, vec![last.clone()]);
    let raw = String::from_utf8_lossy(&conns[0]).into_owned();
    for p in inputs() {
        let sha = hex::encode(Sha256::digest(std::fs::read(&p).unwrap()));
        let stem = p.file_stem().unwrap().to_str().unwrap().to_string();
        for secret in [stem, sha, p.display().to_string()] {
            assert!(!raw.contains(&secret), "the report carries {secret}");
        }
    }
    assert!(
        !raw.contains("0a0a0a0a0a0a0a0a"),
        "the raw machine id was sent"
    );
    let out = a.run(&["usage", "log"]).await;
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("usage update: 2 images"), "{shown}");

    // The server lists a's counts (and nothing else about it).
    let devices = op.json(&["license", "devices", &lic]).await;
    let da = devices
        .iter()
        .find(|d| d["device"] == last["device"])
        .unwrap();
    assert_eq!(da["images"], 2);
    assert_eq!(da["bytes"], bytes);
    assert_eq!(devices.len(), 2);

    // --offline, and usage_sync = false, send nothing at all.
    let lines = a.log().len();
    let conns = captured.lock().unwrap().len();
    let out = a.sanitize(&["--offline"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let quiet = Dev {
        dir: a.dir.clone(),
        config: root.path().join("quiet.toml"),
    };
    std::fs::write(
        &quiet.config,
        format!(
            "[license]\nmachine_id_file = {:?}\nusage_sync = false\n",
            a.dir.join("machine-id")
        ),
    )
    .unwrap();
    assert!(quiet.sanitize(&[]).await.status.success());
    assert_eq!(a.log().len(), lines);
    assert_eq!(captured.lock().unwrap().len(), conns);

    // Another machine cannot use a's state, and an edited token does not verify.
    let moved = Dev::new(root.path(), "moved", "0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d", "");
    std::fs::create_dir_all(moved.dir.join("license")).unwrap();
    let state = std::fs::read_to_string(a.dir.join("license/license.json")).unwrap();
    std::fs::write(moved.dir.join("license/license.json"), &state).unwrap();
    let out = moved.sanitize(&[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("another machine"), "{}", stderr(&out));
    let mut v: Value = serde_json::from_str(&state).unwrap();
    v["token"]["token"]["valid_until"] = "2199-01-01T00:00:00Z".into();
    std::fs::write(a.dir.join("license/license.json"), v.to_string()).unwrap();
    let out = a.sanitize(&[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not verify"), "{}", stderr(&out));
    std::fs::write(a.dir.join("license/license.json"), &state).unwrap();

    // A token issued long ago has run out: refused offline until the device checks in.
    app.state.services.clock.advance(-15 * 86_400_000);
    assert!(a.run(&["license", "check"]).await.status.success());
    app.state.services.clock.advance(15 * 86_400_000);
    let out = a.sanitize(&[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("license_token_expired"),
        "{}",
        stderr(&out)
    );
    assert!(a.run(&["license", "check"]).await.status.success());
    assert!(a.sanitize(&["--offline"]).await.status.success());

    // Deactivating b frees its seat for c; b's next check-in is refused, then b is refused.
    let b_device = json_lines(&b.run(&["--json", "license", "status"]).await)[0]["device"]
        .as_str()
        .unwrap()
        .to_string();
    op.json(&["license", "deactivate", &lic, &b_device]).await;
    let out = c
        .run(&["license", "activate", &key, "--server", &proxy])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = b.sanitize(&[]).await;
    assert!(out.status.success(), "the batch itself ran offline");
    assert!(
        stderr(&out).contains("device_deactivated"),
        "{}",
        stderr(&out)
    );
    let out = b.sanitize(&[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("license_refused"), "{}", stderr(&out));

    // Revoking the licence: a's next check-in is refused, and so is its next batch.
    op.json(&["license", "revoke", &lic]).await;
    let out = a.run(&["license", "check"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("license_revoked"), "{}", stderr(&out));
    let out = a.sanitize(&[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("revoked"), "{}", stderr(&out));
    let listed = op.json(&["license", "list", "--tenant", "acme"]).await;
    assert_eq!(listed[0]["state"], "revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_licence_refuses_an_unlicensed_device() {
    let root = tempfile::tempdir().unwrap();
    let d = Dev::new(
        root.path(),
        "d",
        "0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e",
        "required = true\n",
    );
    let out = d.sanitize(&[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("license_required"),
        "{}",
        stderr(&out)
    );
    assert!(!d.dir.join("out").exists(), "nothing was processed");
    let free = Dev::new(root.path(), "f", "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f", "");
    assert!(free.sanitize(&[]).await.status.success());
    assert!(
        !free.dir.join("license").exists(),
        "an unlicensed device sends and logs nothing"
    );
}

/// The counts go out only after the last output is written, and without a network the batch
/// still succeeds and its counts wait for the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_leave_after_the_batch_and_wait_when_there_is_no_network() {
    if !available("strace", &["-V"]) {
        return missing("strace not found");
    }
    if !available("unshare", &["-rn", "true"]) {
        return missing("unshare -rn not permitted here");
    }
    let app = TestApp::spawn(TestApp::config()).await;
    let op = Operator::new(&app);
    let issued = op.issue(&app, 1).await;
    let key = issued[0]["key"].as_str().unwrap().to_string();
    let root = tempfile::tempdir().unwrap();
    let d = Dev::new(root.path(), "d", "1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a", "");
    assert!(
        d.run(&["license", "activate", &key, "--server", &app.url])
            .await
            .status
            .success()
    );

    // No network: processed, the report could not go, the counts are kept.
    let out_dir = d.dir.join("out");
    let mut args: Vec<String> = d
        .args(&["sanitize"])
        .into_iter()
        .map(String::from)
        .collect();
    args.extend(inputs().iter().map(|p| p.display().to_string()));
    args.extend(["-o".into(), out_dir.display().to_string()]);
    let out = tokio::task::spawn_blocking({
        let args = args.clone();
        move || {
            Command::new("unshare")
                .args(["-rn", "--"])
                .arg(bin())
                .args(&args)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("license_unreachable"),
        "{}",
        stderr(&out)
    );
    let status = json_lines(&d.run(&["--json", "license", "status"]).await)[0].clone();
    assert_eq!(status["pending"]["images"], 2);

    // With the network, under strace: every output renamed into place before the first
    // socket that is not a Unix one; the report carries both batches.
    let trace = root.path().join("trace");
    let out = tokio::task::spawn_blocking({
        let trace = trace.clone();
        move || {
            Command::new("strace")
                .args([
                    "-f",
                    "-qq",
                    "-e",
                    "trace=network,rename,renameat,renameat2",
                    "-o",
                ])
                .arg(&trace)
                .arg("--")
                .arg(bin())
                .args(&args)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let calls = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = calls.lines().collect();
    let first_socket = lines
        .iter()
        .position(|l| l.contains(" socket(") && !l.contains("(AF_UNIX"))
        .expect("the report opened a socket");
    let last_output = lines
        .iter()
        .rposition(|l| {
            l.contains("rename") && l.contains(".partial-") && !l.contains("license.json")
        })
        .expect("outputs were renamed into place");
    assert!(
        last_output < first_socket,
        "a socket was opened while processing:\n{calls}"
    );
    let sent: Vec<Value> = d
        .log()
        .into_iter()
        .filter_map(|e| e.get("sent").cloned())
        .collect();
    assert_eq!(sent.last().unwrap()["images"], 4);
    assert_eq!(d.log().last().unwrap()["reply"], "accepted");
    let devices = op
        .json(&["license", "devices", issued[0]["id"].as_str().unwrap()])
        .await;
    assert_eq!(devices[0]["images"], 4);
}
