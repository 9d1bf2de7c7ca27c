//! Work spread over the machine's cores while nginx loads its
//! configuration (the master reads and checks thousands of stored staples
//! before the workers start): scoped threads, all joined before `map`
//! returns, so nothing runs on another thread once nginx goes on (and
//! forks). Each thread blocks every signal, so that signals reach nginx's
//! handlers on its own thread, as with nginx's thread pools.

use std::num::NonZeroUsize;
use std::thread;

/// The fewest items worth a thread of their own.
const MIN_PER_THREAD: usize = 64;

/// The most threads `map` starts.
const MAX_THREADS: usize = 16;

/// `f` applied to every item, in order, spread over the cores; `S` is each
/// thread's own scratch state (a cache, say). A thread that cannot be
/// started leaves its share to the calling thread.
pub fn map<T: Sync, R: Send, S: Default>(items: &[T], f: impl Fn(&mut S, &T) -> R + Sync) -> Vec<R> {
    let cores = thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let threads = cores.min(MAX_THREADS).min(items.len() / MIN_PER_THREAD).max(1);
    let run = |chunk: &[T]| {
        let mut state = S::default();
        chunk.iter().map(|item| f(&mut state, item)).collect::<Vec<R>>()
    };
    if threads == 1 {
        return run(items);
    }
    let per = items.len().div_ceil(threads);
    thread::scope(|scope| {
        let run = &run;
        let handles: Vec<_> = items
            .chunks(per)
            .map(|chunk| (chunk, spawn_without_signals(scope, move || run(chunk))))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for (chunk, handle) in handles {
            match handle.map(|h| h.join()) {
                Some(Ok(part)) => out.extend(part),
                // Not started: done here. A panic goes on to the caller's
                // guard, as it would have on this thread.
                None => out.extend(run(chunk)),
                Some(Err(panic)) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

/// Runs `spawn`, which starts a thread, with every signal blocked on this
/// thread, then restores the mask: the new thread inherits the blocked
/// mask from its first instruction, so signals keep reaching nginx's
/// handlers on nginx's own thread. `None`, and `spawn` dropped unrun, when
/// the mask cannot be set.
pub fn with_signals_blocked<T>(spawn: impl FnOnce() -> T) -> Option<T> {
    // SAFETY: sigset_t is plain data that sigfillset initialises;
    // pthread_sigmask only changes this thread's mask, restored below.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        if libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old) != 0 {
            return None;
        }
        let spawned = spawn();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        Some(spawned)
    }
}

/// A scoped thread started with every signal blocked from its first
/// instruction (`with_signals_blocked`); `None` if none could start.
fn spawn_without_signals<'scope, R: Send + 'scope>(
    scope: &'scope thread::Scope<'scope, '_>,
    f: impl FnOnce() -> R + Send + 'scope,
) -> Option<thread::ScopedJoinHandle<'scope, R>> {
    with_signals_blocked(|| {
        thread::Builder::new()
            .name("stapling-load".into())
            .spawn_scoped(scope, f)
    })
    .and_then(Result::ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_with_state_per_thread() {
        let items: Vec<usize> = (0..1000).collect();
        let out = map(&items, |seen: &mut usize, &i| {
            *seen += 1;
            (i * 2, *seen)
        });
        assert_eq!(out.len(), 1000);
        assert!(out.iter().enumerate().all(|(i, &(v, _))| v == i * 2));
        // each thread's state starts afresh
        assert_eq!(out[0].1, 1);
        assert!(map(&[] as &[u8], |_: &mut (), &b| b).is_empty());
        assert_eq!(map(&[7u8], |_: &mut (), &b| b), vec![7]);
    }
}
