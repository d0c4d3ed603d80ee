//! pixseal-service: the workflows under the HTTP server and the CLI. [`Services`] is opened
//! once from the typed [`Config`]; each workflow returns a typed, `Serialize` result or a
//! [`ServiceError`] with a stable code, which `server` maps to HTTP and `cli` to exit codes.

pub mod admin;
pub mod artifacts;
pub mod audit;
pub mod auth;
pub mod budget;
pub mod challenge;
pub mod clock;
pub mod codes;
pub mod config;
pub mod dashboard;
pub mod erase;
pub mod error;
pub mod licenses;
pub mod lifecycle;
pub mod passkeys;
pub mod pickup;
pub mod resolve;
pub mod rewrap;
pub mod services;
pub mod stamp;
pub mod tenant_keys;
pub mod tsa;
pub mod verify;
mod video;
mod work;

pub use auth::Caller;
pub use budget::{Body, Reservation};
pub use clock::{Clock, DAY_MS};
pub use config::{Config, ConfigError, RateLimitBackend, ServerConfig};
pub use error::{ErrorKind, Result, ServiceError};
pub use lifecycle::{PurgeReport, RepairReport};
pub use services::{Actor, Health, OpenError, Outcome, Provenance, Readiness, Services};
pub use verify::{Verification, examine, examine_video_file};

/// Domain types that appear in the workflows' signatures.
pub use pixseal_proof::SignedReceipt;
pub use pixseal_store::{Scope, Tenant};
