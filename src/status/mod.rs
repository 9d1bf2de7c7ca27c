//! The status page (`ssl_stapling_status;`): every stapled certificate with
//! its staple, its schedule and its counters, as JSON, as Prometheus text,
//! or as HTML for people. `collect` copies what the page shows; `select`
//! counts states and picks what is listed; `render` writes JSON and
//! Prometheus text, `html` the page for a browser.

pub mod collect;
pub mod html;
pub mod render;
pub mod select;
