//! The module's state for one configuration cycle: the certificates it took
//! over, which X509 object (in each SSL_CTX) is which certificate, and the
//! zone their staples live in. Built in the master at configuration time,
//! inherited by the workers; lives in the cycle pool.

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::c_void;

use nginx_sys::{ngx_log_t, ngx_msec_t, NGX_LOG_NOTICE, NGX_LOG_WARN};
use openssl::x509::X509Ref;
use openssl_sys as sys;

use crate::certificate::{Certificate, CertificateKey, Protocol};
use crate::discover::StaplingServer;
use crate::fetch::FetchPlan;
use crate::http::ResponderUrl;
use crate::log::log;
use crate::ocsp::{check_response, CertificateStatusId, CheckedResponse, NoSignatureCheck};
use crate::schedule::Policy;
use crate::ssl_ffi;
use crate::zone::{Prepared, StapleSource, Zone, ZoneFull};

/// The module-wide settings (main-context directives).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub policy: Policy,
    pub fetch_timeout_ms: ngx_msec_t,
    pub serve_revoked: bool,
    /// Fetches a worker runs at the same time.
    pub fetch_concurrency: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            policy: Policy::default(),
            fetch_timeout_ms: 10_000,
            serve_revoked: false,
            fetch_concurrency: 4,
        }
    }
}

impl Settings {
    /// How long a worker may hold a fetch lease before another takes over:
    /// the fetch's deadline, time to resolve, and a margin.
    pub fn lease_secs(&self) -> i64 {
        (self.fetch_timeout_ms / 1000) as i64 + 35
    }
}

pub struct StaplingContext {
    pub settings: Settings,
    pub certs: Vec<Certificate>,
    /// (SSL_CTX, X509) pointers → index in `certs`. nginx's certificate
    /// cache shares one X509 between servers, and each server may give it
    /// another staple file: the pair is what identifies a registration.
    by_x509: HashMap<(usize, usize), usize>,
    zone: Cell<Option<Zone>>,
    pub http_servers: usize,
    pub stream_servers: usize,
}

