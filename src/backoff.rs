//! Capped exponential backoff with jitter, shared by the client's retries and the scheduler
//! driver's resubscriptions.

use std::time::Duration;

use rand::Rng;

/// The wait before retry number `attempt` (0-based): `min * 2^attempt`, capped at `max`, then
/// jittered to a uniformly random value in `[full / 2, full]` so that many clients retrying
/// together spread out.
pub(crate) fn exponential_with_jitter(min: Duration, max: Duration, attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX);
    let full = min.saturating_mul(factor).min(max);
    let half = full / 2;
    let extra_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    let extra = if extra_nanos == 0 {
        0
    } else {
        rand::rng().random_range(0..=extra_nanos)
    };
    half + Duration::from_nanos(extra)
}

#[cfg(test)]
mod tests {
    use super::exponential_with_jitter;
    use std::time::Duration;

    #[test]
    fn doubles_up_to_the_cap_within_the_jitter_band() {
        let min = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for (attempt, full_ms) in [
            (0, 100),
            (1, 200),
            (2, 400),
            (4, 1600),
            (5, 2000),
            (40, 2000),
        ] {
            for _ in 0..50 {
                let wait = exponential_with_jitter(min, max, attempt);
                let full = Duration::from_millis(full_ms);
                assert!(
                    wait >= full / 2 && wait <= full,
                    "attempt {attempt}: {wait:?}"
                );
            }
        }
        assert_eq!(
            exponential_with_jitter(Duration::ZERO, max, 3),
            Duration::ZERO
        );
    }
}
