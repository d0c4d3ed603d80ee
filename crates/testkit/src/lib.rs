//! Shared test helpers: start the real services the integration tests talk to, through the
//! project's idempotent start scripts, once per test binary.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

#[cfg(feature = "app")]
mod app;
#[cfg(feature = "browser")]
pub mod browser;
pub mod hostile;
#[cfg(feature = "passkey")]
pub mod passkey;
pub mod softhsm;
pub mod video;
#[cfg(feature = "app")]
pub use app::TestApp;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// Run a start script and parse its `export NAME=value` lines.
pub fn run_start_script(script: &str) -> Result<HashMap<String, String>, String> {
    let path = repo_root().join("scripts").join(script);
    let out = Command::new("bash")
        .arg(&path)
        .output()
        .map_err(|e| format!("running {}: {e}", path.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}):\n{}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect())
}

/// A running SeaweedFS S3 endpoint.
#[derive(Debug, Clone)]
pub struct S3 {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
}

/// Start (or reuse) SeaweedFS. Panics with the script's output when it cannot start: a test
/// that needs S3 must fail loudly, never pass without it.
pub fn seaweedfs() -> &'static S3 {
    static S3_ONCE: OnceLock<S3> = OnceLock::new();
    S3_ONCE.get_or_init(|| {
        let env = run_start_script("seaweedfs.sh")
            .unwrap_or_else(|e| panic!("SeaweedFS did not start: {e}"));
        S3 {
            endpoint: env["PIXSEAL_TEST_S3_ENDPOINT"].clone(),
            access_key: env["PIXSEAL_TEST_S3_ACCESS_KEY"].clone(),
            secret_key: env["PIXSEAL_TEST_S3_SECRET_KEY"].clone(),
        }
    })
}

/// A running RFC 3161 time-stamping authority: OpenSSL's responder behind scripts/tsa_server.py.
#[derive(Debug, Clone)]
pub struct Tsa {
    pub url: String,
    /// PEM of the authority's root certificate (trust it to get `timeStamp.trusted`).
    pub root_pem: PathBuf,
}

/// Start (or reuse) the test TSA (scripts/tsa.sh). Panics with the script's output when it
/// cannot start: a test that needs a time-stamp must fail loudly, never pass without one.
pub fn tsa() -> &'static Tsa {
    static TSA: OnceLock<Tsa> = OnceLock::new();
    TSA.get_or_init(|| {
        let env = run_start_script("tsa.sh")
            .unwrap_or_else(|e| panic!("the test TSA did not start: {e}"));
        Tsa {
            url: env["PIXSEAL_TEST_TSA_URL"].clone(),
            root_pem: PathBuf::from(&env["PIXSEAL_TEST_TSA_ROOT"]),
        }
    })
}

/// A running OpenBao dev server with transit enabled (scripts/openbao.sh).
#[derive(Debug, Clone)]
pub struct Bao {
    pub addr: String,
    /// The application token (least-privilege transit policy).
    pub token: String,
    /// The root token (admin operations only).
    pub root_token: String,
}

/// Start (or reuse) OpenBao with one transit key per region in `regions` (space-separated).
/// `None` only when PIXSEAL_SKIP_TRANSIT=1; any failure to start it panics with the script's
/// output, so a test that needs it fails loudly.
pub fn openbao(regions: &str) -> Option<&'static Bao> {
    static BAO: OnceLock<Option<Bao>> = OnceLock::new();
    BAO.get_or_init(|| start_openbao(regions, None)).as_ref()
}

/// A second, separate OpenBao server playing a tenant's own Vault (its own state directory,
/// port and root token; pixseal's keys and app token are there too but go unused). `None`
/// only when PIXSEAL_SKIP_TRANSIT=1.
pub fn tenant_openbao() -> Option<&'static Bao> {
    static BAO: OnceLock<Option<Bao>> = OnceLock::new();
    BAO.get_or_init(|| start_openbao("us", Some("/tmp/pixseal-openbao-tenant")))
        .as_ref()
}

