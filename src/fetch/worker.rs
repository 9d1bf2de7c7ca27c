//! The fetch task each worker runs on its event loop. Every due
//! certificate is claimed through a lease in the zone, so exactly one
//! worker fetches it; the others serve the result. A lease whose owner died
//! or overran its deadline is taken over.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use nginx_sys::{ngx_log_t, NGX_LOG_CRIT, NGX_LOG_DEBUG, NGX_LOG_ERR, NGX_LOG_INFO, NGX_LOG_WARN};
use ngx::async_::{sleep, spawn, Task};

use crate::fetch::exchange::{fetch, FetchError, FetchJob, Fetched};
use crate::fetch::shared::{self, Step};
use crate::fetch::task::{CatchPanic, SleepOrNotify};
use crate::module::log::{log_info, log_notice, log_prefixed};
use crate::ocsp::response::CertStatus;
use crate::ocsp::schedule;
use crate::state::certificate::Certificate;
use crate::state::registry::{size_problem, StaplingContext};
use crate::state::store::{lease_holder, Store};
use crate::state::zone::{Entry, NotYet, Zone};

/// The longest a worker sleeps between looks at the zone: how soon it
/// notices a lease left by a dead worker, or work for a new certificate.
const MAX_IDLE_SECS: i64 = 5;

static mut TASK: Option<Task<()>> = None;

/// A certificate of the configuration (lives as long as the cycle) or one
/// met while serving (this worker holds it while it is in use).
#[derive(Clone)]
enum CertRef {
    Static(&'static Certificate),
    Dynamic(Rc<Certificate>),
}

impl std::ops::Deref for CertRef {
    type Target = Certificate;

