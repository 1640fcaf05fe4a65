//! [`Name`]: a text field of a cost line's key (tenant, service, usage type, resource id, ...),
//! shared between every line that carries it.
//!
//! A realistic SaaS month has about a million cost lines but only thousands of distinct tenants,
//! services, usage types and resources. With a `String` per field, each key was seven heap
//! allocations (about 430 bytes a line, most of a 2 GB peak at a million lines) and attribution
//! copied all of them again for every tenant it gave a part of a shared line. A `Name` is a
//! reference-counted `str` ([`arcstr::ArcStr`]): one 8-byte pointer to a single allocation holding
//! the count, the length and the text, allocated once per distinct value by whoever reads the
//! value (the scan once per dictionary value, stores and the generic plan through [`Names`]), and
//! cloned by bumping a count. 8 bytes, not `Arc<str>`'s 16 (pointer and length): a cost line's key
//! has eleven names, so a line is ~90 bytes smaller, which at 4M lines (a 20,000-tenant month) is
//! ~350 MB less held. Names that share their allocation (interned) compare equal and order equal
//! without reading their text.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::HashSet;
use std::fmt;
use std::ops::Deref;

use arcstr::ArcStr;

use serde::{Serialize, Serializer};

use crate::fxhash::FxBuild;

/// An immutable, shared string; compares, orders and hashes as its text.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Name(ArcStr);

impl Name {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Ord for Name {
    /// As the text; interned names sharing one allocation are equal without reading it (sorting
    /// a period's lines compares mostly equal tenants, services and types).
    fn cmp(&self, other: &Self) -> Ordering {
        if ArcStr::ptr_eq(&self.0, &other.0) { Ordering::Equal } else { self.0.as_str().cmp(other.0.as_str()) }
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
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

/// Lets a set of names be probed with a `&str` ([`Names`]); consistent because `ArcStr` hashes
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
        Self(ArcStr::from(s))
    }
}

impl From<String> for Name {
    fn from(s: String) -> Self {
        Self(ArcStr::from(s))
    }
}

impl From<&String> for Name {
    fn from(s: &String) -> Self {
        Self(ArcStr::from(s.as_str()))
    }
}

impl From<Name> for String {
    fn from(n: Name) -> Self {
        n.0.as_str().to_string()
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
        assert_eq!(size_of::<Name>(), 8);
        assert_eq!(size_of::<Option<Name>>(), 8, "None is the null pointer");
    }

    /// Equal texts in separate allocations order and compare as equal, shared ones without
    /// reading the text; different texts order as their text.
    #[test]
    fn names_order_as_their_text_whether_shared_or_not() {
        let mut names = Names::default();
        let (shared, again) = (names.get("USE1-Lambda-GB-Second"), names.get("USE1-Lambda-GB-Second"));
        let separate = Name::from(String::from("USE1-Lambda-GB-Second"));
        assert!(!ArcStr::ptr_eq(&shared.0, &separate.0));
        for (a, b) in [(&shared, &again), (&shared, &separate)] {
            assert_eq!(a.cmp(b), Ordering::Equal);
            assert_eq!(a, b);
        }
        let mut sorted = [Name::from("b"), Name::from(""), Name::from("ab"), Name::from("a"), names.get("b")];
        sorted.sort();
        let texts: Vec<&str> = sorted.iter().map(Name::as_str).collect();
        assert_eq!(texts, ["", "a", "ab", "b", "b"]);
    }

    #[test]
    fn interned_names_share_one_allocation() {
        let mut names = Names::default();
        let a = names.get("i-0abc");
        let b = names.get(&String::from("i-0abc"));
        assert!(ArcStr::ptr_eq(&a.0, &b.0));
        assert_eq!(names.get_opt(None), None);
        assert_eq!(names.get_opt(Some("i-0abc")).unwrap(), a);
    }
}
