//! Glob patterns for CUR service codes and usage types.
//!
//! `*` matches any run of characters, `?` exactly one; everything else matches itself, case-sensitively
//! (CUR values are case-sensitive). No character classes or escapes: usage types never need them, and a
//! smaller language has fewer surprises in a mapping file. Same language as `curflow-attribution`'s rules.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A glob pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct Glob(String);

impl Glob {
    /// Wraps `pattern` (every string is a valid glob).
    pub fn new(pattern: impl Into<String>) -> Self {
        Self(pattern.into())
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        if !self.0.contains(['*', '?']) {
            return self.0 == text;
        }
        // Iterative matcher with single-star backtracking: O(len(p) × len(t)) worst case, no recursion.
        let p: Vec<char> = self.0.chars().collect();
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
        Self(value)
    }
}

impl From<Glob> for String {
    fn from(value: Glob) -> Self {
        value.0
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches() {
        let g = Glob::new("*Request*");
        assert!(g.matches("USE1-Request"));
        assert!(g.matches("USE1-Request-ARM"));
        assert!(!g.matches("USE1-Lambda-GB-Second"));
        assert!(Glob::new("a?c").matches("abc"));
        assert!(!Glob::new("a?c").matches("ac"));
        assert!(Glob::new("*").matches(""));
        assert!(Glob::new("AWSLambda").matches("AWSLambda"));
        assert!(!Glob::new("AWSLambda").matches("awslambda"));
        assert!(Glob::new("*a*b*c").matches("xxaxxbxxbc"));
        assert!(!Glob::new("*a*b*c").matches("xxaxxbxxb"));
    }
}
