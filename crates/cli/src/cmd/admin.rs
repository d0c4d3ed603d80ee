//! `pixseal tenant create` and `pixseal apikey create|list|revoke`, against the configured database.

use anyhow::{Result, bail};
use pixseal_store::{Db, DbError};
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
}

#[derive(clap::Subcommand, Debug)]
pub enum ApiKeyArgs {
    /// Create an API key (the secret is printed once and stored only as a hash).
    Create {
        #[arg(long)]
        tenant: String,
        /// artifacts:write, artifacts:read, artifacts:delete, codes, admin (repeatable).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
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

fn finish(r: Result<()>) -> Outcome {
    match r {
        Ok(()) => Outcome::Ok,
        Err(e) => {
            let code = match e.downcast_ref::<DbError>() {
                Some(DbError::NotFound) => "not_found",
                Some(DbError::Conflict(_)) | Some(DbError::Invalid(_)) => "usage",
                _ => "internal",
            };
            eprintln!("error[{code}]: {e:#}");
            if code == "internal" {
                Outcome::Internal
            } else {
                Outcome::Usage
            }
        }
    }
}

async fn db(config: &Config) -> Result<Db> {
    std::fs::create_dir_all(&config.data_dir)?;
    Ok(Db::connect(&config.database_url()).await?)
}

pub fn tenant(config: &Config, args: TenantArgs, json: bool) -> Outcome {
    finish(super::block_on(async {
        let TenantArgs::Create {
            name,
            region,
            retention_days,
        } = args;
        if !config.regions.contains(&region) {
            bail!(DbError::Invalid(format!(
                "region {region:?} is not one of {:?}",
                config.regions
            )));
        }
        let days = retention_days.unwrap_or(config.server.default_retention_days);
        if !config.server.retention_days_allowed.contains(&days) {
            bail!(DbError::Invalid(format!(
                "retention_days must be one of {:?}",
                config.server.retention_days_allowed
            )));
        }
        let db = db(config).await?;
        let t = db.create_tenant(&name, &region, days).await?;
        super::audit::record(&db, "tenant.create", &t.id, "ok", &t.region).await;
        if json {
            println!(
                "{}",
                json!({"id": t.id, "name": t.name, "region": t.region, "retention_days": t.retention_days})
            );
        } else {
            println!(
                "tenant {} created in region {} (retention {} days)",
                t.name, t.region, t.retention_days
            );
        }
        Ok(())
    }))
}

pub fn apikey(config: &Config, args: ApiKeyArgs, json: bool) -> Outcome {
    finish(super::block_on(async {
        let db = db(config).await?;
        match args {
            ApiKeyArgs::Create { tenant, scopes } => {
                let t = db.tenant_by_name(&tenant).await?;
                let (k, secret) = db.create_api_key(&t, &scopes).await?;
                super::audit::record(&db, "apikey.create", &k.id, "ok", &k.scopes.join(" ")).await;
                if json {
                    println!(
                        "{}",
                        json!({"id": k.id, "key": secret, "tenant": t.name, "scopes": k.scopes})
                    );
                } else {
                    println!(
                        "API key {} for tenant {} ({}):\n{secret}\n(shown once; only its hash is stored)",
                        k.id,
                        t.name,
                        k.scopes.join(" ")
                    );
                }
            }
            ApiKeyArgs::List { tenant } => {
                let t = db.tenant_by_name(&tenant).await?;
                for k in db.list_api_keys(&t).await? {
                    if json {
                        println!(
                            "{}",
                            json!({"id": k.id, "scopes": k.scopes, "created_at": k.created_at, "revoked_at": k.revoked_at})
                        );
                    } else {
                        println!(
                            "{} {} created {}{}",
                            k.id,
                            k.scopes.join(" "),
                            k.created_at,
                            k.revoked_at
                                .map(|r| format!(" revoked {r}"))
                                .unwrap_or_default()
                        );
                    }
                }
            }
            ApiKeyArgs::Revoke { tenant, id } => {
                let t = db.tenant_by_name(&tenant).await?;
                db.revoke_api_key(&t, &id).await?;
                super::audit::record(&db, "apikey.revoke", &id, "ok", "").await;
                if json {
                    println!("{}", json!({"id": id, "status": "revoked"}));
                } else {
                    println!("API key {id} revoked");
                }
            }
        }
        Ok(())
    }))
}
