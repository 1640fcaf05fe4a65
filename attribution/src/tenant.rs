//! Tenant identifiers.
//!
//! A tenant id is the value of the tenant tag (`accountant_id` in the app) as written in CUR tags and in
//! application logs. It is kept as text, compared byte-wise, and ordered: the order is the tie-break of the
//! largest-remainder split and the order of every result, so it must be total and stable across runs
//! (`String`'s `Ord` is).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The reserved id of the shared pool that no tenant could be given.
///
/// It never names a real tenant: [`TenantId::new`] rejects it so that evidence cannot claim it. Usage evidence
/// whose tenant is unknown is recorded under [`TenantId::unattributed`] so that its share of a split stays
/// unattributed instead of inflating the known tenants' shares.
pub const UNATTRIBUTED: &str = "UNATTRIBUTED";

/// The longest tenant id accepted (bytes); longer values in logs are treated as malformed, not truncated.
pub const MAX_TENANT_ID_LEN: usize = 256;

/// A tenant id: non-empty, at most [`MAX_TENANT_ID_LEN`] bytes, no control characters, no surrounding
/// whitespace, and not the reserved [`UNATTRIBUTED`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

/// Why a text is not a valid tenant id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantIdError {
    #[error("tenant id is empty")]
    Empty,
    #[error("tenant id is longer than {MAX_TENANT_ID_LEN} bytes ({len})")]
    TooLong { len: usize },
    #[error("tenant id {id:?} has leading/trailing whitespace or control characters")]
    BadCharacters { id: String },
    #[error("tenant id {UNATTRIBUTED:?} is reserved for the shared pool")]
    Reserved,
}

impl TenantId {
    /// Validates and wraps a tenant id.
    pub fn new(id: impl Into<String>) -> Result<Self, TenantIdError> {
        let id = id.into();
        Self::check(&id)?;
        Ok(Self(id))
    }

    /// Validates without allocating (see [`TenantId`] for the rules).
    pub fn check(id: &str) -> Result<(), TenantIdError> {
        if id.is_empty() {
            return Err(TenantIdError::Empty);
        }
        if id.len() > MAX_TENANT_ID_LEN {
            return Err(TenantIdError::TooLong { len: id.len() });
        }
        if id.trim() != id || id.chars().any(char::is_control) {
            return Err(TenantIdError::BadCharacters { id: id.to_owned() });
        }
        if id == UNATTRIBUTED {
            return Err(TenantIdError::Reserved);
        }
        Ok(())
    }

    /// The shared-pool pseudo tenant (see [`UNATTRIBUTED`]).
    pub fn unattributed() -> Self {
        Self(UNATTRIBUTED.to_owned())
    }

    /// True for the shared-pool pseudo tenant.
    pub fn is_unattributed(&self) -> bool {
        self.0 == UNATTRIBUTED
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = TenantIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        // Deserialisation must round-trip what we serialise, including the pseudo tenant.
        if value == UNATTRIBUTED { Ok(Self::unattributed()) } else { Self::new(value) }
    }
}

impl From<TenantId> for String {
    fn from(value: TenantId) -> Self {
        value.0
    }
}

/// Lets maps keyed by `TenantId` be searched with a `&str` (no allocation per lookup). Sound because
/// `TenantId`'s `Eq`, `Ord` and `Hash` are exactly `String`'s.
impl std::borrow::Borrow<str> for TenantId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn validates() {
        assert!(TenantId::new("acct-0001").is_ok());
        assert_eq!(TenantId::new(""), Err(TenantIdError::Empty));
        assert!(matches!(TenantId::new(" a"), Err(TenantIdError::BadCharacters { .. })));
        assert!(matches!(TenantId::new("a\tb"), Err(TenantIdError::BadCharacters { .. })));
        assert_eq!(TenantId::new(UNATTRIBUTED), Err(TenantIdError::Reserved));
        assert!(matches!(TenantId::new("x".repeat(300)), Err(TenantIdError::TooLong { len: 300 })));
    }

    #[test]
    fn orders_bytewise() {
        let mut v = [TenantId::new("b").unwrap(), TenantId::new("B").unwrap(), TenantId::new("a").unwrap()];
        v.sort();
        let s: Vec<&str> = v.iter().map(TenantId::as_str).collect();
        assert_eq!(s, ["B", "a", "b"]);
    }
}
