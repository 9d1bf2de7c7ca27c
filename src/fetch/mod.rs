//! Fetching staples: the worker's task, one fetch, the connection.

pub mod blocking;
pub mod exchange;
pub mod net;
pub mod shared;
pub mod task;
pub mod worker;
