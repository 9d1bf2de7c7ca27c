//! The core module: its definition and directives (the main-context
//! ones), the configuration-time hooks that take the servers over, the
//! zone's init and the worker's start and exit.

use std::ffi::{c_char, c_void};
use std::ptr;

use nginx_sys::{
    ngx_command_t, ngx_conf_t, ngx_core_module_t, ngx_cycle_t, ngx_int_t, ngx_module_t, ngx_msec_t,
    ngx_parse_size, ngx_parse_time, ngx_shared_memory_add, ngx_shm_zone_t, ngx_str_t, ngx_uint_t,
    NGX_CONF_TAKE1, NGX_CORE_MODULE, NGX_DIRECT_CONF, NGX_LOG_EMERG, NGX_LOG_ERR, NGX_LOG_WARN,
    NGX_MAIN_CONF, NGX_PROCESS_SIGNALLER,
};
use ngx::core::{Pool, Status, NGX_CONF_ERROR, NGX_CONF_OK};

use super::conf_values;
use super::discover;
use super::guard::guard;
use super::http::{ngx_ssl_stapling_http_module, ngx_ssl_stapling_stream_module, BlockConf, StoreSetting};
use super::log::{log, log_crit};
use crate::fetch::worker;
use crate::ocsp::responder;
use crate::ocsp::schedule::Refresh;
use crate::state::registry::{self, Settings, StaplingContext};
use crate::state::{store, zone};
use crate::tls::callback;

const NGX_OK: ngx_int_t = Status::NGX_OK.0;
const NGX_ERROR: ngx_int_t = Status::NGX_ERROR.0;

const DEFAULT_ZONE_NAME: &str = "ssl_stapling";
/// The smallest zone made without "ssl_stapling_zone".
const DEFAULT_ZONE_SIZE: usize = 1024 * 1024;
/// nginx refuses slab zones under 8 pages.
const MIN_ZONE_SIZE: usize = 32 * 1024;

/// The module's main configuration.
struct MainConf {
    zone_name: Option<Vec<u8>>,
    zone_size: usize,
    settings: Settings,
    /// The cycle's context, for the workers (null when nothing staples).
    ctx: *mut StaplingContext,
    /// The directives already given (their command's address): a second
    /// one is "is duplicate", as nginx says for its own.
    seen: Vec<usize>,
}

/// The `set` handler nginx calls for one of our main-context directives:
/// refuses a duplicate, then runs `set`, turning a panic (a bug) into an
/// error instead of an unwinding into nginx.
macro_rules! main_setter {
    ($name:ident, $set:ident) => {
        unsafe extern "C" fn $name(
            cf: *mut ngx_conf_t,
            cmd: *mut ngx_command_t,
            conf: *mut c_void,
        ) -> *mut c_char {
            guard(NGX_CONF_ERROR, || {
                // SAFETY: nginx calls a directive handler with the
                // configuration being parsed and this module's MainConf
                // (made by create_conf); every main directive takes one
                // argument, which nginx counted.
                let (conf, value) = unsafe { (&mut *(conf as *mut MainConf), arg(cf, 1)) };
                if conf.seen.contains(&(cmd as usize)) {
                    return c"is duplicate".as_ptr().cast_mut();
                }
                conf.seen.push(cmd as usize);
                // Test builds: a value that makes the handler panic, to show
                // that nginx gets an error, not an abort.
                #[cfg(feature = "test-hooks")]
                if value.as_bytes() == b"test-hooks-panic" {
                    panic!("test-hooks: a panic in a directive handler");
                }
                $set(cf, value, conf)
            })
        }
    };
}

main_setter!(cmd_zone, set_zone);
main_setter!(cmd_fetch_timeout, set_fetch_timeout);
main_setter!(cmd_refresh, set_refresh);
main_setter!(cmd_fetch_concurrency, set_fetch_concurrency);
main_setter!(cmd_dynamic_max, set_dynamic_max);
main_setter!(cmd_serve_revoked, set_serve_revoked);
main_setter!(cmd_max_size, set_max_size);

/// The zone's name must outlive the cycle's shm list: keep it in the pool.
struct ZoneName(Vec<u8>);

