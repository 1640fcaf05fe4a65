//! A fast hasher for maps keyed by data curflow produced itself (interned ids, packed group keys,
//! the cost-line keys of one delivery): not attacker-chosen, so SipHash's HashDoS resistance
//! buys nothing and costs ~4× per key on the hot paths. Re-exports `rustc-hash` (rustc's FxHash,
//! whose `finish` rotates the well-mixed high bits down into hashbrown's bucket index).

pub use rustc_hash::{FxBuildHasher as FxBuild, FxHashMap, FxHasher};
