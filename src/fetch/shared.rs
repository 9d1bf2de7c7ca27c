//! A store shared by several nginx instances (`ssl_stapling_store PATH
//! shared`): before a worker fetches a staple, it takes a newer one that
//! another instance wrote to the store, or takes the staple's lease file
//! so that one instance fetches per refresh; an instance that finds a live
//! lease looks at the store again shortly instead of fetching.
//!
//! The store is read here, in the fetch task, never on the handshake path.

use std::time::Duration;

use nginx_sys::ngx_log_t;

use crate::fetch::blocking;
use crate::module::log::{log_info, log_notice, log_warn};
use crate::ocsp::schedule;
use crate::state::certificate::Certificate;
use crate::state::registry::StaplingContext;
use crate::state::store::{Displaced, Store, StoreLease, MAX_LEASE_AHEAD_SECS};
use crate::state::zone::Zone;

/// How often an instance that waits for another's fetch looks at the store.
const POLL_SECS: i64 = 1;

/// The store calls `before_fetch` makes before a fetch, each with the
/// fetch's deadline: the read, the lease, the read after the lease. The
/// zone's fetch lease covers them as well as the fetch (`worker::claim`).
pub const CALLS_BEFORE_FETCH: i64 = 3;

/// What to do about a staple that is due, with the zone's lease held.
pub enum Step {
    /// Another instance's newer staple was taken: no fetch.
    Taken,
    /// Another instance fetches it: look again then.
    Wait(i64),
    /// This worker fetches it (and gives the store lease back after).
    Fetch,
}

/// How long a store call may take before the worker gives up on it: the
/// fetch's own deadline.
fn limit(ctx: &StaplingContext) -> Duration {
    Duration::from_millis(ctx.settings.fetch_timeout_ms as u64)
}

fn too_slow(ctx: &StaplingContext, store: &Store, what: &str, cert: &Certificate, log: *mut ngx_log_t) {
    log_warn!(
        log,
        "the shared store \"{}\" did not {what} for certificate \"{}\" within {} ms; fetching",
        store.dir.display(),
        cert.name,
        ctx.settings.fetch_timeout_ms
    );
}

/// What reading the staple's file in the store came to.
enum Read {
    /// A newer staple was there and is now the zone's.
    Taken,
    /// Nothing newer: fetch (if the lease allows).
    Nothing,
    /// The store did not answer in time.
    TooSlow,
}

/// Reads the staple's file and takes it into the zone when it passes the
/// staple's checks and is newer than the zone's.
async fn take_newer(
    ctx: &StaplingContext,
    zone: Zone,
    cert: &Certificate,
    store: &Store,
    log: *mut ngx_log_t,
) -> Read {
    let key = cert.key;
    let read = {
        let store = store.clone();
        blocking::run(limit(ctx), move || store.read(&key)).await
    };
    let now = nginx_sys::ngx_time();
    let der = match read {
        Some(Ok(Some(der))) => der,
        Some(Ok(None)) => return Read::Nothing,
        Some(Err(e)) => {
            log_warn!(
                log,
                "cannot read \"{}\" for certificate \"{}\": {e}; fetching",
                store.path_of(&cert.key).display(),
                cert.name
            );
            return Read::Nothing;
        }
        None => return Read::TooSlow,
    };
    // A file that does not pass (expired, for instance) is what the fetch
    // replaces: no line for it.
    let Ok(resp) = ctx.usable(cert, &der, now) else {
        return Read::Nothing;
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
        Some(mut e) if e.staple_this_update().map_or(true, |t| resp.this_update > t) => {
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
        store.dir.display(),
        resp.status.as_str(),
        next - now
    );
    Read::Taken
}

pub async fn before_fetch(
    ctx: &StaplingContext,
    zone: Zone,
    cert: &Certificate,
    store: &Store,
    me: &str,
    log: *mut ngx_log_t,
) -> Step {
    match take_newer(ctx, zone, cert, store, log).await {
        Read::Taken => return Step::Taken,
        Read::TooSlow => {
            too_slow(ctx, store, "answer a read", cert, log);
            return Step::Fetch;
        }
        Read::Nothing => {}
    }
    let key = cert.key;
    let now = nginx_sys::ngx_time();
    let until = now + ctx.settings.lease_secs();
    let lease = {
        let (store, me) = (store.clone(), me.to_string());
        blocking::run(limit(ctx), move || store.take_lease(&key, &me, now, until)).await
    };
    match lease {
        Some(Ok(StoreLease::Taken { displaced })) => {
            let lease = store.lease_path(&cert.key);
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
                        "certificate \"{}\": the lease file \"{}\" of {by} ends at {until}, {} s \
                         from now, further ahead than any lease this module writes \
                         ({MAX_LEASE_AHEAD_SECS} s): its clock is off or it was not written by \
                         this module; taken over",
                        cert.name,
                        lease.display(),
                        (until - now as f64).round() as i64
                    );
                }
                Some(Displaced::NotALease(why)) => {
                    log_warn!(
                        log,
                        "certificate \"{}\": \"{}\" is not a lease file: {why}; replaced",
                        cert.name,
                        lease.display()
                    );
                }
            }
            // Another instance may have written the staple and given its
            // lease back between the read above and this lease: look again
            // before fetching.
            if let Read::Taken = take_newer(ctx, zone, cert, store, log).await {
                after_fetch(ctx, cert, store, me, None, log).await;
                return Step::Taken;
            }
            Step::Fetch
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
                store.dir.display()
            );
            Step::Fetch
        }
        None => {
            too_slow(ctx, store, "give a lease", cert, log);
            Step::Fetch
        }
    }
}

/// Gives the zone's lease back without a fetch, until `at`.
pub fn wait(zone: Zone, cert: &Certificate, at: i64) {
    if let Some(mut e) = zone.lock().find(&cert.key) {
        e.release_lease(at);
    }
}

/// After the fetch: the staple (or its removal) to the store, then the
/// lease given back, off the event loop.
pub async fn after_fetch(
    ctx: &StaplingContext,
    cert: &Certificate,
    store: &Store,
    me: &str,
    persist: Option<Option<Vec<u8>>>,
    log: *mut ngx_log_t,
) {
    let key = cert.key;
    let (s, me) = (store.clone(), me.to_string());
    let done = blocking::run(limit(ctx), move || {
        let written = match persist {
            Some(der) => s.put(&key, der.as_deref()),
            None => Ok(()),
        };
        s.release_lease(&key, &me);
        written
    })
    .await;
    match done {
        Some(Ok(())) => {}
        Some(Err(e)) => {
            log_warn!(
                log,
                "cannot update \"{}\" for certificate \"{}\": {e}",
                store.path_of(&cert.key).display(),
                cert.name
            );
        }
        None => {
            log_warn!(
                log,
                "the shared store \"{}\" did not take the staple of certificate \"{}\" within {} ms",
                store.dir.display(),
                cert.name,
                ctx.settings.fetch_timeout_ms
            );
        }
    }
}
