//! File calls that may block (a shared store on a network file system)
//! run on a thread of their own while the worker's event loop waits for
//! them, with a deadline: a store that hangs costs a warning and a fetch,
//! never a stuck worker. The thread blocks every signal, as nginx's own
//! thread pools do, so that signals meant for the worker reach nginx's
//! handlers on the worker's thread.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ngx::async_::sleep;

/// How often the event loop looks whether the thread is done.
const POLL: Duration = Duration::from_millis(5);

/// Runs `f` on its own thread; its result, or None when it did not end
/// within `limit` (the thread is then left to end on its own) or could not
/// be started.
pub async fn run<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let slot: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
    let out = slot.clone();
    spawn_without_signals(move || {
        let v = f();
        if let Ok(mut s) = out.lock() {
            *s = Some(v);
        }
    })?;
    let start = Instant::now();
    loop {
        if let Some(v) = slot.lock().ok().and_then(|mut s| s.take()) {
            return Some(v);
        }
        if start.elapsed() >= limit {
            return None;
        }
        sleep(POLL).await;
    }
}

/// Starts a thread with every signal blocked from its first instruction:
/// the mask is set on this thread around the spawn (the new thread
/// inherits it), then restored.
fn spawn_without_signals(f: impl FnOnce() + Send + 'static) -> Option<()> {
    // SAFETY: sigset_t is plain data that sigfillset initialises;
    // pthread_sigmask only changes this thread's mask, restored below.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        if libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old) != 0 {
            return None;
        }
        let spawned = std::thread::Builder::new()
            .name("stapling-store".into())
            .stack_size(64 * 1024)
            .spawn(f);
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        spawned.ok().map(|_| ())
    }
}
