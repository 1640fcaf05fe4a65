//! Minimal JSON access that keeps numbers as their source text.
//!
//! `serde_json` without `arbitrary_precision` turns `2599.4` into an `f64`. Here an object is read as
//! (key, raw value) pairs ([`Raw`], borrowed from the line), and numbers are parsed from their text by
//! [`parse_exact`], so no value ever passes through floating point.
//!
//! Speed: [`Object::parse`] first tries a scanner for the common case (no backslash anywhere, so keys
//! and strings are their source text), which checks the whole JSON grammar and yields the same pairs
//! as `serde_json` would; any input it does not accept (escapes, invalid JSON, deep nesting) is parsed
//! by `serde_json` instead, which then also produces the error messages.

use std::borrow::Cow;
use std::fmt;

use memchr::memmem;
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
pub(crate) struct TenantKeys(Vec<String>, Finders);

/// Byte searchers for the keys (built once; derived from the keys, so not compared).
#[derive(Clone)]
struct Finders(Vec<memmem::Finder<'static>>);

impl PartialEq for Finders {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Finders {}

impl fmt::Debug for Finders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Finders")
    }
}

impl Default for TenantKeys {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl TenantKeys {
    pub(crate) fn new(keys: Vec<String>) -> Self {
        let keys = if keys.is_empty() { vec!["accountant_id".to_owned()] } else { keys };
        let finders = keys.iter().map(|k| memmem::Finder::new(k.as_bytes()).into_owned()).collect();
        Self(keys, Finders(finders))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Whether `text` contains any of the keys (a byte search, for pre-filtering lines).
    pub(crate) fn any_in(&self, text: &str) -> bool {
        self.1.0.iter().any(|f| f.find(text.as_bytes()).is_some())
    }

    /// The tenant under the first key `lookup` finds.
    pub(crate) fn tenant<'a>(&self, lookup: impl Fn(&str) -> Option<Raw<'a>>) -> Result<Option<TenantId>, ParseError> {
        Ok(self.tenant_text(lookup)?.map(|t| TenantId::new(t.into_owned())).transpose()?)
    }

    /// The tenant id under the first key `lookup` finds, checked but not copied.
    pub(crate) fn tenant_text<'a>(
        &self,
        lookup: impl Fn(&str) -> Option<Raw<'a>>,
    ) -> Result<Option<Cow<'a, str>>, ParseError> {
        for key in self.iter() {
            if let Some(raw) = lookup(key) {
                let text = scalar_cow(raw, key)?;
                TenantId::check(&text)?;
                return Ok(Some(text));
            }
        }
        Ok(None)
    }
}

/// A JSON value's source text, borrowed from the line (what `serde_json`'s `RawValue` holds);
/// `plain` when the scanner read it (no escapes, strings checked), so a string is its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Raw<'a> {
    text: &'a str,
    plain: bool,
}

impl<'a> Raw<'a> {
    pub(crate) fn get(self) -> &'a str {
        self.text
    }

    fn serde(v: &'a RawValue) -> Self {
        Raw { text: v.get(), plain: false }
    }
}

/// A JSON object's members in source order, values unparsed.
///
/// Read by the scanner, it also holds the members of the objects nested in its members (each at
/// its depth, before the member holding it), so [`Object::object`] hands out a nested object
/// without reading its text again: a Lambda `platform.report` line's `record` and `metrics` used
/// to be scanned three times over.
#[derive(Debug)]
pub(crate) struct Object<'a> {
    members: Vec<Member<'a>>,
    /// Whether object-valued members' own members are in `members` (the scanner's); `false`:
    /// top-level members only (`serde_json`'s).
    nested: bool,
}

/// One member of an [`Object`] or of an object nested in it.
#[derive(Debug, Clone)]
struct Member<'a> {
    key: Cow<'a, str>,
    raw: Raw<'a>,
    /// 0 for the object's own members, 1 for those of an object-valued member, ...
    depth: u32,
    /// Where this member's nested members start in `members` (they end at the member itself).
    nested_from: u32,
}

