//! The module's http and stream parts: `ssl_stapling_store` in the `http`
//! and `stream` blocks, and the `ssl_stapling_status` location handler.
//! The stream part names no `ngx_stream_*` symbol: its context struct is
//! declared here, so the library loads without the stream module.

use std::ffi::{c_char, c_void};
use std::ptr;

use nginx_sys::{
    ngx_buf_t, ngx_chain_t, ngx_command_t, ngx_conf_t, ngx_http_conf_ctx_t, ngx_http_core_loc_conf_t,
    ngx_http_module_t, ngx_http_request_t, ngx_int_t, ngx_module_t, ngx_str_t, ngx_uint_t, NGX_CONF_NOARGS,
    NGX_CONF_TAKE1, NGX_HTTP_LOC_CONF, NGX_HTTP_MAIN_CONF, NGX_HTTP_MODULE, NGX_LOG_EMERG,
};
use ngx::core::Pool;

use ngx::core::{Status, NGX_CONF_ERROR, NGX_CONF_OK};

use crate::module::guard::guard;
use crate::state::registry;
use crate::status::{collect, render};

const NGX_ERROR: ngx_int_t = Status::NGX_ERROR.0;

/// `ssl_stapling_store` as written in one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSetting {
    Unset,
    Off,
    Dir(String),
}

/// Main configuration of the http part and of the stream part.
pub struct BlockConf {
    pub store: StoreSetting,
}

unsafe extern "C" fn create_block_conf(cf: *mut ngx_conf_t) -> *mut c_void {
    guard(ptr::null_mut(), || {
        // SAFETY: nginx passes the configuration being parsed, with its pool.
        unsafe { Pool::from_ngx_pool((*cf).pool) }
            .allocate(BlockConf {
                store: StoreSetting::Unset,
            })
            .cast()
    })
}

/// The directive's argument `i` (0 is its name).
///
/// # Safety
/// `cf` is the configuration nginx is parsing, in a directive handler whose
/// argument count nginx checked to be more than `i`.
unsafe fn arg(cf: *mut ngx_conf_t, i: usize) -> &'static ngx_str_t {
    // SAFETY: the contract above.
    unsafe { &*((*(*cf).args).elts as *mut ngx_str_t).add(i) }
}

/// `ssl_stapling_store path | off;` (a relative path is under nginx's prefix).
unsafe extern "C" fn set_store(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: nginx calls a directive handler with the configuration being
    // parsed and this block's BlockConf (made by create_block_conf).
    guard(NGX_CONF_ERROR, || unsafe {
        set_store_inner(cf, &mut *(conf as *mut BlockConf))
    })
}

/// # Safety
/// As for `arg`: `cf` is parsing this one-argument directive.
unsafe fn set_store_inner(cf: *mut ngx_conf_t, conf: &mut BlockConf) -> *mut c_char {
    if conf.store != StoreSetting::Unset {
        return c"is duplicate".as_ptr().cast_mut();
    }
    // SAFETY: the contract above.
    let value = unsafe { arg(cf, 1) };
    let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
    if text.is_empty() {
        ngx::ngx_conf_log_error!(NGX_LOG_EMERG, cf, "empty \"ssl_stapling_store\" path");
        return NGX_CONF_ERROR;
    }
    conf.store = if text == "off" {
        StoreSetting::Off
    } else if text.starts_with('/') {
        StoreSetting::Dir(text)
    } else {
        // SAFETY: the cycle being configured has its prefix.
        let prefix = unsafe { String::from_utf8_lossy((*(*cf).cycle).prefix.as_bytes()).into_owned() };
        StoreSetting::Dir(format!("{prefix}{text}"))
    };
    NGX_CONF_OK
}

/// `ssl_stapling_status;`
unsafe extern "C" fn set_status(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    _conf: *mut c_void,
) -> *mut c_char {
    guard(NGX_CONF_ERROR, || {
        // SAFETY: a location directive: `cf->ctx` is the location's http
        // context, whose loc_conf holds the core module's configuration.
        unsafe {
            let ctx = (*cf).ctx as *mut ngx_http_conf_ctx_t;
            let clcf = *(*ctx).loc_conf.add(nginx_sys::ngx_http_core_module.ctx_index)
                as *mut ngx_http_core_loc_conf_t;
            (*clcf).handler = Some(status_handler);
        }
        NGX_CONF_OK
    })
}

