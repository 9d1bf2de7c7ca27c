//! The certificate status callback OpenSSL calls during a handshake whose
//! client sent status_request. It never blocks: a lookup in the zone and a
//! copy of a few KB under the zone lock. A certificate the configuration
//! did not show (loaded by variables) is registered here and fetched for
//! by this worker; it is stapled from the next handshake on.

use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use foreign_types::ForeignTypeRef;
use openssl::ssl::SslRef;
use openssl::x509::X509Ref;
use openssl_sys as sys;

use crate::base::ffi;
use crate::base::log::{log_error, log_info, log_notice, Log};
use crate::state::certificate::{Certificate, StapleKey, StapleSettings};
use crate::state::registry::server::StaplingServer;
use crate::state::registry::StaplingContext;
use crate::state::zone::Entry;

const SSL_TLSEXT_ERR_OK: c_int = 0;
const SSL_TLSEXT_ERR_NOACK: c_int = 3;

/// How often, at most, a must-staple certificate served without a staple
/// is logged (all workers together).
const GAP_LOG_INTERVAL: i64 = 60;

/// # Safety
/// Installed by `install` with the cycle's context as arg: OpenSSL calls it
/// with a live connection during its handshake.
pub unsafe extern "C" fn status_callback(ssl: *mut sys::SSL, arg: *mut c_void) -> c_int {
    if ssl.is_null() || arg.is_null() {
        return SSL_TLSEXT_ERR_NOACK;
    }
    // SAFETY: `arg` is the cycle's StaplingContext (see `install`), alive as
    // long as the SSL contexts; `ssl` is the connection being handshaken,
    // ours alone for the duration of the callback.
    let (ctx, ssl) = unsafe { (&*(arg as *const StaplingContext), SslRef::from_ptr_mut(ssl)) };
    // A panic must not unwind into OpenSSL and nginx: answer without a staple.
    catch_unwind(AssertUnwindSafe(|| serve(ctx, ssl))).unwrap_or(SSL_TLSEXT_ERR_NOACK)
}

/// The current cycle's log: the one this worker writes to.
fn log_() -> Option<Log> {
    // SAFETY: nginx's current cycle is set in every worker, and lives
    // longer than the handshake.
    unsafe { Log::of_cycle() }
}

fn now() -> i64 {
    nginx_sys::ngx_time()
}

fn serve(ctx: &StaplingContext, ssl: &mut SslRef) -> c_int {
    // After SNI, the connection's SSL_CTX is the chosen server's.
    let ssl_ctx = ssl.ssl_context().as_ptr();
    let Some(x509) = ssl.certificate().map(|c| c.as_ptr()) else {
        return SSL_TLSEXT_ERR_NOACK;
    };
    if let Some(cert) = ctx.certificate_for(ssl_ctx, x509) {
        return staple(ctx, ssl, cert);
    }
    // Loaded by variables: a reference of our own to the certificate, as
    // `ssl` is lent out mutably meanwhile (only on this path, not on every
    // handshake).
    let Some(x509) = ssl.certificate().map(|c| c.to_owned()) else {
        return SSL_TLSEXT_ERR_NOACK;
    };
    serve_dynamic(ctx, ssl, &x509)
}

/// Serves the staple of `cert`, counting the handshake; a must-staple
/// certificate without one is logged (once a minute at most).
fn staple(ctx: &StaplingContext, ssl: &mut SslRef, cert: &Certificate) -> c_int {
    let Some(zone) = ctx.zone() else {
        return SSL_TLSEXT_ERR_NOACK;
    };
    let now = now();
    let mut z = zone.lock();
    #[cfg(feature = "test-hooks")]
    hold_lock_if_asked();
    let Some(mut entry) = z.find(&cert.key) else {
        return SSL_TLSEXT_ERR_NOACK;
    };
    let stapled = entry
        .servable(now)
        .is_some_and(|der| ffi::set_ocsp_status_with(ssl, der.len(), |out| der.copy_to(out)));
    entry.count_handshake(stapled, now);
    if stapled {
        return SSL_TLSEXT_ERR_OK;
    }
    // A staple past its nextUpdate (the clock jumped, a VM resumed) is
    // fetched at once, not at the fetch task's next look.
    let expired = entry.expired_seen(now);
    let why = (cert.must_staple && entry.take_gap_log(now, GAP_LOG_INTERVAL)).then(|| gap_reason(&entry));
    drop(z);
    let log = log_();
    if let (Some(ago), Some(log)) = (expired, log) {
        log_notice!(
            log,
            "the staple of certificate \"{}\" expired {ago} s ago (the clock jumped, or \
             refreshes failed until its nextUpdate): not served, fetched now",
            cert.name
        );
    }
    if expired.is_some() {
        ctx.wakeup.notify();
    }
    if let (Some(why), Some(log)) = (why, log) {
        log_error!(
            log,
            "must-staple certificate \"{}\" served without a staple ({why}); \
             clients that honour must-staple refuse the connection",
            cert.name
        );
    }
    SSL_TLSEXT_ERR_NOACK
}

