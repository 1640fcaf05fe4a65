//! Glob patterns for usage types, ARNs and resource ids: the workspace's one matcher, `curflow-glob`
//! (`*` any run of characters, `?` one character, everything else literal and case-sensitive), re-exported
//! here so that rules and assignments keep their public types.

pub use curflow_glob::{Glob, GlobError};
