//! The module's http and stream parts: `ssl_stapling_store` in the `http`
//! and `stream` blocks, `ssl_stapling_proxy` there and in their servers,
//! and the `ssl_stapling_status` directive (its handler is in
//! `status_location`).
//! The stream part names no `ngx_stream_*` symbol: its context struct is
//! declared here, so the library loads without the stream module.

use std::ffi::{c_char, c_void};
use std::ptr;

use nginx_sys::{
    ngx_command_t, ngx_conf_t, ngx_http_conf_ctx_t, ngx_http_module_t, ngx_int_t, ngx_module_t, ngx_str_t,
    ngx_uint_t, NGX_CONF_NOARGS, NGX_CONF_TAKE1, NGX_CONF_TAKE1234, NGX_HTTP_LOC_CONF, NGX_HTTP_MAIN_CONF,
    NGX_HTTP_MODULE, NGX_HTTP_SRV_CONF, NGX_LOG_EMERG,
};
use ngx::core::Pool;

use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};

use super::srv_conf::{ProxySetting, SrvConf};
use super::status_location::set_status;
use super::{arg, command};
use crate::base::guard::guard;
use crate::ocsp::responder::ProxyUrl;
use crate::state::store::kv::{self, RedisSetting};

/// `ssl_stapling_store` as written in one block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StoreSetting {
    #[default]
    Unset,
    Off,
    /// The directory, and whether several nginx instances share it.
    Dir(String, bool),
    /// Valkey/Redis.
    Redis(RedisSetting),
}

/// Main configuration of the http part and of the stream part.
#[derive(Default)]
pub struct BlockConf {
    pub store: StoreSetting,
}

/// A configuration of type `T` (its default: nothing set), made in the
/// pool of the configuration being parsed: the create hooks of the http
/// and stream parts (null when out of memory, as nginx expects).
unsafe extern "C" fn create_conf<T: Default>(cf: *mut ngx_conf_t) -> *mut c_void {
    guard(ptr::null_mut(), || {
        // SAFETY: nginx passes the configuration being parsed; its pool
        // lives as long as the cycle.
        unsafe { Pool::from_ngx_pool((*cf).pool) }
            .allocate(T::default())
            .cast()
    })
}

unsafe extern "C" fn merge_srv_conf(
    _cf: *mut ngx_conf_t,
    parent: *mut c_void,
    child: *mut c_void,
) -> *mut c_char {
    guard(NGX_CONF_ERROR, || {
        // SAFETY: nginx passes two SrvConf made by create_conf.
        let (parent, child) = unsafe { (&*(parent as *const SrvConf), &mut *(child as *mut SrvConf)) };
        if child.proxy == ProxySetting::Unset {
            child.proxy = parent.proxy.clone();
        }
        NGX_CONF_OK
    })
}

/// `ssl_stapling_proxy http://[user:password@]host:port | off;`
unsafe extern "C" fn set_proxy(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    guard(NGX_CONF_ERROR, || {
        // SAFETY: nginx calls a directive handler with the configuration
        // being parsed and this module's SrvConf (the directive's conf
        // offset is the server configuration).
        let (conf, value) = unsafe { (&mut *(conf as *mut SrvConf), arg(cf, 1)) };
        let Some(value) = value else {
            return NGX_CONF_ERROR;
        };
        if conf.proxy != ProxySetting::Unset {
            return c"is duplicate".as_ptr().cast_mut();
        }
        if value.as_bytes() == b"off" {
            conf.proxy = ProxySetting::Off;
            return NGX_CONF_OK;
        }
        let text = String::from_utf8_lossy(value.as_bytes());
        match ProxyUrl::parse(&text) {
            Ok(url) => {
                conf.proxy = ProxySetting::Url(url);
                NGX_CONF_OK
            }
            Err(e) => {
                // The value may hold a password: not repeated.
                ngx::ngx_conf_log_error!(
                    NGX_LOG_EMERG,
                    cf,
                    "invalid \"ssl_stapling_proxy\": {}, expected http://[user:password@]host:port",
                    e
                );
                NGX_CONF_ERROR
            }
        }
    })
}

