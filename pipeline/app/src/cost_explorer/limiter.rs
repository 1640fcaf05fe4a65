//! How many Cost Explorer requests a run makes and how fast: every request costs $0.01, and
//! Cost Explorer throttles bursts with `LimitExceededException`.

use std::time::Duration;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// A token bucket: up to `rate` requests per second on average, bursts of at most one second's
/// worth. Pure (time is passed in) so its arithmetic is tested without sleeping.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Option<Duration>,
}

impl TokenBucket {
    /// A full bucket refilled at `per_second` (> 0; the configuration checks it). The rate is a
    /// request count, not money, so `f64` is fine here.
    pub fn new(per_second: Decimal) -> Self {
        let rate = per_second.to_f64().filter(|r| *r > 0.0).unwrap_or(1.0);
        let capacity = rate.max(1.0);
        TokenBucket { rate, capacity, tokens: capacity, last: None }
    }

    /// Takes a token at time `now` (any monotonic origin), or says how long to wait for one.
    pub fn take(&mut self, now: Duration) -> Result<(), Duration> {
        if let Some(last) = self.last {
            let elapsed = now.saturating_sub(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

/// The limits of one run over all accounts: the rate and the request budget.
#[derive(Debug)]
pub struct Limiter {
    bucket: TokenBucket,
    started: tokio::time::Instant,
    budget: u64,
    made: u64,
}

/// The run's request budget is spent: nothing more may be sent.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the request budget of {budget} Cost Explorer requests is spent (ce-request-budget)")]
pub struct BudgetSpent {
    pub budget: u64,
}

impl Limiter {
    pub fn new(per_second: Decimal, budget: u64) -> Self {
        Limiter { bucket: TokenBucket::new(per_second), started: tokio::time::Instant::now(), budget, made: 0 }
    }

    /// Waits for the rate limit and counts one request against the budget.
    pub async fn acquire(&mut self) -> Result<(), BudgetSpent> {
        if self.made >= self.budget {
            return Err(BudgetSpent { budget: self.budget });
        }
        while let Err(wait) = self.bucket.take(self.started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        self.made += 1;
        Ok(())
    }

    /// Requests sent so far.
    pub fn made(&self) -> u64 {
        self.made
    }
}

/// What Cost Explorer charges per `GetCostAndUsage` request, USD.
pub const PRICE_PER_REQUEST: Decimal = Decimal::from_parts(1, 0, 0, false, 2);

/// The cost of `requests` requests, USD, exactly.
pub fn cost_of(requests: u64) -> Decimal {
    Decimal::from(requests) * PRICE_PER_REQUEST
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_of_one_second_then_the_rate() {
        let mut b = TokenBucket::new(Decimal::from(5));
        let t0 = Duration::from_secs(10);
        for _ in 0..5 {
            b.take(t0).unwrap();
        }
        let wait = b.take(t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.2).abs() < 1e-9, "{wait:?}");
        b.take(t0 + Duration::from_millis(200)).unwrap();
        assert!(b.take(t0 + Duration::from_millis(200)).is_err());
        // A long pause refills to the capacity, not beyond.
        let later = t0 + Duration::from_secs(100);
        for _ in 0..5 {
            b.take(later).unwrap();
        }
        assert!(b.take(later).is_err());
    }

    #[test]
    fn a_slow_rate_waits_between_single_requests() {
        let mut b = TokenBucket::new(Decimal::new(5, 1));
        b.take(Duration::ZERO).unwrap();
        assert_eq!(b.take(Duration::ZERO).unwrap_err(), Duration::from_secs(2));
    }

    #[tokio::test]
    async fn the_budget_stops_requests_and_prices_them() {
        let mut l = Limiter::new(Decimal::from(1000), 3);
        for _ in 0..3 {
            l.acquire().await.unwrap();
        }
        assert!(l.acquire().await.is_err());
        assert_eq!(l.made(), 3);
        assert_eq!(cost_of(l.made()).to_string(), "0.03");
    }
}