unsafe extern "C" fn create_conf(cycle: *mut ngx_cycle_t) -> *mut c_void {
    guard(ptr::null_mut(), || {
        // SAFETY: nginx passes the cycle being configured, with its pool.
        let pool = unsafe { Pool::from_ngx_pool((*cycle).pool) };
        pool.allocate(MainConf {
            zone_name: None,
            zone_size: DEFAULT_ZONE_SIZE,
            settings: Settings::default(),
            ctx: ptr::null_mut(),
            seen: Vec::new(),
        })
        .cast()
    })
}

/// `ssl_stapling_zone name:size;`
fn set_zone(cf: *mut ngx_conf_t, value: &ngx_str_t, conf: &mut MainConf) -> *mut c_char {
    let Some((name, size)) = conf_values::zone_name_and_size(value.as_bytes()) else {
        ngx::ngx_conf_log_error!(
            NGX_LOG_EMERG,
            cf,
            "invalid zone \"{}\", expected name:size",
            value
        );
        return NGX_CONF_ERROR;
    };
    let mut size_str = ngx_str_t {
        len: size.len(),
        data: size.as_ptr().cast_mut(),
    };
    // SAFETY: parses the string it is given (a copy pointing into `value`).
    let size = unsafe { ngx_parse_size(&mut size_str) };
    if size < 0 {
        ngx::ngx_conf_log_error!(NGX_LOG_EMERG, cf, "invalid zone \"{}\"", value);
        return NGX_CONF_ERROR;
    }
    let size = size as usize;
    if size < MIN_ZONE_SIZE {
        ngx::ngx_conf_log_error!(
            NGX_LOG_EMERG,
            cf,
            "zone \"{}\" is too small, the minimum is 32k",
            value
        );
        return NGX_CONF_ERROR;
    }
    conf.zone_name = Some(name.to_vec());
    conf.zone_size = size;
    NGX_CONF_OK
}

/// Runs once the whole configuration is parsed: every http and stream
/// server is merged, its SSL_CTX built and its certificates loaded.
unsafe extern "C" fn init_conf(cycle: *mut ngx_cycle_t, conf: *mut c_void) -> *mut c_char {
    // SAFETY: nginx passes the cycle it has just configured and this
    // module's MainConf.
    guard(NGX_CONF_ERROR, || unsafe { init_conf_inner(cycle, conf) })
}

