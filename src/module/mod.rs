//! nginx's side of the module: definitions, directives, hooks, glue.

pub mod conf_values;
pub mod core;
pub mod discover;
pub mod guard;
pub mod http;
pub mod log;
