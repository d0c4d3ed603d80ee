//! Slow and silent clients against a real listener: half-sent requests, silent sockets and
//! stalled TLS handshakes are closed by their deadlines, the connection cap holds, and the
//! service keeps answering meanwhile.

use std::time::Duration;

use pixseal_service::Config;
use pixseal_testkit::TestApp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

fn config(head_secs: u64, max_connections: usize) -> Config {
    let mut c = TestApp::config();
    c.server.header_read_timeout_secs = head_secs;
    c.server.max_connections = max_connections;
    c.server.rate_limit_per_ip = 0;
    c
}

fn addr(app: &TestApp) -> String {
    let port = app.url.rsplit(':').next().unwrap();
    format!("127.0.0.1:{port}")
}

/// Wait until the server closes `s` (EOF or reset), at the latest at `deadline`; what it sent
/// before closing.
async fn closed_by(s: &mut TcpStream, deadline: Instant) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => panic!("the server kept the connection open past its deadline"),
            Ok(Ok(0)) | Ok(Err(_)) => return got,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// `/healthz` on a new connection: a pooled one may be closed by the idle deadline just as
/// it is reused, which would fail this check for a reason it is not about.
async fn healthz_within(app: &TestApp, limit: Duration) -> Duration {
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let t = Instant::now();
    let r = tokio::time::timeout(limit, fresh.get(format!("{}/healthz", app.url)).send())
        .await
        .unwrap_or_else(|_| panic!("/healthz did not answer within {limit:?}"))
        .unwrap();
    assert_eq!(r.status(), 200);
    t.elapsed()
}

/// 500 half-sent requests and 20 silent sockets: `/healthz` still answers within 1 s, and
/// every one of them is closed once the head deadline has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_are_closed_by_the_head_deadline() {
    let app = TestApp::spawn(config(2, 1024)).await;
    let opened = Instant::now();
    let mut held = Vec::new();
    for i in 0..520 {
        let mut s = TcpStream::connect(addr(&app)).await.unwrap();
        if i < 500 {
            s.write_all(b"POST /v1/verify HTTP/1.1\r\nHost: localhost\r\nContent-Le")
                .await
                .unwrap();
        }
        held.push(s);
    }
    healthz_within(&app, Duration::from_secs(1)).await;
    let deadline = opened + Duration::from_secs(2 + 4);
    for s in &mut held {
        closed_by(s, deadline).await;
    }
    // And the service is still there for the next client.
    healthz_within(&app, Duration::from_secs(1)).await;
}