/// What `load_staple_file` found wrong with a `ssl_stapling_file`.
#[derive(Debug, thiserror::Error)]
enum FileError {
    #[error("cannot read it: {0}")]
    Read(#[from] std::io::Error),
    #[error("{0}")]
    Check(#[from] crate::ocsp::OcspError),
}

fn load_staple_file(path: &str, id: &CertificateStatusId, now: i64) -> Result<CheckedResponse, FileError> {
    let der = std::fs::read(path)?;
    Ok(check_response(&der, id, &NoSignatureCheck, now)?)
}

impl StaplingContext {
    /// Registers every certificate of `servers`, checking staple files.
    ///
    /// # Safety
    /// The servers' SSL contexts must be alive; `log` must be valid.
    pub unsafe fn build(
        settings: Settings,
        servers: &[StaplingServer],
        log_: *mut ngx_log_t,
        now: i64,
        check_files: bool,
    ) -> Self {
        let mut ctx = StaplingContext {
            settings,
            certs: Vec::new(),
            by_x509: HashMap::new(),
            zone: Cell::new(None),
            http_servers: 0,
            stream_servers: 0,
        };
        let mut by_key: HashMap<CertificateKey, usize> = HashMap::new();

        for server in servers {
            match server.protocol {
                Protocol::Http => ctx.http_servers += 1,
                Protocol::Stream => ctx.stream_servers += 1,
            }
            let ssl_ctx = (*server.ssl).ctx as *mut sys::SSL_CTX;
            for (ptr, x509, name) in server.certificates() {
                let Some(key) = CertificateKey::of(&x509, server.file.as_deref()) else {
                    log!(
                        NGX_LOG_WARN,
                        log_,
                        "\"ssl_stapling\" ignored, cannot hash certificate \"{name}\""
                    );
                    continue;
                };
                if let Some(&i) = by_key.get(&key) {
                    ctx.by_x509.insert((ssl_ctx as usize, ptr as usize), i);
                    continue;
                }
                let chain = ssl_ffi::chain_of(ssl_ctx, &x509);
                let issuer = ssl_ffi::issuer_of(ssl_ctx, &x509, &chain);
                let status_id = CertificateStatusId::new(&x509, issuer.as_deref());
                let file_staple = match &server.file {
                    Some(path) if check_files => match load_staple_file(path, &status_id, now) {
                        Ok(resp) => Some(resp),
                        Err(e) => {
                            log!(
                                NGX_LOG_WARN,
                                log_,
                                "\"ssl_stapling_file\" \"{path}\" ignored for certificate \"{name}\": {e}"
                            );
                            None
                        }
                    },
                    _ => None,
                };
                let plan = match server.file {
                    Some(_) => None,
                    // nginx has warned: "issuer certificate not found"
                    None if !status_id.has_issuer() => None,
                    None => fetch_plan(server, &x509, &name, log_),
                };
                let i = ctx.certs.len();
                ctx.certs.push(Certificate {
                    key,
                    name,
                    x509: x509.clone(),
                    chain,
                    status_id,
                    file: server.file.clone(),
                    file_staple,
                    verify: server.verify,
                    protocol: server.protocol,
                    ssl_ctx,
                    plan,
                });
                by_key.insert(key, i);
                ctx.by_x509.insert((ssl_ctx as usize, ptr as usize), i);
            }
        }
        ctx
    }

    /// Points every stapling SSL_CTX at our status callback.
    ///
    /// # Safety
    /// `this` lives as long as the SSL contexts (both are the cycle's).
    pub unsafe fn install(this: *const StaplingContext, servers: &[StaplingServer]) {
        for server in servers {
            let ssl_ctx = (*server.ssl).ctx as *mut sys::SSL_CTX;
            ssl_ffi::set_status_callback(ssl_ctx, crate::callback::status_callback, this as *mut c_void);
        }
    }

    pub fn certificate_for(&self, ssl_ctx: *mut sys::SSL_CTX, x509: *mut sys::X509) -> Option<&Certificate> {
        self.by_x509
            .get(&(ssl_ctx as usize, x509 as usize))
            .and_then(|&i| self.certs.get(i))
    }

    pub fn zone(&self) -> Option<Zone> {
        self.zone.get()
    }

    /// Zone init (master, every start and reload): keep what a previous
    /// cycle left, put this configuration's file staples in, free entries of
    /// certificates no longer configured.
    pub fn fill_zone(&self, zone: Zone, name: &str, log_: *mut ngx_log_t, now: i64) -> Result<(), ZoneFull> {
        self.zone.set(Some(zone));
        let mut z = zone.lock();
        let (prepared, seq) = z.prepare()?;
        if let Prepared::Wiped = prepared {
            log!(
                NGX_LOG_NOTICE,
                log_,
                "ssl_stapling: zone had another layout, started afresh"
            );
        }
        let mut from_files = 0;
        for cert in &self.certs {
            let entry = z.register(&cert.key, seq)?;
            let entry: *mut _ = entry;
            // SAFETY: the entry stays allocated while we hold the lock.
            let entry = unsafe { &mut *entry };
            match &cert.file_staple {
                Some(resp) => {
                    z.store(entry, resp, StapleSource::File, now)?;
                    from_files += 1;
                }
                // A staple that came from a file no longer configured (or
                // no longer valid) must not outlive the configuration.
                None if entry.source == StapleSource::File => z.clear(entry),
                None => {}
            }
        }
        let freed = z.sweep(seq);
        let usage = z.usage();
        drop(z);
        log!(
            NGX_LOG_NOTICE,
            log_,
            "ssl_stapling: module took over {} certificate(s) in {} http and {} stream server(s); \
             {} staple(s) from files, {} stale entr(ies) freed, {} in zone \"{name}\" \
             ({} of {} KB used)",
            self.certs.len(),
            self.http_servers,
            self.stream_servers,
            from_files,
            freed,
            usage.entries,
            usage.used() / 1024,
            usage.size / 1024
        );
        Ok(())
    }
}

/// Where the certificate's staple is fetched from: `ssl_stapling_responder`,
/// else the OCSP URL of its AIA extension.
fn fetch_plan(
    server: &StaplingServer,
    x509: &X509Ref,
    name: &str,
    log_: *mut ngx_log_t,
) -> Option<FetchPlan> {
    let aia = || {
        x509.ocsp_responders()
            .ok()
            .and_then(|s| s.iter().next().map(|u| u.to_string()))
    };
    // Without either, nginx has warned "no OCSP responder URL".
    let text = server.responder.clone().or_else(aia)?;
    match ResponderUrl::parse(&text) {
        Ok(url) => Some(FetchPlan {
            url,
            resolver: server.resolver,
        }),
        Err(e) => {
            log!(
                NGX_LOG_WARN,
                log_,
                "\"ssl_stapling\" ignored, OCSP responder \"{text}\" for certificate \"{name}\": {e}"
            );
            None
        }
    }
}
