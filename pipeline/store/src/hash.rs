//! Short content identifiers: 16 hex digits (64 bits) of a SHA-256, enough to tell versions and
//! records of one key apart, short enough for sort keys.

use sha2::{Digest, Sha256};

/// 16 hex digits of the SHA-256 of `parts`, each followed by a NUL byte so that field boundaries
/// count (`("ab", "c")` and `("a", "bc")` differ).
pub(crate) fn short_hash<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut h = Sha256::new();
    for part in parts {
        h.update(part);
        h.update([0]);
    }
    h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}
