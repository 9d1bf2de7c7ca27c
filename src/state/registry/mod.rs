//! The module's state for one configuration cycle: the certificates it took
//! over, which X509 object (in each SSL_CTX) is which certificate, and the
//! zone their staples live in. Built in the master at configuration time,
//! inherited by the workers; lives in the cycle pool.
//!
//! Its parts: `build` (the configuration's certificates), `dynamic`
//! (certificates loaded by variables, met while serving), `fill` (the zone
//! at each start and reload) and `restore` (the disk store).

mod build;
#[cfg(test)]
mod defaults;
mod dynamic;
mod fill;
mod restore;
pub mod server;

use build::responder_urls;
pub use build::subject_of;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::ptr::NonNull;
use std::rc::Rc;

use nginx_sys::{ngx_msec_t, ngx_resolver_t};
use ngx::async_::Task;
use openssl_sys as sys;

use crate::ocsp::responder::ProxyUrl;
use crate::ocsp::response::TimeRules;
use crate::ocsp::schedule::Policy;
use crate::state::certificate::{Certificate, Protocol, ServerChecks, StapleKey};
use crate::state::store::StapleStore;
use crate::state::wakeup::Wakeup;
use crate::state::zone::{size_for, RefreshSkipped, SizeGuess, Zone};
use std::sync::Arc;

/// The module-wide settings (main-context directives).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub policy: Policy,
    pub fetch_timeout_ms: ngx_msec_t,
    pub serve_revoked: bool,
    /// Fetches a worker runs at the same time.
    pub fetch_concurrency: usize,
    /// The most certificates loaded by variables kept in the zone.
    pub dynamic_max: usize,
    /// The largest OCSP response stapled (nginx's own code reads at most
    /// 16 KB of a response, so it never staples more).
    pub max_staple_bytes: usize,
    /// `ssl_stapling_time_skew` and `ssl_stapling_max_age`.
    pub time: TimeRules,
    /// `ssl_stapling_refresh_min_interval`: a refresh on demand of a
    /// staple fetched less than this many seconds ago is skipped (0: never).
    pub refresh_min_interval: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            policy: Policy::default(),
            fetch_timeout_ms: 10_000,
            serve_revoked: false,
            fetch_concurrency: 4,
            dynamic_max: 256,
            max_staple_bytes: DEFAULT_MAX_STAPLE_BYTES,
            time: TimeRules::default(),
            refresh_min_interval: DEFAULT_REFRESH_MIN_INTERVAL,
        }
    }
}

/// However many refreshes are asked for, a responder gets at most one
/// request per staple in this many seconds from them.
pub const DEFAULT_REFRESH_MIN_INTERVAL: i64 = 10;

/// nginx's built-in stapling reads a response into one 16 KB buffer.
pub const DEFAULT_MAX_STAPLE_BYTES: usize = 16 * 1024;

/// A response too large to staple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("OCSP response of {len} bytes is larger than ssl_stapling_max_size ({max} bytes)")]
pub struct TooLarge {
    pub len: usize,
    pub max: usize,
}

/// Why a response is too large to staple, or nothing.
pub fn size_problem(len: usize, max: usize) -> Option<TooLarge> {
    (len > max).then_some(TooLarge { len, max })
}

impl Settings {
    /// How long a worker may hold a fetch lease before another takes over:
    /// the fetch's deadline, time to resolve, and a margin.
    pub fn lease_secs(&self) -> i64 {
        (self.fetch_timeout_ms / 1000) as i64 + crate::state::store::LEASE_MARGIN_SECS
    }
}

/// Which staples `refresh_now` makes due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshTarget {
    All,
    /// A staple id, or a certificate's SHA-256 (all its staples).
    Id(StapleKey),
}

/// What `refresh_now` did: the staples made due, and those skipped, why.
#[derive(Debug, Default)]
pub struct RefreshOutcome {
    pub queued: Vec<StapleKey>,
    pub skipped: Vec<(StapleKey, RefreshSkipped)>,
}

/// What a certificate loaded by variables inherits from its server.
pub struct ServerInfo {
    pub protocol: Protocol,
    pub checks: ServerChecks,
    pub responder: Option<String>,
    pub resolver: Option<(NonNull<ngx_resolver_t>, ngx_msec_t)>,
    pub proxy: Option<ProxyUrl>,
    pub names: Vec<String>,
}

/// A certificate met during handshakes (loaded by variables), known to
/// this worker; `last_used` orders evictions.
pub struct DynamicCert {
    pub cert: Rc<Certificate>,
    pub last_used: i64,
}

/// What a configuration's zone needs (`reckon_zone`).
#[derive(Debug, Clone, Copy, Default)]
struct ZoneNeed {
    need: usize,
    guess: SizeGuess,
}

