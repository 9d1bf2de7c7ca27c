//! The module's state for one configuration cycle: the certificates it took
//! over, which X509 object (in each SSL_CTX) is which certificate, and the
//! zone their staples live in. Built in the master at configuration time,
//! inherited by the workers; lives in the cycle pool.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::ptr::NonNull;
use std::rc::Rc;

use foreign_types::ForeignTypeRef;
use nginx_sys::{ngx_log_t, ngx_msec_t, ngx_resolver_t, NGX_LOG_WARN};
use openssl::ssl::SslRef;
use openssl::x509::X509Ref;
use openssl_sys as sys;

use crate::fetch::exchange::FetchPlan;
use crate::module::discover::StaplingServer;
use crate::module::log::{log, log_crit, log_info, log_notice, log_warn};
use crate::ocsp::responder::ResponderUrl;
use crate::ocsp::response::{
    check_response, peek_next_update, CertStatus, CertificateStatusId, CheckedResponse, NoSignatureCheck,
};
use crate::ocsp::schedule::{self, Policy};
use crate::state::certificate::{
    is_must_staple, Certificate, Protocol, ServerChecks, StapleKey, StapleSettings,
};
use crate::state::store::Store;
use crate::state::wakeup::Wakeup;
use crate::state::zone::{size_for, Prepared, StapleSource, Zone, ZoneFull, STAPLE_ESTIMATE};
use crate::tls::ffi;

/// The module-wide settings (main-context directives).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub policy: Policy,
    pub fetch_timeout_ms: ngx_msec_t,
    pub serve_revoked: bool,
    /// Fetches a worker runs at the same time.
    pub fetch_concurrency: usize,
    /// The most certificates loaded by variables kept in the zone.
    pub dynamic_max: usize,
    /// The largest OCSP response stapled (nginx's own code reads at most
    /// 16 KB of a response, so it never staples more).
    pub max_staple_bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            policy: Policy::default(),
            fetch_timeout_ms: 10_000,
            serve_revoked: false,
            fetch_concurrency: 4,
            dynamic_max: 256,
            max_staple_bytes: DEFAULT_MAX_STAPLE_BYTES,
        }
    }
}

/// nginx's built-in stapling reads a response into one 16 KB buffer.
pub const DEFAULT_MAX_STAPLE_BYTES: usize = 16 * 1024;

/// Why a response is too large to staple, or nothing.
pub fn size_problem(len: usize, max: usize) -> Option<String> {
    (len > max)
        .then(|| format!("OCSP response of {len} bytes is larger than ssl_stapling_max_size ({max} bytes)"))
}

impl Settings {
    /// How long a worker may hold a fetch lease before another takes over:
    /// the fetch's deadline, time to resolve, and a margin.
    pub fn lease_secs(&self) -> i64 {
        (self.fetch_timeout_ms / 1000) as i64 + 35
    }
}

/// What a certificate loaded by variables inherits from its server.
pub struct ServerInfo {
    pub protocol: Protocol,
    pub checks: ServerChecks,
    pub responder: Option<String>,
    pub resolver: Option<(NonNull<ngx_resolver_t>, ngx_msec_t)>,
    pub names: Vec<String>,
}

/// A certificate met during handshakes (loaded by variables), known to
/// this worker; `last_used` orders evictions.
pub struct DynamicCert {
    pub cert: Rc<Certificate>,
    pub last_used: i64,
}

