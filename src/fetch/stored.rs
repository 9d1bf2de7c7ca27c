//! A fetch with a store (`ssl_stapling_store`), one path for all of them
//! (`StapleStore`: a directory, a shared directory, Valkey/Redis):
//!
//! 1. with a store other instances write too, a newer staple another
//!    instance wrote is taken instead of fetching, or the store's lease is
//!    taken so that one instance fetches per refresh (an instance that
//!    finds a live lease looks at the store again shortly instead);
//! 2. the fetch (`one`);
//! 3. what it brought written to the store (or the staple removed), and
//!    the lease given back.
//!
//! Every store call runs off the event loop with the fetch's deadline
//! (`blocking`); a store that fails, hangs or has too many calls hung
//! costs a warning and the staple is fetched. Never on the handshake path.

use std::sync::Arc;
use std::time::Duration;

use crate::base::log::{log_info, log_notice, log_warn, Log};
use crate::fetch::blocking::{self, Blocked};
use crate::fetch::one::fetch_one;
use crate::fetch::task::{exiting, now};
use crate::ocsp::schedule;
use crate::state::certificate::Certificate;
use crate::state::registry::StaplingContext;
use crate::state::store::{Displaced, Persist, StapleStore, StoreLease, MAX_LEASE_AHEAD_SECS};
use crate::state::zone::Zone;

/// How often an instance that waits for another's fetch looks at the store.
const POLL_SECS: i64 = 1;

/// The store calls made before a fetch, each with the fetch's deadline:
/// the read, the lease, the read after the lease. The zone's fetch lease
/// covers them as well as the fetch (`worker::claim`).
pub const CALLS_BEFORE_FETCH: i64 = 3;

type StoreRef = Arc<dyn StapleStore>;

/// What to do about a staple that is due, with the zone's lease held.
enum Step {
    /// Another instance's newer staple was taken: no fetch.
    Taken,
    /// Another instance fetches it: look again then.
    Wait(i64),
    /// This worker fetches it; it holds the store's lease if true.
    Fetch(bool),
}

/// Fetches `cert`'s staple, with `store` around the fetch if there is one.
pub async fn fetch(
    ctx: &'static StaplingContext,
    zone: Zone,
    cert: &Certificate,
    store: Option<&StoreRef>,
    me: &str,
    log: Log,
) {
    let Some(store) = store else {
        fetch_one(ctx, zone, cert, log).await;
        return;
    };
    let leased = match before_fetch(ctx, zone, cert, store, me, log).await {
        Step::Taken => return,
        Step::Wait(at) => {
            if let Some(mut e) = zone.lock().find(&cert.key) {
                e.release_lease(at);
            }
            return;
        }
        Step::Fetch(leased) => leased,
    };
    let persist = fetch_one(ctx, zone, cert, log).await;
    if exiting() || (persist == Persist::Keep && !leased) {
        return;
    }
    after_fetch(ctx, cert, store, leased.then_some(me), persist, log).await;
}

/// How long a store call may take before the worker gives up on it: the
/// fetch's own deadline.
fn limit(ctx: &StaplingContext) -> Duration {
    Duration::from_millis(ctx.settings.fetch_timeout_ms as u64)
}

/// Runs a store call off the event loop; a store that did not answer, or
/// has too many calls unanswered, is one warning saying which.
async fn call<T: Send + 'static>(
    ctx: &StaplingContext,
    store: &StoreRef,
    what: &str,
    cert: &Certificate,
    log: Log,
    f: impl FnOnce(&dyn StapleStore) -> T + Send + 'static,
) -> Option<T> {
    let s = store.clone();
    match blocking::run(limit(ctx), move || f(&*s)).await {
        Ok(v) => Some(v),
        Err(Blocked::TooSlow) => {
            log_warn!(
                log,
                "the store \"{}\" did not {what} for certificate \"{}\" within {} ms; fetching",
                store.name(),
                cert.name,
                ctx.settings.fetch_timeout_ms
            );
            None
        }
        Err(Blocked::Busy) => {
            log_warn!(
                log,
                "the store \"{}\" is skipped for certificate \"{}\": {} calls to it are still \
                 unanswered, the most a worker makes at once; fetching",
                store.name(),
                cert.name,
                blocking::MAX_THREADS
            );
            None
        }
        Err(Blocked::NoThread) => {
            log_warn!(
                log,
                "the store \"{}\" is skipped for certificate \"{}\": no thread could be started \
                 for it; fetching",
                store.name(),
                cert.name
            );
            None
        }
    }
}

/// What reading the staple from the store came to.
enum Read {
    /// A newer staple was there and is now the zone's.
    Taken,
    /// Nothing newer: fetch (if the lease allows).
    Nothing,
    /// The store did not answer in time (or was skipped): fetch without it.
    Failed,
}

