//! Keys on a PKCS#11 token (an HSM; SoftHSM2 in the tests), through the `cryptoki` crate: the
//! C2PA claim-signing key (`[provenance].signer = "pkcs11"`, [`Pkcs11ClaimKey`]) and the
//! deletion-receipt key (`[keys].receipt_provider = "pkcs11"`, [`Pkcs11ReceiptSigner`]). The
//! private keys never leave the token: pixseal finds them by label and asks the token to sign.
//!
//! A token session is not shareable between threads, and a token call can hang (a network HSM,
//! a removed device): each [`Pkcs11Token`] owns one logged-in session on a thread of its own,
//! callers hand it work and wait at most `[pkcs11].timeout_ms`, then report `key_unavailable`.
//! A session the token dropped (closed, logged out, device removed) is opened again, with
//! backoff, up to three tries; a wrong PIN is never retried (tokens lock after a few).

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use pixseal_proof::{Receipt, ReceiptError, ReceiptPublicKey, ReceiptSigner, SignedReceipt};
use pixseal_provenance::{HeldKey, ProvenanceError, SignAlg, SignerKind};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use zeroize::Zeroizing;

use crate::error::{Result, SealError};
use crate::secret::Secret;
use crate::transit_claims::ED25519_SPKI_PREFIX;

/// `[pkcs11]` settings: the token that holds the claim-signing and/or receipt-signing keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pkcs11Config {
    /// The token's PKCS#11 library, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: String,
    /// Label of the token that holds the keys.
    pub token_label: String,
    /// The token's user PIN.
    pub pin: Secret,
    /// A file holding the PIN instead (read at start; trailing whitespace dropped).
    pub pin_file: String,
    /// Label of the C2PA claim-signing key pair (EC P-256, P-384 or Ed25519).
    pub claim_key_label: String,
    /// Label of the deletion-receipt key pair (Ed25519).
    pub receipt_key_label: String,
    /// Milliseconds one token call may take before it counts as unavailable.
    pub timeout_ms: u64,
}

impl Default for Pkcs11Config {
    fn default() -> Self {
        Pkcs11Config {
            module: String::new(),
            token_label: String::new(),
            pin: Secret::default(),
            pin_file: String::new(),
            claim_key_label: "pixseal-c2pa".into(),
            receipt_key_label: "pixseal-receipts".into(),
            timeout_ms: 2000,
        }
    }
}

/// Tries of one token call whose session was lost.
const ATTEMPTS: u32 = 3;
/// Wait before the second try; doubled for the third.
const BACKOFF: Duration = Duration::from_millis(100);

/// One context per library per process: `C_Initialize` is process-wide and finalizing one
/// context would pull the token out from under the others.
fn context(module: &str) -> Result<Pkcs11> {
    static CONTEXTS: OnceLock<Mutex<HashMap<String, Pkcs11>>> = OnceLock::new();
    let mut map = CONTEXTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(ctx) = map.get(module) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(module).map_err(|e| {
        SealError::Config(format!("pkcs11.module {module:?} cannot be loaded: {e}"))
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(unavailable(&format!("initializing {module:?}"), e)),
    }
    map.insert(module.to_owned(), ctx.clone());
    Ok(ctx)
}

fn unavailable(what: &str, e: CkError) -> SealError {
    SealError::KeyUnavailable(format!("pkcs11: {what}: {e}"))
}

/// Errors after which a fresh session may succeed.
fn session_lost(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::UserNotLoggedIn
                | RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::TokenNotPresent,
            _
        )
    )
}

/// Work handed to the thread that owns a `W`.
type Job<W> = Box<dyn FnOnce(&mut W) + Send>;

/// A thread that owns a `W` and runs the work handed to it, one job at a time; callers wait
/// at most `timeout` for each answer.
struct Owned<W> {
    jobs: Mutex<Option<mpsc::Sender<Job<W>>>>,
    /// Closed when the owning thread has dropped its state (closed the session).
    finished: Mutex<mpsc::Receiver<()>>,
    timeout: Duration,
    label: String,
}

/// The owning thread ends when the last handle goes, and is waited for (up to the timeout):
/// a session still closing while the process exits runs into the token library's own
/// teardown, which crashed SoftHSM2 in the tests.
impl<W> Drop for Owned<W> {
    fn drop(&mut self) {
        self.jobs
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let finished = self.finished.get_mut().unwrap_or_else(|p| p.into_inner());
        let _ = finished.recv_timeout(self.timeout);
    }
}