impl<'a> Object<'a> {
    /// Parses `text` as one JSON object.
    pub(crate) fn parse(text: &'a str) -> Result<Self, ParseError> {
        if let Some(o) = scan::object(text, false) {
            return Ok(o);
        }
        serde_json::from_str::<SerdeObject<'a>>(text)
            .map(SerdeObject::into_object)
            .map_err(|e| ParseError::Json(e.to_string()))
    }

    /// Parses a raw value that must be an object.
    pub(crate) fn from_raw(raw: Raw<'a>, field: &str) -> Result<Self, ParseError> {
        // A plain value was read by the scanner: the line it came from has no backslash.
        if let Some(o) = scan::object(raw.get(), raw.plain) {
            return Ok(o);
        }
        serde_json::from_str::<SerdeObject<'a>>(raw.get())
            .map(SerdeObject::into_object)
            .map_err(|e| ParseError::bad(field, format!("expected an object: {e}")))
    }

    /// The value of `key` (the last one if repeated, as `serde_json` does); JSON `null` counts as absent.
    pub(crate) fn get(&self, key: &str) -> Option<Raw<'a>> {
        self.find(key).map(|i| self.members[i].raw)
    }

    /// Index in `members` of the member [`Object::get`] returns.
    fn find(&self, key: &str) -> Option<usize> {
        self.members.iter().rposition(|m| m.depth == 0 && m.key == key).filter(|&i| self.members[i].raw.get() != "null")
    }

    /// The first of `keys` present.
    pub(crate) fn get_any(&self, keys: &[&str]) -> Option<(Raw<'a>, usize)> {
        keys.iter().enumerate().find_map(|(i, k)| self.get(k).map(|v| (v, i)))
    }

    /// The value of `key` as an object (`Object::from_raw(self.get(key)?, field)`), taken from the
    /// members already read when the scanner read this object.
    pub(crate) fn object(&self, key: &str, field: &str) -> Result<Option<Object<'a>>, ParseError> {
        let Some(i) = self.find(key) else { return Ok(None) };
        let m = &self.members[i];
        if !(self.nested && m.raw.get().starts_with('{')) {
            return Object::from_raw(m.raw, field).map(Some);
        }
        let from = m.nested_from as usize;
        let members = self.members[from..i]
            .iter()
            .map(|n| Member { depth: n.depth - 1, nested_from: n.nested_from - m.nested_from, ..n.clone() })
            .collect();
        Ok(Some(Object { members, nested: true }))
    }
}

/// The `serde_json` form of [`Object`] (the fallback of the scanner).
struct SerdeObject<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> SerdeObject<'a> {
    fn into_object(self) -> Object<'a> {
        let members = self.0.into_iter().enumerate().map(|(i, (key, v))| Member {
            key,
            raw: Raw::serde(v),
            depth: 0,
            nested_from: u32::try_from(i).unwrap_or(u32::MAX),
        });
        Object { members: members.collect(), nested: false }
    }
}

/// The elements of a JSON array, values unparsed.
pub(crate) fn array<'a>(raw: Raw<'a>, field: &str) -> Result<Vec<Raw<'a>>, ParseError> {
    serde_json::from_str::<Vec<&'a RawValue>>(raw.get())
        .map(|v| v.into_iter().map(Raw::serde).collect())
        .map_err(|e| ParseError::bad(field, e.to_string()))
}

impl<'de> Deserialize<'de> for SerdeObject<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SerdeObject<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(Key(k)) = map.next_key()? {
                    let v: &'de RawValue = map.next_value()?;
                    out.push((k, v));
                }
                Ok(SerdeObject(out))
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
pub(crate) fn string(raw: Raw<'_>, field: &str) -> Result<String, ParseError> {
    string_cow(raw, field).map(Cow::into_owned)
}

