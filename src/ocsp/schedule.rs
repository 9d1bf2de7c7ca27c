//! When to fetch a staple again: early refresh of good responses, capped
//! exponential backoff after failures, never later than needed to replace
//! a staple before its nextUpdate. No nginx here; times are Unix seconds.

/// A response without nextUpdate is refreshed this often (as nginx does).
pub const NO_NEXT_UPDATE_REFRESH: i64 = 3600;
/// Never refresh more often than this, whatever the response says.
pub const MIN_REFRESH: i64 = 1;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Refresh {
    /// At this fraction of the response's validity (thisUpdate..nextUpdate).
    Fraction(f64),
    /// A fixed interval after each fetch, capped by the validity.
    Interval(i64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub refresh: Refresh,
    /// First retry after a failure; doubles with each further failure.
    pub retry_min: i64,
    /// The longest retry interval.
    pub retry_max: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            refresh: Refresh::Fraction(0.5),
            retry_min: 60,
            retry_max: 3600,
        }
    }
}

/// Up to a tenth of `span`, from a random number: spreads certificates
/// fetched in the same second over time.
fn jitter(span: i64, random: u32) -> i64 {
    if span <= 10 {
        return 0;
    }
    (span / 10) * i64::from(random % 1024) / 1024
}

/// The latest moment a fetch can still replace a staple that expires at
/// `next_update`: a minute before, or half the time left when less.
fn last_chance(next_update: i64, now: i64) -> i64 {
    next_update - ((next_update - now) / 2).clamp(0, 60)
}

/// When to fetch again after a good response was stored at `now`.
pub fn after_success(
    policy: &Policy,
    this_update: i64,
    next_update: Option<i64>,
    now: i64,
    random: u32,
) -> i64 {
    let due = match (policy.refresh, next_update) {
        (Refresh::Interval(iv), _) => now + iv,
        (Refresh::Fraction(f), Some(next)) => this_update + ((next - this_update) as f64 * f) as i64,
        (Refresh::Fraction(_), None) => now + NO_NEXT_UPDATE_REFRESH,
    };
    let mut at = due - jitter(due - now, random);
    if let Some(next) = next_update {
        at = at.min(last_chance(next, now));
    }
    at.max(now + MIN_REFRESH)
}

/// When to retry after the `failures`-th failure in a row (1 for the
/// first). `staple_expires` is the nextUpdate of the staple still served,
/// if any.
pub fn after_failure(
    policy: &Policy,
    failures: u32,
    staple_expires: Option<i64>,
    now: i64,
    random: u32,
) -> i64 {
    let shift = failures.saturating_sub(1).min(30);
    let backoff = policy
        .retry_min
        .saturating_mul(1i64 << shift)
        .min(policy.retry_max)
        .max(MIN_REFRESH);
    let mut at = now + backoff - jitter(backoff, random);
    if let Some(next) = staple_expires.filter(|&n| n > now) {
        at = at.min(last_chance(next, now).max(now + 5));
    }
    at.max(now + MIN_REFRESH)
}

/// Whether worker `me` may take the fetch lease held by `owner` until
/// `until`: it is free, past its deadline, or held by a worker that died.
/// A lease of our own is a fetch of ours in flight: not taken twice.
pub fn may_take_lease(owner: i32, until: i64, me: i32, now: i64, alive: impl Fn(i32) -> bool) -> bool {
    owner == 0 || until <= now || (owner != me && !alive(owner))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Policy = Policy {
        refresh: Refresh::Fraction(0.5),
        retry_min: 60,
        retry_max: 3600,
    };

    #[test]
    fn refresh_at_half_of_validity_with_jitter_before_it() {
        // a week-long response fetched when made
        let (this, next) = (1_000_000, 1_000_000 + 7 * 86_400);
        let half = this + 7 * 86_400 / 2;
        assert_eq!(after_success(&P, this, Some(next), this, 0), half);
        let late = after_success(&P, this, Some(next), this, 1023);
        assert!(late < half && late >= half - 7 * 86_400 / 2 / 10, "{late}");
    }

    #[test]
    fn short_validity_is_refreshed_before_it_ends() {
        // two minutes of validity: refreshed after about one
        let at = after_success(&P, 1000, Some(1120), 1000, 500);
        assert!((1050..=1060).contains(&at), "{at}");
        // a response already near its end: a last try before nextUpdate
        let at = after_success(&P, 0, Some(1120), 1100, 0);
        assert!((1101..1120).contains(&at), "{at}");
    }

    #[test]
    fn interval_and_no_next_update() {
        let iv = Policy {
            refresh: Refresh::Interval(30),
            ..P
        };
        assert_eq!(after_success(&iv, 0, Some(100_000), 500, 0), 530);
        assert_eq!(after_success(&iv, 0, Some(520), 500, 0), 510);
        assert_eq!(after_success(&P, 0, None, 500, 0), 500 + NO_NEXT_UPDATE_REFRESH);
    }

    #[test]
    fn leases() {
        let alive = |_| true;
        let dead = |_| false;
        assert!(may_take_lease(0, 0, 7, 100, alive), "free");
        assert!(!may_take_lease(7, 200, 7, 100, alive), "ours, in flight");
        assert!(may_take_lease(7, 100, 7, 100, alive), "ours, overran");
        assert!(!may_take_lease(8, 200, 7, 100, alive), "held by a live worker");
        assert!(may_take_lease(8, 100, 7, 100, alive), "deadline reached");
        assert!(may_take_lease(8, 200, 7, 100, dead), "owner died");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let waits: Vec<i64> = (1..=8).map(|f| after_failure(&P, f, None, 0, 0)).collect();
        assert_eq!(waits, vec![60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(after_failure(&P, u32::MAX, None, 0, 0), 3600);
        let j = after_failure(&P, 3, None, 0, 1023);
        assert!((216..240).contains(&j), "{j}");
    }

    #[test]
    fn backoff_never_passes_the_staples_expiry() {
        // the staple expires in 10 minutes; the 4th failure would wait 8
        assert_eq!(after_failure(&P, 4, Some(600), 0, 0), 480);
        // the 5th would wait 16: retry a minute before expiry instead
        assert_eq!(after_failure(&P, 5, Some(600), 0, 0), 540);
        // close to expiry: retries keep coming, never in a tight loop
        assert_eq!(after_failure(&P, 9, Some(606), 600, 0), 605);
        assert_eq!(after_failure(&P, 9, Some(601), 600, 0), 605);
        // an expired staple does not cap anything
        assert_eq!(after_failure(&P, 1, Some(500), 600, 0), 660);
    }
}
