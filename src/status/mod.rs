//! The status page (`ssl_stapling_status;`): every stapled certificate with
//! its staple, its schedule and its counters, as JSON or as Prometheus text.
//! `collect` copies what the page shows; `render` writes it out.

pub mod collect;
pub mod render;
