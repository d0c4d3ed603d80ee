//! `pixseal codes …` against the embedded database: issue → verify (valid, then used), every
//! exit code, live codes, revoke-all, the level ladder and a level-4 code signed by `codes sign`.

mod common;

use common::*;
use serde_json::Value;

fn run(d: &str, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["--data-dir", d, "--json", "codes"];
    all.extend_from_slice(args);
    let out = pixseal(&all);
    let lines = json_lines(&out);
    assert_eq!(
        lines.len(),
        1,
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap(), lines[0].clone())
}

#[test]
fn codes_commands_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    assert!(
        pixseal(&[
            "--data-dir",
            d,
            "tenant",
            "create",
            "acme",
            "--region",
            "eu"
        ])
        .status
        .success()
    );
    let msg = dir.path().join("msg.txt");
    std::fs::write(&msg, "Invoice 4471: pay 1 200 EUR by Friday.").unwrap();
    let m = msg.to_str().unwrap();
    let issue = [
        "issue",
        "--tenant",
        "acme",
        "--message-file",
        m,
        "--recipient",
        "b@e.org",
    ];

    // By default minting needs a member present (a passkey): the command alone cannot.
    let (rc, v) = run(d, &issue);
    assert_eq!(
        (rc, v["code"].as_str()),
        (2, Some("presence_required")),
        "{v}"
    );
    // The operator opts this account out, on the record; this test then exercises the codes.
    let (rc, v) = run(d, &["presence", "--tenant", "acme", "optional"]);
    assert_eq!(
        (rc, v["presence_required"].as_bool()),
        (0, Some(false)),
        "{v}"
    );

    // Issue and verify: valid once, then used (exit 2), mismatch (exit 2).
    let (rc, v) = run(
        d,
        &[
            "issue",
            "--tenant",
            "acme",
            "--message-file",
            m,
            "--recipient",
            "bob@example.org",
        ],
    );
    assert_eq!((rc, v["status"].as_str()), (0, Some("ok")), "{v}");
    let code = v["code"].as_str().unwrap().to_string();
    let verify = |code: &str, msg_file: &str, rcpt: &str| {
        run(
            d,
            &[
                "verify",
                "--code",
                code,
                "--message-file",
                msg_file,
                "--recipient",
                rcpt,
            ],
        )
    };
    let (rc, v) = verify(&code, m, "Bob@example.org");
    assert_eq!((rc, v["verdict"].as_str()), (0, Some("valid")), "{v}");
    assert_eq!(v["account"]["display_name"], "acme");
    let (rc, v) = verify(&code, m, "bob@example.org");
    assert_eq!(
        (rc, v["verdict"].as_str(), v["status"].as_str()),
        (2, Some("used"), Some("error"))
    );
    let (_, v2) = run(
        d,
        &[
            "issue",
            "--tenant",
            "acme",
            "--message",
            "hello",
            "--recipient",
            "bob@example.org",
        ],
    );
    let (rc, v) = verify(v2["code"].as_str().unwrap(), m, "bob@example.org");
    assert_eq!((rc, v["verdict"].as_str()), (2, Some("mismatch")));
    // A typo: rejected with invalid_code; unknown tenant and conflicting flags: usage.
    let (rc, v) = verify("AAAA-AAAA-AAAA-!", m, "bob@example.org");
    assert_eq!((rc, v["code"].as_str()), (2, Some("invalid_code")), "{v}");
    assert_eq!(
        run(
            d,
            &[
                "issue",
                "--tenant",
                "nobody",
                "--message",
                "x",
                "--recipient",
                "r"
            ]
        )
        .0,
        1
    );
    let out = pixseal(&[
        "--data-dir",
        d,
        "codes",
        "issue",
        "--tenant",
        "acme",
        "--message",
        "x",
        "--message-sha256",
        "00",
        "--recipient",
        "r",
    ]);
    assert_eq!(out.status.code(), Some(1));

    // Live: a code, verified once in its window; revoke-all kills it and the message code.
    let (rc, l) = run(d, &["live", "--tenant", "acme"]);
    assert_eq!(rc, 0, "{l}");
    let sid = l["session_id"].as_str().unwrap().to_string();
    let (_, l2) = run(d, &["live", "--tenant", "acme", "--session", &sid]);
    let lc = l2["code"].as_str().unwrap().to_string();
    let (rc, v) = run(d, &["verify", "--session", &sid, "--code", &lc]);
    assert_eq!((rc, v["verdict"].as_str()), (0, Some("valid")), "{v}");
    let (_, v3) = run(
        d,
        &[
            "issue",
            "--tenant",
            "acme",
            "--message",
            "later",
            "--recipient",
            "bob@example.org",
        ],
    );
    // List: the outstanding codes (ids, never a code); revoke one by id, twice is refused.
    let later = v3["id"].as_str().unwrap();
    let (rc, list) = run(d, &["list", "--tenant", "acme"]);
    assert_eq!(rc, 0, "{list}");
    let ids: Vec<&str> = list["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&later), "{list}");
    assert!(!list.to_string().contains(v3["code"].as_str().unwrap()));
    let (rc, r) = run(d, &["revoke", "--tenant", "acme", later]);
    assert_eq!((rc, r["id"].as_str()), (0, Some(later)), "{r}");
    let (rc, r) = run(d, &["revoke", "--tenant", "acme", later]);
    assert_eq!(rc, 2, "{r}");
    let (rc, r) = run(d, &["revoke-all", "--tenant", "acme"]);
    assert_eq!(
        (
            rc,
            r["revoked_message_codes"].as_u64(),
            r["revoked_live_sessions"].as_u64()
        ),
        (0, Some(ids.len() as u64 - 1), Some(1))
    );
    let (rc, v) = run(
        d,
        &[
            "verify",
            "--code",
            v3["code"].as_str().unwrap(),
            "--message",
            "later",
            "--recipient",
            "bob@example.org",
        ],
    );
    assert_eq!((rc, v["verdict"].as_str()), (2, Some("revoked")));
    let (rc, v) = run(d, &["verify", "--session", &sid, "--code", &lc]);
    assert_eq!((rc, v["verdict"].as_str()), (2, Some("revoked")));

    // Levels: one step at a time with evidence; then level 4 with a device key.
    let (rc, v) = run(
        d,
        &[
            "set-level",
            "--tenant",
            "acme",
            "--level",
            "2",
            "--evidence",
            "x",
        ],
    );
    assert_eq!((rc, v["code"].as_str()), (2, Some("level_not_allowed")));
    for l in ["1", "2", "3"] {
        let (rc, v) = run(
            d,
            &[
                "set-level",
                "--tenant",
                "acme",
                "--level",
                l,
                "--evidence",
                "ID checked by ops",
                "--display-name",
                "ACME GmbH",
            ],
        );
        assert_eq!(rc, 0, "{v}");
    }
    let dk = dir.path().join("device.pem");
    let dks = dk.to_str().unwrap();
    let (rc, pk) = run(d, &["sign", "--device-key", dks, "--public-key"]);
    assert_eq!(rc, 0);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&dk).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let (rc, _) = run(
        d,
        &[
            "set-level",
            "--tenant",
            "acme",
            "--level",
            "4",
            "--evidence",
            "no key yet",
        ],
    );
    assert_eq!(rc, 2, "level 4 needs a device key");
    let (rc, _) = run(
        d,
        &[
            "register-device",
            "--tenant",
            "acme",
            "--public-key",
            pk["public_key"].as_str().unwrap(),
        ],
    );
    assert_eq!(rc, 0);
    let (rc, v) = run(
        d,
        &[
            "set-level",
            "--tenant",
            "acme",
            "--level",
            "4",
            "--evidence",
            "device enrolled in person",
        ],
    );
    assert_eq!((rc, v["level"].as_i64()), (0, Some(4)), "{v}");
    let (rc, v) = run(
        d,
        &[
            "issue",
            "--tenant",
            "acme",
            "--message-file",
            m,
            "--recipient",
            "bob@example.org",
        ],
    );
    assert_eq!((rc, v["code"].as_str()), (2, Some("signature_required")));
    let (rc, signed) = run(
        d,
        &[
            "sign",
            "--device-key",
            dks,
            "--message-file",
            m,
            "--recipient",
            "bob@example.org",
            "--ttl-days",
            "7",
        ],
    );
    assert_eq!(rc, 0, "{signed}");
    let sf = dir.path().join("signed.json");
    std::fs::write(&sf, signed.to_string()).unwrap();
    let (rc, v) = run(
        d,
        &[
            "issue",
            "--tenant",
            "acme",
            "--message-file",
            m,
            "--recipient",
            "bob@example.org",
            "--signed",
            sf.to_str().unwrap(),
        ],
    );
    assert_eq!((rc, v["device_signed"].as_bool()), (0, Some(true)), "{v}");
    assert_eq!(v["code"], signed["code"]);
    // Signed for bob: issuing it for another recipient fails the signature.
    let (rc, v) = run(
        d,
        &[
            "issue",
            "--tenant",
            "acme",
            "--message-file",
            m,
            "--recipient",
            "eve@example.org",
            "--signed",
            sf.to_str().unwrap(),
        ],
    );
    assert_eq!((rc, v["code"].as_str()), (2, Some("invalid_signature")));
    let (rc, v) = verify(signed["code"].as_str().unwrap(), m, "bob@example.org");
    assert_eq!(
        (
            rc,
            v["account"]["level"].as_i64(),
            v["account"]["display_name"].as_str()
        ),
        (0, Some(4), Some("ACME GmbH"))
    );
    let (rc, a) = run(d, &["account", "--tenant", "acme"]);
    assert_eq!(
        (rc, a["device_key_fingerprint"].as_str()),
        (0, pk["device_key_fingerprint"].as_str())
    );

    // Key rotation: `keys rewrap` moves the region's wrapped code secret to the new master key
    // version too, and codes issued before still verify.
    let (_, before) = run(
        d,
        &[
            "issue",
            "--tenant",
            "acme",
            "--signed",
            sf.to_str().unwrap(),
            "--message-file",
            m,
            "--recipient",
            "bob@example.org",
        ],
    );
    assert_eq!(
        before["code"].as_str(),
        Some("conflict"),
        "a signed code is issued once"
    );
    let (_, s2) = run(
        d,
        &[
            "sign",
            "--device-key",
            dks,
            "--message",
            "rotate",
            "--recipient",
            "bob@example.org",
        ],
    );
    let sf2 = dir.path().join("signed2.json");
    std::fs::write(&sf2, s2.to_string()).unwrap();
    let (rc, _) = run(
        d,
        &[
            "issue",
            "--tenant",
            "acme",
            "--signed",
            sf2.to_str().unwrap(),
            "--message",
            "rotate",
            "--recipient",
            "bob@example.org",
        ],
    );
    assert_eq!(rc, 0);
    assert!(
        pixseal(&["--data-dir", d, "keys", "rotate", "--region", "eu"])
            .status
            .success()
    );
    let r = pixseal(&["--data-dir", d, "keys", "rewrap", "--json"]);
    let v = &json_lines(&r)[0];
    assert_eq!(
        (v["rewrapped"].as_u64(), v["failed"].as_u64()),
        (Some(1), Some(0)),
        "{v}"
    );
    let (rc, v) = run(
        d,
        &[
            "verify",
            "--code",
            s2["code"].as_str().unwrap(),
            "--message",
            "rotate",
            "--recipient",
            "bob@example.org",
        ],
    );
    assert_eq!((rc, v["verdict"].as_str()), (0, Some("valid")), "{v}");

    // Flagged: acme issued several codes and verified some; listed with the verified share
    // allowed, not when no verification is tolerated; a second account with codes never
    // verified is flagged even then.
    let flagged = |percent: &str| {
        let (rc, v) = run(
            d,
            &[
                "flagged",
                "--min-issued",
                "2",
                "--max-verified-percent",
                percent,
            ],
        );
        assert_eq!(rc, 0, "{v}");
        v["flagged"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["tenant"].as_str().unwrap().to_string(),
                    a["issued"].as_i64().unwrap(),
                    a["verified"].as_i64().unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    let all = flagged("100");
    let acme = all.iter().find(|a| a.0 == "acme").expect("acme is listed");
    assert!(acme.1 >= 3 && acme.2 >= 1, "{all:?}");
    assert!(flagged("0").iter().all(|a| a.0 != "acme"));
    assert!(
        pixseal(&[
            "--data-dir",
            d,
            "tenant",
            "create",
            "spammer",
            "--region",
            "eu"
        ])
        .status
        .success()
    );
    let (rc, _) = run(d, &["presence", "--tenant", "spammer", "optional"]);
    assert_eq!(rc, 0);
    for i in 0..3 {
        let (rc, _) = run(
            d,
            &[
                "issue",
                "--tenant",
                "spammer",
                "--message",
                &format!("spam {i}"),
                "--recipient",
                "x@example.org",
            ],
        );
        assert_eq!(rc, 0);
    }
    assert!(flagged("0").contains(&("spammer".to_string(), 3, 0)));
    let (rc, _) = run(d, &["flagged", "--hours", "0"]);
    assert_eq!(rc, 2, "a window of 0 hours is refused");

    // The audit chain holds it all and is intact.
    let out = pixseal(&["--data-dir", d, "audit", "verify", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
