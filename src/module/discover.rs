//! Finds every server with `ssl_stapling on` in the http and stream blocks
//! of a freshly parsed configuration, and every certificate nginx loaded
//! for it.
//!
//! The http block is read through ngx's configuration accessors
//! (`NgxHttpCoreModule`, `NgxHttpSslModule`): http and its ssl module are
//! built into every nginx this module can load in. The stream block has no
//! such accessors, and its modules are looked up by name in
//! `cycle->modules`, never by symbol, so the module loads whether or not a
//! dynamic stream module is present.

use std::ffi::{c_void, CStr};
use std::ptr::NonNull;

use nginx_sys::{
    ngx_cycle_t, ngx_http_conf_ctx_t, ngx_http_core_srv_conf_t, ngx_http_ssl_srv_conf_t, ngx_module_t,
    ngx_msec_t, ngx_resolver_t, ngx_str_t,
};
use ngx::http::{HttpModuleLocationConf, HttpModuleMainConf, HttpModuleServerConf};
use ngx::http::{NgxHttpCoreModule, NgxHttpSslModule};

use super::srv_conf::{ProxySetting, SrvConf};
use crate::ocsp::responder::ProxyUrl;
use crate::state::certificate::Protocol;
use crate::state::registry::server::StaplingServer;

fn usable_resolver(
    r: *mut ngx_resolver_t,
    timeout: ngx_msec_t,
) -> Option<(NonNull<ngx_resolver_t>, ngx_msec_t)> {
    let r = NonNull::new(r)?;
    // SAFETY: a resolver from a parsed configuration.
    let servers = unsafe { r.as_ref().connections.nelts };
    (servers > 0).then_some((r, timeout))
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
    // conf_ctx[index] of a block module holds its ctx
    // (ngx_http_cycle_get_module_main_conf).
    // SAFETY: as for `module_by_name`.
    unsafe { conf_of(cycle, block) }.map(|c| c as *mut ngx_http_conf_ctx_t)
}

/// What the cycle's `conf_ctx` holds for the module named `name` (a core
/// module's configuration, a block module's ctx), when it is not null.
/// # Safety
/// As for `module_by_name`.
pub(super) unsafe fn conf_of(cycle: *mut ngx_cycle_t, name: &CStr) -> Option<*mut c_void> {
    // SAFETY: as for `module_by_name`; conf_ctx has an entry per module.
    unsafe {
        let m = module_by_name(cycle, name)?;
        if (*cycle).conf_ctx.is_null() || m.index >= (*cycle).modules_n {
            return None;
        }
        let conf = *(*cycle).conf_ctx.add(m.index) as *mut c_void;
        (!conf.is_null()).then_some(conf)
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
/// `conf` is null or a SrvConf made by this module's create_conf.
unsafe fn proxy_of(conf: *mut c_void) -> Option<ProxyUrl> {
    // SAFETY: the contract above.
    match unsafe { (conf as *const SrvConf).as_ref() }.map(|c| &c.proxy) {
        Some(ProxySetting::Url(url)) => Some(url.clone()),
        _ => None,
    }
}

/// What the http and stream ssl modules both keep for a server.
trait SslSrvConf {
    fn server(&mut self, protocol: Protocol) -> Option<StaplingServer>;
}

macro_rules! ssl_srv_conf {
    ($ssl:ty) => {
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
                    by_variables: !self.certificate_values.is_null(),
                })
            }
        }
    };
}

ssl_srv_conf!(ngx_http_ssl_srv_conf_t);
#[cfg(ngx_stream_stapling)]
ssl_srv_conf!(nginx_sys::ngx_stream_ssl_srv_conf_t);

/// # Safety
/// As for `ssl_servers`.
unsafe fn http_servers(cycle: *mut ngx_cycle_t, own: OwnIndexes, out: &mut Vec<StaplingServer>) {
    // SAFETY: as for `ssl_servers`: the cycle's http block (if any) and
    // every configuration followed from it are parsed and alive.
    let cycle = unsafe { &*cycle };
    let Some(cmcf) = NgxHttpCoreModule::main_conf(cycle) else {
        return;
    };
    // SAFETY: the core main configuration's servers array holds its
    // servers' core configurations.
    let servers = unsafe { cmcf.servers.as_slice::<*mut ngx_http_core_srv_conf_t>() };
    for &cscf in servers {
        // SAFETY: a server of the parsed block (null-checked).
        let Some(core) = (unsafe { cscf.as_ref() }) else {
            continue;
        };
        let Some(mut server) = NgxHttpSslModule::server_conf_mut(core).and_then(|c| c.server(Protocol::Http))
        else {
            continue;
        };
        server.resolver = NgxHttpCoreModule::location_conf(core)
            .and_then(|c| usable_resolver(c.resolver, c.resolver_timeout));
        // SAFETY: `cscf` is a live server configuration.
        server.names = unsafe { http_server_names(cscf) };
        // SAFETY: this module's slot of the server's srv_conf holds its
        // SrvConf (its index is `own.http`).
        server.proxy = unsafe {
            core.ctx
                .as_ref()
                .and_then(|ctx| ctx.srv_conf.add(own.http).as_ref())
                .and_then(|&conf| proxy_of(conf))
        };
        out.push(server);
    }
}

/// # Safety
/// As for `ssl_servers`.
#[cfg(ngx_stream_stapling)]
unsafe fn stream_servers(cycle: *mut ngx_cycle_t, own: OwnIndexes, out: &mut Vec<StaplingServer>) {
    use nginx_sys::{ngx_stream_core_main_conf_t, ngx_stream_core_srv_conf_t, ngx_stream_ssl_srv_conf_t};

    // SAFETY: as for `ssl_servers`: every configuration followed is part of
    // the parsed stream block.
    // The ctx of the stream block starts { main_conf, srv_conf }, as the
    // http block's: `block_ctx` reads it as such.
    unsafe {
        let Some(ctx) = block_ctx(cycle, c"ngx_stream_module") else {
            return;
        };
        let (Some(core), Some(ssl)) = (
            module_by_name(cycle, c"ngx_stream_core_module"),
            module_by_name(cycle, c"ngx_stream_ssl_module"),
        ) else {
            return;
        };
        let Some(cmcf) =
            (*(*ctx).main_conf.add(core.ctx_index) as *const ngx_stream_core_main_conf_t).as_ref()
        else {
            return;
        };
        for &cscf in cmcf.servers.as_slice::<*mut ngx_stream_core_srv_conf_t>() {
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