unsafe extern "C" fn status_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx calls a content handler with a live request.
    guard(
        nginx_sys::NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t,
        || unsafe { serve_status(r) },
    )
}

fn wants_prometheus(args: &[u8], accept: Option<&[u8]>) -> bool {
    for pair in args.split(|&b| b == b'&') {
        match pair {
            b"format=prometheus" => return true,
            b"format=json" => return false,
            _ => {}
        }
    }
    accept.is_some_and(|a| {
        let a = String::from_utf8_lossy(a).to_ascii_lowercase();
        a.contains("text/plain") && !a.contains("application/json")
    })
}

/// # Safety
/// `r` is the live request nginx called the content handler with.
unsafe fn serve_status(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: the contract above, for every use of `r` in this function.
    let method = unsafe { (*r).method } as u32;
    if method & (nginx_sys::NGX_HTTP_GET | nginx_sys::NGX_HTTP_HEAD) == 0 {
        return nginx_sys::NGX_HTTP_NOT_ALLOWED as ngx_int_t;
    }
    // SAFETY: as above.
    let rc = unsafe { nginx_sys::ngx_http_discard_request_body(r) };
    if rc != 0 {
        return rc;
    }
    // SAFETY: as above.
    let req = unsafe { ngx::http::Request::from_ngx_http_request(r) };
    let accept = req
        .headers_in_iterator()
        .find(|(k, _)| k.as_bytes().eq_ignore_ascii_case(b"accept"))
        .map(|(_, v)| v.as_bytes().to_vec());
    // SAFETY: as above.
    let prometheus = wants_prometheus(unsafe { (*r).args.as_bytes() }, accept.as_deref());

    let now = nginx_sys::ngx_time();
    let page = match registry::current() {
        Some(ctx) => collect::collect(ctx, now),
        None => collect::Page {
            now,
            zone: None,
            certs: Vec::new(),
        },
    };
    let module_version = env!("CARGO_PKG_VERSION");
    let nginx_version = nginx_sys::NGINX_VERSION.to_str().unwrap_or("unknown");
    let (body, content_type): (String, &'static [u8]) = if prometheus {
        (
            render::render_prometheus(&page, module_version, nginx_version),
            b"text/plain; version=0.0.4; charset=utf-8",
        )
    } else {
        (
            render::render_json(&page, module_version, nginx_version),
            b"application/json",
        )
    };

    // SAFETY: as above; the content type is static, the buffer is made in
    // the request's pool with room for the body, which is copied into it
    // before the output filter sees it.
    unsafe {
        (*r).headers_out.status = nginx_sys::NGX_HTTP_OK as ngx_uint_t;
        (*r).headers_out.content_type_len = content_type.len();
        (*r).headers_out.content_type = ngx_str_t {
            len: content_type.len(),
            data: content_type.as_ptr().cast_mut(),
        };
        (*r).headers_out.content_length_n = body.len() as i64;
        let rc = nginx_sys::ngx_http_send_header(r);
        if rc == NGX_ERROR || rc > 0 || (*r).header_only() != 0 {
            return rc;
        }
        let b: *mut ngx_buf_t = nginx_sys::ngx_create_temp_buf((*r).pool, body.len().max(1));
        if b.is_null() {
            return NGX_ERROR;
        }
        ptr::copy_nonoverlapping(body.as_ptr(), (*b).pos, body.len());
        (*b).last = (*b).pos.add(body.len());
        (*b).set_last_buf(if (*r).main == r { 1 } else { 0 });
        (*b).set_last_in_chain(1);
        let mut out = ngx_chain_t {
            buf: b,
            next: ptr::null_mut(),
        };
        nginx_sys::ngx_http_output_filter(r, &mut out)
    }
}