pub struct StaplingContext {
    pub settings: Settings,
    pub certs: Vec<Certificate>,
    /// (SSL_CTX, X509) pointers → index in `certs`. nginx's certificate
    /// cache shares one X509 between servers, and each server may give it
    /// another staple file: the pair is what identifies a registration.
    by_x509: HashMap<(usize, usize), usize>,
    /// The stapling servers, by SSL_CTX: what a certificate loaded by
    /// variables in one of them inherits.
    servers_by_ctx: HashMap<usize, ServerInfo>,
    /// This worker's certificates loaded by variables.
    pub dynamic: RefCell<HashMap<StapleKey, DynamicCert>>,
    pub store: Option<Arc<dyn StapleStore>>,
    zone: Cell<Option<Zone>>,
    zone_name: RefCell<String>,
    /// Staples the zone had no room for in this configuration.
    no_room: RefCell<HashSet<StapleKey>>,
    /// What the zone needs, reckoned at configuration time.
    zone_need: Cell<ZoneNeed>,
    pub http_servers: usize,
    pub stream_servers: usize,
    /// A stapling server loads its certificates by variables: the zone
    /// keeps room for `ssl_stapling_dynamic_max` of them.
    pub by_variables: bool,
    /// Wakes this worker's fetch loop (see `worker`).
    pub wakeup: Wakeup,
    /// This worker's fetch task, from its start to its exit: dropped with
    /// the context at the latest, which cancels it.
    pub fetch_task: RefCell<Option<Task<()>>>,
}

impl StaplingContext {
    pub fn certificate_for(&self, ssl_ctx: *mut sys::SSL_CTX, x509: *mut sys::X509) -> Option<&Certificate> {
        self.by_x509
            .get(&(ssl_ctx as usize, x509 as usize))
            .and_then(|&i| self.certs.get(i))
    }

    pub fn zone(&self) -> Option<Zone> {
        self.zone.get()
    }

    pub fn zone_name(&self) -> String {
        self.zone_name.borrow().clone()
    }

    /// The server behind a stapling SSL_CTX (for certificates loaded by
    /// variables, which the configuration did not show).
    pub fn server_of(&self, ssl_ctx: *mut sys::SSL_CTX) -> Option<&ServerInfo> {
        self.servers_by_ctx.get(&(ssl_ctx as usize))
    }

    /// Makes the staples of `target` due now, fetched from a responder,
    /// and wakes this worker's fetch task, except those being fetched or
    /// fetched less than `refresh_min_interval` ago. (The lease still lets
    /// one worker fetch each.)
    pub fn refresh_now(&self, target: RefreshTarget, now: i64) -> RefreshOutcome {
        let dynamic = self.dynamic_snapshot();
        let certs = self.certs.iter().chain(dynamic.iter().map(|c| &**c));
        let mut keys: Vec<StapleKey> = certs
            .filter(|c| c.plan.is_some())
            .filter(|c| match target {
                RefreshTarget::All => true,
                RefreshTarget::Id(id) => c.key == id || c.sha256 == id,
            })
            .map(|c| c.key)
            .collect();
        keys.sort_unstable_by_key(|k| k.0);
        keys.dedup();
        let mut out = RefreshOutcome::default();
        let Some(zone) = self.zone() else {
            return out;
        };
        let mut z = zone.lock();
        for key in keys {
            let Some(mut e) = z.find(&key) else { continue };
            match e.request_refresh(now, self.settings.refresh_min_interval) {
                Ok(()) => out.queued.push(key),
                Err(why) => out.skipped.push((key, why)),
            }
        }
        drop(z);
        if !out.queued.is_empty() {
            self.wakeup.notify();
        }
        out
    }

    /// About how large the zone must be for this configuration: its
    /// staples at the sizes known when it was loaded (`reckon_zone`), the
    /// others at the median of those, and as many certificates loaded by
    /// variables as it keeps.
    pub fn zone_bytes_needed(&self) -> usize {
        self.zone_need.get().need
    }

    /// Reckons (master, configuration time) what the zone needs from the
    /// staples whose size is known: files given by `ssl_stapling_file` and
    /// those in a store directory (a stat per file; nothing is read).
    /// Returns the size the module picks when none is given: every staple
    /// at least `STAPLE_ESTIMATE`, so that a reload which learns the real
    /// sizes keeps the zone (a new size would be a new zone).
    pub fn reckon_zone(&self) -> usize {
        let stored = self.stored_sizes();
        let known: Vec<Option<usize>> = self
            .certs
            .iter()
            .map(|c| {
                c.file_staple
                    .as_ref()
                    .map(|r| r.der.len())
                    .or_else(|| stored.get(&c.key).copied())
            })
            .collect();
        let guess = SizeGuess::from_known(known.iter().flatten().copied().collect());
        let dynamic = std::iter::repeat_n(None, self.dynamic_room());
        let sizes = || known.iter().copied().chain(dynamic.clone());
        let need = size_for(sizes().map(|k| k.unwrap_or(guess.for_need())));
        let auto = size_for(sizes().map(|k| k.unwrap_or(0).max(guess.for_sizing())));
        self.zone_need.set(ZoneNeed { need, guess });
        auto
    }

    /// The guess for staples of unknown size made at `reckon_zone`.
    pub fn size_guess(&self) -> SizeGuess {
        self.zone_need.get().guess
    }

    /// How many certificates loaded by variables the zone is sized for:
    /// none when no stapling server loads any.
    pub fn dynamic_room(&self) -> usize {
        if self.by_variables {
            self.settings.dynamic_max
        } else {
            0
        }
    }

    /// Whether the zone had no room for this staple in this configuration
    /// (it is then neither fetched nor served).
    pub fn without_room(&self, key: &StapleKey) -> bool {
        self.no_room.borrow().contains(key)
    }
}
