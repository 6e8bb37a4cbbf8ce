//! Token buckets: each user's rate limit.
//!
//! A bucket holds up to `capacity` tokens and refills continuously at
//! `refill_per_sec`. Its level is kept in nano-tokens so that refill is
//! exact integer arithmetic on IC time (nanoseconds): `refill_per_sec`
//! tokens per second is `refill_per_sec` nano-tokens per nanosecond, and no
//! fraction of a token is ever lost to rounding however often the bucket is
//! read.
//!
//! ```
//! use task_manager::model::rate_limit::TokenBucket;
//! use task_manager_api::Quota;
//! let quota = Quota { capacity: 100, refill_per_sec: 10 };
//! let mut bucket = TokenBucket::full(&quota, 0);
//! bucket.reserve(&quota, 0, 100).unwrap();
//! assert_eq!(bucket.available(&quota, 2_500_000_000), 25); // 2.5 s later
//! ```

use candid::{CandidType, Deserialize};
use task_manager_api::{Error, Quota};

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// A bucket's state; the quota it is read with is stored elsewhere (the
/// user's override or the default), so that changing a quota needs no pass
/// over every bucket.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    /// Nano-tokens in the bucket at `updated_at_ns` (may exceed a capacity
    /// that was lowered since; reads cap it).
    level: u128,
    updated_at_ns: u64,
}

fn capacity(quota: &Quota) -> u128 {
    u128::from(quota.capacity) * NANOS_PER_SEC
}

impl TokenBucket {
    /// A bucket filled to the quota's capacity.
    pub fn full(quota: &Quota, now_ns: u64) -> TokenBucket {
        TokenBucket {
            level: capacity(quota),
            updated_at_ns: now_ns,
        }
    }

    /// A bucket holding `tokens` (at most the quota's capacity).
    pub fn with_tokens(quota: &Quota, tokens: u64, now_ns: u64) -> TokenBucket {
        TokenBucket {
            level: (u128::from(tokens) * NANOS_PER_SEC).min(capacity(quota)),
            updated_at_ns: now_ns,
        }
    }

    /// Takes up to `tokens`, as many as there are (settling a job that
    /// used more than it reserved: never below empty).
    pub fn take_saturating(&mut self, quota: &Quota, now_ns: u64, tokens: u64) {
        self.refill(quota, now_ns);
        self.level = self
            .level
            .saturating_sub(u128::from(tokens) * NANOS_PER_SEC);
    }

    /// Brings the level up to `now_ns`. Time that goes backwards (it does
    /// not on the IC) adds nothing.
    fn refill(&mut self, quota: &Quota, now_ns: u64) {
        let elapsed = now_ns.saturating_sub(self.updated_at_ns);
        let gained = u128::from(quota.refill_per_sec) * u128::from(elapsed);
        self.level = self.level.saturating_add(gained).min(capacity(quota));
        self.updated_at_ns = self.updated_at_ns.max(now_ns);
    }

    /// Whole tokens available at `now_ns`.
    pub fn available(&self, quota: &Quota, now_ns: u64) -> u64 {
        let mut bucket = *self;
        bucket.refill(quota, now_ns);
        whole_tokens(bucket.level)
    }

    /// Takes `tokens` from the bucket, or says why not and leaves it as it
    /// was (but for the refill up to `now_ns`).
    pub fn reserve(&mut self, quota: &Quota, now_ns: u64, tokens: u64) -> Result<(), Error> {
        if tokens > quota.capacity {
            return Err(Error::ExceedsQuota {
                requested: tokens,
                capacity: quota.capacity,
            });
        }
        self.refill(quota, now_ns);
        let needed = u128::from(tokens) * NANOS_PER_SEC;
        if self.level >= needed {
            self.level -= needed;
            return Ok(());
        }
        let available = whole_tokens(self.level);
        if quota.refill_per_sec == 0 {
            return Err(Error::QuotaExhausted {
                requested: tokens,
                available,
            });
        }
        let deficit = needed - self.level;
        let per_sec = u128::from(quota.refill_per_sec) * NANOS_PER_SEC;
        let retry_after_secs = u64::try_from(deficit.div_ceil(per_sec)).unwrap_or(u64::MAX);
        Err(Error::RateLimited {
            retry_after_secs,
            requested: tokens,
            available,
        })
    }

    /// Gives back `tokens` a job reserved but did not use (never above the
    /// capacity).
    pub fn refund(&mut self, quota: &Quota, now_ns: u64, tokens: u64) {
        self.refill(quota, now_ns);
        let refunded = u128::from(tokens) * NANOS_PER_SEC;
        self.level = self.level.saturating_add(refunded).min(capacity(quota));
    }
}

fn whole_tokens(level: u128) -> u64 {
    u64::try_from(level / NANOS_PER_SEC).unwrap_or(u64::MAX)
}