/// Reads the staple from the store and takes it into the zone when it
/// passes the staple's checks and is newer than the zone's.
async fn take_newer(
    ctx: &StaplingContext,
    zone: Zone,
    cert: &Certificate,
    store: &StoreRef,
    log: Log,
) -> Read {
    let key = cert.key;
    let read = call(ctx, store, "answer a read", cert, log, move |s| s.read(&key)).await;
    let now = now();
    let der = match read {
        Some(Ok(Some(der))) => der,
        Some(Ok(None)) => return Read::Nothing,
        Some(Err(e)) => {
            log_warn!(
                log,
                "cannot read {} for certificate \"{}\": {e}; fetching",
                store.staple_name(&cert.key),
                cert.name
            );
            return Read::Nothing;
        }
        None => return Read::Failed,
    };
    let resp = match ctx.usable(cert, &der, now) {
        Ok(resp) => resp,
        Err(why) => {
            // Another instance writes only staples that pass: this one is
            // past its time, or not from this module.
            log_warn!(
                log,
                "the staple in {} for certificate \"{}\" is not served: {why}; fetching",
                store.staple_name(&cert.key),
                cert.name
            );
            return Read::Nothing;
        }
    };
    let random = nginx_sys::ngx_random() as u32;
    let next = schedule::after_success(
        &ctx.settings.policy,
        resp.this_update,
        resp.next_update,
        now,
        random,
    );
    let mut z = zone.lock();
    let taken = match z.find(&cert.key) {
        Some(mut e) if e.staple_this_update().is_none_or(|t| resp.this_update > t) => {
            e.record_shared(&resp, now, next).is_ok()
        }
        _ => false,
    };
    drop(z);
    if !taken {
        return Read::Nothing;
    }
    log_info!(
        log,
        "OCSP response for certificate \"{}\" taken from the shared store \"{}\" \
         (fetched by another instance): {}, next look in {} s",
        cert.name,
        store.name(),
        resp.status.as_str(),
        next - now
    );
    Read::Taken
}

async fn before_fetch(
    ctx: &StaplingContext,
    zone: Zone,
    cert: &Certificate,
    store: &StoreRef,
    me: &str,
    log: Log,
) -> Step {
    if !store.shared() || !store.writable() {
        return Step::Fetch(false);
    }
    match take_newer(ctx, zone, cert, store, log).await {
        Read::Taken => return Step::Taken,
        Read::Failed => return Step::Fetch(false),
        Read::Nothing => {}
    }
    let key = cert.key;
    let now = now();
    let until = now + ctx.settings.lease_secs();
    let holder = me.to_string();
    let lease = call(ctx, store, "give a lease", cert, log, move |s| {
        s.take_lease(&key, &holder, now, until)
    })
    .await;
    match lease {
        Some(Ok(StoreLease::Taken { displaced })) => {
            let lease = store.lease_name(&cert.key);
            match displaced {
                None => {}
                Some(Displaced::Expired { by }) => {
                    log_notice!(
                        log,
                        "certificate \"{}\": taking over the shared store's fetch lease from {by}, \
                         whose deadline passed",
                        cert.name
                    );
                }
                Some(Displaced::TooFarAhead { by, until }) => {
                    log_warn!(
                        log,
                        "certificate \"{}\": {lease} of {by} ends at {until}, {} s from now, \
                         further ahead than any lease this module writes ({MAX_LEASE_AHEAD_SECS} s): \
                         its clock is off or it was not written by this module; taken over",
                        cert.name,
                        (until - now as f64).round() as i64
                    );
                }
                Some(Displaced::NotALease(why)) => {
                    log_warn!(
                        log,
                        "certificate \"{}\": {lease} is not a lease: {why}; replaced",
                        cert.name
                    );
                }
            }
            // Another instance may have written the staple and given its
            // lease back between the read above and this lease: look again
            // before fetching.
            if let Read::Taken = take_newer(ctx, zone, cert, store, log).await {
                after_fetch(ctx, cert, store, Some(me), Persist::Keep, log).await;
                return Step::Taken;
            }
            Step::Fetch(true)
        }
        Some(Ok(StoreLease::Held { until, .. })) => {
            let now = nginx_sys::ngx_time();
            Step::Wait(until.min(now + POLL_SECS).max(now + 1))
        }
        Some(Err(e)) => {
            log_warn!(
                log,
                "cannot take the fetch lease of certificate \"{}\" in the shared store \"{}\": {e}; \
                 fetching",
                cert.name,
                store.name()
            );
            Step::Fetch(false)
        }
        None => Step::Fetch(false),
    }
}

/// After the fetch: the staple (or its removal) to the store, then the
/// lease given back (when `me` holds it), off the event loop.
async fn after_fetch(
    ctx: &StaplingContext,
    cert: &Certificate,
    store: &StoreRef,
    me: Option<&str>,
    persist: Persist,
    log: Log,
) {
    if !store.writable() {
        return;
    }
    let key = cert.key;
    let holder = me.map(str::to_string);
    let now = now();
    let done = call(ctx, store, "take the staple", cert, log, move |s| {
        s.finish(&key, holder.as_deref(), persist, now)
    })
    .await;
    if let Some(Err(e)) = done {
        log_warn!(
            log,
            "cannot update {} for certificate \"{}\": {e}",
            store.staple_name(&cert.key),
            cert.name
        );
    }
}