/// Test builds only: when "test-hooks/hold-zone-lock" exists in nginx's
/// prefix (a directory the worker user can write), the first handshake to
/// see it (the rename decides) writes its worker's pid to
/// "test-hooks/zone-lock-held-by" and keeps the zone locked for a minute,
/// as a worker that hangs or is killed while holding the lock.
#[cfg(feature = "test-hooks")]
fn hold_lock_if_asked() {
    // SAFETY: nginx's current cycle and its prefix are set in a worker.
    let prefix = unsafe { String::from_utf8_lossy((*nginx_sys::ngx_cycle).prefix.as_bytes()).into_owned() };
    let dir = std::path::Path::new(&prefix).join("test-hooks");
    if std::fs::rename(dir.join("hold-zone-lock"), dir.join("hold-zone-lock.taken")).is_ok() {
        let _ = std::fs::write(dir.join("zone-lock-held-by"), std::process::id().to_string());
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

fn gap_reason(entry: &Entry) -> String {
    let err = String::from_utf8_lossy(entry.last_error()).into_owned();
    match (entry.der().is_some(), err.is_empty()) {
        (true, _) => "its OCSP response expired".to_string(),
        (false, false) => format!("last fetch: {err}"),
        (false, true) => "no OCSP response yet".to_string(),
    }
}

/// A certificate loaded by variables: known to this worker or the zone,
/// served like the others; new, registered and fetched for.
fn serve_dynamic(ctx: &StaplingContext, ssl: &mut SslRef, x509: &X509Ref) -> c_int {
    let ssl_ctx = ssl.ssl_context().as_ptr();
    let Some(server) = ctx.server_of(ssl_ctx) else {
        return SSL_TLSEXT_ERR_NOACK;
    };
    // The staple of this certificate as its server configures stapling.
    let settings = StapleSettings::Dynamic {
        responder: server.responder.as_deref(),
        checks: &server.checks,
    };
    let Some(key) = StapleKey::new(x509, &settings) else {
        return SSL_TLSEXT_ERR_NOACK;
    };
    let now = now();
    let cert = match ctx.dynamic_cert(&key, now) {
        Some(c) => c,
        None => match log_().and_then(|log| ctx.add_dynamic(ssl, x509, key, log, now)) {
            Some(c) => c,
            None => return SSL_TLSEXT_ERR_NOACK,
        },
    };
    let Some(zone) = ctx.zone() else {
        return SSL_TLSEXT_ERR_NOACK;
    };
    // The zone may have evicted it (another worker needed room): register
    // again, evicting the least recently used in turn.
    let known = zone.lock().find(&key).is_some();
    if known {
        return staple(ctx, ssl, &cert);
    }
    let registered = {
        let mut z = zone.lock();
        let max = ctx.settings.dynamic_max;
        let r = z.register_dynamic(&key, now, max).map(|(_, created)| created);
        (r, z.dynamic_entries())
    };
    match registered {
        (Ok(true), n) => {
            if let Some(log) = log_() {
                log_info!(
                    log,
                    "certificate \"{}\" loaded by variables is stapled from now on \
                 ({n} of at most {} such certificates)",
                    cert.name,
                    ctx.settings.dynamic_max
                );
            }
            ctx.wakeup.notify();
        }
        (Ok(false), _) => {}
        (Err(_), _) => {}
    }
    SSL_TLSEXT_ERR_NOACK
}

/// Points every stapling SSL_CTX at `status_callback`.
///
/// # Safety
/// `ctx` lives as long as the SSL contexts (both are the cycle's).
pub unsafe fn install(ctx: *const StaplingContext, servers: &[StaplingServer]) {
    for server in servers.iter().filter(|s| s.stapling) {
        // SAFETY: the caller keeps `ctx` alive as long as the SSL contexts.
        unsafe { ffi::set_status_callback(server.ssl_ctx(), status_callback, ctx as *mut c_void) };
    }
}
