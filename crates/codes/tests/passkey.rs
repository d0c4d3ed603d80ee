//! Passkeys against an independent software authenticator (passkey-rs): a registration our
//! ceremony accepts, a code assertion that checks, and each way an assertion can be wrong
//! refused with its own error.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use pixseal_codes::passkey::{
    NewPasskey, PasskeyAssertion, PasskeyError, PasskeyPolicy, begin_registration,
    finish_registration, new_user_handle, registration_ceremony_id,
};
use pixseal_codes::{MessageCode, SignedCode};
use pixseal_testkit::passkey::{SOFT_AAGUID, SoftPasskey};

const ORIGIN: &str = "http://localhost:8080";

fn policy() -> PasskeyPolicy {
    PasskeyPolicy {
        rp_id: "localhost".into(),
        origins: vec![ORIGIN.into()],
        aaguids: vec![],
    }
}

fn code_data(n: u64, msg: char) -> SignedCode {
    SignedCode {
        code: MessageCode::from_value(n),
        message_sha256: msg.to_string().repeat(64),
        recipient_sha256: "b".repeat(64),
        expires_s: 1_900_000_000,
    }
}

async fn registered(pk: &mut SoftPasskey, policy: &PasskeyPolicy) -> NewPasskey {
    let start = begin_registration(policy, &new_user_handle(), "alice").unwrap();
    let response = pk.register(ORIGIN, &start.options).await.unwrap();
    let body = serde_json::to_vec(&response).unwrap();
    assert_eq!(registration_ceremony_id(&body).unwrap(), start.ceremony_id);
    finish_registration(policy, &start.state, &body).unwrap()
}