impl<W: Send + 'static> Owned<W> {
    fn spawn(label: &str, timeout: Duration, mut state: W) -> Result<Self> {
        let (tx, rx) = mpsc::channel::<Job<W>>();
        let (done, finished) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name(format!("pkcs11 {label}"))
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job(&mut state);
                }
                drop(state);
                drop(done);
            })
            .map_err(|e| SealError::Internal(format!("pkcs11 worker thread: {e}")))?;
        Ok(Owned {
            jobs: Mutex::new(Some(tx)),
            finished: Mutex::new(finished),
            timeout,
            label: label.to_owned(),
        })
    }

    /// Hands `job` to the owning thread and waits at most the timeout.
    fn call<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut W) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = mpsc::sync_channel(1);
        let gone = || SealError::KeyUnavailable("pkcs11: the token's thread is gone".into());
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .ok_or_else(gone)?
            .send(Box::new(move |w: &mut W| {
                let _ = reply.send(job(w));
            }))
            .map_err(|_| gone())?;
        answer.recv_timeout(self.timeout).unwrap_or_else(|_| {
            Err(SealError::KeyUnavailable(format!(
                "pkcs11: token {:?} did not answer within {} ms",
                self.label,
                self.timeout.as_millis()
            )))
        })
    }
}

/// The thread that owns a token session.
struct Worker {
    ctx: Pkcs11,
    slot: Slot,
    pin: Zeroizing<String>,
    session: Option<Session>,
}

impl Worker {
    fn session(&mut self) -> std::result::Result<&Session, CkError> {
        if self.session.is_none() {
            let s = self.ctx.open_ro_session(self.slot)?;
            let pin = AuthPin::from(self.pin.as_str().to_owned());
            match s.login(UserType::User, Some(&pin)) {
                // Login state is per token and process: another session may have done it.
                Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
                Err(e) => return Err(e),
            }
            self.session = Some(s);
        }
        Ok(self.session.as_ref().expect("opened above"))
    }

    /// Runs `f` on the session, opening it again (with backoff) when the token lost it.
    fn run<T>(
        &mut self,
        what: &str,
        f: impl Fn(&Session) -> std::result::Result<T, CkError>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            let res = self.session().and_then(&f);
            match res {
                Ok(v) => return Ok(v),
                Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLocked, _)) => {
                    return Err(SealError::PermissionDenied(format!(
                        "pkcs11: the token refused the PIN ({what}); not retried, so as not to \
                         lock it"
                    )));
                }
                Err(e) if session_lost(&e) && attempt + 1 < ATTEMPTS => {
                    self.session = None;
                    std::thread::sleep(BACKOFF * (1 << attempt));
                    attempt += 1;
                }
                Err(e) => {
                    if session_lost(&e) {
                        self.session = None;
                    }
                    return Err(unavailable(what, e));
                }
            }
        }
    }
}

/// A logged-in session on one token, owned by a thread of its own. See the module docs.
pub struct Pkcs11Token {
    worker: Owned<Worker>,
}