/// `ssl_stapling_store path [shared] | redis[s]://... [prefix=P]
/// [password_file=F] [ca=F] | off;` (a relative path is under nginx's
/// prefix).
unsafe extern "C" fn set_store(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: nginx calls a directive handler with the configuration being
    // parsed and this block's BlockConf (made by create_conf).
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
    let Some(value) = (unsafe { arg(cf, 1) }) else {
        return NGX_CONF_ERROR;
    };
    let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
    if text.is_empty() {
        ngx::ngx_conf_log_error!(NGX_LOG_EMERG, cf, "empty \"ssl_stapling_store\" path");
        return NGX_CONF_ERROR;
    }
    // SAFETY: the cycle being configured has its prefix.
    let prefix = unsafe { String::from_utf8_lossy((*(*cf).cycle).prefix.as_bytes()).into_owned() };
    let absolute = |p: &str| {
        if p.starts_with('/') {
            p.to_string()
        } else {
            format!("{prefix}{p}")
        }
    };
    // SAFETY: the contract above.
    let params: Vec<&ngx_str_t> = (2..5).map_while(|i| unsafe { arg(cf, i) }).collect();
    if text.starts_with("redis://") || text.starts_with("rediss://") {
        let mut setting = RedisSetting {
            url: text,
            prefix: kv::DEFAULT_PREFIX.to_string(),
            password_file: None,
            ca_file: None,
        };
        for p in params {
            let p_text = String::from_utf8_lossy(p.as_bytes()).into_owned();
            match p_text.split_once('=') {
                Some(("prefix", v)) if !v.is_empty() => setting.prefix = v.to_string(),
                Some(("password_file", v)) if !v.is_empty() => setting.password_file = Some(absolute(v)),
                Some(("ca", v)) if !v.is_empty() => setting.ca_file = Some(absolute(v)),
                _ => {
                    ngx::ngx_conf_log_error!(
                        NGX_LOG_EMERG,
                        cf,
                        "invalid parameter \"{}\", it must be \"prefix=\", \"password_file=\" or \"ca=\" after a Redis URL",
                        p
                    );
                    return NGX_CONF_ERROR;
                }
            }
        }
        if let Err(e) = kv::parse_url(&setting.url) {
            ngx::ngx_conf_log_error!(NGX_LOG_EMERG, cf, "{}", e);
            return NGX_CONF_ERROR;
        }
        conf.store = StoreSetting::Redis(setting);
        return NGX_CONF_OK;
    }
    let shared = match params.as_slice() {
        [] => false,
        [v] if v.as_bytes() == b"shared" && text != "off" => true,
        [.., v] => {
            ngx::ngx_conf_log_error!(
                NGX_LOG_EMERG,
                cf,
                "invalid parameter \"{}\", it must be \"shared\" after a path",
                v
            );
            return NGX_CONF_ERROR;
        }
    };
    conf.store = if text == "off" {
        StoreSetting::Off
    } else {
        StoreSetting::Dir(absolute(&text), shared)
    };
    NGX_CONF_OK
}

static mut HTTP_CTX: ngx_http_module_t = ngx_http_module_t {
    preconfiguration: None,
    postconfiguration: None,
    create_main_conf: Some(create_conf::<BlockConf>),
    init_main_conf: None,
    create_srv_conf: Some(create_conf::<SrvConf>),
    merge_srv_conf: Some(merge_srv_conf),
    create_loc_conf: None,
    merge_loc_conf: None,
};

static mut HTTP_COMMANDS: [ngx_command_t; 4] = [
    ngx_command_t {
        conf: std::mem::offset_of!(ngx_http_conf_ctx_t, srv_conf),
        ..command(
            ngx::ngx_string!("ssl_stapling_proxy"),
            NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_CONF_TAKE1,
            set_proxy,
        )
    },
    command(
        ngx::ngx_string!("ssl_stapling_store"),
        NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1234,
        set_store,
    ),
    command(
        ngx::ngx_string!("ssl_stapling_status"),
        NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS | NGX_CONF_TAKE1,
        set_status,
    ),
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
const NGX_STREAM_SRV_CONF: u32 = 0x0400_0000;

static mut STREAM_CTX: StreamModuleCtx = StreamModuleCtx {
    preconfiguration: None,
    postconfiguration: None,
    create_main_conf: Some(create_conf::<BlockConf>),
    init_main_conf: None,
    create_srv_conf: Some(create_conf::<SrvConf>),
    merge_srv_conf: Some(merge_srv_conf),
};

static mut STREAM_COMMANDS: [ngx_command_t; 3] = [
    ngx_command_t {
        // ngx_stream_conf_ctx_t is { main_conf, srv_conf }, as http's starts.
        conf: std::mem::offset_of!(ngx_http_conf_ctx_t, srv_conf),
        ..command(
            ngx::ngx_string!("ssl_stapling_proxy"),
            NGX_STREAM_MAIN_CONF | NGX_STREAM_SRV_CONF | NGX_CONF_TAKE1,
            set_proxy,
        )
    },
    command(
        ngx::ngx_string!("ssl_stapling_store"),
        NGX_STREAM_MAIN_CONF | NGX_CONF_TAKE1234,
        set_store,
    ),
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
