//! Identifier newtypes. Parse at the edge; inside, an id is always valid.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why a text is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The id is empty or only white space.
    #[error("{kind} must not be empty")]
    Empty {
        /// Which id.
        kind: &'static str,
    },
    /// The id is longer than allowed.
    #[error("{kind} is {len} bytes long, at most {max} are allowed")]
    TooLong {
        /// Which id.
        kind: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The id holds a character outside `[A-Za-z0-9_.:-]`.
    #[error("{kind} may only hold letters, digits and `_ . : -`, found {found:?}")]
    BadCharacter {
        /// Which id.
        kind: &'static str,
        /// The first offending character.
        found: char,
    },
    /// The id is not a UUID.
    #[error("{kind} is not a UUID: {reason}")]
    NotUuid {
        /// Which id.
        kind: &'static str,
        /// What the parser said.
        reason: String,
    },
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps an existing UUID.
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
            /// The UUID inside.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|e| IdError::NotUuid { kind: $kind, reason: e.to_string() })
            }
        }
    };
}

uuid_id!(
    /// The id of one order, and so of every event of its saga (the Kafka key).
    OrderId,
    "order id"
);
uuid_id!(
    /// The id of one event. Unique across every store; consumers deduplicate by it.
    EventId,
    "event id"
);
uuid_id!(
    /// The id shared by every event of one saga, across all services.
    CorrelationId,
    "correlation id"
);

/// A customer's id, as the point of sale sends it (`cust-42`, `cust-broke`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CustomerId(String);

impl CustomerId {
    /// The longest customer id accepted.
    pub const MAX_LEN: usize = 64;

    /// Checks and wraps a customer id.
    pub fn parse(raw: impl Into<String>) -> Result<Self, IdError> {
        let raw = raw.into();
        let kind = "customer id";
        if raw.trim().is_empty() {
            return Err(IdError::Empty { kind });
        }
        if raw.len() > Self::MAX_LEN {
            return Err(IdError::TooLong { kind, len: raw.len(), max: Self::MAX_LEN });
        }
        if let Some(found) = raw.chars().find(|c| !(c.is_ascii_alphanumeric() || "_.:-".contains(*c))) {
            return Err(IdError::BadCharacter { kind, found });
        }
        Ok(Self(raw))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CustomerId {
    type Error = IdError;
    fn try_from(raw: String) -> Result<Self, IdError> {
        Self::parse(raw)
    }
}

impl From<CustomerId> for String {
    fn from(id: CustomerId) -> String {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_ids_are_checked_at_the_edge() {
        assert_eq!(CustomerId::parse("cust-broke").unwrap().as_str(), "cust-broke");
        assert!(matches!(CustomerId::parse("  "), Err(IdError::Empty { .. })));
        assert!(matches!(CustomerId::parse("a/b"), Err(IdError::BadCharacter { found: '/', .. })));
        assert!(matches!(CustomerId::parse("x".repeat(65)), Err(IdError::TooLong { len: 65, .. })));
        let parsed: Result<CustomerId, _> = serde_json::from_str("\"bad id\"");
        assert!(parsed.is_err(), "serde goes through the same check");
    }

    #[test]
    fn uuid_ids_round_trip_through_text_and_json() {
        let id = OrderId::from_uuid(Uuid::from_u128(7));
        assert_eq!(id.to_string().parse::<OrderId>().unwrap(), id);
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{id}\""));
        assert!(matches!("nope".parse::<OrderId>(), Err(IdError::NotUuid { kind: "order id", .. })));
    }
}
