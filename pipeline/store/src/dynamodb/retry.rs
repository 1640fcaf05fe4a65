//! Exponential backoff with full jitter (the AWS Architecture Blog's "Exponential Backoff And
//! Jitter"): the n-th wait is uniform in `[0, min(max_delay, base_delay * 2^n)]`, and a call gives
//! up once the next wait would take it past `give_up_after` since its first attempt.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How the DynamoDB store retries throttled and transiently failed calls, and unprocessed items
/// of `BatchWriteItem`. This is on top of the SDK's own retries (`RetryConfig` of the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Ceiling of the first wait; doubles with every retry. Default 50 ms.
    pub base_delay: Duration,
    /// Largest ceiling of one wait. Default 5 s.
    pub max_delay: Duration,
    /// A call (or a batch's unprocessed items) gives up with a retryable error when the next wait
    /// would pass this much time since its first attempt. Default 120 s.
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(5),
            give_up_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (0-based): full jitter under the capped exponential.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.base_delay.saturating_mul(1u32 << attempt.min(20)).min(self.max_delay);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(random_u64() % (nanos + 1))
    }
}

/// A random number for jitter and version tags (std's randomly keyed SipHash; no extra crate).
pub(super) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_stay_under_the_capped_exponential_and_vary() {
        let p = RetryPolicy::default();
        for attempt in 0..40 {
            let ceiling = (p.base_delay * 2u32.saturating_pow(attempt.min(20))).min(p.max_delay);
            assert!(p.delay(attempt) <= ceiling);
        }
        let waits: std::collections::BTreeSet<_> = (0..20).map(|_| p.delay(6)).collect();
        assert!(waits.len() > 10, "full jitter spreads the waits: {waits:?}");
        let zero = RetryPolicy { base_delay: Duration::ZERO, ..p };
        assert_eq!(zero.delay(3), Duration::ZERO);
    }
}
