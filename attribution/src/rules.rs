//! Attribution rules: which driver and policy split each shared-pool line.
//!
//! Rules are read from a TOML file (the documented default is `rules/default.toml`, compiled in as
//! [`DEFAULT_RULES_TOML`] and parsed by [`default_rules`]). Each rule matches on the line's service, usage
//! type, operation, resource id and line-item type with [`Glob`]s; the **first** matching rule wins; a line
//! that no rule matches is [`crate::UnattributedReason::Unmatched`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::allocate::SharedLine;
use crate::driver::Driver;
use crate::glob::Glob;
use crate::money::parse_exact;
use crate::policy::{SharePolicy, Window};
use crate::tenant::TenantId;

/// The default rules file, documented inline.
pub const DEFAULT_RULES_TOML: &str = include_str!("../rules/default.toml");

/// A rules file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("rules file {source_name}: {message}")]
    Syntax { source_name: String, message: String },
    #[error("rules file {source_name}, rule #{index} ({name:?}): {message}")]
    Rule { source_name: String, index: usize, name: String, message: String },
}

/// What a rule matches; an empty list matches anything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Matcher {
    pub service: Vec<Glob>,
    pub usage_type: Vec<Glob>,
    pub operation: Vec<Glob>,
    pub resource: Vec<Glob>,
    pub line_item_type: Vec<Glob>,
}

impl Matcher {
    /// Whether `line` matches every non-empty field.
    pub fn matches(&self, line: &SharedLine) -> bool {
        let any = |globs: &[Glob], v: &str| globs.is_empty() || globs.iter().any(|g| g.matches(v));
        any(&self.service, &line.service)
            && any(&self.usage_type, &line.usage_type)
            && any(&self.operation, &line.operation)
            && any(&self.resource, &line.resource_id)
            && any(&self.line_item_type, &line.line_item_type)
    }
}

/// One rule: a name (stored with every attributed row), what it matches, and how it splits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub description: String,
    pub matcher: Matcher,
    pub policy: SharePolicy,
}

/// An ordered list of rules.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rules {
    rules: Vec<Rule>,
}

impl Rules {
    /// Rules in match order; names must be unique and non-empty. (Reconcile's
    /// `ResourceTypeMap::new` checks its names the same way on purpose: the two pure crates share
    /// no dependency, and each states its own file format's rule.)
    pub fn new(rules: Vec<Rule>) -> Result<Self, RulesError> {
        let mut seen = BTreeSet::new();
        for (i, r) in rules.iter().enumerate() {
            if r.name.trim().is_empty() || !seen.insert(r.name.clone()) {
                return Err(RulesError::Rule {
                    source_name: "<rules>".into(),
                    index: i + 1,
                    name: r.name.clone(),
                    message: "rule names must be non-empty and unique".into(),
                });
            }
        }
        Ok(Self { rules })
    }

    /// Parses a rules file; `source_name` (a path) is only used in error messages.
    pub fn from_toml(text: &str, source_name: &str) -> Result<Self, RulesError> {
        let raw: RawFile = toml::from_str(text)
            .map_err(|e| RulesError::Syntax { source_name: source_name.into(), message: e.to_string() })?;
        if let Some(v) = raw.version
            && v != 1
        {
            return Err(RulesError::Syntax {
                source_name: source_name.into(),
                message: format!("unsupported version {v} (this build reads version 1)"),
            });
        }
        let mut rules = Vec::with_capacity(raw.rule.len());
        for (i, r) in raw.rule.into_iter().enumerate() {
            let name = r.name.clone();
            let err = |message: String| RulesError::Rule {
                source_name: source_name.into(),
                index: i + 1,
                name: name.clone(),
                message,
            };
            rules.push(r.into_rule().map_err(err)?);
        }
        Self::new(rules).map_err(|e| match e {
            RulesError::Rule { index, name, message, .. } => {
                RulesError::Rule { source_name: source_name.into(), index, name, message }
            }
            other => other,
        })
    }

    /// The first rule matching `line`, or `None` (unmatched).
    pub fn route(&self, line: &SharedLine) -> Option<&Rule> {
        self.rules.iter().find(|r| r.matcher.matches(line))
    }