static mut HTTP_CTX: ngx_http_module_t = ngx_http_module_t {
    preconfiguration: None,
    postconfiguration: None,
    create_main_conf: Some(create_block_conf),
    init_main_conf: None,
    create_srv_conf: None,
    merge_srv_conf: None,
    create_loc_conf: None,
    merge_loc_conf: None,
};

static mut HTTP_COMMANDS: [ngx_command_t; 3] = [
    ngx_command_t {
        name: ngx::ngx_string!("ssl_stapling_store"),
        type_: (NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1) as ngx_uint_t,
        set: Some(set_store),
        conf: 0, // NGX_HTTP_MAIN_CONF_OFFSET
        offset: 0,
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx::ngx_string!("ssl_stapling_status"),
        type_: (NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS) as ngx_uint_t,
        set: Some(set_status),
        conf: 0,
        offset: 0,
        post: ptr::null_mut(),
    },
    ngx_command_t::empty(),
];

#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut ngx_ssl_stapling_http_module: ngx_module_t = ngx_module_t {
    ctx: ptr::addr_of!(HTTP_CTX) as *mut c_void,
    commands: ptr::addr_of!(HTTP_COMMANDS) as *mut ngx_command_t,
    type_: NGX_HTTP_MODULE as ngx_uint_t,
    ..ngx_module_t::default()
};

/// `ngx_stream_module_t`, declared here (same layout in nginx 1.22–1.29).
#[repr(C)]
pub struct StreamModuleCtx {
    preconfiguration: Option<unsafe extern "C" fn(*mut ngx_conf_t) -> ngx_int_t>,
    postconfiguration: Option<unsafe extern "C" fn(*mut ngx_conf_t) -> ngx_int_t>,
    create_main_conf: Option<unsafe extern "C" fn(*mut ngx_conf_t) -> *mut c_void>,
    init_main_conf: Option<unsafe extern "C" fn(*mut ngx_conf_t, *mut c_void) -> *mut c_char>,
    create_srv_conf: Option<unsafe extern "C" fn(*mut ngx_conf_t) -> *mut c_void>,
    merge_srv_conf: Option<unsafe extern "C" fn(*mut ngx_conf_t, *mut c_void, *mut c_void) -> *mut c_char>,
}

/// "STRM", as ngx_stream.h.
const NGX_STREAM_MODULE: u32 = 0x4d52_5453;
const NGX_STREAM_MAIN_CONF: u32 = 0x0200_0000;

static mut STREAM_CTX: StreamModuleCtx = StreamModuleCtx {
    preconfiguration: None,
    postconfiguration: None,
    create_main_conf: Some(create_block_conf),
    init_main_conf: None,
    create_srv_conf: None,
    merge_srv_conf: None,
};

static mut STREAM_COMMANDS: [ngx_command_t; 2] = [
    ngx_command_t {
        name: ngx::ngx_string!("ssl_stapling_store"),
        type_: (NGX_STREAM_MAIN_CONF | NGX_CONF_TAKE1) as ngx_uint_t,
        set: Some(set_store),
        conf: 0, // NGX_STREAM_MAIN_CONF_OFFSET
        offset: 0,
        post: ptr::null_mut(),
    },
    ngx_command_t::empty(),
];

#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut ngx_ssl_stapling_stream_module: ngx_module_t = ngx_module_t {
    ctx: ptr::addr_of!(STREAM_CTX) as *mut c_void,
    commands: ptr::addr_of!(STREAM_COMMANDS) as *mut ngx_command_t,
    type_: NGX_STREAM_MODULE as ngx_uint_t,
    ..ngx_module_t::default()
};

#[cfg(test)]
mod tests {
    use super::wants_prometheus;

    #[test]
    fn format_choice() {
        assert!(!wants_prometheus(b"", None));
        assert!(wants_prometheus(b"format=prometheus", None));
        assert!(wants_prometheus(
            b"a=1&format=prometheus",
            Some(b"application/json")
        ));
        assert!(!wants_prometheus(b"format=json", Some(b"text/plain")));
        assert!(wants_prometheus(b"", Some(b"text/plain;version=0.0.4")));
        assert!(!wants_prometheus(b"", Some(b"application/json, text/plain, */*")));
    }
}