    fn deref(&self) -> &Certificate {
        match self {
            CertRef::Static(c) => c,
            CertRef::Dynamic(c) => c,
        }
    }
}

fn exiting() -> bool {
    // SAFETY: plain reads of nginx's process-state globals.
    unsafe { nginx_sys::ngx_exiting != 0 || nginx_sys::ngx_terminate != 0 || nginx_sys::ngx_quit != 0 }
}

fn now() -> i64 {
    nginx_sys::ngx_time()
}

fn pid() -> i32 {
    // SAFETY: set by nginx before init_process.
    unsafe { nginx_sys::ngx_pid }
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// Starts the worker's task (from init_process).
///
/// # Safety
/// `ctx` is the cycle's context: it outlives the worker's event loop.
pub unsafe fn start(ctx: *const StaplingContext, log: *mut ngx_log_t) {
    let task = spawn(CatchPanic {
        inner: Box::pin(run(ctx, log)),
        log,
    });
    // SAFETY: the worker is single-threaded; nothing else touches TASK
    // while init_process runs.
    unsafe { *std::ptr::addr_of_mut!(TASK) = Some(task) };
}

/// Cancels the task (from exit_process): drops any fetch in flight.
pub fn stop() {
    // SAFETY: single-threaded worker; the task is not running now.
    unsafe { *std::ptr::addr_of_mut!(TASK) = None };
}

enum Claim {
    /// This worker fetches; the lease was taken over from that worker (it
    /// exited, or overran its deadline) if there is one.
    Fetch(Option<i32>),
    Later(i64),
}

async fn run(ctx: *const StaplingContext, log: *mut ngx_log_t) {
    // SAFETY: see `start`; the context lives as long as the worker.
    let ctx: &'static StaplingContext = unsafe { &*ctx };
    let Some(zone) = ctx.zone() else { return };
    let limit = ctx.settings.fetch_concurrency.max(1);
    let notify = &ctx.wakeup;
    let in_flight = Rc::new(Cell::new(0usize));
    // Dropping these (when the worker exits) cancels the fetches in flight.
    let mut fetches: Vec<Task<()>> = Vec::new();
    let mut cursor = 0usize;
    // A store shared with other instances, and this worker's name in its
    // lease files.
    let shared = ctx.store.as_ref().filter(|s| s.shared && s.writable);
    let me = lease_holder();
    loop {
        if exiting() {
            return;
        }
        fetches.retain(|t| !t.is_finished());
        let mut wake = now() + MAX_IDLE_SECS;
        let dynamic = ctx.dynamic_snapshot();
        let n = ctx.certs.len() + dynamic.len();
        // Resume where the last pass stopped: restarting from the first
        // certificate each time a fetch ends would make the initial fetch
        // of N certificates cost N * N looks at the zone.
        for k in 0..n {
            let i = (cursor + k) % n;
            let cert = match ctx.certs.get(i) {
                Some(c) => CertRef::Static(c),
                None => match dynamic.get(i - ctx.certs.len()) {
                    Some(c) => CertRef::Dynamic(c.clone()),
                    None => break,
                },
            };
            if exiting() {
                return;
            }
            if in_flight.get() >= limit {
                cursor = i;
                break;
            }
            if cert.plan.is_none() {
                continue;
            }
            let store = shared.filter(|_| !cert.dynamic && cert.file.is_none());
            match claim(ctx, zone, &cert, store.is_some()) {
                Claim::Later(at) => wake = wake.min(at),
                Claim::Fetch(previous) => {
                    if let Some(previous) = previous {
                        log_notice!(
                            log,
                            "certificate \"{}\": taking over the fetch from worker {previous}, \
                             which exited or overran its deadline",
                            cert.name
                        );
                    }
                    cursor = i + 1;
                    in_flight.set(in_flight.get() + 1);
                    let in_flight = in_flight.clone();
                    let me = me.clone();
                    fetches.push(spawn(CatchPanic {
                        inner: Box::pin(async move {
                            match store {
                                Some(store) => fetch_shared(ctx, zone, &cert, store, &me, log).await,
                                None => {
                                    let persist = fetch_one(ctx, zone, &cert, log).await;
                                    if let Some(der) = persist {
                                        ctx.persist(&cert, der.as_deref(), log);
                                    }
                                }
                            }
                            in_flight.set(in_flight.get().saturating_sub(1));
                            ctx.wakeup.notify();
                        }),
                        log,
                    }));
                }
            }
        }
        let secs = (wake - now()).clamp(1, MAX_IDLE_SECS);
        SleepOrNotify {
            sleep: Box::pin(sleep(Duration::from_secs(secs as u64))),
            notify,
        }
        .await;
    }
}

/// With a shared store: a newer staple another instance wrote is taken,
/// a live lease of another instance waited for, else the staple fetched,
/// written to the store and the lease given back.
async fn fetch_shared(
    ctx: &StaplingContext,
    zone: Zone,
    cert: &Certificate,
    store: &Store,
    me: &str,
    log: *mut ngx_log_t,
) {
    match shared::before_fetch(ctx, zone, cert, store, me, log).await {
        Step::Taken => {}
        Step::Wait(at) => shared::wait(zone, cert, at),
        Step::Fetch => {
            let persist = fetch_one(ctx, zone, cert, log).await;
            if !exiting() {
                shared::after_fetch(ctx, cert, store, me, persist, log).await;
            }
        }
    }
}

/// Fetches one staple and applies the result; returns what the store is
/// to get (a staple, or its removal), if anything.
async fn fetch_one(
    ctx: &StaplingContext,
    zone: Zone,
    cert: &Certificate,
    log: *mut ngx_log_t,
) -> Option<Option<Vec<u8>>> {
    let plan = cert.plan.as_ref()?;
    log_info!(
        log,
        "fetching OCSP response for certificate \"{}\" from {}{}",
        cert.name,
        plan.describe(),
        plan.proxy
            .as_ref()
            .map(|p| format!(" through proxy {p}"))
            .unwrap_or_default()
    );
    let job = FetchJob {
        name: &cert.name,
        status_id: &cert.status_id,
        check: cert.signature_check(),
        plan,
        rules: &ctx.settings.time,
    };
    let result = fetch(job, ctx.settings.fetch_timeout_ms, log).await;
    if exiting() {
        return None;
    }
    apply(ctx, zone, cert, result, log)
}

/// Takes the zone's fetch lease of `cert` when it is due. With a shared
/// store the lease also covers the store calls before the fetch
/// (`shared::CALLS_BEFORE_FETCH`), each with the fetch's deadline.
fn claim(ctx: &StaplingContext, zone: Zone, cert: &Certificate, shared: bool) -> Claim {
    let now = now();
    let mut z = zone.lock();
    let Some(mut e) = z.find(&cert.key) else {
        return Claim::Later(now + MAX_IDLE_SECS);
    };
    let store_calls = if shared {
        shared::CALLS_BEFORE_FETCH * (ctx.settings.fetch_timeout_ms / 1000) as i64
    } else {
        0
    };
    let until = now + ctx.settings.lease_secs() + store_calls;
    match e.take_lease(pid(), now, until, |holder, held_until| {
        schedule::may_take_lease(holder, held_until, pid(), now, alive)
    }) {
        Ok(previous) => Claim::Fetch(previous),
        Err(NotYet(at)) => Claim::Later(at),
    }
}

/// Stores what a fetch brought (or counts its failure) and schedules the
/// next one; logs after the zone is unlocked. Returns what the disk store
/// is to get.
fn apply(
    ctx: &StaplingContext,
    zone: Zone,
    cert: &Certificate,
    result: Result<Fetched, FetchError>,
    log: *mut ngx_log_t,
) -> Option<Option<Vec<u8>>> {
    let now = now();
    let random = nginx_sys::ngx_random() as u32;
    let policy = &ctx.settings.policy;
    let name = &cert.name;
    // The responder that answered, or (on failure) those tried.
    let mut url = cert.plan.as_ref().map(|p| p.describe()).unwrap_or_default();
    let result = result.and_then(|f| {
        url = f.from;
        match size_problem(f.response.der.len(), ctx.settings.max_staple_bytes) {
            Some(why) => Err(FetchError::TooLarge(why)),
            None => Ok(f.response),
        }
    });
    let mut z = zone.lock();
    let mut e = z.find(&cert.key)?;
    e.end_fetch(now);
    let mut persist: Option<Option<Vec<u8>>> = None;
    let outcome: Option<(usize, String)> = match result {
        Ok(resp) if resp.status == CertStatus::Revoked && !ctx.settings.serve_revoked => {
            let new = e.is_new_revocation(&resp);
            let next = schedule::after_success(policy, resp.this_update, resp.next_update, now, random);
            e.record_revoked(&resp, next);
            persist = Some(None);
            // Said once, not at every refresh.
            new.then(|| {
                (
                    NGX_LOG_ERR as usize,
                    format!(
                        "certificate \"{name}\" is revoked (OCSP response from {url}); \
                         its staple is no longer served"
                    ),
                )
            })
        }
        Ok(resp) if resp.status == CertStatus::Unknown => Some(fail(
            &mut e,
            policy,
            now,
            random,
            name,
            &url,
            "certificate status \"unknown\" in the OCSP response",
        )),
        Ok(resp) => {
            let next = schedule::after_success(policy, resp.this_update, resp.next_update, now, random);
            match e.record_fetched(&resp, now, next) {
                Ok(()) => {
                    persist = Some(Some(resp.der.clone()));
                    Some((
                        NGX_LOG_INFO as usize,
                        format!(
                            "OCSP response for certificate \"{name}\" fetched from {url}: {}, \
                             {} bytes, next fetch in {} s",
                            resp.status.as_str(),
                            resp.der.len(),
                            next - now
                        ),
                    ))
                }
                Err(full) => {
                    let (_, msg) = fail(&mut e, policy, now, random, name, &url, &full.to_string());
                    // Once per configuration at crit; the slab pool's own
                    // no-memory lines are off.
                    Some(if z.take_full_warning() {
                        (
                            NGX_LOG_CRIT as usize,
                            format!(
                                "{msg}; about {} KB needed: raise its size with \"ssl_stapling_zone\"",
                                ctx.zone_bytes_needed().div_ceil(1024)
                            ),
                        )
                    } else {
                        (NGX_LOG_DEBUG as usize, msg)
                    })
                }
            }
        }
        Err(err) => Some(fail(&mut e, policy, now, random, name, &url, &err.to_string())),
    };
    drop(z);
    if let Some((level, msg)) = outcome {
        log_prefixed!(level, log, "{msg}");
    }
    persist
}

/// Counts a failed fetch and says when the next one is, with a line that
/// tells whether the previous staple is still served.
#[allow(clippy::too_many_arguments)]
fn fail(
    e: &mut Entry,
    policy: &schedule::Policy,
    now: i64,
    random: u32,
    name: &str,
    url: &str,
    cause: &str,
) -> (usize, String) {
    let kept = e.record_failure(cause, now, |failures, kept| {
        schedule::after_failure(policy, failures, kept, now, random)
    });
    let kept = match kept {
        Some(0) => "; the previous staple is still served".to_string(),
        Some(n) => format!(
            "; the previous staple is served until its nextUpdate, {} s from now",
            n - now
        ),
        None => String::new(),
    };
    (
        NGX_LOG_WARN as usize,
        format!(
            "cannot fetch OCSP response for certificate \"{name}\" from {url}: {cause}; \
             retry in {} s{kept}",
            e.next_refresh() - now
        ),
    )
}
