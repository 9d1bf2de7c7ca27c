//! A wake-up flag for the worker's fetch loop: set by whoever has new work
//! for it (a fetch that ended and freed a slot, the status callback meeting
//! a certificate loaded by variables), taken by the loop's sleep.

use std::cell::Cell;
use std::task::Waker;

#[derive(Default)]
pub struct Wakeup {
    flag: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl Wakeup {
    /// Asks the loop to look at its certificates now.
    pub fn notify(&self) {
        self.flag.set(true);
        // Take the waker out before waking: the woken task may run right
        // here and poll its sleep again.
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// Whether `notify` was called since the last look (and forgets it).
    pub fn take(&self) -> bool {
        self.flag.replace(false)
    }

    /// Who to wake at the next `notify`.
    pub fn register(&self, waker: &Waker) {
        self.waker.set(Some(waker.clone()));
    }
}
