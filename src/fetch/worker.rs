//! The fetch task each worker runs on its event loop. Every due
//! certificate is claimed through a lease in the zone, so exactly one
//! worker fetches it; the others serve the result. A lease whose owner died
//! or overran its deadline is taken over.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use nginx_sys::{ngx_log_t, NGX_LOG_CRIT, NGX_LOG_DEBUG, NGX_LOG_ERR, NGX_LOG_INFO, NGX_LOG_WARN};
use ngx::async_::{sleep, spawn, Task};

use crate::fetch::exchange::{fetch, FetchError, FetchJob};
use crate::module::log::{log_alert, log_info, log_prefixed};
use crate::ocsp::response::{CertStatus, CheckedResponse};
use crate::ocsp::schedule;
use crate::state::certificate::Certificate;
use crate::state::registry::{size_problem, StaplingContext};
use crate::state::wakeup::Wakeup;
use crate::state::zone::{FetchResult, StapleSource, Zone};

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

/// Polls the task inside catch_unwind: a panic (a bug) would otherwise
/// unwind into nginx's event loop and abort the worker. It ends this
/// worker's fetching, loudly; the other workers take its leases over.
struct CatchPanic<F> {
    inner: std::pin::Pin<Box<F>>,
    log: *mut ngx_log_t,
}

impl<F: std::future::Future<Output = ()>> std::future::Future for CatchPanic<F> {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        let inner = self.inner.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(p) => p,
            Err(_) => {
                log_alert!(
                    self.log,
                    "the fetch task of this worker failed and stopped; \
                     other workers keep fetching"
                );
                std::task::Poll::Ready(())
            }
        }
    }
}

enum Claim {
    Fetch,
    Later(i64),
}

/// A sleep that ends early when the context's `wakeup` fires.
struct SleepOrNotify<'a> {
    sleep: Pin<Box<ngx::async_::Sleep>>,
    notify: &'a Wakeup,
}

