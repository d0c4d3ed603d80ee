//! A tenant's own key through the real binary, against a real OpenBao dev server: `keys
//! wrapping-key`, `tenant wrap-key` (the tenant's side, offline), `tenant import-key` (an
//! operator's token, never echoed), `keys rewrap --tenant`, and the usage errors around them.
//! Set PIXSEAL_SKIP_TRANSIT=1 to skip.

mod common;

use common::{json_lines, pixseal_env};

#[test]
fn a_tenant_brings_its_key_through_the_cli() {
    let Some(bao) = pixseal_testkit::openbao("us eu rot shred") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let env = [
        ("PIXSEAL_REGIONS", "[\"us\"]"),
        ("PIXSEAL_KEYS_PROVIDER", "transit"),
        ("PIXSEAL_KEYS_TRANSIT_ADDR", bao.addr.as_str()),
        ("PIXSEAL_KEYS_TRANSIT_TOKEN", bao.token.as_str()),
    ];
    let run = |args: &[&str]| {
        let mut all = vec!["--data-dir", data_s, "--json"];
        all.extend_from_slice(args);
        pixseal_env(&all, &env)
    };
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let o = run(&["tenant", "create", "byok", "--region", "us"]);
    assert!(o.status.success(), "{}", text(&o));

    // Transit's wrapping key, read with pixseal's token.
    let o = run(&["keys", "wrapping-key"]);
    assert!(o.status.success(), "{}", text(&o));
    let pem = json_lines(&o)[0]["wrapping_key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(pem.contains("BEGIN PUBLIC KEY"), "{pem}");
    let pem_file = dir.path().join("wrapping.pem");
    std::fs::write(&pem_file, &pem).unwrap();

    // The tenant's side: its key (hex) wrapped; the key itself is never printed.
    let key_hex = hex::encode(std::array::from_fn::<u8, 32, _>(|i| {
        (i as u8).wrapping_mul(37) ^ 0x5a
    }));
    let key_file = dir.path().join("tenant.key");
    std::fs::write(&key_file, format!("{key_hex}\n")).unwrap();
    let wrap = |key_file: &std::path::Path| {
        run(&[
            "tenant",
            "wrap-key",
            "--wrapping-key",
            pem_file.to_str().unwrap(),
            "--key-file",
            key_file.to_str().unwrap(),
        ])
    };
    let o = wrap(&key_file);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains(&key_hex));
    let wrapped = json_lines(&o)[0]["wrapped_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let wrapped_file = dir.path().join("tenant.wrapped");
    std::fs::write(&wrapped_file, &wrapped).unwrap();
    // A key of the wrong size is a usage error.
    let short = dir.path().join("short.key");
    std::fs::write(&short, [1u8; 16]).unwrap();
    let o = wrap(&short);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // The operator imports it; the operator's token is used once and never echoed.
    let op_file = dir.path().join("operator.token");
    std::fs::write(&op_file, &bao.root_token).unwrap();
    let name = format!("pixseal-tenant-cli-{}", std::process::id());
    let import = |token_file: &str| {
        run(&[
            "tenant",
            "import-key",
            "byok",
            "--transit-key",
            &name,
            "--wrapped-file",
            wrapped_file.to_str().unwrap(),
            "--operator-token-file",
            token_file,
        ])
    };
    // pixseal's own token may not import: refused, nothing set.
    let app_file = dir.path().join("app.token");
    std::fs::write(&app_file, &bao.token).unwrap();
    let o = import(app_file.to_str().unwrap());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("invalid_key"), "{}", text(&o));
    let o = import(op_file.to_str().unwrap());
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(json_lines(&o)[0]["imported"], true);
    assert!(!text(&o).contains(&bao.root_token));

    // Nothing stored yet, so nothing to move; a tenant without a key is told so.
    let o = run(&["keys", "rewrap", "--tenant", "byok"]);
    assert!(o.status.success(), "{}", text(&o));
    let l = &json_lines(&o)[0];
    assert_eq!(
        (l["status"].as_str(), l["moved"].as_u64()),
        (Some("ok"), Some(0)),
        "{l}"
    );
    let o = run(&["tenant", "create", "plain", "--region", "us"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["keys", "rewrap", "--tenant", "plain"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no_tenant_key"), "{}", text(&o));
    let o = run(&["keys", "rewrap", "--tenant", "nobody"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // The tenant's own Vault needs a token from a file or the environment, never an argument.
    let o = run(&[
        "tenant",
        "set-key",
        "byok",
        "--transit-key",
        "acme",
        "--vault-addr",
        &bao.addr,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("--vault-token-file"), "{}", text(&o));
    let o = run(&[
        "tenant",
        "set-key",
        "byok",
        "--transit-key",
        "acme",
        "--vault-token-file",
        "x",
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "--vault-token-file needs --vault-addr"
    );
}
