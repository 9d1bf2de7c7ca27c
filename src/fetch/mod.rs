//! Fetching staples: the worker's task (`worker`), the store around a
//! fetch (`stored`), one fetch and what it does to the zone (`one`), the
//! exchange with a responder (`exchange`, `net`), store calls off the
//! event loop (`blocking`), the task's futures (`task`).

pub mod blocking;
pub mod exchange;
pub mod net;
pub mod one;
pub mod stored;
pub mod task;
pub mod worker;
