//! ngx_ssl_stapling_module: takes over OCSP stapling for every server that
//! has `ssl_stapling on`, serving staples from one shared-memory zone.
//!
//! Where things are (bottom layer first; a folder uses only those above it
//! in this list, `scripts/check-code` checks it):
//! - `base`: logging through nginx's error log, the panic guard, the few
//!   OpenSSL calls the `openssl` crate does not wrap;
//! - `ocsp`: OCSP without nginx: response checks, the responder's URL,
//!   request and response parser, the refresh schedule;
//! - `state`: what staples are and where they live: a staple's identity
//!   and where it is fetched from, the registry of one configuration
//!   (built from plain server descriptions), the shared zone, the stores;
//! - `fetch`: each worker's fetch task, one fetch, the connection;
//! - `tls`: the certificate status callback (the handshake path);
//! - `status`: the status page (JSON, Prometheus text, HTML);
//! - `module`: nginx's side: the module definitions and directives, the
//!   configuration-time hooks, the http and stream glue (status page,
//!   store directive), finding the servers.
//!
//! Data flows one way: configuration → registry (frozen once built) →
//! zone ← fetch task; the status callback reads the zone.

// Every unsafe operation in its own block with a SAFETY line, also in
// unsafe fns.
#![deny(unsafe_op_in_unsafe_fn)]

// Private: the compiler then reports what nothing uses.
mod base;
mod fetch;
mod module;
mod ocsp;
mod state;
mod status;
mod tls;

/// What the fuzz targets (`fuzz/`) feed outside data to: every parser of
/// bytes that come from a responder, a file or a configuration.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::module::conf_values::{count, on_off, refresh_value, zone_name_and_size, RefreshValue};
    pub use crate::ocsp::responder::{ResponderUrl, ResponseReader, MAX_BODY};
    pub use crate::ocsp::response::{
        check_response, check_whole, leading_response, peek_next_update, CertStatus, CertificateStatusId,
        ChainSignatureCheck, CheckedResponse, NoSignatureCheck, SignatureCheck, TimeRules,
    };
    pub use crate::state::certificate::{tls_features, StapleKey};
    pub use crate::state::store::read_file;
    pub use crate::state::store::seal::{take_apart, SealKey};
}

// The symbols nginx looks up in a dynamic module (nginx's own build system,
// feature nginx-build, generates the module list itself).
pub use module::core::ngx_ssl_stapling_module;
#[cfg(not(feature = "nginx-build"))]
pub use module::core::{ngx_module_names, ngx_module_order, ngx_modules};
