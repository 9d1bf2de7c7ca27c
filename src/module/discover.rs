//! Finds every server with `ssl_stapling on` in the http and stream blocks
//! of a freshly parsed configuration, and every certificate nginx loaded
//! for it.
//!
//! Modules are looked up by name in `cycle->modules`, never by symbol, so
//! the module loads whether or not a dynamic stream module is present.

use std::ffi::{c_void, CStr};
use std::ptr::NonNull;

use nginx_sys::{
    ngx_array_t, ngx_cycle_t, ngx_http_conf_ctx_t, ngx_http_core_loc_conf_t, ngx_http_core_main_conf_t,
    ngx_http_core_srv_conf_t, ngx_http_ssl_srv_conf_t, ngx_module_t, ngx_msec_t, ngx_resolver_t, ngx_str_t,
};

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
