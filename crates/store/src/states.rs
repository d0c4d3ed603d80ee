//! The typed states and choices stored as text: artifact lifecycle, deletion reason, proof
//! status, API scopes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Text that names none of an enum's values (a row written by something else, or a typo).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?} (expected one of {allowed})")]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
    pub allowed: String,
}

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        // By hand: the derive names the variants, not the text they are stored and sent as.
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::Type::String)
                    .enum_values(Some([$($text),+]))
                    .description(Some(concat!("The ", $what, ".")))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored (and shown) text.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue {
                        what: $what,
                        value: s.to_string(),
                        allowed: [$($text),+].join(", "),
                    }),
                }
            }
        }
    };
}

text_enum! {
    /// Where an artifact is in its life. Only `Active` rows are ever served.
    ArtifactState, "artifact state" {
        /// Row written, blob not yet stored (an interrupted upload stays here for repair).
        Pending = "pending",
        /// Stored and served.
        Active = "active",
        /// Its owner asked for deletion; the blob is going.
        Deleting = "deleting",
        /// Claimed by a purge worker (retention ended).
        Purging = "purging",
    }
}

text_enum! {
    /// Why an artifact was erased (its receipt's `reason`).
    DeletionReason, "deletion reason" {
        /// Its owner deleted it.
        DeletedByOwner = "deleted_by_owner",
        /// Its retention ended.
        RetentionExpired = "retention_expired",
        /// A pickup link's file, erased once its first download completed.
        PickedUp = "picked_up",
    }
}

text_enum! {
    /// Where a pickup link is: its file waits (`Waiting`, possibly being downloaded) or was
    /// downloaded once and erased (`PickedUp`). An expired link is `Waiting` past its expiry.
    PickupState, "pickup state" {
        Waiting = "waiting",
        PickedUp = "picked_up",
    }
}

text_enum! {
    /// Whether a device may work under its licence: `Active` holds a seat; `Deactivated` was
    /// turned off by the licence's owner, freed its seat, and is refused from then on.
    DeviceState, "device state" {
        Active = "active",
        Deactivated = "deactivated",
    }
}

text_enum! {
    /// The public status of a proof.
    ProofStatus, "proof status" {
        /// Its artifact is stored.
        Active = "active",
        /// Its artifact was deleted; the signed receipt says when and why.
        Purged = "purged",
        /// Stamped and handed straight back (ephemeral stamping): no copy was ever kept.
        NotStored = "not_stored",
    }
}

text_enum! {
    /// What an API key may do (SPEC §5). `Admin` implies every other scope.
    Scope, "scope" {
        ArtifactsWrite = "artifacts:write",
        ArtifactsRead = "artifacts:read",
        ArtifactsDelete = "artifacts:delete",
        Codes = "codes",
        /// Ephemeral stamping (`POST /v1/stamp`): nothing of the picture is kept.
        Stamp = "stamp",
        Admin = "admin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_unknown_text_is_refused() {
        for s in Scope::ALL {
            assert_eq!(s.as_str().parse::<Scope>().unwrap(), *s);
        }
        for s in ArtifactState::ALL {
            assert_eq!(s.to_string().parse::<ArtifactState>().unwrap(), *s);
        }
        let e = "Active".parse::<ProofStatus>().unwrap_err();
        assert_eq!(e.allowed, "active, purged, not_stored");
        assert!("artifacts:*".parse::<Scope>().is_err());
        assert_eq!(
            serde_json::to_string(&ProofStatus::Purged).unwrap(),
            "\"purged\""
        );
    }
}
