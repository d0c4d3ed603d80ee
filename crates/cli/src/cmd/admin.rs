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
    /// Seal the tenant's new artifacts under a master key of its own in the installation's
    /// Transit (docs/keys.md); disabling or deleting that key there makes them unreadable.
    SetKey {
        name: String,
        /// The Transit key (type aes256-gcm96), made by an operator beforehand.
        #[arg(long)]
        transit_key: String,
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
        let s = super::services(config).await?;
        match args {
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
            TenantArgs::SetKey { name, transit_key } => {
                s.set_tenant_key(&Actor::Cli, &name, &transit_key).await?;
                say(
                    json,
                    json!({"tenant": name, "status": "ok", "transit_key": transit_key}),
                    format!(
                        "tenant {name}: new artifacts are sealed under transit key {transit_key}; \
                         those stored before stay under the key that sealed them"
                    ),
                );
            }
        }
        Ok(())
    });
    res.map_or_else(|e| super::fail(&e, json), |()| Outcome::Ok)
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
