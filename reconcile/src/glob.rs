//! Glob patterns for CUR service codes and usage types: the workspace's one matcher, `curflow-glob`
//! (`*` any run of characters, `?` one character, everything else literal and case-sensitive), the same
//! language as `curflow-attribution`'s rules; re-exported here so that the mapping keeps its public types.

pub use curflow_glob::{Glob, GlobError};
