//! The configuration's certificates: one staple per certificate and
//! server settings, found once, in the master.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};

use foreign_types::ForeignTypeRef;
use nginx_sys::NGX_LOG_WARN;
use openssl::x509::X509Ref;

use super::{size_problem, ServerInfo, Settings, StaplingContext};
use crate::base::ffi;
use crate::base::log::{log, log_warn, Log};
use crate::ocsp::responder::ResponderUrl;
use crate::ocsp::response::{
    check_response, CertificateStatusId, CheckedResponse, NoSignatureCheck, TimeRules,
};
use crate::state::certificate::FetchPlan;
use crate::state::certificate::{
    is_must_staple, Certificate, Protocol, ServerChecks, StapleKey, StapleSettings,
};
use crate::state::registry::server::StaplingServer;
use crate::state::store::StapleStore;
use crate::state::wakeup::Wakeup;
use std::sync::Arc;

/// What `load_staple_file` found wrong with a `ssl_stapling_file`.
#[derive(Debug, thiserror::Error)]
enum FileError {
    #[error("cannot read it: {0}")]
    Read(#[from] std::io::Error),
    #[error("{0}")]
    Check(#[from] crate::ocsp::response::OcspError),
    #[error("{0}")]
    TooLarge(#[from] super::TooLarge),
}

/// A `ssl_stapling_file` checked as nginx does (no signature check), with
/// the configured skew; `ssl_stapling_max_age` is for responders, not for
/// a file the operator chose.
fn load_staple_file(
    path: &str,
    id: &CertificateStatusId,
    now: i64,
    settings: &Settings,
) -> Result<CheckedResponse, FileError> {
    let der = std::fs::read(path)?;
    if let Some(why) = size_problem(der.len(), settings.max_staple_bytes) {
        return Err(FileError::TooLarge(why));
    }
    let rules = TimeRules {
        max_age: None,
        ..settings.time
    };
    Ok(check_response(&der, id, &NoSignatureCheck, now, &rules)?)
}

impl StaplingContext {
    /// Registers every certificate of `servers`, checking staple files.
    ///
    /// # Safety
    /// The servers' SSL contexts must be alive; `log` must be valid.
    pub unsafe fn build(
        settings: Settings,
        servers: &[StaplingServer],
        store: Option<Arc<dyn StapleStore>>,
        log_: Log,
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
            zone_need: Cell::new(Default::default()),
            wakeup: Wakeup::default(),
            fetch_task: RefCell::new(None),
            http_servers: 0,
            stream_servers: 0,
            by_variables: servers.iter().any(|s| s.stapling && s.by_variables),
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
                    proxy: server.proxy.clone(),
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
                let responders = match server.file {
                    Some(_) => Vec::new(),
                    // nginx has warned: "issuer certificate not found"
                    None if !status_id.has_issuer() => Vec::new(),
                    None => responder_urls(server.responder.as_deref(), &x509, &name, &mut urls, log_),
                };
                // One URL: the text releases before several URLs used, so
                // that their store files keep their names.
                let url_text = responders
                    .iter()
                    .map(|u| u.to_string())
                    .collect::<Vec<_>>()
                    .join(" ");
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
                        match load_staple_file(path, &status_id, now, &ctx.settings) {
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
                let plan = (!responders.is_empty()).then_some(FetchPlan {
                    urls: responders,
                    resolver: server.resolver,
                    proxy: server.proxy.clone(),
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
/// else every OCSP URL of its AIA extension, in order (nginx uses only the
/// first; the others are tried when it fails). A URL that does not parse
/// is warned about once, however many servers name it, and left out.
pub(super) fn responder_urls(
    responder: Option<&str>,
    x509: &X509Ref,
    name: &str,
    parsed: &mut HashMap<String, Option<ResponderUrl>>,
    log_: Log,
) -> Vec<ResponderUrl> {
    // Without either, nginx has warned "no OCSP responder URL".
    let texts: Vec<String> = match responder {
        Some(r) => vec![r.to_string()],
        None => x509
            .ocsp_responders()
            .map(|s| s.iter().map(|u| u.to_string()).collect())
            .unwrap_or_default(),
    };
    let mut urls = Vec::new();
    for text in texts {
        let url = parsed
            .entry(text.clone())
            .or_insert_with(|| match ResponderUrl::parse(&text) {
                Ok(url) => Some(url),
                Err(e) => {
                    log!(
                        NGX_LOG_WARN,
                        log_,
                        "\"ssl_stapling\" ignored, OCSP responder \"{text}\" for certificate \"{name}\": {e}"
                    );
                    None
                }
            });
        if let Some(url) = url {
            if !urls.contains(url) {
                urls.push(url.clone());
            }
        }
    }
    urls
}
