//! The edge between nginx and Rust: no panic may unwind into nginx's C
//! frames. Every `extern "C"` entry point runs its body through `guard`.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`; a panic in it (a bug) becomes `on_panic`, the value that tells
/// nginx the call failed.
pub fn guard<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(on_panic)
}