/// Checks a quota a controller sets.
pub fn validate_quota(quota: &Quota) -> Result<(), Error> {
    let invalid = |reason: String| Err(Error::InvalidQuota { reason });
    if quota.capacity == 0 {
        return invalid("capacity must be at least 1 token (ban a user instead)".into());
    }
    if quota.capacity > Quota::MAX_CAPACITY {
        return invalid(format!(
            "capacity {} is above the maximum of {}",
            quota.capacity,
            Quota::MAX_CAPACITY
        ));
    }
    if quota.refill_per_sec > quota.capacity {
        return invalid(format!(
            "refill_per_sec {} is above the capacity {}: the bucket would refill in under a second",
            quota.refill_per_sec, quota.capacity
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn quota(capacity: u64, refill_per_sec: u64) -> Quota {
        Quota {
            capacity,
            refill_per_sec,
        }
    }

    #[test]
    fn exhausts_then_refills_with_time() {
        let q = quota(100, 10);
        let mut b = TokenBucket::full(&q, 5 * SEC);
        b.reserve(&q, 5 * SEC, 60).unwrap();
        b.reserve(&q, 5 * SEC, 40).unwrap();
        assert_eq!(b.available(&q, 5 * SEC), 0);
        assert_eq!(
            b.reserve(&q, 5 * SEC, 25),
            Err(Error::RateLimited {
                retry_after_secs: 3,
                requested: 25,
                available: 0
            })
        );
        // A refused request takes nothing.
        assert_eq!(b.available(&q, 5 * SEC), 0);
        // 2.5 s later: 25 tokens.
        b.reserve(&q, 5 * SEC + 5 * SEC / 2, 25).unwrap();
        // Never above capacity, however long it waits.
        assert_eq!(b.available(&q, 1_000 * SEC), 100);
    }

    #[test]
    fn retry_after_is_enough_and_not_more() {
        let q = quota(50, 7);
        let mut b = TokenBucket::full(&q, 0);
        b.reserve(&q, 0, 50).unwrap();
        for want in 1..=50u64 {
            let Err(Error::RateLimited {
                retry_after_secs, ..
            }) = { b }.reserve(&q, 0, want)
            else {
                panic!("{want} tokens from an empty bucket were granted")
            };
            let mut later = b;
            later.reserve(&q, retry_after_secs * SEC, want).unwrap();
            let mut earlier = b;
            assert!(
                earlier
                    .reserve(&q, (retry_after_secs - 1) * SEC, want)
                    .is_err(),
                "{want} tokens: {retry_after_secs} s is not the least wait"
            );
        }
    }

    #[test]
    fn fractions_of_a_token_are_not_lost() {
        // 1 token per second read every 0.3 s: after 10 s, 10 tokens.
        let q = quota(10, 1);
        let mut b = TokenBucket::full(&q, 0);
        b.reserve(&q, 0, 10).unwrap();
        let mut t = 0;
        while t < 10 * SEC {
            t += 3 * SEC / 10;
            let _ = b.reserve(&q, t, 0);
        }
        assert_eq!(b.available(&q, 10 * SEC), 10);
    }

    #[test]
    fn refunds_are_capped_at_capacity() {
        let q = quota(100, 1);
        let mut b = TokenBucket::full(&q, 0);
        b.reserve(&q, 0, 30).unwrap();
        b.refund(&q, 0, 20);
        assert_eq!(b.available(&q, 0), 90);
        b.refund(&q, 0, 1_000);
        assert_eq!(b.available(&q, 0), 100);
    }

    #[test]
    fn oversized_and_non_refilling_requests_have_their_own_errors() {
        let q = quota(10, 0);
        let mut b = TokenBucket::full(&q, 0);
        assert_eq!(
            b.reserve(&q, 0, 11),
            Err(Error::ExceedsQuota {
                requested: 11,
                capacity: 10
            })
        );
        b.reserve(&q, 0, 8).unwrap();
        assert_eq!(
            b.reserve(&q, 1_000 * SEC, 3),
            Err(Error::QuotaExhausted {
                requested: 3,
                available: 2
            })
        );
    }

    #[test]
    fn lowering_the_capacity_caps_the_level() {
        let big = quota(100, 1);
        let small = quota(10, 1);
        let b = TokenBucket::full(&big, 0);
        assert_eq!(b.available(&small, 0), 10);
        assert_eq!(b.available(&big, 0), 100);
    }

    #[test]
    fn time_going_backwards_adds_nothing() {
        let q = quota(10, 1);
        let mut b = TokenBucket::full(&q, 100 * SEC);
        b.reserve(&q, 100 * SEC, 10).unwrap();
        assert_eq!(b.available(&q, 50 * SEC), 0);
        b.reserve(&q, 50 * SEC, 0).unwrap();
        assert_eq!(b.available(&q, 101 * SEC), 1);
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let q = quota(Quota::MAX_CAPACITY, Quota::MAX_CAPACITY);
        let mut b = TokenBucket::full(&q, 0);
        b.reserve(&q, 0, Quota::MAX_CAPACITY).unwrap();
        assert_eq!(b.available(&q, u64::MAX), Quota::MAX_CAPACITY);
        b.refund(&q, u64::MAX, u64::MAX);
        assert_eq!(b.available(&q, u64::MAX), Quota::MAX_CAPACITY);
    }

    #[test]
    fn quota_validation() {
        assert!(validate_quota(&quota(1, 0)).is_ok());
        assert!(validate_quota(&quota(100, 100)).is_ok());
        for bad in [
            quota(0, 0),
            quota(Quota::MAX_CAPACITY + 1, 1),
            quota(10, 11),
        ] {
            assert!(
                matches!(validate_quota(&bad), Err(Error::InvalidQuota { .. })),
                "{bad:?} accepted"
            );
        }
    }
}
