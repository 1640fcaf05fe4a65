//! Minimal JSON access that keeps numbers as their source text.
//!
//! `serde_json` without `arbitrary_precision` turns `2599.4` into an `f64`. Here an object is read as
//! (key, raw value) pairs ([`RawValue`], borrowed from the line), and numbers are parsed from their text by
//! [`parse_exact`], so no value ever passes through floating point.

use std::borrow::Cow;
use std::fmt;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::ParseError;
use crate::money::parse_exact;
use crate::tenant::TenantId;

/// The JSON keys that hold the tenant id in application log lines, in order of preference
/// (`accountant_id` when none are configured). Shared by the Lambda and DynamoDB log parsers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TenantKeys(Vec<String>);

impl Default for TenantKeys {
    fn default() -> Self {
        Self(vec!["accountant_id".into()])
    }
}

impl TenantKeys {
    pub(crate) fn new(keys: Vec<String>) -> Self {
        if keys.is_empty() { Self::default() } else { Self(keys) }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// The tenant under the first key `lookup` finds.
    pub(crate) fn tenant<'a>(
        &self,
        lookup: impl Fn(&str) -> Option<&'a RawValue>,
    ) -> Result<Option<TenantId>, ParseError> {
        for key in self.iter() {
            if let Some(raw) = lookup(key) {
                return Ok(Some(TenantId::new(scalar_text(raw, key)?)?));
            }
        }
        Ok(None)
    }
}

/// A JSON object's members in source order, values unparsed.
#[derive(Debug)]
pub(crate) struct Object<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Object<'a> {
    /// Parses `text` as one JSON object.
    pub(crate) fn parse(text: &'a str) -> Result<Self, ParseError> {
        serde_json::from_str(text).map_err(|e| ParseError::Json(e.to_string()))
    }

    /// Parses a raw value that must be an object.
    pub(crate) fn from_raw(raw: &'a RawValue, field: &str) -> Result<Self, ParseError> {
        serde_json::from_str(raw.get()).map_err(|e| ParseError::bad(field, format!("expected an object: {e}")))
    }

    /// The value of `key` (the last one if repeated, as `serde_json` does); JSON `null` counts as absent.
    pub(crate) fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v).filter(|v| v.get() != "null")
    }

    /// The first of `keys` present.
    pub(crate) fn get_any(&self, keys: &[&str]) -> Option<(&'a RawValue, usize)> {
        keys.iter().enumerate().find_map(|(i, k)| self.get(k).map(|v| (v, i)))
    }
}

impl<'de> Deserialize<'de> for Object<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Object<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(Key(k)) = map.next_key()? {
                    let v: &'de RawValue = map.next_value()?;
                    out.push((k, v));
                }
                Ok(Object(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A JSON string's content; `Err` for other JSON types.
pub(crate) fn string(raw: &RawValue, field: &str) -> Result<String, ParseError> {
    serde_json::from_str::<String>(raw.get())
        .map_err(|_| ParseError::bad(field, format!("expected a string, got {}", excerpt(raw))))
}

/// A string's content or a number's text (ids may be logged as either).
pub(crate) fn scalar_text(raw: &RawValue, field: &str) -> Result<String, ParseError> {
    let t = raw.get();
    if t.starts_with('"') {
        string(raw, field)
    } else if t.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        Ok(t.to_owned())
    } else {
        Err(ParseError::bad(field, format!("expected a string or number, got {}", excerpt(raw))))
    }
}

/// An exact number from a JSON number or a numeric string.
pub(crate) fn number(raw: &RawValue, field: &str) -> Result<Decimal, ParseError> {
    let t = raw.get();
    let text = if t.starts_with('"') { Cow::Owned(string(raw, field)?) } else { Cow::Borrowed(t) };
    parse_exact(&text).map_err(|e| ParseError::bad(field, e.to_string()))
}

fn excerpt(raw: &RawValue) -> String {
    raw.get().chars().take(40).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn numbers_stay_exact() {
        let o =
            Object::parse(r#"{"a":2599.4,"b":"0.1","c":1e-3,"d":null,"e":"x\"y","a":0.30000000000000004}"#).unwrap();
        assert_eq!(number(o.get("a").unwrap(), "a").unwrap().to_string(), "0.30000000000000004");
        assert_eq!(number(o.get("b").unwrap(), "b").unwrap().to_string(), "0.1");
        assert_eq!(number(o.get("c").unwrap(), "c").unwrap().to_string(), "0.001");
        assert!(o.get("d").is_none());
        assert_eq!(string(o.get("e").unwrap(), "e").unwrap(), "x\"y");
        assert!(number(o.get("e").unwrap(), "e").is_err());
        assert_eq!(scalar_text(o.get("a").unwrap(), "a").unwrap(), "0.30000000000000004");
        assert!(Object::parse("[1]").is_err());
        assert!(Object::parse("{\"a\":").is_err());
    }
}