pub struct StaplingContext {
    pub settings: Settings,
    pub certs: Vec<Certificate>,
    /// (SSL_CTX, X509) pointers → index in `certs`. nginx's certificate
    /// cache shares one X509 between servers, and each server may give it
    /// another staple file: the pair is what identifies a registration.
    by_x509: HashMap<(usize, usize), usize>,
    /// The stapling servers, by SSL_CTX: what a certificate loaded by
    /// variables in one of them inherits.
    servers_by_ctx: HashMap<usize, ServerInfo>,
    /// This worker's certificates loaded by variables.
    pub dynamic: RefCell<HashMap<StapleKey, DynamicCert>>,
    pub store: Option<Store>,
    zone: Cell<Option<Zone>>,
    zone_name: RefCell<String>,
    /// Staples the zone had no room for in this configuration.
    no_room: RefCell<HashSet<StapleKey>>,
    pub http_servers: usize,
    pub stream_servers: usize,
    /// Wakes this worker's fetch loop (see `worker`).
    pub wakeup: Wakeup,
}

thread_local! {
    /// The context of this worker's cycle, set when the worker starts.
    static CURRENT: Cell<Option<&'static StaplingContext>> = const { Cell::new(None) };
}

/// This worker's context (for the status page); None in a worker of a
/// configuration where nothing staples.
pub fn current() -> Option<&'static StaplingContext> {
    CURRENT.with(|c| c.get())
}

pub fn set_current(ctx: &'static StaplingContext) {
    CURRENT.with(|c| c.set(Some(ctx)));
}

