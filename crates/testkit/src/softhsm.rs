//! A SoftHSM2 token for the PKCS#11 tests: one per test process, made with Debian's
//! `softhsm2-util`, its keys generated with OpenSC's `pkcs11-tool` (the commands an operator
//! runs, docs/keys.md), in SoftHSM's default token directory.
//!
//! SoftHSM reads the token's files again when another process changes them; a key generated
//! or deleted by `pkcs11-tool` while this process's sessions are busy can make those calls
//! fail with `CKR_GENERAL_ERROR`. Tests that use the token hold [`SoftHsm::lock`] throughout.

use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};

/// Debian's SoftHSM2 PKCS#11 library.
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A token of this test process.
#[derive(Debug, Clone)]
pub struct SoftHsm {
    /// The PKCS#11 library.
    pub module: String,
    /// The token's label (`pixseal-test-<pid>`).
    pub token_label: String,
    /// The user PIN.
    pub pin: String,
}

/// Kinds of key pair a test asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    P256,
    Ed25519,
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (scripts/setup.sh installs it)"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed: {text}");
    text
}

/// This process's token, made on first use. `None` only when PIXSEAL_SKIP_PKCS11=1; a
/// machine without SoftHSM2 fails the test loudly.
pub fn softhsm() -> Option<&'static SoftHsm> {
    static TOKEN: OnceLock<Option<SoftHsm>> = OnceLock::new();
    TOKEN
        .get_or_init(|| {
            if std::env::var("PIXSEAL_SKIP_PKCS11").as_deref() == Ok("1") {
                eprintln!("PIXSEAL_SKIP_PKCS11=1: PKCS#11 tests skipped");
                return None;
            }
            assert!(
                std::path::Path::new(MODULE).exists(),
                "{MODULE} is missing: scripts/setup.sh installs softhsm2 (or set PIXSEAL_SKIP_PKCS11=1)"
            );
            remove_stale_tokens();
            let token = SoftHsm {
                module: MODULE.into(),
                token_label: format!("pixseal-test-{}", std::process::id()),
                pin: "4321-test".into(),
            };
            run(Command::new("softhsm2-util").args([
                "--init-token",
                "--free",
                "--label",
                &token.token_label,
                "--pin",
                &token.pin,
                "--so-pin",
                "8765-test",
            ]));
            Some(token)
        })
        .as_ref()
}

/// Tokens left by test processes that are gone.
fn remove_stale_tokens() {
    let Ok(out) = Command::new("softhsm2-util").arg("--show-slots").output() else {
        return;
    };
    for label in String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Label:"))
        .map(str::trim)
    {
        let Some(pid) = label.strip_prefix("pixseal-test-") else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("softhsm2-util")
                .args(["--delete-token", "--token", label])
                .output();
        }
    }
}

impl SoftHsm {
    /// Serializes the tests of this process that use the token (see the module docs).
    pub fn lock(&self) -> MutexGuard<'static, ()> {
        static LOCK: Mutex<()> = Mutex::new(());
        LOCK.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `pkcs11-tool` on this token, logged in as its user.
    fn logged_in(&self) -> Command {
        let mut c = Command::new("pkcs11-tool");
        c.args(["--module", &self.module, "--token-label", &self.token_label])
            .args(["--login", "--pin", &self.pin]);
        c
    }

    /// Generates a key pair labelled `label` on the token (private key sensitive and not
    /// extractable, as `pkcs11-tool` makes them).
    pub fn generate(&self, label: &str, kind: KeyKind) {
        let key_type = match kind {
            KeyKind::P256 => "EC:prime256v1",
            KeyKind::Ed25519 => "EC:edwards25519",
        };
        run(self.logged_in().args([
            "--keypairgen",
            "--key-type",
            key_type,
            "--label",
            label,
            "--usage-sign",
        ]));
    }

    /// The public key of `label` as `pkcs11-tool` exports it: DER SubjectPublicKeyInfo (it
    /// writes EC keys as DER, Ed25519 keys as PEM).
    pub fn exported_public_key(&self, label: &str) -> Vec<u8> {
        let dir = std::env::temp_dir().join(format!("pixseal-pk-{}-{label}", std::process::id()));
        run(Command::new("pkcs11-tool")
            .args(["--module", &self.module, "--token-label", &self.token_label])
            .args(["--read-object", "--type", "pubkey", "--label", label, "-o"])
            .arg(&dir));
        let bytes = std::fs::read(&dir).expect("exported public key");
        let _ = std::fs::remove_file(&dir);
        match std::str::from_utf8(&bytes) {
            Ok(text) if text.starts_with("-----BEGIN PUBLIC KEY-----") => {
                let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, body)
                    .expect("PEM body")
            }
            _ => bytes,
        }
    }

    /// Deletes both halves of the key pair labelled `label`.
    pub fn delete(&self, label: &str) {
        for class in ["privkey", "pubkey"] {
            run(self
                .logged_in()
                .args(["--delete-object", "--type", class, "--label", label]));
        }
    }
}
