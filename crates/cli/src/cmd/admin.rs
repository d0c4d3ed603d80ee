//! `pixseal tenant create|set-key` and `pixseal apikey create|list|revoke`, through the
//! service's tenant and API-key workflows.

use pixseal_service::Actor;
use pixseal_store::Scope;
use serde_json::json;

use crate::Outcome;
use crate::config::Config;

#[derive(clap::Subcommand, Debug)]
pub enum TenantArgs {
    /// Create a tenant pinned to one region.
    Create {
        name: String,
        #[arg(long)]
        region: String,
        /// Default retention of its artifacts (one of [server].retention_days_allowed).
        #[arg(long)]
        retention_days: Option<i64>,
    },
    /// Seal the tenant's new artifacts under a master key of its own, in the installation's
    /// Transit or in the tenant's own Vault/OpenBao (docs/keys.md); disabling or deleting that
    /// key, or revoking the token, makes them unreadable.
    SetKey {
        name: String,
        /// The Transit key (type aes256-gcm96), made beforehand by an operator or the tenant.
        #[arg(long)]
        transit_key: String,
        /// The tenant's own Vault/OpenBao (e.g. https://vault.tenant.example:8200); without
        /// it, the key is in the installation's Transit.
        #[arg(long)]
        vault_addr: Option<String>,
        /// Its Transit mount.
        #[arg(long, default_value = "transit", requires = "vault_addr")]
        vault_mount: String,
        /// A file holding the token pixseal uses in the tenant's Vault (or the environment
        /// variable PIXSEAL_TENANT_VAULT_TOKEN); never given on the command line.
        #[arg(long, requires = "vault_addr")]
        vault_token_file: Option<std::path::PathBuf>,
        /// A private CA certificate (PEM) for the tenant's Vault.
        #[arg(long, requires = "vault_addr")]
        vault_ca_file: Option<std::path::PathBuf>,
    },
    /// On the tenant's side, offline: wrap an AES-256 key for import into the installation's
    /// Transit (RSA-OAEP + AES-KWP, as Transit defines it); prints the wrapped key (base64).
    WrapKey {
        /// Transit's wrapping key, PEM (`pixseal keys wrapping-key` prints it).
        #[arg(long)]
        wrapping_key: std::path::PathBuf,
        /// The key: 32 raw bytes, or 64 hex digits, or base64 of 32 bytes.
        #[arg(long)]
        key_file: std::path::PathBuf,
    },
    /// Import a key the tenant wrapped (`tenant wrap-key`) as a new, never exportable Transit
    /// key with an operator's token, and make it the tenant's key (as `set-key`).
    ImportKey {
        name: String,
        /// Name of the new Transit key (`pixseal-tenant-…` for pixseal's token to use it).
        #[arg(long)]
        transit_key: String,
        /// The wrapped key (the output of `tenant wrap-key`).
        #[arg(long)]
        wrapped_file: std::path::PathBuf,
        /// A file holding an operator token allowed to import keys (or the environment
        /// variable PIXSEAL_TRANSIT_OPERATOR_TOKEN); used for this call only, never stored.
        #[arg(long)]
        operator_token_file: Option<std::path::PathBuf>,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum ApiKeyArgs {
    /// Create an API key (the secret is printed once and stored only as a hash).
    Create {
        #[arg(long)]
        tenant: String,
        /// artifacts:write, artifacts:read, artifacts:delete, codes, stamp, admin (repeatable).
        #[arg(long = "scope", required = true, value_parser = parse_scope)]
        scopes: Vec<Scope>,
    },
    List {
        #[arg(long)]
        tenant: String,
    },
    Revoke {
        #[arg(long)]
        tenant: String,
        id: String,
    },
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    s.parse()
        .map_err(|e: pixseal_store::UnknownValue| e.to_string())
}

fn scopes_text(scopes: &[Scope]) -> String {
    let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    names.join(" ")
}

/// Print one line: the JSON object, or the human text.
fn say(json: bool, v: serde_json::Value, human: String) {
    if json {
        println!("{v}");
    } else {
        println!("{human}");
    }
}

pub fn tenant(config: &Config, args: TenantArgs, json: bool) -> Outcome {
    let res = super::block_on(async {
        if let TenantArgs::WrapKey {
            wrapping_key,
            key_file,
        } = &args
        {
            // On the tenant's machine: no database, no key service.
            let wrapped = wrap_key(wrapping_key, key_file)?;
            say(json, json!({"wrapped_key": *wrapped}), wrapped.to_string());
            return Ok(());
        }
        let s = super::services(config).await?;
        match args {
            TenantArgs::WrapKey { .. } => {}
            TenantArgs::Create {
                name,
                region,
                retention_days,
            } => {
                let t = s
                    .create_tenant(&Actor::Cli, &name, &region, retention_days)
                    .await?;
                say(
                    json,
                    json!({"id": t.id, "name": t.name, "region": t.region, "retention_days": t.retention_days}),
                    format!(
                        "tenant {} created in region {} (retention {} days)",
                        t.name, t.region, t.retention_days
                    ),
                );
            }
            TenantArgs::SetKey {
                name,
                transit_key,
                vault_addr,
                vault_mount,
                vault_token_file,
                vault_ca_file,
            } => {
                let vault = vault_addr
                    .as_ref()
                    .map(|addr| own_vault(addr, &vault_mount, vault_token_file, vault_ca_file))
                    .transpose()?;
                s.set_tenant_key(&Actor::Cli, &name, &transit_key, vault)
                    .await?;
                let place = vault_addr
                    .as_deref()
                    .unwrap_or("the installation's Transit");
                say(
                    json,
                    json!({"tenant": name, "status": "ok", "transit_key": transit_key, "vault_addr": vault_addr}),
                    format!(
                        "tenant {name}: new artifacts are sealed under transit key {transit_key} in \
                         {place}; move those stored before with `pixseal keys rewrap --tenant {name}`"
                    ),
                );
            }
            TenantArgs::ImportKey {
                name,
                transit_key,
                wrapped_file,
                operator_token_file,
            } => {
                let wrapped = zeroize::Zeroizing::new(
                    std::fs::read_to_string(&wrapped_file).map_err(|e| {
                        super::usage(&format!("--wrapped-file {}: {e}", wrapped_file.display()))
                    })?,
                );
                let token = secret_input(
                    operator_token_file,
                    "--operator-token-file",
                    "PIXSEAL_TRANSIT_OPERATOR_TOKEN",
                )?;
                s.import_tenant_key(&Actor::Cli, &name, &transit_key, &wrapped, token)
                    .await?;
                say(
                    json,
                    json!({"tenant": name, "status": "ok", "transit_key": transit_key, "imported": true}),
                    format!(
                        "tenant {name}: key imported as transit key {transit_key} (not exportable); \
                         new artifacts are sealed under it"
                    ),
                );
            }
        }
        Ok(())
    });
    res.map_or_else(|e| super::fail(&e, json), |()| Outcome::Ok)
}

/// `tenant wrap-key`: the key file read in any of its forms, wrapped under the PEM.
fn wrap_key(
    wrapping_key: &std::path::Path,
    key_file: &std::path::Path,
) -> anyhow::Result<zeroize::Zeroizing<String>> {
    use base64::Engine;
    let pem = std::fs::read_to_string(wrapping_key)
        .map_err(|e| super::usage(&format!("--wrapping-key {}: {e}", wrapping_key.display())))?;
    let raw = zeroize::Zeroizing::new(
        std::fs::read(key_file)
            .map_err(|e| super::usage(&format!("--key-file {}: {e}", key_file.display())))?,
    );
    let key = zeroize::Zeroizing::new(if raw.len() == pixseal_seal::byok::IMPORTED_KEY_LEN {
        raw.to_vec()
    } else {
        let text = std::str::from_utf8(&raw)
            .map(str::trim)
            .map_err(|_| super::usage("--key-file: neither 32 raw bytes nor text"))?;
        hex::decode(text)
            .ok()
            .filter(|k| k.len() == pixseal_seal::byok::IMPORTED_KEY_LEN)
            .or_else(|| base64::engine::general_purpose::STANDARD.decode(text).ok())
            .ok_or_else(|| super::usage("--key-file: not 32 bytes, hex or base64"))?
    });
    pixseal_seal::wrap_for_import(&pem, &key)
        .map(zeroize::Zeroizing::new)
        .map_err(|e| super::usage(&e.to_string()))
}

/// A secret from its file, else from the environment variable; never from the command line.
fn secret_input(
    file: Option<std::path::PathBuf>,
    flag: &str,
    var: &str,
) -> anyhow::Result<zeroize::Zeroizing<String>> {
    let raw = zeroize::Zeroizing::new(match file {
        Some(p) => std::fs::read_to_string(&p)
            .map_err(|e| super::usage(&format!("{flag} {}: {e}", p.display())))?,
        None => std::env::var(var).map_err(|_| super::usage(&format!("needs {flag} or {var}")))?,
    });
    let token = zeroize::Zeroizing::new(raw.trim().to_owned());
    if token.is_empty() {
        return Err(super::usage(&format!(
            "the secret from {flag} / {var} is empty"
        )));
    }
    Ok(token)
}

/// The tenant's Vault from `set-key`'s flags: the token from its file or the environment.
fn own_vault(
    addr: &str,
    mount: &str,
    token_file: Option<std::path::PathBuf>,
    ca_file: Option<std::path::PathBuf>,
) -> anyhow::Result<pixseal_service::tenant_keys::OwnVault> {
    let token = secret_input(
        token_file,
        "--vault-token-file",
        "PIXSEAL_TENANT_VAULT_TOKEN",
    )?;
    let ca_pem = ca_file
        .map(|p| {
            std::fs::read_to_string(&p)
                .map_err(|e| super::usage(&format!("--vault-ca-file {}: {e}", p.display())))
        })
        .transpose()?;
    Ok(pixseal_service::tenant_keys::OwnVault {
        addr: addr.to_owned(),
        mount: mount.to_owned(),
        ca_pem,
        token,
    })
}

pub fn apikey(config: &Config, args: ApiKeyArgs, json: bool) -> Outcome {
    let res = super::block_on(async {
        let s = super::services(config).await?;
        match args {
            ApiKeyArgs::Create { tenant, scopes } => {
                let k = s.create_api_key(&Actor::Cli, &tenant, &scopes).await?;
                let human = format!(
                    "API key {} for tenant {} ({}):\n{}\n(shown once; only its hash is stored)",
                    k.id,
                    k.tenant,
                    scopes_text(&k.scopes),
                    k.key
                );
                say(json, serde_json::to_value(&k)?, human);
            }
            ApiKeyArgs::List { tenant } => {
                for k in s.list_api_keys(&tenant).await? {
                    let revoked = k
                        .revoked_at
                        .as_ref()
                        .map(|r| format!(" revoked {r}"))
                        .unwrap_or_default();
                    let human = format!(
                        "{} {} created {}{revoked}",
                        k.id,
                        scopes_text(&k.scopes),
                        k.created_at
                    );
                    say(json, serde_json::to_value(&k)?, human);
                }
            }
            ApiKeyArgs::Revoke { tenant, id } => {
                s.revoke_api_key(&Actor::Cli, &tenant, &id).await?;
                say(
                    json,
                    json!({"id": id, "status": "revoked"}),
                    format!("API key {id} revoked"),
                );
            }
        }
        Ok(())
    });
    res.map_or_else(|e| super::fail(&e, json), |()| Outcome::Ok)
}