/// A JSON string's content, borrowed when it has no escapes.
pub(crate) fn string_cow<'a>(raw: Raw<'a>, field: &str) -> Result<Cow<'a, str>, ParseError> {
    let t = raw.get();
    if let Some(inner) = t.strip_prefix('"').and_then(|t| t.strip_suffix('"'))
        && (raw.plain || !inner.bytes().any(|b| b == b'\\' || b == b'"' || b < 0x20))
    {
        return Ok(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(t)
        .map(Cow::Owned)
        .map_err(|_| ParseError::bad(field, format!("expected a string, got {}", excerpt(raw))))
}

/// A string's content or a number's text (ids may be logged as either).
pub(crate) fn scalar_text(raw: Raw<'_>, field: &str) -> Result<String, ParseError> {
    scalar_cow(raw, field).map(Cow::into_owned)
}

/// [`scalar_text`], borrowed when it can be.
pub(crate) fn scalar_cow<'a>(raw: Raw<'a>, field: &str) -> Result<Cow<'a, str>, ParseError> {
    let t = raw.get();
    if t.starts_with('"') {
        string_cow(raw, field)
    } else if t.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        Ok(Cow::Borrowed(t))
    } else {
        Err(ParseError::bad(field, format!("expected a string or number, got {}", excerpt(raw))))
    }
}

/// An exact number from a JSON number or a numeric string.
pub(crate) fn number(raw: Raw<'_>, field: &str) -> Result<Decimal, ParseError> {
    let t = raw.get();
    let text = if t.starts_with('"') { string_cow(raw, field)? } else { Cow::Borrowed(t) };
    parse_exact(&text).map_err(|e| ParseError::bad(field, e.to_string()))
}

fn excerpt(raw: Raw<'_>) -> String {
    raw.get().chars().take(40).collect()
}

/// The scanner behind [`Object::parse`]: JSON without backslashes, checked in full.
mod scan {
    use std::borrow::Cow;

    use super::{Member, Object, Raw};

    /// Deeper values than this go to `serde_json` (whose own limit is 128).
    const MAX_DEPTH: u32 = 32;