/// # Safety
/// `cycle` is the cycle whose configuration was just parsed (its servers'
/// SSL contexts and certificates loaded), `conf` this module's MainConf.
unsafe fn init_conf_inner(cycle: *mut ngx_cycle_t, conf: *mut c_void) -> *mut c_char {
    // SAFETY: the contract above; `ngx_process` is nginx's global, read in
    // the single-threaded master.
    let (conf, process, log_) = unsafe {
        (
            &mut *(conf as *mut MainConf),
            nginx_sys::ngx_process,
            (*cycle).log,
        )
    };
    // `nginx -s reload` parses the configuration too; it must not act.
    if process == NGX_PROCESS_SIGNALLER as ngx_uint_t {
        return NGX_CONF_OK;
    }
    // SAFETY: the contract above.
    let servers = unsafe { discover::ssl_servers(cycle) };
    if !servers.iter().any(|s| s.stapling) {
        // Nothing to take over; only must-staple warnings to give.
        // SAFETY: the servers' SSL contexts are the live cycle's.
        drop(unsafe {
            StaplingContext::build(conf.settings, &servers, None, log_, nginx_sys::ngx_time(), false)
        });
        return NGX_CONF_OK;
    }
    // SAFETY: the contract above.
    let store = match unsafe { store_of(cycle) } {
        Ok(s) => s,
        Err(msg) => {
            log!(NGX_LOG_EMERG, log_, "{msg}");
            return NGX_CONF_ERROR;
        }
    };

    // SAFETY: the contract above: the cycle's pool, and the servers' SSL
    // contexts are the live cycle's.
    let (pool, built) = unsafe {
        (
            Pool::from_ngx_pool((*cycle).pool),
            StaplingContext::build(conf.settings, &servers, store, log_, nginx_sys::ngx_time(), true),
        )
    };
    let ctx: *mut StaplingContext = pool.allocate(built);
    if ctx.is_null() {
        return NGX_CONF_ERROR;
    }
    conf.ctx = ctx;
    // SAFETY: just allocated and initialised; the pool keeps it as long as
    // the cycle.
    let ctx_ref: &StaplingContext = unsafe { &*ctx };

    let name: *mut ZoneName = pool.allocate(ZoneName(
        conf.zone_name
            .clone()
            .unwrap_or_else(|| DEFAULT_ZONE_NAME.as_bytes().to_vec()),
    ));
    if name.is_null() {
        return NGX_CONF_ERROR;
    }
    // SAFETY: just allocated in the cycle's pool, which keeps it (and the
    // bytes the zone's name points at) as long as the cycle.
    let name: &mut ZoneName = unsafe { &mut *name };
    let mut zone_name = ngx_str_t {
        len: name.0.len(),
        data: name.0.as_mut_ptr(),
    };
    // ngx_shared_memory_add reads only cf->cycle (and cf->log for errors).
    // SAFETY: all zeroes is the unset state of this plain C struct.
    let mut cf: ngx_conf_t = unsafe { std::mem::zeroed() };
    cf.cycle = cycle;
    // SAFETY: the contract above.
    cf.pool = unsafe { (*cycle).pool };
    cf.log = log_;
    // Without "ssl_stapling_zone", the zone is sized for the staples the
    // configuration needs (and certificates loaded by variables), in
    // powers of two: a reload that adds a few keeps the same zone.
    let needed = ctx_ref.zone_bytes_needed();
    let size = if conf.zone_name.is_some() {
        if conf.zone_size < needed {
            log!(
                NGX_LOG_WARN,
                log_,
                "\"ssl_stapling_zone\" \"{}:{}k\" is too small for {} staple(s) and {} certificate(s) \
                 loaded by variables: about {} KB needed",
                String::from_utf8_lossy(&name.0),
                conf.zone_size / 1024,
                ctx_ref.certs.len(),
                conf.settings.dynamic_max,
                needed.div_ceil(1024)
            );
        }
        conf.zone_size
    } else {
        needed.next_power_of_two().max(DEFAULT_ZONE_SIZE)
    };
    // SAFETY: `cf` has what the call reads; the name lives in the pool.
    let shm = unsafe {
        ngx_shared_memory_add(
            &mut cf,
            &mut zone_name,
            size,
            ptr::addr_of_mut!(ngx_ssl_stapling_module).cast(),
        )
    };
    if shm.is_null() {
        return NGX_CONF_ERROR;
    }
    // SAFETY: a zone entry nginx just made for us; the context it points
    // at lives as long as the cycle, as do the SSL contexts.
    unsafe {
        (*shm).init = Some(init_zone);
        (*shm).data = ctx.cast();
        callback::install(ctx, &servers);
    }
    NGX_CONF_OK
}

/// The store `ssl_stapling_store` names in the http and stream blocks
/// (the same one, or only one of them), prepared for the workers: created
/// if missing, checked writable by the worker user. A store the workers
/// cannot write is one error now, and staples are then only read from it.
///
/// # Safety
/// `cycle`'s configuration has been parsed.
unsafe fn store_of(cycle: *mut ngx_cycle_t) -> Result<Option<store::Store>, String> {
    let block = |name: &std::ffi::CStr, index: ngx_uint_t| -> StoreSetting {
        // SAFETY: the contract above: a block's main_conf array holds each
        // of its modules' main configuration, ours a BlockConf.
        unsafe {
            match discover::block_ctx(cycle, name) {
                Some(ctx) if !(*ctx).main_conf.is_null() => {
                    let conf = *(*ctx).main_conf.add(index) as *const BlockConf;
                    if conf.is_null() {
                        StoreSetting::Unset
                    } else {
                        (*conf).store.clone()
                    }
                }
                _ => StoreSetting::Unset,
            }
        }
    };
    // SAFETY: the module statics are read once nginx has set their indexes.
    let (http_index, stream_index) = unsafe {
        (
            ngx_ssl_stapling_http_module.ctx_index,
            ngx_ssl_stapling_stream_module.ctx_index,
        )
    };
    let http = block(c"ngx_http_module", http_index);
    let stream = block(c"ngx_stream_module", stream_index);
    let dir = match (http, stream) {
        (StoreSetting::Dir(a), StoreSetting::Dir(b)) if a != b => {
            return Err(format!(
                "\"ssl_stapling_store\" is \"{a}\" in http and \"{b}\" in stream: \
                 there is one store, name the same directory or only one"
            ))
        }
        (StoreSetting::Dir(a), _) | (_, StoreSetting::Dir(a)) => a,
        _ => return Ok(None),
    };
    let path = std::path::PathBuf::from(&dir);
    // SAFETY: nginx's globals and the cycle, read in the single-threaded
    // master.
    let (test_config, log_) = unsafe { (nginx_sys::ngx_test_config, (*cycle).log) };
    let writable = if test_config != 0 {
        true
    } else {
        // SAFETY: the contract above.
        match store::prepare(&path, unsafe { worker_identity(cycle) }) {
            Ok(()) => true,
            Err(e) => {
                log!(
                    NGX_LOG_ERR,
                    log_,
                    "ssl_stapling_store \"{dir}\": {e}; staples are not written to it, \
                     so they are not kept across restarts"
                );
                false
            }
        }
    };
    Ok(Some(store::Store { dir: path, writable }))
}

