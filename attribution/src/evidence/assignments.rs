//! Explicit assignments: resource → tenant ("assign this resource to that user").
//!
//! A table of `resource,tenant` lines (CSV; blank lines, `#` comments and a `resource,tenant` header are
//! skipped). `resource` is an exact resource id / ARN, or an ARN glob with `*` and `?`. An assigned
//! resource's shared cost goes wholly to its tenant before any rule is considered. Lookup: an exact entry
//! first, then the globs in file order (the first match wins), so specific entries can precede broad ones.

use std::collections::BTreeMap;
use std::io::BufRead;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::reader::{Outcome, read_lines};
use super::{ErrorBudget, EvidenceError, ParseError};
use crate::glob::Glob;
use crate::tenant::TenantId;

/// One table entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub resource: Glob,
    pub tenant: TenantId,
}

/// Parses one line of the table; `Ok(None)` for blanks, comments and the header.
pub fn parse_line(line: &str) -> Result<Option<Assignment>, ParseError> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') || t.eq_ignore_ascii_case("resource,tenant") {
        return Ok(None);
    }
    let (resource, tenant) =
        t.rsplit_once(',').ok_or_else(|| ParseError::Invalid("expected resource,tenant".into()))?;
    let resource = resource.trim();
    if resource.is_empty() {
        return Err(ParseError::missing("resource"));
    }
    let resource = Glob::new(resource).map_err(|e| ParseError::bad("resource", e.to_string()))?;
    Ok(Some(Assignment { resource, tenant: TenantId::new(tenant.trim())? }))
}

/// The assignments table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignments {
    exact: BTreeMap<String, TenantId>,
    globs: Vec<Assignment>,
}

impl Assignments {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry; an exact resource assigned twice to different tenants is an error.
    pub fn add(&mut self, a: Assignment) -> Result<(), String> {
        if a.resource.is_literal() {
            if let Some(prev) = self.exact.get(a.resource.as_str())
                && *prev != a.tenant
            {
                return Err(format!("resource {} assigned to both {prev} and {}", a.resource, a.tenant));
            }
            self.exact.insert(a.resource.as_str().to_owned(), a.tenant);
        } else {
            self.globs.push(a);
        }
        Ok(())
    }

    /// Reads a table. Strict: configuration, so any bad line is an error naming the source and line.
    pub fn read<R: BufRead>(source_name: &str, reader: R) -> Result<Self, EvidenceError> {
        let mut out = Self::new();
        let mut conflict = None;
        let budget = ErrorBudget { max_ratio: Decimal::ZERO, max_examples: 1 };
        read_lines(source_name, reader, &budget, |line, text| match parse_line(text)? {
            None => Ok(Outcome::Ignored),
            Some(a) => {
                if let Err(m) = out.add(a) {
                    conflict.get_or_insert((line, m));
                }
                Ok(Outcome::Record)
            }
        })?;
        match conflict {
            Some((line, message)) => Err(EvidenceError::Invalid { source_name: source_name.to_owned(), line, message }),
            None => Ok(out),
        }
    }

    /// The tenant a resource is assigned to, and the matching entry's pattern.
    pub fn lookup(&self, resource_id: &str) -> Option<(&TenantId, &str)> {
        if resource_id.is_empty() {
            return None;
        }
        if let Some((k, t)) = self.exact.get_key_value(resource_id) {
            return Some((t, k.as_str()));
        }
        self.globs.iter().find(|a| a.resource.matches(resource_id)).map(|a| (&a.tenant, a.resource.as_str()))
    }

    /// True when the table has no entry.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.globs.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn exact_then_globs_in_order() {
        let text = "resource,tenant\n# the big customer's own function\narn:aws:lambda:us-east-1:1:function:acme-api,acme\narn:aws:lambda:*:function:big-*,big\narn:aws:lambda:*,catchall\n\nbucket-x,x\n";
        let a = Assignments::read("assign.csv", text.as_bytes()).unwrap();
        assert_eq!(a.lookup("arn:aws:lambda:us-east-1:1:function:acme-api").map(|(t, _)| t.as_str()), Some("acme"));
        assert_eq!(
            a.lookup("arn:aws:lambda:eu-west-1:1:function:big-etl").map(|(t, p)| (t.as_str(), p)),
            Some(("big", "arn:aws:lambda:*:function:big-*"))
        );
        assert_eq!(a.lookup("arn:aws:lambda:eu-west-1:1:function:other").map(|(t, _)| t.as_str()), Some("catchall"));
        assert_eq!(a.lookup("bucket-x").map(|(t, _)| t.as_str()), Some("x"));
        assert_eq!(a.lookup(""), None);
        assert_eq!(a.lookup("bucket-y"), None);
        let e = Assignments::read("assign.csv", "a,x\nnot a pair\n".as_bytes()).unwrap_err().to_string();
        assert!(e.contains("assign.csv") && e.contains("line 2"), "{e}");
        assert!(Assignments::read("assign.csv", "a,x\na,y\n".as_bytes()).is_err());
        assert!(Assignments::read("assign.csv", "a,UNATTRIBUTED\n".as_bytes()).is_err());
    }
}
