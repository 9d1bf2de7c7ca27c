//! The one way to a cycle's context: this module's main configuration in
//! the cycle's `conf_ctx` holds it (in the cycle's pool, dropped with it).
//! The core module is found by its name, as `discover` finds nginx's.

use nginx_sys::ngx_cycle_t;

use super::discover::conf_of;
use super::main_directives::MainConf;
use crate::state::registry::StaplingContext;

/// The context of `cycle`'s configuration; None when nothing staples.
///
/// # Safety
/// `cycle` is null or a cycle whose configuration has been parsed, alive
/// while the returned reference is used.
pub(super) unsafe fn context_of(cycle: *mut ngx_cycle_t) -> Option<&'static StaplingContext> {
    // SAFETY: the contract above: the core module's slot in conf_ctx holds
    // the MainConf its create_conf made, whose ctx is null or the context.
    unsafe {
        if cycle.is_null() {
            return None;
        }
        let conf = conf_of(cycle, c"ngx_ssl_stapling_module")? as *const MainConf;
        if (*conf).ctx.is_null() {
            return None;
        }
        Some(&*(*conf).ctx)
    }
}

/// This process' context (the status page): its running cycle's.
pub(super) fn current_context() -> Option<&'static StaplingContext> {
    // SAFETY: ngx_cycle is the process' running cycle, set by nginx before
    // any request is handled and alive while it is.
    unsafe { context_of(nginx_sys::ngx_cycle) }
}
