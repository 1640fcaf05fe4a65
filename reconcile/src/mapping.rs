//! Which CUR lines belong to which of the app's resource types.
//!
//! The app estimates per `resource_type` (`lambda_invocation`, `dynamodb_read`, …); CUR bills per service
//! and usage type (`AWSLambda` / `USE1-Request`). A TOML file ([`EXAMPLE_MAPPING_TOML`], shipped as
//! `resource-types.example.toml`) lists resource types with glob patterns on both; for each actual cost
//! line the **first** resource type whose service and usage-type patterns match claims it. Lines that no
//! resource type claims go to the [`UNMAPPED`] bucket: they still count in the tenant's total, and show up
//! as a resource type of their own with no estimate, so unexplained spend is visible rather than lost.
//!
//! Quantities: the app's quantity for a resource type is `Σ usage_quantity × quantity_factor` of the lines
//! it claims. It is *unknown* (and no volume/rate decomposition is made) when a claimed line has no usage
//! quantity, or when `usage_unit` is set and a line's unit differs (adding requests to GB-seconds would be
//! meaningless).

use std::collections::BTreeSet;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::glob::Glob;
use crate::money::parse_decimal;

/// The documented example mapping (`resource-types.example.toml`).
pub const EXAMPLE_MAPPING_TOML: &str = include_str!("../resource-types.example.toml");

/// The bucket of actual cost lines that no resource type claims (a reserved resource-type name).
pub const UNMAPPED: &str = "unmapped";

/// A mapping file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("mapping file {source_name}: {message}")]
    Syntax { source_name: String, message: String },
    #[error("mapping file {source_name}, resource_type #{index} ({name:?}): {message}")]
    Entry { source_name: String, index: usize, name: String, message: String },
}

/// One resource type and the CUR lines it claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceType {
    /// The app's `resource_type` value.
    pub name: String,
    /// Free text for people.
    pub description: String,
    /// Globs on the CUR service code (`line_item_product_code`); at least one.
    pub services: Vec<Glob>,
    /// Globs on the usage type; empty = every usage type of the service.
    pub usage_types: Vec<Glob>,
    /// The unit of the app's `quantity` (for reports), e.g. `requests`.
    pub quantity_unit: Option<String>,
    /// The CUR `pricing_unit` the lines must have for their quantity to count, e.g. `Requests`.
    pub usage_unit: Option<String>,
    /// App quantity = CUR usage quantity × this (e.g. `0.001` when the app counts thousands).
    pub quantity_factor: Decimal,
}

impl ResourceType {
    /// Whether this type claims a line of `service` / `usage_type`.
    pub fn matches(&self, service: &str, usage_type: &str) -> bool {
        self.services.iter().any(|g| g.matches(service))
            && (self.usage_types.is_empty() || self.usage_types.iter().any(|g| g.matches(usage_type)))
    }
}

/// The ordered resource types of a mapping file (built only through the validating [`Self::new`] and
/// [`Self::from_toml`]; it serializes for echoing the effective configuration).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ResourceTypeMap {
    types: Vec<ResourceType>,
}

impl ResourceTypeMap {
    /// Resource types in match order; names must be non-empty, unique and not [`UNMAPPED`].
    pub fn new(types: Vec<ResourceType>) -> Result<Self, MappingError> {
        let mut seen = BTreeSet::new();
        for (i, t) in types.iter().enumerate() {
            let problem = if t.name.trim().is_empty() || t.name.trim() != t.name {
                Some("the name must be non-empty, without surrounding whitespace")
            } else if t.name == UNMAPPED {
                Some("the name \"unmapped\" is reserved for lines no resource type claims")
            } else if !seen.insert(t.name.as_str()) {
                Some("the name is used twice")
            } else if t.services.is_empty() {
                Some("at least one service pattern is required")
            } else {
                None
            };
            if let Some(message) = problem {
                return Err(MappingError::Entry {
                    source_name: "<mapping>".into(),
                    index: i + 1,
                    name: t.name.clone(),
                    message: message.into(),
                });
            }
        }
        Ok(Self { types })
    }