/// A request head trickled one byte at a time is still cut off at the head deadline: sending
/// something now and then buys no time.
#[tokio::test]
async fn a_trickled_head_is_cut_off() {
    let app = TestApp::spawn(config(2, 1024)).await;
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    let started = Instant::now();
    let head =
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut closed = false;
    for b in head {
        if s.write_all(&[*b]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if started.elapsed() > Duration::from_secs(8) {
            break;
        }
    }
    if !closed {
        closed_by(&mut s, Instant::now() + Duration::from_secs(2)).await;
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "the trickle was served for {took:?}"
    );
}

/// Beyond `max_connections` a new client waits (in the backlog) until a slot frees: with every
/// slot held by a silent socket, `/healthz` is not answered until the head deadline has
/// closed them, then it is.
#[tokio::test]
async fn the_connection_cap_holds() {
    let app = TestApp::spawn(config(2, 8)).await;
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(TcpStream::connect(addr(&app)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fresh = reqwest::Client::new();
    let waiting = tokio::time::timeout(
        Duration::from_millis(1000),
        fresh.get(format!("{}/healthz", app.url)).send(),
    )
    .await;
    assert!(
        waiting.is_err(),
        "a ninth connection was served while eight were open"
    );
    let r = tokio::time::timeout(
        Duration::from_secs(6),
        fresh.get(format!("{}/healthz", app.url)).send(),
    )
    .await
    .expect("served once the silent sockets were closed")
    .unwrap();
    assert_eq!(r.status(), 200);
}

/// Under TLS the same: a silent socket and a handshake that stops half-way are closed by the
/// head deadline, and the cap counts TLS connections.
#[tokio::test]
async fn tls_handshakes_have_the_same_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let mut c = config(2, 4);
    c.server.tls_cert = cert.display().to_string();
    c.server.tls_key = key.display().to_string();
    let app = TestApp::spawn(c).await;
    let started = Instant::now();
    let mut silent = TcpStream::connect(addr(&app)).await.unwrap();
    let mut half = TcpStream::connect(addr(&app)).await.unwrap();
    // A TLS record header announcing a ClientHello that never comes.
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    let deadline = started + Duration::from_secs(2 + 4);
    closed_by(&mut silent, deadline).await;
    closed_by(&mut half, deadline).await;

    let port: u16 = app.url.rsplit(':').next().unwrap().parse().unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ck.cert.pem().as_bytes()).unwrap())
        .resolve(
            "localhost",
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        )
        .build()
        .unwrap();
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(addr(&app)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiting = tokio::time::timeout(
        Duration::from_millis(1000),
        client.get(format!("{}/healthz", app.url)).send(),
    )
    .await;
    assert!(waiting.is_err(), "the cap counts TLS connections");
    let r = tokio::time::timeout(
        Duration::from_secs(6),
        client.get(format!("{}/healthz", app.url)).send(),
    )
    .await
    .expect("served once the silent sockets were closed")
    .unwrap();
    assert_eq!(r.status(), 200);
}

/// Send raw bytes and read what comes back until the server closes or `wait` passes.
async fn exchange(app: &TestApp, request: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(addr(app)).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let until = Instant::now() + wait;
    while let Ok(Ok(n)) = tokio::time::timeout_at(until, s.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if got.windows(4).any(|w| w == b"\r\n\r\n") && got.ends_with(b"}") {
            break;
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

async fn metric(app: &TestApp, name: &str) -> i64 {
    let text = app
        .client
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

const MIB: u64 = 1024 * 1024;

/// A synthetic photo as a JPEG.
fn jpeg(width: u32, height: u32, seed: u64) -> Vec<u8> {
    let rgb = pixseal_testkit::synthetic_photo(width, height, seed);
    let img = image::RgbImage::from_raw(width, height, rgb).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

fn small_bodies() -> Config {
    let mut c = config(10, 1024);
    c.server.max_body_bytes = MIB;
    c.server.max_inflight_bytes = 2 * MIB;
    c
}

/// A declared length over the limit is refused from the head alone: nothing of the body is
/// read (none is sent here), the answer is the JSON 413 naming the limit.
#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_unread() {
    let app = TestApp::spawn(small_bodies()).await;
    let head = format!(
        "POST /v1/verify HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
        MIB + 1
    );
    let answer = exchange(&app, head.as_bytes(), Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"file_too_large\""), "{answer}");
    assert!(answer.contains("max_body_bytes"), "{answer}");
}

/// Picture bodies share one budget: two uploads that declared 1 MiB each and are still being
/// sent hold all of `max_inflight_bytes`, so a third is answered 503 `busy` with Retry-After
/// before its body is read; once they are gone the budget is whole again.
#[tokio::test]
async fn picture_bodies_share_the_inflight_budget() {
    let app = TestApp::spawn(small_bodies()).await;
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr(&app)).await.unwrap();
        let head = format!(
            "POST /v1/verify HTTP/1.1\r\nHost: localhost\r\nContent-Length: {MIB}\r\n\r\nab"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        slow.push(s);
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while metric(&app, "pixseal_inflight_body_bytes").await < 2 * MIB as i64 {
        assert!(
            Instant::now() < deadline,
            "the slow uploads reserved nothing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let photo = jpeg(64, 64, 1);
    let r = app
        .client
        .post(format!("{}/v1/verify", app.url))
        .body(photo.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "busy");

    drop(slow);
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&app, "pixseal_inflight_body_bytes").await > 0 {
        assert!(
            Instant::now() < deadline,
            "abandoned uploads kept their reservation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = app
        .client
        .post(format!("{}/v1/verify", app.url))
        .body(photo)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// JSON routes take a few KiB, declared or sent chunked, and say so in JSON.
#[tokio::test]
async fn json_bodies_are_small() {
    let app = TestApp::spawn(config(10, 1024)).await;
    let big = format!("{{\"code\":\"{}\"}}", "7".repeat(20_000));
    let r = app
        .client
        .post(format!("{}/v1/codes/verify", app.url))
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "request_too_large");
    let chunked = format!(
        "POST /v1/codes/verify HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    let answer = exchange(&app, chunked.as_bytes(), Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("request_too_large"), "{answer}");
}

/// Only a file whose signature and header pass is parsed at all: a file that is no picture is
/// `unsupported_format` (415), whatever C2PA-looking bytes it carries.
#[tokio::test]
async fn verify_refuses_what_is_not_a_picture_before_parsing_it() {
    let app = TestApp::spawn(config(10, 1024)).await;
    let mut not_a_picture = b"%PDF-1.7\n".to_vec();
    not_a_picture.extend_from_slice(b"jumbc2pa");
    not_a_picture.extend(std::iter::repeat_n(0u8, 4096));
    let r = app
        .client
        .post(format!("{}/v1/verify", app.url))
        .body(not_a_picture)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_format");
}
