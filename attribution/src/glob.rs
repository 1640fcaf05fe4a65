//! Glob patterns for usage types, ARNs and resource ids.
//!
//! `*` matches any run of characters (including `:` and `/`, so `arn:aws:lambda:*:function:api-*` works
//! across ARN fields), `?` exactly one character; everything else matches itself, case-sensitively (CUR
//! values and ARNs are case-sensitive). No character classes or escapes: CUR strings never need them, and
//! a smaller language has fewer surprises in a rules file.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A compiled glob pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct Glob {
    pattern: String,
    literal: bool,
}

impl Glob {
    /// Compiles `pattern` (never fails: every string is a valid glob).
    pub fn new(pattern: impl Into<String>) -> Self {
        let pattern = pattern.into();
        let literal = !pattern.contains(['*', '?']);
        Self { pattern, literal }
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// True when the pattern has no wildcard (an exact match).
    pub fn is_literal(&self) -> bool {
        self.literal
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        if self.literal {
            return self.pattern == text;
        }
        // Iterative matcher with single-star backtracking: O(len(p) × len(t)) worst case, no recursion.
        let p: Vec<char> = self.pattern.chars().collect();
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
}

impl From<String> for Glob {
    fn from(value: String) -> Self {
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

    #[test]
    fn matches() {
        let g = Glob::new("*Lambda-GB-Second*");
        assert!(g.matches("USE1-Lambda-GB-Second-ARM"));
        assert!(g.matches("Lambda-GB-Second"));
        assert!(!g.matches("USE1-Lambda-Provisioned-GB-Second"));
        assert!(Glob::new("arn:aws:lambda:*:function:api-*").matches("arn:aws:lambda:us-east-1:123:function:api-x"));
        assert!(Glob::new("a?c").matches("abc"));
        assert!(!Glob::new("a?c").matches("ac"));
        assert!(Glob::new("*").matches(""));
        assert!(Glob::new("Tax").matches("Tax"));
        assert!(!Glob::new("Tax").matches("tax"));
        assert!(Glob::new("*a*b*c").matches("xxaxxbxxbc"));
        assert!(!Glob::new("*a*b*c").matches("xxaxxbxxb"));
        assert!(Glob::new("é*").matches("été"));
    }
}
