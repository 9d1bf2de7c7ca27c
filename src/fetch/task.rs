//! Two futures the fetch task is made of: one that keeps a panic (a bug)
//! from unwinding into nginx's event loop, and a sleep that new work ends
//! early; and the process state it looks at.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::base::log::{log_alert, Log};
use crate::state::wakeup::Wakeup;

/// Polls the task inside catch_unwind: a panic (a bug) would otherwise
/// unwind into nginx's event loop and abort the worker. It ends this
/// worker's fetching, loudly; the other workers take its leases over.
pub struct CatchPanic<F> {
    pub inner: std::pin::Pin<Box<F>>,
    pub log: Log,
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

/// A sleep that ends early when the context's `wakeup` fires.
pub struct SleepOrNotify<'a> {
    pub sleep: Pin<Box<ngx::async_::Sleep>>,
    pub notify: &'a Wakeup,
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

/// Whether this worker is shutting down (its fetches are to end).
pub fn exiting() -> bool {
    // SAFETY: plain reads of nginx's process-state globals.
    unsafe { nginx_sys::ngx_exiting != 0 || nginx_sys::ngx_terminate != 0 || nginx_sys::ngx_quit != 0 }
}

/// nginx's cached wall-clock time, in seconds.
pub fn now() -> i64 {
    nginx_sys::ngx_time()
}
