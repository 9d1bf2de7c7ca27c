//! The certificate status callback OpenSSL calls during a handshake whose
//! client sent status_request. It never blocks: a lookup in the zone and a
//! copy of a few KB under the zone lock.

use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use openssl_sys as sys;

use crate::context::StaplingContext;
use crate::ssl_ffi;

const SSL_TLSEXT_ERR_OK: c_int = 0;
const SSL_TLSEXT_ERR_NOACK: c_int = 3;

/// # Safety
/// Installed by `StaplingContext::install` with the cycle's context as arg.
pub unsafe extern "C" fn status_callback(ssl: *mut sys::SSL, arg: *mut c_void) -> c_int {
    // A panic must not unwind into OpenSSL and nginx: answer without a staple.
    catch_unwind(AssertUnwindSafe(|| serve(ssl, arg))).unwrap_or(SSL_TLSEXT_ERR_NOACK)
}

unsafe fn serve(ssl: *mut sys::SSL, arg: *mut c_void) -> c_int {
    if ssl.is_null() || arg.is_null() {
        return SSL_TLSEXT_ERR_NOACK;
    }
    // SAFETY: arg is the cycle's StaplingContext (see `install`).
    let ctx = &*(arg as *const StaplingContext);
    // After SNI, the connection's SSL_CTX is the chosen server's.
    let ssl_ctx = sys::SSL_get_SSL_CTX(ssl);
    let Some(cert) = ctx.certificate_for(ssl_ctx, sys::SSL_get_certificate(ssl)) else {
        return SSL_TLSEXT_ERR_NOACK;
    };

    if let Some(zone) = ctx.zone() {
        let now = nginx_sys::ngx_time();
        let mut z = zone.lock();
        if let Some(entry) = z.find(&cert.key) {
            if let Some(der) = entry.servable(now) {
                if ssl_ffi::set_staple(ssl, der) {
                    entry.stapled += 1;
                    return SSL_TLSEXT_ERR_OK;
                }
            }
            entry.unstapled += 1;
        }
    }

    SSL_TLSEXT_ERR_NOACK
}