    /// `text` as one object (whitespace around it allowed), or `None` to let `serde_json` decide.
    /// `unescaped`: the caller knows `text` has no backslash.
    pub(super) fn object(text: &str, unescaped: bool) -> Option<Object<'_>> {
        let b = text.as_bytes();
        if !unescaped && memchr::memchr(b'\\', b).is_some() {
            return None;
        }
        let mut s = Scanner { text, b, i: 0, members: Vec::with_capacity(12) };
        s.ws();
        s.members(Some(0), 0)?;
        s.ws();
        (s.i == b.len()).then_some(Object { members: s.members, nested: true })
    }

    struct Scanner<'a> {
        text: &'a str,
        b: &'a [u8],
        i: usize,
        /// The members read so far, nested ones included (see [`Object`]).
        members: Vec<Member<'a>>,
    }

    impl<'a> Scanner<'a> {
        fn peek(&self) -> Option<u8> {
            self.b.get(self.i).copied()
        }

        fn ws(&mut self) {
            while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                self.i += 1;
            }
        }

        fn eat(&mut self, c: u8) -> Option<()> {
            (self.peek() == Some(c)).then(|| self.i += 1)
        }

        /// `{ "k": v, ... }` at the cursor. `level`: the object's depth among the objects kept in
        /// `members` (`None`: inside an array, its members are not kept).
        fn members(&mut self, level: Option<u32>, depth: u32) -> Option<()> {
            self.eat(b'{')?;
            self.ws();
            if self.eat(b'}').is_some() {
                return Some(());
            }
            loop {
                let k = self.string()?;
                self.ws();
                self.eat(b':')?;
                self.ws();
                let nested_from = u32::try_from(self.members.len()).ok()?;
                let v = self.value(level.map(|l| l + 1), depth + 1)?;
                if let Some(level) = level {
                    self.members.push(Member {
                        key: Cow::Borrowed(self.text.get(k.0 + 1..k.1 - 1)?),
                        raw: Raw { text: self.text.get(v.0..v.1)?, plain: true },
                        depth: level,
                        nested_from,
                    });
                }
                self.ws();
                match self.peek()? {
                    b',' => {
                        self.i += 1;
                        self.ws();
                    }
                    b'}' => {
                        self.i += 1;
                        return Some(());
                    }
                    _ => return None,
                }
            }
        }

        /// A string (with its quotes) without escapes or control characters.
        fn string(&mut self) -> Option<(usize, usize)> {
            let start = self.i;
            self.eat(b'"')?;
            let rest = self.b.get(self.i..)?;
            let len = quote_or_control(rest)?;
            if rest[len] != b'"' {
                return None; // a control character
            }
            self.i += len + 1;
            Some((start, self.i))
        }

        /// A value at the cursor; `level` as for [`Scanner::members`], for an object value.
        fn value(&mut self, level: Option<u32>, depth: u32) -> Option<(usize, usize)> {
            if depth > MAX_DEPTH {
                return None;
            }
            let start = self.i;
            match self.peek()? {
                b'"' => return self.string(),
                b'{' => self.members(level, depth)?,
                b'[' => self.elements(depth)?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                _ => self.number()?,
            }
            Some((start, self.i))
        }

        fn elements(&mut self, depth: u32) -> Option<()> {
            self.eat(b'[')?;
            self.ws();
            if self.eat(b']').is_some() {
                return Some(());
            }
            loop {
                self.value(None, depth + 1)?;
                self.ws();
                match self.peek()? {
                    b',' => {
                        self.i += 1;
                        self.ws();
                    }
                    b']' => {
                        self.i += 1;
                        return Some(());
                    }
                    _ => return None,
                }
            }
        }

        fn literal(&mut self, word: &[u8]) -> Option<()> {
            self.b.get(self.i..)?.starts_with(word).then(|| self.i += word.len())
        }

        fn digits(&mut self) -> usize {
            let n = self.b.get(self.i..).map_or(0, |r| r.iter().take_while(|c| c.is_ascii_digit()).count());
            self.i += n;
            n
        }

        /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
        fn number(&mut self) -> Option<()> {
            let _ = self.eat(b'-');
            match self.peek()? {
                b'0' => self.i += 1,
                b'1'..=b'9' => {
                    self.digits();
                }
                _ => return None,
            }
            if self.eat(b'.').is_some() && self.digits() == 0 {
                return None;
            }
            if matches!(self.peek(), Some(b'e' | b'E')) {
                self.i += 1;
                if matches!(self.peek(), Some(b'+' | b'-')) {
                    self.i += 1;
                }
                if self.digits() == 0 {
                    return None;
                }
            }
            Some(())
        }
    }

    /// Index of the first `"` or control character (below 0x20) in `b`, read eight bytes at a
    /// time: JSON keys and values are short, and a `memchr` call per string cost more than the
    /// search (plus a second pass for control characters).
    pub(super) fn quote_or_control(b: &[u8]) -> Option<usize> {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGHS: u64 = 0x8080_8080_8080_8080;
        let mut chunks = b.chunks_exact(8);
        let mut at = 0;
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let w = u64::from_le_bytes(word);
            // The classic "has a zero byte" / "has a byte less than n" tests: the lowest flagged
            // byte is exact (a false flag can only follow a true one, through the borrow).
            let q = w ^ (ONES * u64::from(b'"'));
            let quote = q.wrapping_sub(ONES) & !q & HIGHS;
            let control = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
            let hit = quote | control;
            if hit != 0 {
                return Some(at + (hit.trailing_zeros() / 8) as usize);
            }
            at += 8;
        }
        chunks.remainder().iter().position(|&c| c == b'"' || c < 0x20).map(|i| at + i)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn numbers_stay_exact() {
        let o =
            Object::parse(r#"{"a":2599.4,"b":"0.1","c":1e-3,"d":null,"e":"x\"y","a":0.30000000000000004}"#).unwrap();
        assert!(scan::object(r#"{"e":"x\"y"}"#, false).is_none(), "escapes go to serde_json");
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

    /// An object's own members as (key, value text), in order.
    fn top_level(o: &Object<'_>) -> Vec<(String, String)> {
        o.members
            .iter()
            .filter(|m| m.depth == 0)
            .map(|m| (m.key.clone().into_owned(), m.raw.get().to_owned()))
            .collect()
    }

    #[test]
    fn nested_objects_are_the_members_of_their_text() {
        let texts = [
            r#"{"time":"t","type":"platform.report","record":{"requestId":"r","metrics":{"durationMs":2.5,"billedDurationMs":3},"status":"success"},"n":null}"#,
            r#"{"a":{"b":{"c":{"d":1},"e":[{"f":{"g":2}},3]},"h":{}},"a":{"x":{"y":"z"}},"i":[{"j":1}]}"#,
            r#"{"m":{"k":1,"k":{"k":2}},"o":{}}"#,
        ];
        for text in texts {
            let o = Object::parse(text).unwrap();
            let serde = serde_json::from_str::<SerdeObject<'_>>(text).unwrap().into_object();
            // Every object reachable through `object`, its members as reading its own text gives.
            let mut stack = vec![(o, serde)];
            let mut seen = 0;
            while let Some((scanned, other)) = stack.pop() {
                assert_eq!(top_level(&scanned), top_level(&other), "{text}");
                for (key, value) in top_level(&scanned) {
                    if value.starts_with('{') {
                        let a = scanned.object(&key, &key).unwrap().unwrap();
                        let b = other.object(&key, &key).unwrap().unwrap();
                        assert_eq!(top_level(&a), top_level(&Object::parse(scanned.get(&key).unwrap().get()).unwrap()));
                        stack.push((a, b));
                        seen += 1;
                    }
                }
            }
            assert!(seen >= 2, "{text}");
        }
        let o = Object::parse(r#"{"a":1,"b":"x","c":null}"#).unwrap();
        assert!(o.object("a", "a").is_err(), "a number is not an object");
        assert!(o.object("c", "c").unwrap().is_none(), "null is absent");
        assert!(o.object("z", "z").unwrap().is_none());
    }

    proptest::proptest! {
        #[test]
        fn quote_or_control_finds_the_first_quote_or_control_character(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
        ) {
            let expected = bytes.iter().position(|&c| c == b'"' || c < 0x20);
            proptest::prop_assert_eq!(scan::quote_or_control(&bytes), expected);
        }

        #[test]
        fn quote_or_control_in_mostly_plain_text(
            bytes in proptest::collection::vec(proptest::sample::select(vec![b'a', b'"', 0x1f, 0x20, 0x21, 0x7f, 0x80, 0xc3, 0xff, 0x00, b'\\']), 0..40),
        ) {
            let expected = bytes.iter().position(|&c| c == b'"' || c < 0x20);
            proptest::prop_assert_eq!(scan::quote_or_control(&bytes), expected);
        }
    }

    #[test]
    fn scanner_agrees_with_serde_json() {
        let serde = |t: &str| serde_json::from_str::<SerdeObject<'_>>(t).map(|o| top_level(&o.into_object())).ok();
        for t in [
            r#"{"a":1,"b":"x","c":{"d":[1,2,{"e":null}],"f":true},"g":false,"h":-0.5e+3,"a":2}"#,
            " { \"a\" : 1 ,\n\t\"b\" :\r\"é ü\" } \n",
            r#"{}"#,
            r#"{"a":[]}"#,
            r#"{"n":0,"m":-1.25E-7,"k":1e5}"#,
            // Invalid: the scanner must refuse these too.
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":-}"#,
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{"a":tru}"#,
            r#"{"a":1} x"#,
            r#"{"a":1}{"b":2}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":[1,]}"#,
            r#"{"a":"unterminated}"#,
            r#"[1]"#,
            r#"{"a":1"#,
            "",
        ] {
            let fast = scan::object(t, false).map(|o| top_level(&o));
            match fast {
                Some(pairs) => assert_eq!(Some(pairs), serde(t), "{t}"),
                None => assert_eq!(serde(t), None, "{t}: the scanner refused valid JSON without escapes"),
            }
        }
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(40), "]".repeat(40));
        assert!(scan::object(&deep, false).is_none());
        assert!(Object::parse(&deep).is_ok(), "deep values go to serde_json");
    }
}
