//! The fetch task each worker runs on its event loop. Every due
//! certificate is claimed through a lease in the zone, so exactly one
//! worker fetches it; the others serve the result. A lease whose owner died
//! or overran its deadline is taken over.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use ngx::async_::{sleep, spawn, Task};

use crate::base::log::{log_notice, Log};
use crate::fetch::stored;
use crate::fetch::task::{exiting, now, CatchPanic, SleepOrNotify};
use crate::ocsp::schedule;
use crate::state::certificate::Certificate;
use crate::state::registry::StaplingContext;
use crate::state::store::lease_holder;
use crate::state::zone::{NotYet, Zone};

/// The longest a worker sleeps between looks at the zone: how soon it
/// notices a lease left by a dead worker, or work for a new certificate.
const MAX_IDLE_SECS: i64 = 5;

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

/// Starts the worker's task (from init_process); dropping the handle
/// cancels it and the fetches in flight.
///
/// # Safety
/// `ctx` is the cycle's context: it outlives the worker's event loop.
#[must_use = "dropping the task cancels it"]
pub unsafe fn start(ctx: *const StaplingContext, log: Log) -> Task<()> {
    spawn(CatchPanic {
        inner: Box::pin(run(ctx, log)),
        log,
    })
}

enum Claim {
    /// This worker fetches; the lease was taken over from that worker (it
    /// exited, or overran its deadline) if there is one.
    Fetch(Option<i32>),
    Later(i64),
}

async fn run(ctx: *const StaplingContext, log: Log) {
    // SAFETY: see `start`; the context lives as long as the worker.
    let ctx: &'static StaplingContext = unsafe { &*ctx };
    let Some(zone) = ctx.zone() else { return };
    let limit = ctx.settings.fetch_concurrency.max(1);
    let notify = &ctx.wakeup;
    let in_flight = Rc::new(Cell::new(0usize));
    // Dropping these (when the worker exits) cancels the fetches in flight.
    let mut fetches: Vec<Task<()>> = Vec::new();
    let mut cursor = 0usize;
    // This worker's name in a shared store's leases.
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
            // Certificates loaded by variables are not kept (the next nginx
            // does not know them), nor those with a staple file.
            let store = ctx
                .store
                .as_ref()
                .filter(|_| !cert.dynamic && cert.file.is_none());
            let shared = store.is_some_and(|s| s.shared() && s.writable());
            match claim(ctx, zone, &cert, shared) {
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
                            stored::fetch(ctx, zone, &cert, store, &me, log).await;
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

/// Takes the zone's fetch lease of `cert` when it is due. With a shared
/// store the lease also covers the store calls before the fetch
/// (`stored::CALLS_BEFORE_FETCH`), each with the fetch's deadline.
fn claim(ctx: &StaplingContext, zone: Zone, cert: &Certificate, shared: bool) -> Claim {
    let now = now();
    let mut z = zone.lock();
    let Some(mut e) = z.find(&cert.key) else {
        return Claim::Later(now + MAX_IDLE_SECS);
    };
    let store_calls = if shared {
        stored::CALLS_BEFORE_FETCH * (ctx.settings.fetch_timeout_ms / 1000) as i64
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