impl std::fmt::Debug for Pkcs11Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Token")
            .field("label", &self.worker.label)
            .field("timeout", &self.worker.timeout)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Token {
    /// Loads the module, finds the token by label and logs in (a wrong PIN or a missing token
    /// is reported now, not at the first signature).
    pub fn open(config: &Pkcs11Config) -> Result<Arc<Self>> {
        if config.module.is_empty() || config.token_label.is_empty() {
            return Err(SealError::Config(
                "pkcs11.module and pkcs11.token_label must be set".into(),
            ));
        }
        if config.pin.is_empty() {
            return Err(SealError::Config(
                "pkcs11.pin (or pkcs11.pin_file) must be set".into(),
            ));
        }
        let ctx = context(&config.module)?;
        let slots = ctx
            .get_slots_with_token()
            .map_err(|e| unavailable("listing slots", e))?;
        let mut found = None;
        for slot in slots {
            let info = ctx
                .get_token_info(slot)
                .map_err(|e| unavailable("reading token info", e))?;
            if info.label().trim_end() == config.token_label {
                found = Some(slot);
                break;
            }
        }
        let slot = found.ok_or_else(|| {
            SealError::KeyNotFound(format!(
                "pkcs11: no token labelled {:?} in {:?}",
                config.token_label, config.module
            ))
        })?;
        let worker = Worker {
            ctx,
            slot,
            pin: Zeroizing::new(config.pin.expose().to_owned()),
            session: None,
        };
        let timeout = Duration::from_millis(config.timeout_ms.max(1));
        let token = Arc::new(Pkcs11Token {
            worker: Owned::spawn(&config.token_label, timeout, worker)?,
        });
        token.call(|w| w.run("logging in", |_| Ok(())))?;
        Ok(token)
    }

    fn call<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Worker) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.worker.call(job)
    }

    /// The key pair labelled `label`: the private key's handle and the public key as DER
    /// SubjectPublicKeyInfo with the algorithm it signs with.
    fn key_pair(&self, label: &str) -> Result<(ObjectHandle, SignAlg, Vec<u8>)> {
        let label = label.to_owned();
        self.call(move |w| {
            let what = format!("finding key {label:?}");
            let (private, public) = w.run(&what, |s| {
                let find = |class| {
                    s.find_objects(&[
                        Attribute::Class(class),
                        Attribute::Label(label.as_bytes().to_vec()),
                    ])
                };
                Ok((
                    find(ObjectClass::PRIVATE_KEY)?,
                    find(ObjectClass::PUBLIC_KEY)?,
                ))
            })?;
            let one = |v: Vec<ObjectHandle>, which: &str| match v.as_slice() {
                [h] => Ok(*h),
                [] => Err(SealError::KeyNotFound(format!(
                    "pkcs11: no {which} key labelled {label:?} on the token"
                ))),
                _ => Err(SealError::Config(format!(
                    "pkcs11: {} {which} keys are labelled {label:?}; labels must be unique",
                    v.len()
                ))),
            };
            let (private, public) = (one(private, "private")?, one(public, "public")?);
            let attrs = w.run(&what, |s| {
                s.get_attributes(
                    public,
                    &[
                        AttributeType::KeyType,
                        AttributeType::EcParams,
                        AttributeType::EcPoint,
                    ],
                )
            })?;
            let (mut kind, mut params, mut point) = (None, Vec::new(), Vec::new());
            for a in attrs {
                match a {
                    Attribute::KeyType(k) => kind = Some(k),
                    Attribute::EcParams(p) => params = p,
                    Attribute::EcPoint(p) => point = p,
                    _ => {}
                }
            }
            let (alg, spki) = public_key(kind, &params, &point)
                .map_err(|m| SealError::Config(format!("pkcs11 key {label:?}: {m}")))?;
            Ok((private, alg, spki))
        })
    }

    fn sign(&self, key: ObjectHandle, alg: SignAlg, data: &[u8]) -> Result<Vec<u8>> {
        // ECDSA over a digest made here: CKM_ECDSA is the mechanism every token has.
        let input = match alg {
            SignAlg::Es256 => sha2::Sha256::digest(data).to_vec(),
            SignAlg::Es384 => sha2::Sha384::digest(data).to_vec(),
            SignAlg::Ed25519 => data.to_vec(),
        };
        self.call(move |w| {
            w.run("signing", |s| {
                let mech = match alg {
                    SignAlg::Es256 | SignAlg::Es384 => Mechanism::Ecdsa,
                    SignAlg::Ed25519 => {
                        Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure))
                    }
                };
                s.sign(&mech, key, &input)
            })
        })
    }
}

/// DER of the named curves' OIDs as CKA_EC_PARAMS holds them.
const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384_OID: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// `PrintableString "edwards25519"`, the other form tokens use for Ed25519.
const ED25519_NAME: &[u8] = b"\x13\x0cedwards25519";

/// CKA_EC_POINT is a DER OCTET STRING around the point on most tokens, the bare point on some.
fn bare_point(point: &[u8], len: usize) -> Option<&[u8]> {
    match point {
        p if p.len() == len => Some(p),
        [0x04, n, rest @ ..] if *n as usize == len && rest.len() == len => Some(rest),
        _ => None,
    }
}

