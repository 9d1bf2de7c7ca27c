//! Which certificates a page lists: the states a certificate is in, the
//! totals by state, and the query (`?detail=all`, `?state=`, `?id=`,
//! `?page=`/`?per_page=`) that picks the certificates shown one by one.

use super::collect::{CertView, EntryView, Page};

/// A staple within this many seconds of its nextUpdate may be "expiring".
const EXPIRING_SECS: i64 = 86_400;

/// The states counted and filtered by, in the order pages show them.
pub const STATES: [&str; 7] = [
    "total",
    "valid",
    "invalid",
    "failing",
    "expiring",
    "must_staple_gap",
    "without_room",
];

/// A valid staple within a day of its nextUpdate and past three quarters
/// of its validity: a healthy one is refreshed at half (by default), so
/// this one should have been, whatever its responder's validity period.
fn expiring(s: &EntryView, now: i64) -> bool {
    let left = s.next_update - now;
    let life = s.next_update - s.this_update;
    s.valid(now) && s.next_update != 0 && left < EXPIRING_SECS.min(life / 4)
}

/// Whether `c` is in `state` (one of `STATES`).
pub fn in_state(c: &CertView, now: i64, state: &str) -> bool {
    let valid = c.state.is_some_and(|s| s.valid(now));
    match state {
        "total" => true,
        "valid" => valid,
        "invalid" => !valid,
        "failing" => c.state.is_some_and(|s| s.failures > 0),
        "expiring" => c.state.is_some_and(|s| expiring(&s, now)),
        "must_staple_gap" => c.must_staple && !valid,
        "without_room" => c.zone_full,
        _ => false,
    }
}

/// Without a valid staple, failing to fetch, expiring, or without room in
/// the zone: what the alerting rules watch.
pub fn needs_attention(c: &CertView, now: i64) -> bool {
    ["invalid", "failing", "expiring", "without_room"]
        .iter()
        .any(|s| in_state(c, now, s))
}

/// The totals by state (`STATES`' order), and the soonest nextUpdate of a
/// valid staple, as seconds from now.
pub fn totals(page: &Page) -> ([usize; 7], Option<i64>) {
    let mut n = [0; 7];
    for c in &page.certs {
        for (i, state) in STATES.iter().enumerate() {
            n[i] += usize::from(in_state(c, page.now, state));
        }
    }
    let soonest = page
        .certs
        .iter()
        .filter_map(|c| c.state.filter(|s| s.valid(page.now) && s.next_update != 0))
        .map(|s| s.next_update - page.now)
        .min();
    (n, soonest)
}

/// What the query asks to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// `detail=all`: every certificate; else those that need attention.
    pub all: bool,
    /// `state=<one of STATES>`: those in that state.
    pub state: Option<String>,
    /// `id=<staple id or certificate SHA-256>`.
    pub id: Option<String>,
    /// `page=N` (from 1) of `per_page=M` (default 1000, at most 10000).
    pub page: Option<usize>,
    pub per_page: usize,
}

const DEFAULT_PER_PAGE: usize = 1000;
const MAX_PER_PAGE: usize = 10_000;

impl Query {
    pub fn parse(args: &[u8]) -> Query {
        let mut q = Query {
            all: false,
            state: None,
            id: None,
            page: None,
            per_page: DEFAULT_PER_PAGE,
        };
        for pair in args.split(|&b| b == b'&') {
            let Some((k, v)) = std::str::from_utf8(pair).ok().and_then(|p| p.split_once('=')) else {
                continue;
            };
            match k {
                "detail" => q.all = v == "all",
                "state" => q.state = Some(v.to_string()),
                "id" => q.id = Some(v.to_ascii_lowercase()),
                "page" => q.page = v.parse().ok().filter(|&p| p >= 1),
                "per_page" => {
                    if let Ok(n) = v.parse::<usize>() {
                        q.per_page = n.clamp(1, MAX_PER_PAGE);
                        q.page.get_or_insert(1);
                    }
                }
                _ => {}
            }
        }
        q
    }

    /// Whether `c` is listed (before paging).
    pub fn matches(&self, c: &CertView, now: i64) -> bool {
        if let Some(id) = &self.id {
            let key = c.id.map(|k| k.to_string());
            return key.as_deref() == Some(id.as_str()) || c.sha256.as_deref() == Some(id.as_str());
        }
        match &self.state {
            Some(state) => in_state(c, now, state),
            None => self.all || needs_attention(c, now),
        }
    }

    /// The certificates listed, and how many matched before paging.
    pub fn select<'a>(&self, page: &'a Page) -> (Vec<&'a CertView>, usize) {
        let matching: Vec<&CertView> = page.certs.iter().filter(|c| self.matches(c, page.now)).collect();
        let n = matching.len();
        let listed = match self.page {
            Some(p) => matching
                .into_iter()
                .skip((p - 1).saturating_mul(self.per_page))
                .take(self.per_page)
                .collect(),
            None => matching,
        };
        (listed, n)
    }
}