    /// The rules in match order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

/// The shipped default rules: [`DEFAULT_RULES_TOML`], parsed once per process.
///
/// In match order: tax/credits/refunds/fees, support, CloudWatch and KMS → weighted by direct cost; Lambda
/// duration → GB-seconds, requests → invocations, other Lambda → invocations; DynamoDB reads/writes → read/write
/// units, storage → storage proxy; S3 storage → byte-hours, tier-1/tier-2/other requests → request counts;
/// agent runtime vCPU / memory / other → vCPU-hours / GB-hours / sessions. The file is the only copy, so the
/// documented defaults and the ones applied cannot drift apart.
pub fn default_rules() -> Rules {
    DEFAULT_RULES.clone()
}

// The file is compiled in and parsed by a unit test, so a failure here is a build defect, never bad input.
#[allow(clippy::expect_used)]
static DEFAULT_RULES: LazyLock<Rules> = LazyLock::new(|| {
    Rules::from_toml(DEFAULT_RULES_TOML, "rules/default.toml").expect("the shipped rules/default.toml parses")
});

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    version: Option<u32>,
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    /// Compiles the globs of one field (`field` names it in the error).
    fn globs(v: Option<OneOrMany>, field: &str) -> Result<Vec<Glob>, String> {
        let v = match v {
            None => Vec::new(),
            Some(OneOrMany::One(s)) => vec![s],
            Some(OneOrMany::Many(v)) => v,
        };
        v.into_iter().map(Glob::new).collect::<Result<_, _>>().map_err(|e| format!("{field}: {e}"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    #[serde(default)]
    description: String,
    service: Option<OneOrMany>,
    usage_type: Option<OneOrMany>,
    operation: Option<OneOrMany>,
    resource: Option<OneOrMany>,
    line_item_type: Option<OneOrMany>,
    policy: String,
    driver: Option<String>,
    window: Option<Window>,
    weights: Option<BTreeMap<String, toml::Value>>,
}

impl RawRule {
    fn into_rule(self) -> Result<Rule, String> {
        if self.weights.is_some() && self.policy != "fixed" {
            return Err("`weights` only apply to policy \"fixed\"".into());
        }
        let policy = match self.policy.as_str() {
            "proportional" => {
                let driver = self.driver.ok_or("policy \"proportional\" needs `driver`")?;
                let driver: Driver = driver.parse().map_err(|e| format!("{e}"))?;
                SharePolicy::Proportional { driver, window: self.window.unwrap_or_default() }
            }
            other => {
                if self.driver.is_some() || self.window.is_some() {
                    return Err(format!("`driver` and `window` only apply to policy \"proportional\", not {other:?}"));
                }
                match other {
                    "weighted_by_direct_cost" => SharePolicy::WeightedByDirectCost,
                    "even" => SharePolicy::Even,
                    "fixed" => {
                        SharePolicy::Fixed(fixed_weights(self.weights.ok_or("policy \"fixed\" needs `weights`")?)?)
                    }
                    _ => {
                        return Err(format!(
                            "unknown policy {other:?} (expected proportional, weighted_by_direct_cost, even, fixed)"
                        ));
                    }
                }
            }
        };
        Ok(Rule {
            name: self.name,
            description: self.description,
            matcher: Matcher {
                service: OneOrMany::globs(self.service, "service")?,
                usage_type: OneOrMany::globs(self.usage_type, "usage_type")?,
                operation: OneOrMany::globs(self.operation, "operation")?,
                resource: OneOrMany::globs(self.resource, "resource")?,
                line_item_type: OneOrMany::globs(self.line_item_type, "line_item_type")?,
            },
            policy,
        })
    }
}

fn fixed_weights(raw: BTreeMap<String, toml::Value>) -> Result<BTreeMap<TenantId, Decimal>, String> {
    let mut out = BTreeMap::new();
    for (tenant, v) in raw {
        let id = TenantId::new(tenant.clone()).map_err(|e| format!("weights: {e}"))?;
        let w = match v {
            toml::Value::String(s) => parse_exact(&s).map_err(|e| format!("weights.{tenant}: {e}"))?,
            toml::Value::Integer(i) => Decimal::from(i),
            _ => return Err(format!("weights.{tenant}: write the weight as a string (\"0.7\") or an integer")),
        };
        if w.is_sign_negative() && !w.is_zero() {
            return Err(format!("weights.{tenant}: negative weight {w}"));
        }
        out.insert(id, w);
    }
    if out.values().all(Decimal::is_zero) {
        return Err("weights: at least one weight must be positive".into());
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn default_file_parses_and_equals_the_code() {
        let parsed = Rules::from_toml(DEFAULT_RULES_TOML, "rules/default.toml").unwrap();
        assert_eq!(parsed, default_rules());
        // The content itself is checked against an independent copy in `curflow-fixtures`
        // (`default_rules_match_the_shipped_file`) and by the allocation tests; here only the order.
        let names: Vec<&str> = parsed.rules().iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "tax-credits-refunds-fees",
                "support",
                "observability-and-keys",
                "lambda-duration",
                "lambda-requests",
                "lambda-other",
                "dynamodb-reads",
                "dynamodb-writes",
                "dynamodb-storage",
                "s3-storage",
                "s3-requests-tier1",
                "s3-requests-tier2",
                "s3-requests-other",
                "agent-runtime-cpu",
                "agent-runtime-memory",
                "agent-runtime-other",
            ]
        );
    }

    #[test]
    fn rejects_bad_files() {
        let bad = [
            ("[[rule]]\nname='x'\npolicy='proportional'", "needs `driver`"),
            ("[[rule]]\nname='x'\npolicy='proportional'\ndriver='cpu'", "unknown driver"),
            ("[[rule]]\nname='x'\npolicy='even'\ndriver='lambda_invocations'", "only apply"),
            ("[[rule]]\nname='x'\npolicy='fixed'\nweights={a=0.5}", "as a string"),
            ("[[rule]]\nname='x'\npolicy='fixed'\nweights={a='-1'}", "negative"),
            ("[[rule]]\nname='x'\npolicy='split'", "unknown policy"),
            ("[[rule]]\nname='x'\npolicy='even'\nservise='AWSLambda'", "unknown field"),
            ("[[rule]]\nname='x'\npolicy='even'\n[[rule]]\nname='x'\npolicy='even'", "unique"),
            ("version=2", "unsupported version"),
        ];
        for (text, want) in bad {
            let e = Rules::from_toml(text, "r.toml").unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("r.toml"), "{text}: {e}");
        }
        let ok = Rules::from_toml("[[rule]]\nname='f'\npolicy='fixed'\nweights={a='0.7', b=3}", "r.toml").unwrap();
        assert!(matches!(&ok.rules()[0].policy, SharePolicy::Fixed(w) if w.len() == 2));
    }
}