/// The algorithm and DER SubjectPublicKeyInfo of a token's public key object.
fn public_key(
    kind: Option<KeyType>,
    params: &[u8],
    point: &[u8],
) -> std::result::Result<(SignAlg, Vec<u8>), String> {
    use p256::pkcs8::EncodePublicKey;
    let der = |r: std::result::Result<p256::pkcs8::Document, _>| {
        r.map(|d| d.as_bytes().to_vec())
            .map_err(|e: p256::pkcs8::spki::Error| e.to_string())
    };
    match kind {
        Some(KeyType::EC) if params == P256_OID => {
            let p = bare_point(point, 65).ok_or("unreadable P-256 point")?;
            let k = p256::PublicKey::from_sec1_bytes(p).map_err(|_| "invalid P-256 point")?;
            Ok((SignAlg::Es256, der(k.to_public_key_der())?))
        }
        Some(KeyType::EC) if params == P384_OID => {
            let p = bare_point(point, 97).ok_or("unreadable P-384 point")?;
            let k = p384::PublicKey::from_sec1_bytes(p).map_err(|_| "invalid P-384 point")?;
            Ok((SignAlg::Es384, der(k.to_public_key_der())?))
        }
        Some(KeyType::EC_EDWARDS) if params == ED25519_OID || params == ED25519_NAME => {
            let p = bare_point(point, 32).ok_or("unreadable Ed25519 point")?;
            Ok((SignAlg::Ed25519, [&ED25519_SPKI_PREFIX[..], p].concat()))
        }
        Some(KeyType::EC | KeyType::EC_EDWARDS) => {
            Err("a curve other than P-256, P-384 or Ed25519".into())
        }
        _ => Err("not an EC or Ed25519 key pair".into()),
    }
}

/// The C2PA claim-signing key on a token. See the module docs.
pub struct Pkcs11ClaimKey {
    token: Arc<Pkcs11Token>,
    label: String,
    handle: ObjectHandle,
    alg: SignAlg,
    public: Vec<u8>,
}

impl Pkcs11ClaimKey {
    /// The key pair `config.claim_key_label` on `token`.
    pub fn open(token: Arc<Pkcs11Token>, config: &Pkcs11Config) -> Result<Self> {
        let label = config.claim_key_label.clone();
        let (handle, alg, public) = token.key_pair(&label)?;
        Ok(Pkcs11ClaimKey {
            token,
            label,
            handle,
            alg,
            public,
        })
    }
}

impl HeldKey for Pkcs11ClaimKey {
    fn kind(&self) -> SignerKind {
        SignerKind::Pkcs11
    }
    fn alg(&self) -> SignAlg {
        self.alg
    }
    fn public_key_der(&self) -> &[u8] {
        &self.public
    }
    fn sign(&self, data: &[u8]) -> std::result::Result<Vec<u8>, ProvenanceError> {
        self.token.sign(self.handle, self.alg, data).map_err(|e| {
            ProvenanceError::Signing(format!("pkcs11 key {:?} ({}): {e}", self.label, e.code()))
        })
    }
}

/// Deletion receipts signed by an Ed25519 key on a token: the `pkcs11`
/// [`pixseal_proof::ReceiptSigner`]. Every signature is checked against the public key before
/// a receipt is handed out.
pub struct Pkcs11ReceiptSigner {
    token: Arc<Pkcs11Token>,
    label: String,
    handle: ObjectHandle,
    public: ReceiptPublicKey,
}

impl std::fmt::Debug for Pkcs11ReceiptSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11ReceiptSigner")
            .field("token", &self.token)
            .field("label", &self.label)
            .field("key_id", &self.public.key_id())
            .finish_non_exhaustive()
    }
}

impl Pkcs11ReceiptSigner {
    /// The key pair `config.receipt_key_label` on `token`; it must be Ed25519.
    pub fn open(token: Arc<Pkcs11Token>, config: &Pkcs11Config) -> Result<Self> {
        let label = config.receipt_key_label.clone();
        let (handle, alg, spki) = token.key_pair(&label)?;
        if alg != SignAlg::Ed25519 {
            return Err(SealError::Config(format!(
                "pkcs11 key {label:?} is not Ed25519; receipts need an Ed25519 key"
            )));
        }
        let public = ReceiptPublicKey::from_raw(&spki[ED25519_SPKI_PREFIX.len()..])
            .map_err(|e| SealError::Config(format!("pkcs11 key {label:?}: {e}")))?;
        Ok(Pkcs11ReceiptSigner {
            token,
            label,
            handle,
            public,
        })
    }
}

fn receipt_error(e: SealError) -> ReceiptError {
    match e {
        SealError::KeyUnavailable(m) => ReceiptError::Unavailable(m),
        other => ReceiptError::Key(format!("pkcs11 ({}): {other}", other.code())),
    }
}