/// What `load_staple_file` found wrong with a `ssl_stapling_file`.
#[derive(Debug, thiserror::Error)]
enum FileError {
    #[error("cannot read it: {0}")]
    Read(#[from] std::io::Error),
    #[error("{0}")]
    Check(#[from] crate::ocsp::response::OcspError),
    #[error("{0}")]
    TooLarge(String),
}

fn load_staple_file(
    path: &str,
    id: &CertificateStatusId,
    now: i64,
    max: usize,
) -> Result<CheckedResponse, FileError> {
    let der = std::fs::read(path)?;
    if let Some(why) = size_problem(der.len(), max) {
        return Err(FileError::TooLarge(why));
    }
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
        store: Option<Store>,
        log_: *mut ngx_log_t,
        now: i64,
        check_files: bool,
    ) -> Self {
        let mut ctx = StaplingContext {
            settings,
            certs: Vec::new(),
            by_x509: HashMap::new(),
            servers_by_ctx: HashMap::new(),
            dynamic: RefCell::new(HashMap::new()),
            store,
            zone: Cell::new(None),
            zone_name: RefCell::new(String::new()),
            no_room: RefCell::new(HashSet::new()),
            wakeup: Wakeup::default(),
            http_servers: 0,
            stream_servers: 0,
        };
        let mut by_key: HashMap<StapleKey, usize> = HashMap::new();

        // A must-staple certificate without stapling fails in browsers.
        let mut warned = HashSet::new();
        for server in servers.iter().filter(|s| !s.stapling) {
            for (ptr, x509, name) in server.certificates() {
                if is_must_staple(&x509) && warned.insert(ptr as usize) {
                    log_warn!(
                        log_,
                        "certificate \"{name}\" is must-staple (TLS Feature status_request, \
                         RFC 7633) but \"ssl_stapling\" is off in its server: clients that honour it \
                         will refuse the connection"
                    );
                }
            }
        }

        // Trusted-store digests are computed only for servers that verify,
        // and responder URLs parsed (and warned about) once each.
        let mut trust_memo = HashMap::new();
        let mut urls: HashMap<String, Option<ResponderUrl>> = HashMap::new();
        for server in servers.iter().filter(|s| s.stapling) {
            let ssl_ctx_ref = server.ssl_ctx();
            let ssl_ctx = ssl_ctx_ref.as_ptr();
            let checks = ServerChecks {
                verify: server.verify,
                trust: if server.verify {
                    ffi::trust_digest(ssl_ctx_ref, &mut trust_memo)
                } else {
                    [0; 32]
                },
            };
            ctx.servers_by_ctx.insert(
                ssl_ctx as usize,
                ServerInfo {
                    protocol: server.protocol,
                    checks,
                    responder: server.responder.clone(),
                    resolver: server.resolver,
                    names: server.names.clone(),
                },
            );
            match server.protocol {
                Protocol::Http => ctx.http_servers += 1,
                Protocol::Stream => ctx.stream_servers += 1,
            }
            for (ptr, x509, name) in server.certificates() {
                let chain = ffi::chain_of(ssl_ctx_ref, &x509);
                let issuer = ffi::issuer_of(ssl_ctx_ref, &x509, &chain);
                let status_id = CertificateStatusId::new(&x509, issuer.as_deref());
                let url = match server.file {
                    Some(_) => None,
                    // nginx has warned: "issuer certificate not found"
                    None if !status_id.has_issuer() => None,
                    None => responder_url(server.responder.as_deref(), &x509, &name, &mut urls, log_),
                };
                let url_text = url.as_ref().map(|u| u.to_string()).unwrap_or_default();
                let settings = match &server.file {
                    Some(path) => StapleSettings::File { path },
                    None => StapleSettings::Fetched {
                        responder: &url_text,
                        issuer: issuer.as_deref(),
                        chain: &chain,
                        checks: &checks,
                    },
                };
                let (Some(key), Some(sha256)) = (
                    StapleKey::new(&x509, &settings),
                    StapleKey::certificate_sha256(&x509),
                ) else {
                    log!(
                        NGX_LOG_WARN,
                        log_,
                        "\"ssl_stapling\" ignored, cannot hash certificate \"{name}\""
                    );
                    continue;
                };
                if let Some(&i) = by_key.get(&key) {
                    ctx.by_x509.insert((ssl_ctx as usize, ptr as usize), i);
                    if let Some(c) = ctx.certs.get_mut(i) {
                        for n in &server.names {
                            if !c.servers.contains(n) {
                                c.servers.push(n.clone());
                            }
                        }
                    }
                    continue;
                }
                let file_staple = match &server.file {
                    Some(path) if check_files => {
                        match load_staple_file(path, &status_id, now, ctx.settings.max_staple_bytes) {
                            Ok(resp) => Some(resp),
                            Err(e) => {
                                log!(
                                NGX_LOG_WARN,
                                log_,
                                "\"ssl_stapling_file\" \"{path}\" ignored for certificate \"{name}\": {e}"
                            );
                                None
                            }
                        }
                    }
                    _ => None,
                };
                let plan = url.map(|url| FetchPlan {
                    url,
                    resolver: server.resolver,
                });
                let must_staple = is_must_staple(&x509);
                let i = ctx.certs.len();
                ctx.certs.push(Certificate {
                    key,
                    sha256,
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
                    must_staple,
                    servers: server.names.clone(),
                    dynamic: false,
                });
                by_key.insert(key, i);
                ctx.by_x509.insert((ssl_ctx as usize, ptr as usize), i);
            }
        }
        ctx
    }

    pub fn certificate_for(&self, ssl_ctx: *mut sys::SSL_CTX, x509: *mut sys::X509) -> Option<&Certificate> {
        self.by_x509
            .get(&(ssl_ctx as usize, x509 as usize))
            .and_then(|&i| self.certs.get(i))
    }

    pub fn zone(&self) -> Option<Zone> {
        self.zone.get()
    }

    pub fn zone_name(&self) -> String {
        self.zone_name.borrow().clone()
    }

    /// The server behind a stapling SSL_CTX (for certificates loaded by
    /// variables, which the configuration did not show).
    pub fn server_of(&self, ssl_ctx: *mut sys::SSL_CTX) -> Option<&ServerInfo> {
        self.servers_by_ctx.get(&(ssl_ctx as usize))
    }

    /// This worker's registration of a certificate loaded by variables,
    /// marked as used now.
    pub fn dynamic_cert(&self, key: &StapleKey, now: i64) -> Option<Rc<Certificate>> {
        let mut d = self.dynamic.borrow_mut();
        let e = d.get_mut(key)?;
        e.last_used = now;
        Some(e.cert.clone())
    }

    /// Registers, in this worker, a certificate a handshake of `ssl` used
    /// that the configuration did not show: its issuer from the chain nginx
    /// loaded with it (else the trusted store), its responder from the
    /// server's `ssl_stapling_responder` or its AIA. Keeps at most
    /// `dynamic_max` of them, dropping the least recently used.
    ///
    /// `x509` is the certificate `ssl` uses.
    pub fn add_dynamic(
        &self,
        ssl: &SslRef,
        x509: &X509Ref,
        key: StapleKey,
        log_: *mut ngx_log_t,
        now: i64,
    ) -> Option<Rc<Certificate>> {
        let ssl_ctx = ssl.ssl_context();
        let server = self.server_of(ssl_ctx.as_ptr())?;
        let chain = ffi::connection_chain(ssl);
        let issuer = ffi::issuer_of(ssl_ctx, x509, &chain);
        let status_id = CertificateStatusId::new(x509, issuer.as_deref());
        let name = subject_of(x509);
        let plan = if status_id.has_issuer() {
            let mut parsed = HashMap::new();
            responder_url(server.responder.as_deref(), x509, &name, &mut parsed, log_).map(|url| FetchPlan {
                url,
                resolver: server.resolver,
            })
        } else {
            log_warn!(
                log_,
                "no issuer certificate for certificate \"{name}\" loaded by variables; \
                 it is not stapled (add the chain to its file or \"ssl_trusted_certificate\")"
            );
            None
        };
        let cert = Rc::new(Certificate {
            key,
            sha256: StapleKey::certificate_sha256(x509)?,
            name,
            x509: x509.to_owned(),
            chain,
            status_id,
            file: None,
            file_staple: None,
            verify: server.checks.verify,
            protocol: server.protocol,
            ssl_ctx: ssl_ctx.as_ptr(),
            plan,
            must_staple: is_must_staple(x509),
            servers: server.names.clone(),
            dynamic: true,
        });
        let mut d = self.dynamic.borrow_mut();
        while d.len() >= self.settings.dynamic_max.max(1) {
            let Some(oldest) = d.iter().min_by_key(|(_, c)| c.last_used).map(|(k, _)| *k) else {
                break;
            };
            d.remove(&oldest);
        }
        d.insert(
            key,
            DynamicCert {
                cert: cert.clone(),
                last_used: now,
            },
        );
        Some(cert)
    }

    /// This worker's certificates loaded by variables (a snapshot: the
    /// fetch loop must not hold the map across its awaits).
    pub fn dynamic_snapshot(&self) -> Vec<Rc<Certificate>> {
        self.dynamic.borrow().values().map(|d| d.cert.clone()).collect()
    }

    /// Staples accepted while serving go to the store, if there is one the
    /// workers can write. Certificates loaded by variables are not kept:
    /// they are not known when the next nginx starts.
    pub fn persist(&self, cert: &Certificate, der: Option<&[u8]>, log_: *mut ngx_log_t) {
        let Some(store) = self.store.as_ref().filter(|s| s.writable) else {
            return;
        };
        if cert.file.is_some() || cert.dynamic {
            return;
        }
        let r = match der {
            Some(der) => store.write(&cert.key, der),
            None => store.remove(&cert.key),
        };
        if let Err(e) = r {
            log_warn!(
                log_,
                "cannot update \"{}\" for certificate \"{}\": {e}",
                store.path_of(&cert.key).display(),
                cert.name
            );
        }
    }

    /// The store's staples for the configured staples in `wanted` (those
    /// without a staple in the zone), checked as fetched ones are; each
    /// file that cannot be used gets one warning.
    fn read_store(
        &self,
        wanted: &HashSet<StapleKey>,
        log_: *mut ngx_log_t,
        now: i64,
    ) -> Vec<(StapleKey, CheckedResponse)> {
        let Some(store) = &self.store else {
            return Vec::new();
        };
        let files = match store.list() {
            Ok(f) => f,
            Err(e) => {
                log_warn!(log_, "cannot read the store \"{}\": {e}", store.dir.display());
                return Vec::new();
            }
        };
        let fetched = || self.certs.iter().filter(|c| c.plan.is_some() && c.file.is_none());
        let by_key: HashMap<_, _> = fetched().map(|c| (c.key, c)).collect();
        // Releases before staple keys named a file by the certificate's
        // SHA-256 alone: such a file is tried for every staple of that
        // certificate still wanted, with that staple's checks.
        let mut by_sha256: HashMap<StapleKey, Vec<&Certificate>> = HashMap::new();
        for c in fetched() {
            by_sha256.entry(c.sha256).or_default().push(c);
        }
        let mut out = Vec::new();
        let mut found = HashSet::new();
        let mut legacy = Vec::new();
        for (key, path) in files {
            if by_key.contains_key(&key) && !wanted.contains(&key) {
                // The zone has a staple already (a reload): not read.
                continue;
            }
            if !by_key.contains_key(&key) && by_sha256.contains_key(&key) {
                legacy.push((key, path));
                continue;
            }
            let shown = path.display();
            let Some(der) = read_logged(&path, log_) else {
                continue;
            };
            let Some(cert) = by_key.get(&key) else {
                // Kept while it could serve a certificate put back in the
                // configuration; removed once it never could.
                let removed = useless(&der, now) && std::fs::remove_file(&path).is_ok();
                log_warn!(
                    log_,
                    "\"{shown}\" in the store is for no configured certificate; ignored{}",
                    if removed { " and removed" } else { "" }
                );
                continue;
            };
            match self.usable(cert, &der, now) {
                Ok(resp) => {
                    found.insert(key);
                    out.push((key, resp));
                }
                Err(why) => {
                    log_warn!(
                        log_,
                        "stored OCSP response \"{shown}\" for certificate \"{}\" ignored: {why}",
                        cert.name
                    );
                }
            }
        }
        for (sha256, path) in legacy {
            let want: Vec<&Certificate> = by_sha256
                .get(&sha256)
                .into_iter()
                .flatten()
                .copied()
                .filter(|c| wanted.contains(&c.key) && !found.contains(&c.key))
                .collect();
            if want.is_empty() {
                continue;
            }
            let shown = path.display();
            let Some(der) = read_logged(&path, log_) else {
                continue;
            };
            let mut why = None;
            for cert in want {
                match self.usable(cert, &der, now) {
                    Ok(resp) => out.push((cert.key, resp)),
                    Err(e) => why = Some((cert, e)),
                }
            }
            if let Some((cert, why)) = why {
                let removed = useless(&der, now) && std::fs::remove_file(&path).is_ok();
                log_warn!(
                    log_,
                    "stored OCSP response \"{shown}\" (written by an earlier release) \
                     for certificate \"{}\" ignored for a server whose settings it does not satisfy: {why}{}",
                    cert.name,
                    if removed { "; removed" } else { "" }
                );
            }
        }
        if !out.is_empty() {
            log_info!(
                log_,
                "{} staple(s) read from the store \"{}\"",
                out.len(),
                store.dir.display()
            );
        }
        out
    }

    /// A stored response checked for `cert`'s staple as a fetched one is.
    fn usable(&self, cert: &Certificate, der: &[u8], now: i64) -> Result<CheckedResponse, String> {
        if let Some(why) = size_problem(der.len(), self.settings.max_staple_bytes) {
            return Err(why);
        }
        match check_response(der, &cert.status_id, &cert.signature_check(), now) {
            Err(e) => Err(e.to_string()),
            Ok(r) if r.status == CertStatus::Revoked && !self.settings.serve_revoked => {
                Err("the certificate is revoked".to_string())
            }
            Ok(r) if r.status == CertStatus::Unknown => Err("certificate status \"unknown\"".to_string()),
            Ok(r) => Ok(r),
        }
    }

    /// Zone init (master, every start and reload): keep what a previous
    /// cycle left, put this configuration's file staples in, free entries of
    /// certificates no longer configured.
    pub fn fill_zone(&self, zone: Zone, name: &str, log_: *mut ngx_log_t, now: i64) -> Result<(), ZoneFull> {
        self.zone.set(Some(zone));
        *self.zone_name.borrow_mut() = name.to_string();
        let mut z = zone.lock();
        let (prepared, seq) = z.prepare()?;
        if let Prepared::Wiped = prepared {
            log_notice!(log_, "zone had another layout, started afresh");
        }
        let mut from_files = 0;
        let mut from_store = 0;
        // Read and check outside the lock (file I/O, signatures), only for
        // certificates the zone has no staple for (all, at a start).
        let wanted: HashSet<StapleKey> = if self.store.is_some() {
            self.certs
                .iter()
                .filter(|c| {
                    c.plan.is_some() && !matches!(z.find(&c.key), Some(e) if e.servable(now).is_some())
                })
                .map(|c| c.key)
                .collect()
        } else {
            HashSet::new()
        };
        drop(z);
        let stored: HashMap<_, _> = self.read_store(&wanted, log_, now).into_iter().collect();
        let mut z = zone.lock();
        // Entries a previous cycle left for staples still configured are
        // kept; those of removed ones are freed before new ones take room.
        let mut known = HashSet::new();
        for cert in &self.certs {
            if z.find(&cert.key).is_some() && z.register(&cert.key, seq).is_ok() {
                known.insert(cert.key);
            }
        }
        let freed = z.sweep(seq);
        // A new entry is made only with room for its staple too: a zone too
        // small for every staple serves those that fit, rather than filling
        // up with entries that can never hold one.
        let mut room = z.room_plan();
        let mut no_room = HashSet::new();
        for cert in &self.certs {
            if !known.contains(&cert.key) {
                let staple = cert
                    .file_staple
                    .as_ref()
                    .or_else(|| stored.get(&cert.key))
                    .map_or(STAPLE_ESTIMATE, |r| r.der.len());
                if !room.try_add(staple) {
                    no_room.insert(cert.key);
                    continue;
                }
            }
            let Ok(entry) = z.register(&cert.key, seq) else {
                no_room.insert(cert.key);
                continue;
            };
            let entry: *mut _ = entry;
            // SAFETY: the entry stays allocated while we hold the lock.
            let entry = unsafe { &mut *entry };
            match &cert.file_staple {
                Some(resp) => match z.store(entry, resp, StapleSource::File, now) {
                    Ok(()) => from_files += 1,
                    Err(ZoneFull) => {
                        no_room.insert(cert.key);
                    }
                },
                // A staple that came from a file no longer configured (or
                // no longer valid) must not outlive the configuration.
                None if entry.source == StapleSource::File => z.clear(entry),
                None => {}
            }
            // A restart: the store has what the last nginx fetched.
            if cert.plan.is_some() && entry.servable(now).is_none() {
                if let Some(resp) = stored.get(&cert.key) {
                    if z.store(entry, resp, StapleSource::Store, now).is_err() {
                        no_room.insert(cert.key);
                        continue;
                    }
                    let random = nginx_sys::ngx_random() as u32;
                    entry.next_refresh = schedule::after_success(
                        &self.settings.policy,
                        resp.this_update,
                        resp.next_update,
                        now,
                        random,
                    );
                    from_store += 1;
                }
            }
        }
        z.trim_dynamic(self.settings.dynamic_max);
        if !no_room.is_empty() {
            // Once per configuration: the workers log later failures at
            // debug.
            z.take_full_warning();
        }
        let usage = z.usage();
        drop(z);
        if !no_room.is_empty() {
            log_crit!(
                log_,
                "zone \"{name}\" ({} KB) is full: no room for {} of {} staple(s), \
                 which are not fetched or served; about {} KB needed: raise its size with \
                 \"ssl_stapling_zone\"",
                usage.size / 1024,
                no_room.len(),
                self.certs.len(),
                self.zone_bytes_needed().div_ceil(1024)
            );
        }
        let without_room = no_room.len();
        *self.no_room.borrow_mut() = no_room;
        log_notice!(
            log_,
            "module took over {} certificate(s), {} staple(s), in {} http and {} stream \
             server(s); {} staple(s) from files, {} from the store, {} stale entr(ies) freed, \
             {} in zone \"{name}\" ({} of {} KB used){}",
            self.certs.iter().map(|c| c.sha256).collect::<HashSet<_>>().len(),
            self.certs.len(),
            self.http_servers,
            self.stream_servers,
            from_files,
            from_store,
            freed,
            usage.entries,
            usage.used() / 1024,
            usage.size / 1024,
            if without_room > 0 {
                format!(", {without_room} without room")
            } else {
                String::new()
            }
        );
        Ok(())
    }

    /// About how large the zone must be for this configuration: its
    /// staples and as many certificates loaded by variables as it keeps.
    pub fn zone_bytes_needed(&self) -> usize {
        size_for(self.certs.len() + self.settings.dynamic_max)
    }

    /// Whether the zone had no room for this staple in this configuration
    /// (it is then neither fetched nor served).
    pub fn without_room(&self, key: &StapleKey) -> bool {
        self.no_room.borrow().contains(key)
    }
}

/// A store file's content, or one warning saying why it cannot be read.
fn read_logged(path: &std::path::Path, log_: *mut ngx_log_t) -> Option<Vec<u8>> {
    match crate::state::store::read_file(path) {
        Ok(d) => Some(d),
        Err(e) => {
            log_warn!(log_, "cannot read \"{}\": {e}", path.display());
            None
        }
    }
}

/// A stored response no certificate could use any more: past its
/// nextUpdate, or not an OCSP response at all.
fn useless(der: &[u8], now: i64) -> bool {
    match peek_next_update(der) {
        Ok(Some(next)) => next <= now,
        Ok(None) => false,
        Err(_) => true,
    }
}

/// A certificate's subject, one line, for logs and the status page.
pub fn subject_of(x509: &X509Ref) -> String {
    let mut parts = Vec::new();
    for e in x509.subject_name().entries() {
        let key = e.object().nid().short_name().unwrap_or("?");
        let value = e.data().to_string().unwrap_or_else(|_| "?".to_string());
        parts.push(format!("{key}={value}"));
    }
    parts.join(", ")
}

/// Where the certificate's staple is fetched from: `ssl_stapling_responder`,
/// else the OCSP URL of its AIA extension. A URL that does not parse is
/// warned about once, however many servers name it.
fn responder_url(
    responder: Option<&str>,
    x509: &X509Ref,
    name: &str,
    parsed: &mut HashMap<String, Option<ResponderUrl>>,
    log_: *mut ngx_log_t,
) -> Option<ResponderUrl> {
    let aia = || {
        x509.ocsp_responders()
            .ok()
            .and_then(|s| s.iter().next().map(|u| u.to_string()))
    };
    // Without either, nginx has warned "no OCSP responder URL".
    let text = responder.map(str::to_string).or_else(aia)?;
    if let Some(url) = parsed.get(&text) {
        return url.clone();
    }
    let url = match ResponderUrl::parse(&text) {
        Ok(url) => Some(url),
        Err(e) => {
            log!(
                NGX_LOG_WARN,
                log_,
                "\"ssl_stapling\" ignored, OCSP responder \"{text}\" for certificate \"{name}\": {e}"
            );
            None
        }
    };
    parsed.insert(text, url.clone());
    url
}
