//! The handshake path and the OpenSSL calls the `openssl` crate lacks.

pub mod callback;
pub mod ffi;
