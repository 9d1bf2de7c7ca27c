//! The bottom layer, used by every other folder and using none of them:
//! logging through nginx's error log, the panic guard at the edge between
//! nginx and Rust, work spread over the cores while the configuration
//! loads (and threads started with signals blocked), and the few OpenSSL
//! calls the `openssl` crate does not wrap. No configuration glue, no
//! state.

pub mod ffi;
pub mod guard;
pub mod log;
pub mod parallel;
