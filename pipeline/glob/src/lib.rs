//! Glob patterns for CUR values: service codes, usage types, line item types, ARNs and resource ids.
//!
//! One matcher for the whole workspace: `curflow-attribution`'s rules and assignments and
//! `curflow-reconcile`'s resource-type mapping both use it, so their files speak one language.
//!
//! `*` matches any run of characters (including `:` and `/`, so `arn:aws:lambda:*:function:api-*` works
//! across ARN fields), `?` exactly one character; everything else matches itself, case-sensitively (CUR
//! values and ARNs are case-sensitive). No character classes or escapes: CUR strings never need them, and
//! a smaller language has fewer surprises in a rules file.
//!
//! Matching is done by the `regex` crate: a pattern is translated once, in [`Glob::new`], to an anchored
//! regex (`*` → `.*`, `?` → `.`, everything else escaped), so a match per CUR line costs one automaton run
//! and no allocation. `globset` was considered and not used: it matches file *paths* byte-wise (its `?`
//! is one byte, so `a?c` would stop matching `aéc`; its maintainers keep it that way because paths need
//! not be UTF-8, BurntSushi/ripgrep#635) and it treats `[`, `{`, `,` and `\` as syntax. These values are
//! UTF-8 strings, not paths, and the language above must not change under existing rules files.

use std::fmt;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// A pattern that cannot be compiled.
///
/// Every string is a valid glob; the only failure is a pattern so long that its regex exceeds the
/// `regex` crate's size limit (about 10 MiB of compiled program), which no real rules or mapping file reaches.
#[derive(Debug, Clone, thiserror::Error)]
#[error("glob {pattern:?} is too large to compile")]
pub struct GlobError {
    pattern: String,
    #[source]
    source: regex::Error,
}

/// A compiled glob pattern.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Glob {
    pattern: String,
    /// `None` for a pattern without wildcards: plain string equality is cheaper than any automaton.
    regex: Option<Regex>,
}

impl Glob {
    /// Compiles `pattern` (once: matching never recompiles).
    pub fn new(pattern: impl Into<String>) -> Result<Self, GlobError> {
        let pattern = pattern.into();
        if !pattern.contains(['*', '?']) {
            return Ok(Self { pattern, regex: None });
        }
        match Regex::new(&to_regex(&pattern)) {
            Ok(re) => Ok(Self { pattern, regex: Some(re) }),
            Err(source) => Err(GlobError { pattern, source }),
        }
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// True when the pattern has no wildcard (an exact match).
    pub fn is_literal(&self) -> bool {
        self.regex.is_none()
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        match &self.regex {
            None => self.pattern == text,
            Some(re) => re.is_match(text),
        }
    }
}

/// The anchored regex of a glob. `(?s)` lets `*` and `?` match a newline too, as any other character.
fn to_regex(pattern: &str) -> String {
    let mut re = String::with_capacity(pattern.len() + 16);
    re.push_str(r"\A(?s:");
    let mut literal_start = 0;
    for (i, c) in pattern.char_indices() {
        let wildcard = match c {
            '*' => ".*",
            '?' => ".",
            _ => continue,
        };
        re.push_str(&regex::escape(&pattern[literal_start..i]));
        re.push_str(wildcard);
        literal_start = i + c.len_utf8();
    }
    re.push_str(&regex::escape(&pattern[literal_start..]));
    re.push_str(r")\z");
    re
}

/// Globs are equal when their patterns are (the compiled form follows from the text).
impl PartialEq for Glob {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for Glob {}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Glob").field(&self.pattern).finish()
    }
}

impl TryFrom<String> for Glob {
    type Error = GlobError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Glob> for String {
    fn from(value: Glob) -> Self {
        value.pattern
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn g(p: &str) -> Glob {
        Glob::new(p).unwrap()
    }

    #[test]
    fn matches() {
        let lambda = g("*Lambda-GB-Second*");
        assert!(lambda.matches("USE1-Lambda-GB-Second-ARM"));
        assert!(lambda.matches("Lambda-GB-Second"));
        assert!(!lambda.matches("USE1-Lambda-Provisioned-GB-Second"));
        assert!(g("arn:aws:lambda:*:function:api-*").matches("arn:aws:lambda:us-east-1:123:function:api-x"));
        assert!(g("a?c").matches("abc"));
        assert!(!g("a?c").matches("ac"));
        assert!(g("*").matches(""));
        assert!(g("Tax").matches("Tax"));
        assert!(!g("Tax").matches("tax"));
        assert!(g("*a*b*c").matches("xxaxxbxxbc"));
        assert!(!g("*a*b*c").matches("xxaxxbxxb"));
        assert!(g("é*").matches("été"));
        assert!(g("*Request*").matches("USE1-Request") && !g("*Request*").matches("USE1-Lambda-GB-Second"));
        assert!(!g("AWSLambda").matches("awslambda"));
    }

    #[test]
    fn one_character_is_one_char_not_one_byte_and_nothing_else_is_syntax() {
        assert!(g("a?c").matches("aéc"));
        assert!(g("??").matches("ab") && g("??").matches("é€") && !g("??").matches("é"));
        assert!(g("a*").matches("a\nb") && g("a?b").matches("a\nb"));
        assert!(g("s3://b/*/x").matches("s3://b/k/y/x"));
        for p in ["[ab]*", "{a,b}*", r"a\*", "a.b*", "(x)|y*", "^$+*"] {
            let text = p.trim_end_matches('*');
            assert!(g(p).matches(text), "{p} must match its literal prefix {text:?}");
        }
        assert!(!g("[ab]*").matches("a") && !g("a.b*").matches("axb"));
        assert!(!g("AWS*").is_literal() && g("AWSLambda").is_literal());
    }

    #[test]
    fn serde_and_equality_use_the_pattern_text() {
        let a: Glob = serde_json::from_str(r#""*Request*""#).unwrap();
        assert_eq!(a, g("*Request*"));
        assert_eq!(serde_json::to_string(&a).unwrap(), r#""*Request*""#);
        assert_eq!(format!("{a:?} {a}"), r#"Glob("*Request*") *Request*"#);
    }

    /// The character-by-character matcher this module replaced (iterative, single-star backtracking),
    /// kept as the reference for the property test below.
    fn reference(pattern: &str, text: &str) -> bool {
        let p: Vec<char> = pattern.chars().collect();
        let t: Vec<char> = text.chars().collect();
        let (mut pi, mut ti) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while ti < t.len() {
            if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == t[ti])) {
                pi += 1;
                ti += 1;
            } else if pi < p.len() && p[pi] == '*' {
                star = Some((pi, ti));
                pi += 1;
            } else if let Some((sp, st)) = star {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            } else {
                return false;
            }
        }
        p[pi..].iter().all(|&c| c == '*')
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Small alphabets (with regex and glob metacharacters, multi-byte characters and a newline) so
        /// that random patterns and texts actually match each other often.
        #[test]
        fn same_answers_as_the_hand_written_matcher(
            pattern in "[ab*?.é\\[\\]{}\\\\/:\n]{0,8}",
            text in "[ab.é\\[\\]{}\\\\/:\n*?]{0,10}",
        ) {
            prop_assert_eq!(g(&pattern).matches(&text), reference(&pattern, &text), "{:?} vs {:?}", pattern, text);
        }
    }
}
