//! Store calls that may block (a shared directory on a network file
//! system, a Redis server) run on a thread of their own while the worker's
//! event loop waits for them, with a deadline: a store that hangs costs a
//! warning and a fetch, never a stuck worker. At most `MAX_THREADS` such
//! threads live per worker: a call that hangs keeps its thread until it
//! ends, and past the bound the store is skipped rather than piling up
//! threads. The threads block every signal, as nginx's own thread pools
//! do, so that signals meant for the worker reach nginx's handlers on the
//! worker's thread.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ngx::async_::sleep;

use crate::base::parallel::with_signals_blocked;

/// How often the event loop looks whether the thread is done.
const POLL: Duration = Duration::from_millis(5);

/// The most store threads a worker has at once (calls in progress,
/// answered or hung).
pub const MAX_THREADS: usize = 8;

/// Store threads of this worker alive now.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Why a store call brought no result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    /// It did not end within its deadline (its thread is left to end on
    /// its own).
    TooSlow,
    /// `MAX_THREADS` calls are still running (hung, most likely): not made.
    Busy,
    /// No thread could be started.
    NoThread,
}

/// Counts a live thread; uncounted when the thread ends, however it ends.
struct Live;

impl Drop for Live {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Runs `f` on a thread of its own; its result, or why there is none.
pub async fn run<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Blocked> {
    if LIVE.fetch_add(1, Ordering::AcqRel) >= MAX_THREADS {
        LIVE.fetch_sub(1, Ordering::AcqRel);
        return Err(Blocked::Busy);
    }
    let live = Live;
    let slot: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
    let out = slot.clone();
    let started = spawn_without_signals(move || {
        let _live = live;
        let v = f();
        if let Ok(mut s) = out.lock() {
            *s = Some(v);
        }
    });
    if !started {
        return Err(Blocked::NoThread);
    }
    let start = Instant::now();
    loop {
        if let Some(v) = slot.lock().ok().and_then(|mut s| s.take()) {
            return Ok(v);
        }
        if start.elapsed() >= limit {
            return Err(Blocked::TooSlow);
        }
        sleep(POLL).await;
    }
}

/// Starts a thread with every signal blocked from its first instruction
/// (`base::parallel::with_signals_blocked`). False when no thread could
/// be started (`f` is dropped, which uncounts it).
fn spawn_without_signals(f: impl FnOnce() + Send + 'static) -> bool {
    with_signals_blocked(|| {
        std::thread::Builder::new()
            .name("stapling-store".into())
            .stack_size(512 * 1024)
            .spawn(f)
    })
    .is_some_and(|spawned| spawned.is_ok())
}
