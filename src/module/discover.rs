//! Finds every server with `ssl_stapling on` in the http and stream blocks
//! of a freshly parsed configuration, and every certificate nginx loaded
//! for it.
//!
//! Modules are looked up by name in `cycle->modules`, never by symbol, so
//! the module loads whether or not a dynamic stream module is present.

use std::ffi::{c_void, CStr};
use std::ptr::NonNull;

use foreign_types::ForeignTypeRef;
use nginx_sys::{
    ngx_array_t, ngx_cycle_t, ngx_http_conf_ctx_t, ngx_http_core_loc_conf_t, ngx_http_core_main_conf_t,
    ngx_http_core_srv_conf_t, ngx_http_ssl_srv_conf_t, ngx_module_t, ngx_msec_t, ngx_resolver_t, ngx_ssl_t,
    ngx_str_t,
};
use openssl::ssl::SslContextRef;
use openssl::x509::{X509Ref, X509};

use super::srv_conf::{ProxySetting, SrvConf};
use crate::ocsp::responder::ProxyUrl;
use crate::state::certificate::Protocol;

/// The stapling settings of one server, read from nginx's own ssl module
/// configuration (`ngx_http_ssl_srv_conf_t` / `ngx_stream_ssl_srv_conf_t`).
pub struct StaplingServer {
    pub protocol: Protocol,
    /// `ssl_stapling on` (servers without it matter only for must-staple
    /// certificates).
    pub stapling: bool,
    /// Its `server_name`s (http).
    pub names: Vec<String>,
    pub ssl: *mut ngx_ssl_t,
    pub verify: bool,
    pub file: Option<String>,
    pub responder: Option<String>,
    /// The server's `resolver`, if it has name servers (a resolver without
    /// any makes ngx_resolve_start return a sentinel, not a context).
    pub resolver: Option<(NonNull<ngx_resolver_t>, ngx_msec_t)>,
    /// The server's `ssl_stapling_proxy`.
    pub proxy: Option<ProxyUrl>,
}

fn usable_resolver(
    r: *mut ngx_resolver_t,
    timeout: ngx_msec_t,
) -> Option<(NonNull<ngx_resolver_t>, ngx_msec_t)> {
    let r = NonNull::new(r)?;
    // SAFETY: a resolver from a parsed configuration.
    let servers = unsafe { r.as_ref().connections.nelts };
    (servers > 0).then_some((r, timeout))
}

impl StaplingServer {
    /// The certificates nginx loaded for this server (`ngx_ssl_t.certs`),
    /// with nginx's name for each.
    #[cfg(ngx_ssl_certs_array)]
    pub fn certificates(&self) -> Vec<(*mut openssl_sys::X509, X509, String)> {
        // SAFETY: as in `ssl_ctx`: the server's ngx_ssl_t is alive, and its
        // `certs` array holds `nelts` certificate pointers.
        unsafe {
            (*self.ssl)
                .certs
                .as_slice::<*mut openssl_sys::X509>()
                .iter()
                .filter(|p| !p.is_null())
                .map(|&p| (p, X509Ref::from_ptr(p).to_owned(), certificate_name(p)))
                .collect()
        }
    }

    /// The certificates nginx loaded for this server, before nginx 1.27
    /// kept them in an array: the first in the SSL_CTX's ex_data, each next
    /// one in the previous certificate's, as nginx's stapling code walks
    /// them.
    #[cfg(not(ngx_ssl_certs_array))]
    pub fn certificates(&self) -> Vec<(*mut openssl_sys::X509, X509, String)> {
        let mut out = Vec::new();
        let ctx = self.ssl_ctx().as_ptr();
        // SAFETY: as in `ssl_ctx`; the ex_data nginx keeps on the SSL_CTX and
        // on each certificate are certificates of this configuration.
        unsafe {
            let mut p = openssl_sys::SSL_CTX_get_ex_data(ctx, nginx_sys::ngx_ssl_certificate_index)
                as *mut openssl_sys::X509;
            // A bound, in case of a cycle: no server has this many certificates.
            while !p.is_null() && out.len() < 1024 {
                out.push((p, X509Ref::from_ptr(p).to_owned(), certificate_name(p)));
                p = crate::tls::ffi::X509_get_ex_data(p, nginx_sys::ngx_ssl_next_certificate_index)
                    as *mut openssl_sys::X509;
            }
        }
        out
    }

    /// The server's SSL_CTX.
    pub fn ssl_ctx(&self) -> &SslContextRef {
        // SAFETY: `ssl_servers` makes a StaplingServer only from a live
        // ngx_ssl_t with an SSL_CTX, and the list is used (and dropped)
        // while that configuration is read, the SSL_CTX alive.
        unsafe { SslContextRef::from_ptr((*self.ssl).ctx as *mut openssl_sys::SSL_CTX) }
    }
}