impl ReceiptSigner for Pkcs11ReceiptSigner {
    fn provider(&self) -> &'static str {
        "pkcs11"
    }

    fn public_key(&self) -> &ReceiptPublicKey {
        &self.public
    }

    fn sign_message(&self, message: &[u8]) -> std::result::Result<Vec<u8>, ReceiptError> {
        self.token
            .sign(self.handle, SignAlg::Ed25519, message)
            .map_err(receipt_error)
    }

    fn sign(&self, receipt: Receipt) -> std::result::Result<SignedReceipt, ReceiptError> {
        let sig = self.sign_message(&receipt.signed_bytes())?;
        self.public.attach(receipt, &sig)
    }

    /// The token answers and the key still signs for the public key being served.
    fn check(&self) -> std::result::Result<(), ReceiptError> {
        let probe = b"pixseal receipt-signer probe v1\n";
        let sig = self.sign_message(probe)?;
        let sig = ed25519_dalek::Signature::from_slice(&sig)
            .map_err(|_| ReceiptError::Key("pkcs11: malformed Ed25519 signature".into()))?;
        self.public
            .verifying_key()
            .verify_strict(probe, &sig)
            .map_err(|_| {
                ReceiptError::Key(format!(
                    "pkcs11 key {:?} no longer signs for the public key being served",
                    self.label
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_bare_or_wrapped() {
        let p = [4u8; 65];
        assert_eq!(bare_point(&p, 65), Some(&p[..]));
        let wrapped = [&[0x04, 65][..], &p].concat();
        assert_eq!(bare_point(&wrapped, 65), Some(&p[..]));
        assert_eq!(bare_point(&p[..64], 65), None);
        let e = [9u8; 32];
        let wrapped = [&[0x04, 32][..], &e].concat();
        assert_eq!(bare_point(&wrapped, 32), Some(&e[..]));
    }

    #[test]
    fn key_types_and_curves() {
        let (alg, spki) = public_key(
            Some(KeyType::EC_EDWARDS),
            ED25519_OID,
            &[[0x04, 32].as_slice(), &[1; 32]].concat(),
        )
        .unwrap();
        assert_eq!(alg, SignAlg::Ed25519);
        assert_eq!(spki.len(), 44);
        assert!(public_key(Some(KeyType::RSA), &[], &[]).is_err());
        assert!(
            public_key(Some(KeyType::EC), P256_OID, &[4; 65]).is_err(),
            "not on the curve"
        );
        assert!(public_key(Some(KeyType::EC), &[0x06, 0x01, 0x00], &[4; 65]).is_err());
    }

    #[test]
    fn a_call_that_hangs_is_unavailable_after_the_timeout_and_the_next_waits_its_turn() {
        let owned = Owned::spawn("stuck", Duration::from_millis(100), ()).unwrap();
        let t0 = std::time::Instant::now();
        let e = owned
            .call(|_| {
                std::thread::sleep(Duration::from_secs(3));
                Ok(())
            })
            .unwrap_err();
        assert_eq!(e.code(), "key_unavailable", "{e}");
        assert!(
            e.to_string().contains("did not answer within 100 ms"),
            "{e}"
        );
        // Well before the hung call itself ends (3 s), however loaded the machine.
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
        // Queued behind the hung call: it too gives up in time rather than waiting forever.
        let e = owned.call(|_| Ok(1)).unwrap_err();
        assert_eq!(e.code(), "key_unavailable");
        // Once the token answers again, so do calls.
        std::thread::sleep(Duration::from_secs(3));
        assert_eq!(owned.call(|_| Ok(7)).unwrap(), 7);
    }

    #[test]
    fn refuses_incomplete_config_and_missing_module() {
        let mut c = Pkcs11Config::default();
        assert_eq!(Pkcs11Token::open(&c).unwrap_err().code(), "config");
        c.module = "/nonexistent/libpkcs11.so".into();
        c.token_label = "t".into();
        assert_eq!(
            Pkcs11Token::open(&c).unwrap_err().code(),
            "config",
            "no PIN"
        );
        c.pin = Secret::new("1234");
        let e = Pkcs11Token::open(&c).unwrap_err();
        assert_eq!(e.code(), "config", "{e}");
        assert!(!e.to_string().contains("1234"));
    }
}