fn start_openbao(regions: &str, state_dir: Option<&str>) -> Option<Bao> {
    if std::env::var("PIXSEAL_SKIP_TRANSIT").as_deref() == Ok("1") {
        eprintln!("PIXSEAL_SKIP_TRANSIT=1: transit tests skipped");
        return None;
    }
    let path = repo_root().join("scripts/openbao.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(&path).env("PIXSEAL_BAO_REGIONS", regions);
    if let Some(dir) = state_dir {
        cmd.env("PIXSEAL_BAO_STATE_DIR", dir);
    }
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/openbao.sh failed ({}); set PIXSEAL_SKIP_TRANSIT=1 to skip transit tests.\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    let vars: HashMap<&str, &str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .collect();
    let get = |k: &str| {
        vars.get(k)
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_else(|| panic!("scripts/openbao.sh printed no {k}:\n{stdout}\n{stderr}"))
    };
    Some(Bao {
        addr: get("BAO_ADDR"),
        token: get("BAO_TOKEN"),
        root_token: get("BAO_ROOT_TOKEN"),
    })
}

/// A fresh, empty PostgreSQL database on the machine's server (127.0.0.1:5432, user postgres,
/// trust auth; override with PIXSEAL_TEST_PG_ADMIN_URL's host/port via PGHOST/PGPORT), returned
/// as a connection URL. Panics when PostgreSQL is unreachable: tests on it must not silently pass.
pub fn fresh_postgres_db(tag: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!(
        "pixseal_test_{tag}_{}_{}",
        std::process::id(),
        n % 1_000_000_000
    );
    let host = std::env::var("PGHOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("PGPORT").unwrap_or_else(|_| "5432".into());
    let out = Command::new("psql")
        .args([
            "-h",
            &host,
            "-p",
            &port,
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
        ])
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run psql: {e}"));
    assert!(
        out.status.success(),
        "creating database {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("postgres://postgres@{host}:{port}/{name}")
}

/// Run `scripts/c2pa_ref.py ARGS` (the reference C2PA library, pdqhash and Pillow, installed
/// by scripts/setup.sh) and return its stdout JSON lines. Panics with its stderr when it
/// fails: interop tests must fail, never pass, without the reference.
pub fn c2pa_ref(args: &[&str]) -> Vec<String> {
    let script = repo_root().join("scripts/c2pa_ref.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "c2pa_ref.py {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(str::to_string)
        .collect()
}

/// A deterministic synthetic "photo" (smooth gradients, a few shapes and fine texture, so it
/// has structure at every scale), 8-bit RGB, rows packed. Different seeds give unrelated
/// pictures.
pub fn synthetic_photo(width: u32, height: u32, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let shapes: Vec<(f32, f32, f32, [f32; 3])> = (0..12)
        .map(|_| {
            let mut r = |n: u64| (rnd() % n) as f32;
            (
                r(1000) / 1000.0,
                r(1000) / 1000.0,
                0.05 + r(250) / 1000.0,
                [r(256), r(256), r(256)],
            )
        })
        .collect();
    let phase = (rnd() % 628) as f32 / 100.0;
    let mut out = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        for x in 0..width {
            let (u, v) = (x as f32 / width as f32, y as f32 / height as f32);
            let mut c = [
                128.0 + 100.0 * (6.0 * u + phase).sin(),
                128.0 + 100.0 * (5.0 * v - phase).cos(),
                128.0 + 80.0 * (4.0 * (u + v) + phase).sin(),
            ];
            for (cx, cy, r, col) in &shapes {
                if (u - cx).powi(2) + (v - cy).powi(2) < r * r {
                    c = *col;
                }
            }
            let t = (((x * 7 + y * 13) ^ (x * y)) % 17) as f32 - 8.0;
            out.extend(c.iter().map(|ch| (ch + t).clamp(0.0, 255.0) as u8));
        }
    }
    out
}