    /// Parses a mapping file; `source_name` (a path) is only used in error messages.
    pub fn from_toml(text: &str, source_name: &str) -> Result<Self, MappingError> {
        let syntax = |message: String| MappingError::Syntax { source_name: source_name.into(), message };
        let raw: RawFile = toml::from_str(text).map_err(|e| syntax(e.to_string()))?;
        if let Some(v) = raw.version
            && v != 1
        {
            return Err(syntax(format!("unsupported version {v} (this build reads version 1)")));
        }
        let mut types = Vec::with_capacity(raw.resource_type.len());
        for (i, r) in raw.resource_type.into_iter().enumerate() {
            let (index, name) = (i + 1, r.name.clone());
            let entry = |message: String| MappingError::Entry {
                source_name: source_name.into(),
                index,
                name: name.clone(),
                message,
            };
            let quantity_factor = match r.quantity_factor {
                None => Decimal::ONE,
                Some(toml::Value::Integer(n)) => Decimal::from(n),
                Some(toml::Value::String(s)) => parse_decimal(&s)
                    .ok()
                    .filter(|d| *d > Decimal::ZERO)
                    .ok_or_else(|| entry(format!("quantity_factor {s:?} is not a positive decimal")))?,
                Some(other) => {
                    return Err(entry(format!(
                        "quantity_factor must be an integer or a decimal string like \"0.001\" (floats are not exact), found {other}"
                    )));
                }
            };
            if quantity_factor <= Decimal::ZERO {
                return Err(entry("quantity_factor must be positive".into()));
            }
            types.push(ResourceType {
                name: r.name,
                description: r.description.unwrap_or_default(),
                services: r.service.into_globs("service").map_err(entry)?,
                usage_types: match r.usage_type {
                    Some(u) => u.into_globs("usage_type").map_err(entry)?,
                    None => Vec::new(),
                },
                quantity_unit: r.quantity_unit,
                usage_unit: r.usage_unit,
                quantity_factor,
            });
        }
        Self::new(types).map_err(|e| match e {
            MappingError::Entry { index, name, message, .. } => {
                MappingError::Entry { source_name: source_name.into(), index, name, message }
            }
            other => other,
        })
    }

    /// The documented example mapping, parsed.
    pub fn example() -> Result<Self, MappingError> {
        Self::from_toml(EXAMPLE_MAPPING_TOML, "resource-types.example.toml")
    }

    /// The resource types in match order.
    pub fn types(&self) -> &[ResourceType] {
        &self.types
    }

    /// The resource type named `name`.
    pub fn get(&self, name: &str) -> Option<&ResourceType> {
        self.types.iter().find(|t| t.name == name)
    }

    /// The first resource type claiming a line of `service` / `usage_type`; `None` = [`UNMAPPED`].
    pub fn classify(&self, service: &str, usage_type: &str) -> Option<&ResourceType> {
        self.types.iter().find(|t| t.matches(service, usage_type))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    version: Option<i64>,
    #[serde(default)]
    resource_type: Vec<RawType>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawType {
    name: String,
    description: Option<String>,
    service: OneOrMany,
    usage_type: Option<OneOrMany>,
    quantity_unit: Option<String>,
    usage_unit: Option<String>,
    quantity_factor: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    /// Compiles the globs of one field (`field` names it in the error).
    fn into_globs(self, field: &str) -> Result<Vec<Glob>, String> {
        let v = match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        };
        v.into_iter().map(Glob::new).collect::<Result<_, _>>().map_err(|e| format!("{field}: {e}"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn example_parses_and_classifies() {
        let m = ResourceTypeMap::example().unwrap();
        assert!(m.types().len() >= 5);
        assert_eq!(m.classify("AWSLambda", "USE1-Request").map(|t| t.name.as_str()), Some("lambda_invocation"));
        assert_eq!(m.classify("AWSLambda", "USE1-Request-ARM").map(|t| t.name.as_str()), Some("lambda_invocation"));
        assert_eq!(m.classify("AWSLambda", "USE1-Lambda-GB-Second").map(|t| t.name.as_str()), Some("lambda_compute"));
        assert_eq!(
            m.classify("AmazonDynamoDB", "USE1-ReadRequestUnits").map(|t| t.name.as_str()),
            Some("dynamodb_read")
        );
        assert_eq!(m.classify("AmazonS3", "USE1-TimedStorage-ByteHrs").map(|t| t.name.as_str()), Some("s3_storage"));
        assert_eq!(m.classify("AWSCloudTrail", "USE1-FreeEventsRecorded"), None);
        assert_eq!(m.get("lambda_invocation").unwrap().quantity_unit.as_deref(), Some("requests"));
    }

    #[test]
    fn rejects_bad_files() {
        let err = |t: &str| ResourceTypeMap::from_toml(t, "m.toml").unwrap_err().to_string();
        assert!(err("version = 2").contains("unsupported version 2"));
        assert!(err("[[resource_type]]\nname = \"unmapped\"\nservice = \"X\"").contains("reserved"));
        assert!(
            err("[[resource_type]]\nname = \"a\"\nservice = \"X\"\n[[resource_type]]\nname = \"a\"\nservice = \"Y\"")
                .contains("#2 (\"a\"): the name is used twice")
        );
        assert!(err("[[resource_type]]\nname = \"a\"\nservice = \"X\"\nquantity_factor = 0.5").contains("floats"));
        assert!(err("[[resource_type]]\nname = \"a\"\nservice = \"X\"\nquantity_factor = \"-1\"").contains("positive"));
        assert!(err("[[resource_type]]\nname = \"a\"\nservice = \"X\"\ncolour = \"red\"").contains("colour"));
        assert!(err("[[resource_type]]\nname = \"a\"\nservice = []").contains("at least one service"));
        let m = ResourceTypeMap::from_toml(
            "[[resource_type]]\nname = \"a\"\nservice = [\"X\", \"Y*\"]\nquantity_factor = \"0.001\"",
            "m.toml",
        )
        .unwrap();
        assert!(m.classify("Yes", "anything").is_some());
        assert_eq!(m.types()[0].quantity_factor, Decimal::new(1, 3));
    }
}
