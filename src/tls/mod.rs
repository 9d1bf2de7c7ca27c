//! The handshake path: the certificate status callback, installed on the
//! SSL_CTXs it is handed.

pub mod callback;