async fn assertion(
    pk: &mut SoftPasskey,
    origin: &str,
    data: &SignedCode,
    uv: bool,
) -> PasskeyAssertion {
    let challenge = B64URL.encode(data.passkey_challenge());
    let v = pk
        .assert(origin, "localhost", &challenge, uv)
        .await
        .unwrap();
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn es256_and_eddsa_passkeys_register_and_sign_codes() {
    signs_codes(SoftPasskey::es256(), "ES256").await;
    signs_codes(SoftPasskey::new(), "EdDSA").await;
}

async fn signs_codes(mut pk: SoftPasskey, algorithm: &str) {
    let policy = policy();
    let cred = registered(&mut pk, &policy).await;
    assert_eq!(cred.aaguid, SOFT_AAGUID);
    assert_eq!(cred.public_key.algorithm(), algorithm);

    let data = code_data(1, 'a');
    let a1 = assertion(&mut pk, ORIGIN, &data, true).await;
    assert_eq!(a1.credential_id().unwrap(), cred.credential_id);
    let ok = a1
        .check(
            &policy,
            &cred.public_key,
            &data.passkey_challenge(),
            cred.sign_count,
        )
        .unwrap();
    assert!(ok.sign_count > cred.sign_count);
    // Re-checked later against the RP ID it was made for (a stored level-4 code): still good,
    // and the signed origin is what it was.
    a1.recheck("localhost", &cred.public_key, &data.passkey_challenge())
        .unwrap();
    assert_eq!(a1.origin().as_deref(), Some(ORIGIN));
    assert_eq!(
        a1.recheck(
            "pixseal.example",
            &cred.public_key,
            &data.passkey_challenge()
        ),
        Err(PasskeyError::RpIdHash)
    );

    // Made for another code's data.
    let other = code_data(2, 'c');
    assert_eq!(
        a1.check(&policy, &cred.public_key, &other.passkey_challenge(), 0),
        Err(PasskeyError::Challenge)
    );
    // The counter must move forward: the same assertion again is a replay.
    assert!(matches!(
        a1.check(
            &policy,
            &cred.public_key,
            &data.passkey_challenge(),
            ok.sign_count
        ),
        Err(PasskeyError::Counter { .. })
    ));
    // No user verification.
    let no_uv = assertion(&mut pk, ORIGIN, &data, false).await;
    assert_eq!(
        no_uv.check(&policy, &cred.public_key, &data.passkey_challenge(), 0),
        Err(PasskeyError::UserNotVerified)
    );
    // Signed for a look-alike origin (a subdomain the RP ID covers, not an allowed origin).
    let phished = assertion(&mut pk, "http://evil.localhost:8080", &data, true).await;
    assert!(matches!(
        phished.check(&policy, &cred.public_key, &data.passkey_challenge(), 0),
        Err(PasskeyError::Origin(_))
    ));
    // Any byte changed: the signature no longer verifies.
    let mut forged = a1.clone();
    let mut cdj = B64URL.decode(&forged.response.client_data_json).unwrap();
    cdj.push(b' ');
    forged.response.client_data_json = B64URL.encode(cdj);
    assert_eq!(
        forged.check(&policy, &cred.public_key, &data.passkey_challenge(), 0),
        Err(PasskeyError::Signature)
    );
    // Another passkey's key.
    let mut pk2 = SoftPasskey::new();
    let cred2 = registered(&mut pk2, &policy).await;
    assert_eq!(
        a1.check(&policy, &cred2.public_key, &data.passkey_challenge(), 0),
        Err(PasskeyError::Signature)
    );
    // A policy for another site.
    let elsewhere = PasskeyPolicy {
        rp_id: "pixseal.example".into(),
        ..policy.clone()
    };
    assert_eq!(
        a1.check(&elsewhere, &cred.public_key, &data.passkey_challenge(), 0),
        Err(PasskeyError::RpIdHash)
    );
}

/// Synced passkeys report a counter of 0 every time: each assertion passes the counter check
/// (one-time challenges are what stop a replay there).
#[tokio::test]
async fn a_passkey_without_a_counter_signs_again_and_again() {
    let policy = policy();
    let mut pk = SoftPasskey::es256_without_counter();
    let cred = registered(&mut pk, &policy).await;
    assert_eq!(cred.sign_count, 0);
    for n in 0..3 {
        let data = code_data(10 + n, 'd');
        let a = assertion(&mut pk, ORIGIN, &data, true).await;
        let ok = a
            .check(&policy, &cred.public_key, &data.passkey_challenge(), 0)
            .unwrap();
        assert_eq!(ok.sign_count, 0);
    }
}

#[tokio::test]
async fn registration_refuses_other_origins_models_and_replays() {
    let policy = policy();
    let mut pk = SoftPasskey::new();
    // From an origin the policy does not list.
    let start = begin_registration(&policy, &new_user_handle(), "bob").unwrap();
    let r = pk
        .register("http://evil.localhost:8080", &start.options)
        .await
        .unwrap();
    let e = finish_registration(&policy, &start.state, &serde_json::to_vec(&r).unwrap());
    assert!(matches!(e, Err(PasskeyError::Registration(_))), "{e:?}");
    // A model outside the allow-list.
    let strict = PasskeyPolicy {
        aaguids: vec![[9u8; 16]],
        ..policy.clone()
    };
    let start = begin_registration(&strict, &new_user_handle(), "bob").unwrap();
    let r = pk.register(ORIGIN, &start.options).await.unwrap();
    let e = finish_registration(&strict, &start.state, &serde_json::to_vec(&r).unwrap());
    assert!(matches!(e, Err(PasskeyError::Aaguid(_))), "{e:?}");
    // The answer to one ceremony does not finish another.
    let other = begin_registration(&policy, &new_user_handle(), "bob").unwrap();
    let e = finish_registration(&policy, &other.state, &serde_json::to_vec(&r).unwrap());
    assert!(matches!(e, Err(PasskeyError::Registration(_))), "{e:?}");
    // Not JSON of a registration at all.
    assert!(matches!(
        registration_ceremony_id(b"{}"),
        Err(PasskeyError::Malformed(_))
    ));
}
