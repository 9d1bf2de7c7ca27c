//! nginx's side of the module: definitions, directives, hooks, glue.

pub mod conf_values;
mod context;
pub mod core;
pub mod discover;
pub mod http;
mod main_directives;
mod srv_conf;
mod status_location;
mod store_setup;

use std::ffi::{c_char, c_void};

use nginx_sys::{ngx_command_t, ngx_conf_t, ngx_str_t, ngx_uint_t};

/// The directive's argument `i` (0 is its name).
///
/// # Safety
/// `cf` is the configuration nginx is parsing, in a directive handler.
unsafe fn arg(cf: *mut ngx_conf_t, i: usize) -> Option<&'static ngx_str_t> {
    // SAFETY: the contract above: `args` is the directive's array of
    // strings, alive while the directive is handled.
    unsafe { (*(*cf).args).as_slice::<ngx_str_t>().get(i) }
}

/// A directive of `type_` (context and argument flags) handled by `set`;
/// its configuration is the context's first (main, or the location's).
const fn command(
    name: ngx_str_t,
    type_: u32,
    set: unsafe extern "C" fn(*mut ngx_conf_t, *mut ngx_command_t, *mut c_void) -> *mut c_char,
) -> ngx_command_t {
    ngx_command_t {
        name,
        type_: type_ as ngx_uint_t,
        set: Some(set),
        conf: 0,
        offset: 0,
        post: std::ptr::null_mut(),
    }
}