fn certificate_name(cert: *mut openssl_sys::X509) -> String {
    // SAFETY: nginx stores the certificate's file name (a C string in the
    // cycle pool) at this ex_data index of every certificate it loads.
    unsafe {
        let p =
            crate::tls::ffi::X509_get_ex_data(cert, nginx_sys::ngx_ssl_certificate_name_index) as *const i8;
        if p.is_null() {
            return String::from("(unnamed)");
        }
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

fn str_of(s: &ngx_str_t) -> Option<String> {
    (s.len > 0 && !s.data.is_null()).then(|| String::from_utf8_lossy(s.as_bytes()).into_owned())
}

/// # Safety
/// `cycle` is a cycle whose configuration has been parsed.
unsafe fn module_by_name(cycle: *mut ngx_cycle_t, name: &CStr) -> Option<&'static ngx_module_t> {
    // SAFETY: the contract above: the cycle's module array has modules_n
    // entries, each a module with a C-string name.
    unsafe {
        let modules = (*cycle).modules;
        if modules.is_null() {
            return None;
        }
        for i in 0..(*cycle).modules_n {
            let m = *modules.add(i);
            if m.is_null() {
                break;
            }
            if !(*m).name.is_null() && CStr::from_ptr((*m).name) == name {
                return Some(&*m);
            }
        }
        None
    }
}

/// The main configuration of `block` (ngx_http_module / ngx_stream_module),
/// as the ctx struct both share: { main_conf, srv_conf, ... }.
/// # Safety
/// As for `module_by_name`.
pub(crate) unsafe fn block_ctx(cycle: *mut ngx_cycle_t, block: &CStr) -> Option<*mut ngx_http_conf_ctx_t> {
    // SAFETY: as for `module_by_name`; conf_ctx has an entry per module.
    unsafe {
        let m = module_by_name(cycle, block)?;
        if (*cycle).conf_ctx.is_null() || m.index >= (*cycle).modules_n {
            return None;
        }
        // conf_ctx[index] of a block module holds its ctx
        // (ngx_http_cycle_get_module_main_conf).
        let ctx = *(*cycle).conf_ctx.add(m.index) as *mut ngx_http_conf_ctx_t;
        (!ctx.is_null()).then_some(ctx)
    }
}

/// This module's http and stream parts' `ctx_index`: where their server
/// configurations are in a server's `srv_conf`.
#[derive(Clone, Copy)]
pub struct OwnIndexes {
    pub http: usize,
    /// Read only where nginx has stream stapling.
    #[cfg_attr(not(ngx_stream_stapling), allow(dead_code))]
    pub stream: usize,
}

/// Every http and stream server with an SSL context, stapling on or off.
///
/// # Safety
/// `cycle` is a cycle whose configuration has been parsed and not freed;
/// `own` are this module's indexes in it.
pub unsafe fn ssl_servers(cycle: *mut ngx_cycle_t, own: OwnIndexes) -> Vec<StaplingServer> {
    // SAFETY: the contract above.
    unsafe {
        let mut out = Vec::new();
        http_servers(cycle, own, &mut out);
        stream_servers(cycle, own, &mut out);
        out
    }
}

/// # Safety
/// `cscf` is a live http server configuration.
unsafe fn http_server_names(cscf: *mut ngx_http_core_srv_conf_t) -> Vec<String> {
    // SAFETY: the contract above: server_names is an array of names.
    unsafe {
        (*cscf)
            .server_names
            .as_slice::<nginx_sys::ngx_http_server_name_t>()
    }
    .iter()
    .filter_map(|n| str_of(&n.name))
    .collect()
}

/// The `ssl_stapling_proxy` of a server, from this module's server
/// configuration (null in a block this module did not configure).
///
/// # Safety
/// `conf` is null or a SrvConf made by this module's create_srv_conf.
unsafe fn proxy_of(conf: *mut c_void) -> Option<ProxyUrl> {
    // SAFETY: the contract above.
    match unsafe { (conf as *const SrvConf).as_ref() }.map(|c| &c.proxy) {
        Some(ProxySetting::Url(url)) => Some(url.clone()),
        _ => None,
    }
}

/// A block's main configuration of its core module: its servers.
trait CoreMainConf {
    fn servers(&self) -> &ngx_array_t;
}

/// What the http and stream ssl modules both keep for a server.
trait SslSrvConf {
    fn server(&mut self, protocol: Protocol) -> Option<StaplingServer>;
}

macro_rules! block_confs {
    ($main:ty, $ssl:ty) => {
        impl CoreMainConf for $main {
            fn servers(&self) -> &ngx_array_t {
                &self.servers
            }
        }

        impl SslSrvConf for $ssl {
            /// The server's stapling settings (no names, no resolver yet);
            /// none without an SSL context.
            fn server(&mut self, protocol: Protocol) -> Option<StaplingServer> {
                (!self.ssl.ctx.is_null()).then(|| StaplingServer {
                    protocol,
                    stapling: self.stapling > 0,
                    names: Vec::new(),
                    ssl: &mut self.ssl,
                    verify: self.stapling_verify > 0,
                    file: str_of(&self.stapling_file),
                    responder: str_of(&self.stapling_responder),
                    resolver: None,
                    proxy: None,
                })
            }
        }
    };
}

block_confs!(ngx_http_core_main_conf_t, ngx_http_ssl_srv_conf_t);
#[cfg(ngx_stream_stapling)]
block_confs!(
    nginx_sys::ngx_stream_core_main_conf_t,
    nginx_sys::ngx_stream_ssl_srv_conf_t
);

/// A block's servers (core server configurations of type `S`) with its
/// core and ssl modules; none when the block or a module is missing.
///
/// # Safety
/// As for `ssl_servers`; `M` and `S` are the block's core main and server
/// configuration types. The ctx of both blocks starts { main_conf,
/// srv_conf }, which is all that is read of it.
unsafe fn block_servers<M: CoreMainConf + 'static, S: 'static>(
    cycle: *mut ngx_cycle_t,
    names: [&CStr; 3],
) -> Option<(&'static ngx_module_t, &'static ngx_module_t, &'static [*mut S])> {
    let [block, core, ssl] = names;
    // SAFETY: the contract above: the block's main configuration of its
    // core module is an `M`, whose servers array holds `*mut S`.
    unsafe {
        let ctx = block_ctx(cycle, block)?;
        let core = module_by_name(cycle, core)?;
        let ssl = module_by_name(cycle, ssl)?;
        let cmcf = (*(*ctx).main_conf.add(core.ctx_index) as *const M).as_ref()?;
        Some((core, ssl, cmcf.servers().as_slice::<*mut S>()))
    }
}

/// # Safety
/// As for `ssl_servers`.
unsafe fn http_servers(cycle: *mut ngx_cycle_t, own: OwnIndexes, out: &mut Vec<StaplingServer>) {
    // SAFETY: as for `ssl_servers`: every configuration followed is part of
    // the parsed http block.
    unsafe {
        let Some((core, ssl, servers)) = block_servers::<ngx_http_core_main_conf_t, ngx_http_core_srv_conf_t>(
            cycle,
            [
                c"ngx_http_module",
                c"ngx_http_core_module",
                c"ngx_http_ssl_module",
            ],
        ) else {
            return;
        };
        for &cscf in servers {
            let Some(ctx) = cscf.as_ref().and_then(|c| c.ctx.as_ref()) else {
                continue;
            };
            let sscf = *ctx.srv_conf.add(ssl.ctx_index) as *mut ngx_http_ssl_srv_conf_t;
            let Some(mut server) = sscf.as_mut().and_then(|c| c.server(Protocol::Http)) else {
                continue;
            };
            let clcf = *ctx.loc_conf.add(core.ctx_index) as *const ngx_http_core_loc_conf_t;
            server.resolver = clcf
                .as_ref()
                .and_then(|c| usable_resolver(c.resolver, c.resolver_timeout));
            server.names = http_server_names(cscf);
            server.proxy = proxy_of(*ctx.srv_conf.add(own.http));
            out.push(server);
        }
    }
}

/// # Safety
/// As for `ssl_servers`.
#[cfg(ngx_stream_stapling)]
unsafe fn stream_servers(cycle: *mut ngx_cycle_t, own: OwnIndexes, out: &mut Vec<StaplingServer>) {
    use nginx_sys::{ngx_stream_core_main_conf_t, ngx_stream_core_srv_conf_t, ngx_stream_ssl_srv_conf_t};

    // SAFETY: as for `ssl_servers`: every configuration followed is part of
    // the parsed stream block.
    unsafe {
        let Some((_, ssl, servers)) = block_servers::<ngx_stream_core_main_conf_t, ngx_stream_core_srv_conf_t>(
            cycle,
            [
                c"ngx_stream_module",
                c"ngx_stream_core_module",
                c"ngx_stream_ssl_module",
            ],
        ) else {
            return;
        };
        for &cscf in servers {
            let Some(c) = cscf.as_ref() else { continue };
            let Some(ctx) = c.ctx.as_ref() else { continue };
            let sscf = *ctx.srv_conf.add(ssl.ctx_index) as *mut ngx_stream_ssl_srv_conf_t;
            let Some(mut server) = sscf.as_mut().and_then(|s| s.server(Protocol::Stream)) else {
                continue;
            };
            server.resolver = usable_resolver(c.resolver, c.resolver_timeout);
            server.proxy = proxy_of(*ctx.srv_conf.add(own.stream));
            out.push(server);
        }
    }
}

#[cfg(not(ngx_stream_stapling))]
unsafe fn stream_servers(_cycle: *mut ngx_cycle_t, _own: OwnIndexes, _out: &mut Vec<StaplingServer>) {}
