//! [`Name`]: a text field of a cost line's key (tenant, service, usage type, resource id, ...),
//! shared between every line that carries it.
//!
//! A realistic SaaS month has about a million cost lines but only thousands of distinct tenants,
//! services, usage types and resources. With a `String` per field, each key was seven heap
//! allocations (about 430 bytes a line, most of a 2 GB peak at a million lines) and attribution
//! copied all of them again for every tenant it gave a part of a shared line. A `Name` is a
//! reference-counted `str`: 16 bytes inline, allocated once per distinct value by whoever reads
//! the value (the scan once per dictionary value, stores and the generic plan through [`Names`]),
//! and cloned by bumping a count.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Serialize, Serializer};

use crate::fxhash::FxBuild;

/// An immutable, shared string; compares, orders and hashes as its text.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(Arc<str>);

impl Name {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Lets a set of names be probed with a `&str` ([`Names`]); consistent because `Arc<str>` hashes
/// and compares as its `str`.
impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Self {
        Self(Arc::from(s))
    }
}

impl From<String> for Name {
    fn from(s: String) -> Self {
        Self(Arc::from(s))
    }
}

impl From<&String> for Name {
    fn from(s: &String) -> Self {
        Self(Arc::from(s.as_str()))
    }
}

impl From<Name> for String {
    fn from(n: Name) -> Self {
        n.0.as_ref().to_string()
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        &*self.0 == other.as_str()
    }
}

impl PartialEq<Name> for str {
    fn eq(&self, other: &Name) -> bool {
        self == &*other.0
    }
}

impl PartialEq<Name> for &str {
    fn eq(&self, other: &Name) -> bool {
        *self == &*other.0
    }
}

impl PartialEq<Name> for String {
    fn eq(&self, other: &Name) -> bool {
        self.as_str() == &*other.0
    }
}

/// Interns names: one allocation per distinct value, however many lines repeat it. For readers
/// that see values one row at a time (stores reading lines back, the generic plan's groups).
#[derive(Debug, Default)]
pub struct Names {
    seen: HashSet<Name, FxBuild>,
}

impl Names {
    /// The shared [`Name`] of `value`.
    pub fn get(&mut self, value: &str) -> Name {
        if let Some(name) = self.seen.get(value) {
            return name.clone();
        }
        let name = Name::from(value);
        self.seen.insert(name.clone());
        name
    }

    /// [`Self::get`] for an optional value.
    pub fn get_opt(&mut self, value: Option<&str>) -> Option<Name> {
        value.map(|v| self.get(v))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_order_and_print_as_their_text() {
        let a = Name::from("AWSLambda");
        assert_eq!(a, "AWSLambda");
        assert_eq!("AWSLambda", a);
        assert_eq!(String::from(a.clone()), "AWSLambda");
        let (x, y) = (Name::from("A"), Name::from("B"));
        assert!(x < y);
        assert_eq!(format!("{a} {a:?}"), "AWSLambda \"AWSLambda\"");
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"AWSLambda\"");
        assert_eq!(Name::default(), "");
    }

    #[test]
    fn interned_names_share_one_allocation() {
        let mut names = Names::default();
        let a = names.get("i-0abc");
        let b = names.get(&String::from("i-0abc"));
        assert!(Arc::ptr_eq(&a.0, &b.0));
        assert_eq!(names.get_opt(None), None);
        assert_eq!(names.get_opt(Some("i-0abc")).unwrap(), a);
    }
}