/// The user and group the workers will run as, when the master is root.
///
/// # Safety
/// `cycle`'s configuration has been parsed.
unsafe fn worker_identity(cycle: *mut ngx_cycle_t) -> Option<(libc::uid_t, libc::gid_t)> {
    // SAFETY: a plain system call.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    // SAFETY: the contract above: the core module's slot holds its
    // ngx_core_conf_t.
    unsafe {
        let ccf =
            *(*cycle).conf_ctx.add(nginx_sys::ngx_core_module.index) as *const nginx_sys::ngx_core_conf_t;
        if ccf.is_null() || (*ccf).user == libc::uid_t::MAX {
            return None;
        }
        Some(((*ccf).user, (*ccf).group))
    }
}

/// Zone init, in the master after every (re)configuration, before workers
/// start: the staples of this configuration go in before anyone asks.
unsafe extern "C" fn init_zone(shm: *mut ngx_shm_zone_t, _odata: *mut c_void) -> ngx_int_t {
    // SAFETY: nginx passes our zone, whose data is the context
    // init_conf_inner put there (in the cycle's pool, alive).
    guard(NGX_ERROR, || unsafe { init_zone_inner(shm) })
}

/// # Safety
/// `shm` is this module's zone, mapped, its data the cycle's context.
unsafe fn init_zone_inner(shm: *mut ngx_shm_zone_t) -> ngx_int_t {
    // SAFETY: the contract above.
    let (ctx, log_, addr, name) = unsafe {
        let ctx = &*((*shm).data as *const StaplingContext);
        let name = String::from_utf8_lossy((*shm).shm.name.as_bytes()).into_owned();
        (ctx, (*shm).shm.log, (*shm).shm.addr, name)
    };
    // SAFETY: the contract above: the zone's mapped memory.
    let Some(zone) = (unsafe { zone::Zone::from_addr(addr) }) else {
        return NGX_ERROR;
    };
    match ctx.fill_zone(zone, &name, log_, nginx_sys::ngx_time()) {
        Ok(()) => NGX_OK,
        Err(e) => {
            log_crit!(
                log_,
                "{e} (zone \"{name}\"); raise its size with \"ssl_stapling_zone\""
            );
            NGX_OK
        }
    }
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

/// `ssl_stapling_fetch_timeout time;`: one deadline for connecting to the
/// responder, sending the request and reading the response.
fn set_fetch_timeout(cf: *mut ngx_conf_t, value: &ngx_str_t, conf: &mut MainConf) -> *mut c_char {
    let mut v = *value;
    // SAFETY: parses the string it is given.
    let ms = unsafe { ngx_parse_time(&mut v, 0) };
    if ms <= 0 {
        ngx::ngx_conf_log_error!(NGX_LOG_EMERG, cf, "invalid value \"{}\"", value);
        return NGX_CONF_ERROR;
    }
    conf.settings.fetch_timeout_ms = ms as ngx_msec_t;
    NGX_CONF_OK
}

/// `ssl_stapling_refresh fraction | time;`: "0.5" or "50%" of the
/// response's validity, or a fixed interval such as "1h".
fn set_refresh(cf: *mut ngx_conf_t, value: &ngx_str_t, conf: &mut MainConf) -> *mut c_char {
    let refresh = match conf_values::refresh_value(value.as_bytes()) {
        conf_values::RefreshValue::Fraction(f) => Refresh::Fraction(f),
        conf_values::RefreshValue::BadFraction => {
            ngx::ngx_conf_log_error!(
                NGX_LOG_EMERG,
                cf,
                "fraction \"{}\" must be between 0 and 1",
                value
            );
            return NGX_CONF_ERROR;
        }
        conf_values::RefreshValue::Time => {
            let mut v = *value;
            // SAFETY: parses the string it is given.
            let secs = unsafe { ngx_parse_time(&mut v, 1) };
            if secs <= 0 {
                ngx::ngx_conf_log_error!(NGX_LOG_EMERG, cf, "invalid value \"{}\"", value);
                return NGX_CONF_ERROR;
            }
            Refresh::Interval(secs as i64)
        }
    };
    conf.settings.policy.refresh = refresh;
    NGX_CONF_OK
}

/// The directive's argument as a count within `range`, or `[emerg]`.
fn count_arg(
    cf: *mut ngx_conf_t,
    value: &ngx_str_t,
    range: std::ops::RangeInclusive<usize>,
) -> Option<usize> {
    let n = conf_values::count(value.as_bytes(), range.clone());
    if n.is_none() {
        ngx::ngx_conf_log_error!(
            NGX_LOG_EMERG,
            cf,
            "invalid value \"{}\", it must be {}..{}",
            value,
            range.start(),
            range.end()
        );
    }
    n
}

/// `ssl_stapling_fetch_concurrency number;`: fetches each worker runs at
/// the same time (the responder sees at most this times the workers).
fn set_fetch_concurrency(cf: *mut ngx_conf_t, value: &ngx_str_t, conf: &mut MainConf) -> *mut c_char {
    match count_arg(cf, value, 1..=1024) {
        Some(n) => {
            conf.settings.fetch_concurrency = n;
            NGX_CONF_OK
        }
        None => NGX_CONF_ERROR,
    }
}

/// `ssl_stapling_dynamic_max number;`: certificates loaded by variables
/// kept in the zone (least recently used evicted).
fn set_dynamic_max(cf: *mut ngx_conf_t, value: &ngx_str_t, conf: &mut MainConf) -> *mut c_char {
    match count_arg(cf, value, 1..=1_000_000) {
        Some(n) => {
            conf.settings.dynamic_max = n;
            NGX_CONF_OK
        }
        None => NGX_CONF_ERROR,
    }
}

/// `ssl_stapling_max_size size;`: the largest OCSP response stapled
/// (16k by default, as nginx's own code; at most what is read, 64k). Over
/// 16k is a warning: TLS 1.2 OpenSSL clients refuse such a staple.
fn set_max_size(cf: *mut ngx_conf_t, value: &ngx_str_t, conf: &mut MainConf) -> *mut c_char {
    let mut v = *value;
    // SAFETY: parses the string it is given.
    let size = unsafe { ngx_parse_size(&mut v) };
    if size < 1024 || size as usize > responder::MAX_BODY {
        ngx::ngx_conf_log_error!(
            NGX_LOG_EMERG,
            cf,
            "invalid value \"{}\", it must be 1k..64k",
            value
        );
        return NGX_CONF_ERROR;
    }
    if size as usize > registry::DEFAULT_MAX_STAPLE_BYTES {
        // OpenSSL clients take a CertificateStatus message (TLS 1.2) of at
        // most 16 KB and abort the handshake on a larger one ("illegal
        // parameter"); in TLS 1.3 the staple travels with the certificate.
        ngx::ngx_conf_log_error!(
            NGX_LOG_WARN,
            cf,
            "a staple over 16k makes TLS 1.2 handshakes with OpenSSL clients fail \
             (\"illegal parameter\"): raise \"ssl_stapling_max_size\" only for TLSv1.3 servers"
        );
    }
    conf.settings.max_staple_bytes = size as usize;
    NGX_CONF_OK
}

/// `ssl_stapling_serve_revoked on | off;`
fn set_serve_revoked(cf: *mut ngx_conf_t, value: &ngx_str_t, conf: &mut MainConf) -> *mut c_char {
    conf.settings.serve_revoked = match conf_values::on_off(value.as_bytes()) {
        Some(v) => v,
        None => {
            ngx::ngx_conf_log_error!(
                NGX_LOG_EMERG,
                cf,
                "invalid value \"{}\", it must be \"on\" or \"off\"",
                value
            );
            return NGX_CONF_ERROR;
        }
    };
    NGX_CONF_OK
}

unsafe extern "C" fn init_process(cycle: *mut ngx_cycle_t) -> ngx_int_t {
    guard(NGX_ERROR, || {
        // SAFETY: nginx passes the worker's cycle; this module's slot in
        // its conf_ctx holds the MainConf create_conf made, whose context
        // (when there is one) lives in the cycle's pool as long as it.
        let (ctx, log) = unsafe {
            let conf = *(*cycle).conf_ctx.add(ngx_ssl_stapling_module.index) as *const MainConf;
            if conf.is_null() || (*conf).ctx.is_null() {
                return NGX_OK;
            }
            (&*(*conf).ctx, (*cycle).log)
        };
        // nginx's cached clock still says when the master began reading
        // the configuration (tens of seconds ago with thousands of
        // servers): deadlines and timers set from it would be expired at
        // once.
        // SAFETY: updates nginx's cached time, in the worker's one thread.
        unsafe { nginx_sys::ngx_time_update() };
        registry::set_current(ctx);
        // SAFETY: the context outlives the worker's event loop (above).
        unsafe { worker::start(ctx, log) };
        NGX_OK
    })
}

unsafe extern "C" fn exit_process(_cycle: *mut ngx_cycle_t) {
    guard((), worker::stop);
}

static mut CORE_CTX: ngx_core_module_t = ngx_core_module_t {
    name: ngx::ngx_string!("ssl_stapling"),
    create_conf: Some(create_conf),
    init_conf: Some(init_conf),
};

const MAIN_TAKE1: ngx_uint_t = (NGX_MAIN_CONF | NGX_DIRECT_CONF | NGX_CONF_TAKE1) as ngx_uint_t;

const fn command(
    name: ngx_str_t,
    set: unsafe extern "C" fn(*mut ngx_conf_t, *mut ngx_command_t, *mut c_void) -> *mut c_char,
) -> ngx_command_t {
    ngx_command_t {
        name,
        type_: MAIN_TAKE1,
        set: Some(set),
        conf: 0,
        offset: 0,
        post: ptr::null_mut(),
    }
}

static mut COMMANDS: [ngx_command_t; 8] = [
    command(ngx::ngx_string!("ssl_stapling_max_size"), cmd_max_size),
    command(ngx::ngx_string!("ssl_stapling_dynamic_max"), cmd_dynamic_max),
    command(ngx::ngx_string!("ssl_stapling_zone"), cmd_zone),
    command(ngx::ngx_string!("ssl_stapling_fetch_timeout"), cmd_fetch_timeout),
    command(ngx::ngx_string!("ssl_stapling_refresh"), cmd_refresh),
    command(ngx::ngx_string!("ssl_stapling_serve_revoked"), cmd_serve_revoked),
    command(
        ngx::ngx_string!("ssl_stapling_fetch_concurrency"),
        cmd_fetch_concurrency,
    ),
    ngx_command_t::empty(),
];

#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut ngx_ssl_stapling_module: ngx_module_t = ngx_module_t {
    ctx: ptr::addr_of!(CORE_CTX) as *mut c_void,
    commands: ptr::addr_of!(COMMANDS) as *mut ngx_command_t,
    type_: NGX_CORE_MODULE as ngx_uint_t,
    init_process: Some(init_process),
    exit_process: Some(exit_process),
    ..ngx_module_t::default()
};

// What nginx's `load_module` reads (ngx::ngx_modules! takes one module).
// nginx's own build system generates these itself.
#[cfg(not(feature = "nginx-build"))]
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut ngx_modules: [*const ngx_module_t; 4] = [
    ptr::addr_of!(ngx_ssl_stapling_module),
    ptr::addr_of!(ngx_ssl_stapling_http_module),
    ptr::addr_of!(ngx_ssl_stapling_stream_module),
    ptr::null(),
];

#[cfg(not(feature = "nginx-build"))]
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut ngx_module_names: [*const c_char; 4] = [
    c"ngx_ssl_stapling_module".as_ptr(),
    c"ngx_ssl_stapling_http_module".as_ptr(),
    c"ngx_ssl_stapling_stream_module".as_ptr(),
    ptr::null(),
];

#[cfg(not(feature = "nginx-build"))]
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut ngx_module_order: [*const c_char; 1] = [ptr::null()];