impl Future for SleepOrNotify<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.notify.take() {
            return Poll::Ready(());
        }
        self.notify.register(cx.waker());
        self.sleep.as_mut().poll(cx)
    }
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
            match claim(ctx, zone, &cert) {
                Claim::Later(at) => wake = wake.min(at),
                Claim::Fetch => {
                    cursor = i + 1;
                    in_flight.set(in_flight.get() + 1);
                    let in_flight = in_flight.clone();
                    fetches.push(spawn(CatchPanic {
                        inner: Box::pin(async move {
                            fetch_one(ctx, zone, &cert, log).await;
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

async fn fetch_one(ctx: &StaplingContext, zone: Zone, cert: &Certificate, log: *mut ngx_log_t) {
    let Some(plan) = cert.plan.as_ref() else {
        return;
    };
    log_info!(
        log,
        "fetching OCSP response for certificate \"{}\" from {}",
        cert.name,
        plan.url
    );
    let job = FetchJob {
        name: &cert.name,
        status_id: &cert.status_id,
        check: cert.signature_check(),
        plan,
    };
    let result = fetch(job, ctx.settings.fetch_timeout_ms, log).await;
    if exiting() {
        return;
    }
    apply(ctx, zone, cert, result, log);
}

fn claim(ctx: &StaplingContext, zone: Zone, cert: &Certificate) -> Claim {
    let now = now();
    let me = pid();
    let mut z = zone.lock();
    let Some(e) = z.find(&cert.key) else {
        return Claim::Later(now + MAX_IDLE_SECS);
    };
    if e.next_refresh > now {
        return Claim::Later(e.next_refresh);
    }
    if !schedule::may_take_lease(e.lease_pid, e.lease_until, me, now, alive) {
        return Claim::Later(e.lease_until);
    }
    e.lease_pid = me;
    e.lease_until = now + ctx.settings.lease_secs();
    Claim::Fetch
}

/// Stores what a fetch brought (or counts its failure) and schedules the
/// next one; logs after the zone is unlocked.
fn apply(
    ctx: &StaplingContext,
    zone: Zone,
    cert: &Certificate,
    result: Result<CheckedResponse, FetchError>,
    log: *mut ngx_log_t,
) {
    let now = now();
    let random = nginx_sys::ngx_random() as u32;
    let policy = &ctx.settings.policy;
    let url = cert.plan.as_ref().map(|p| p.url.to_string()).unwrap_or_default();
    let name = &cert.name;
    let mut z = zone.lock();
    let Some(e) = z.find(&cert.key).map(|e| e as *mut crate::state::zone::Entry) else {
        return;
    };
    // SAFETY: the entry stays allocated while we hold the lock; the raw
    // pointer only ends `find`'s borrow of the guard.
    let e = unsafe { &mut *e };
    e.lease_pid = 0;
    e.lease_until = 0;
    e.last_fetch = now;
    let mut persist: Option<Option<Vec<u8>>> = None;
    let result = result.and_then(
        |r| match size_problem(r.der.len(), ctx.settings.max_staple_bytes) {
            Some(why) => Err(FetchError::TooLarge(why)),
            None => Ok(r),
        },
    );

    let outcome: (usize, String) = match result {
        Ok(resp) if resp.status == CertStatus::Revoked && !ctx.settings.serve_revoked => {
            let new = e.status != CertStatus::Revoked || e.this_update != resp.this_update;
            z.clear(e);
            e.last_result = FetchResult::Revoked;
            persist = Some(None);
            e.status = CertStatus::Revoked;
            e.this_update = resp.this_update;
            e.next_update = resp.next_update.unwrap_or(0);
            e.fetch_ok += 1;
            e.failures = 0;
            e.set_last_error("certificate is revoked");
            e.next_refresh = schedule::after_success(policy, resp.this_update, resp.next_update, now, random);
            if !new {
                drop(z);
                ctx.persist(cert, None, log);
                return;
            }
            (
                NGX_LOG_ERR as usize,
                format!(
                    "certificate \"{name}\" is revoked (OCSP response from {url}); \
                     its staple is no longer served"
                ),
            )
        }
        Ok(resp) if resp.status == CertStatus::Unknown => fail(
            e,
            policy,
            now,
            random,
            name,
            &url,
            "certificate status \"unknown\" in the OCSP response",
        ),
        Ok(resp) => match z.store(e, &resp, StapleSource::Fetched, now) {
            Ok(()) => {
                e.last_result = FetchResult::Ok;
                persist = Some(Some(resp.der.clone()));
                e.fetch_ok += 1;
                e.failures = 0;
                e.set_last_error("");
                e.next_refresh =
                    schedule::after_success(policy, resp.this_update, resp.next_update, now, random);
                (
                    NGX_LOG_INFO as usize,
                    format!(
                        "OCSP response for certificate \"{name}\" fetched from {url}: {}, \
                         {} bytes, next fetch in {} s",
                        resp.status.as_str(),
                        resp.der.len(),
                        e.next_refresh - now
                    ),
                )
            }
            Err(full) => {
                // Once per configuration at crit; the slab pool's own
                // no-memory lines are off.
                let first = z.take_full_warning();
                let (_, msg) = fail(e, policy, now, random, name, &url, &full.to_string());
                if first {
                    (
                        NGX_LOG_CRIT as usize,
                        format!(
                            "{msg}; about {} KB needed: raise its size with \"ssl_stapling_zone\"",
                            ctx.zone_bytes_needed().div_ceil(1024)
                        ),
                    )
                } else {
                    (NGX_LOG_DEBUG as usize, msg)
                }
            }
        },
        Err(err) => fail(e, policy, now, random, name, &url, &err.to_string()),
    };
    drop(z);
    if let Some(der) = persist {
        ctx.persist(cert, der.as_deref(), log);
    }
    let (level, msg) = outcome;
    log_prefixed!(level, log, "{msg}");
}

#[allow(clippy::too_many_arguments)]
fn fail(
    e: &mut crate::state::zone::Entry,
    policy: &schedule::Policy,
    now: i64,
    random: u32,
    name: &str,
    url: &str,
    cause: &str,
) -> (usize, String) {
    e.failures = e.failures.saturating_add(1);
    e.fetch_failed += 1;
    e.last_result = FetchResult::Failed;
    e.set_last_error(cause);
    let kept = e.servable(now).map(|_| e.next_update);
    e.next_refresh = schedule::after_failure(policy, e.failures, kept.filter(|&n| n != 0), now, random);
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
            e.next_refresh - now
        ),
    )
}
