//! The core module: its definition and directives (the main-context
//! ones), the configuration-time hooks that take the servers over, the
//! zone's init and the worker's start and exit (its fetch task belongs to
//! the cycle's context).

use std::ffi::{c_char, c_void};
use std::ptr;

use nginx_sys::{
    ngx_command_t, ngx_conf_t, ngx_core_module_t, ngx_cycle_t, ngx_int_t, ngx_module_t,
    ngx_shared_memory_add, ngx_shm_zone_t, ngx_str_t, ngx_uint_t, NGX_CONF_TAKE1, NGX_CORE_MODULE,
    NGX_DIRECT_CONF, NGX_LOG_EMERG, NGX_LOG_WARN, NGX_MAIN_CONF, NGX_PROCESS_SIGNALLER,
};
use ngx::core::{Pool, Status, NGX_CONF_ERROR, NGX_CONF_OK};

use super::context::context_of;
use super::http::{ngx_ssl_stapling_http_module, ngx_ssl_stapling_stream_module};
use super::main_directives::{
    set_dynamic_max, set_fetch_concurrency, set_fetch_timeout, set_max_age, set_max_size, set_refresh,
    set_refresh_min_interval, set_serve_revoked, set_time_skew, set_zone, MainConf, DEFAULT_ZONE_NAME,
    DEFAULT_ZONE_SIZE,
};
use super::store_setup::store_of;
use super::{arg, command, discover};
use crate::base::guard::guard;
use crate::base::log::{log, log_crit, Log};
use crate::fetch::worker;
use crate::state::registry::{Settings, StaplingContext};
use crate::state::zone;
use crate::tls::callback;

const NGX_OK: ngx_int_t = Status::NGX_OK.0;
const NGX_ERROR: ngx_int_t = Status::NGX_ERROR.0;

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
                let Some(value) = value else {
                    return NGX_CONF_ERROR;
                };
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
main_setter!(cmd_max_age, set_max_age);
main_setter!(cmd_time_skew, set_time_skew);
main_setter!(cmd_refresh_min_interval, set_refresh_min_interval);

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
            Log::from_ptr((*cycle).log),
        )
    };
    let Some(log_) = log_ else {
        return NGX_CONF_ERROR;
    };
    // `nginx -s reload` parses the configuration too; it must not act.
    if process == NGX_PROCESS_SIGNALLER as ngx_uint_t {
        return NGX_CONF_OK;
    }
    // SAFETY: the contract above.
    let servers = unsafe {
        discover::ssl_servers(
            cycle,
            discover::OwnIndexes {
                http: ngx_ssl_stapling_http_module.ctx_index,
                stream: ngx_ssl_stapling_stream_module.ctx_index,
            },
        )
    };
    if !servers.iter().any(|s| s.stapling) {
        // Nothing to take over; only must-staple warnings to give.
        // SAFETY: the servers' SSL contexts are the live cycle's.
        drop(unsafe {
            StaplingContext::build(conf.settings, &servers, None, log_, nginx_sys::ngx_time(), false)
        });
        return NGX_CONF_OK;
    }
    let timeout = std::time::Duration::from_millis(conf.settings.fetch_timeout_ms as u64);
    // SAFETY: the contract above.
    let store = match unsafe { store_of(cycle, timeout) } {
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
    cf.log = log_.as_ptr();
    // Without "ssl_stapling_zone", the zone is sized for the staples the
    // configuration needs (and certificates loaded by variables), in
    // powers of two: a reload that adds a few keeps the same zone.
    let auto_size = ctx_ref.reckon_zone();
    let needed = ctx_ref.zone_bytes_needed();
    let size = if conf.zone_name.is_some() {
        if conf.zone_size < needed {
            log!(
                NGX_LOG_WARN,
                log_,
                "\"ssl_stapling_zone\" \"{}:{}k\" is too small for {} staple(s){}: about {} KB needed",
                String::from_utf8_lossy(&name.0),
                conf.zone_size / 1024,
                ctx_ref.certs.len(),
                match ctx_ref.dynamic_room() {
                    0 => String::new(),
                    n => format!(" and {n} certificate(s) loaded by variables"),
                },
                needed.div_ceil(1024)
            );
        }
        conf.zone_size
    } else {
        auto_size.next_power_of_two().max(DEFAULT_ZONE_SIZE)
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
        (ctx, Log::from_ptr((*shm).shm.log), (*shm).shm.addr, name)
    };
    let Some(log_) = log_ else {
        return NGX_ERROR;
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

unsafe extern "C" fn init_process(cycle: *mut ngx_cycle_t) -> ngx_int_t {
    guard(NGX_ERROR, || {
        // SAFETY: nginx passes the worker's cycle; its context lives in the
        // cycle's pool as long as it.
        let Some(ctx) = (unsafe { context_of(cycle) }) else {
            return NGX_OK;
        };
        // SAFETY: as above.
        let Some(log) = (unsafe { Log::from_ptr((*cycle).log) }) else {
            return NGX_ERROR;
        };
        // nginx's cached clock still says when the master began reading
        // the configuration (tens of seconds ago with thousands of
        // servers): deadlines and timers set from it would be expired at
        // once.
        // SAFETY: updates nginx's cached time, in the worker's one thread.
        unsafe { nginx_sys::ngx_time_update() };
        // The task belongs to the context, so it ends with its cycle.
        // SAFETY: the context outlives the worker's event loop (above).
        ctx.fetch_task.replace(Some(unsafe { worker::start(ctx, log) }));
        NGX_OK
    })
}

/// Ends the fetch task (and the fetches in flight) as the worker exits:
/// nginx then checks that no connection is left open, before it frees the
/// cycle's pool, and with it the context.
unsafe extern "C" fn exit_process(cycle: *mut ngx_cycle_t) {
    guard((), || {
        // SAFETY: nginx passes the worker's cycle.
        if let Some(ctx) = unsafe { context_of(cycle) } {
            drop(ctx.fetch_task.take());
        }
    })
}

static mut CORE_CTX: ngx_core_module_t = ngx_core_module_t {
    name: ngx::ngx_string!("ssl_stapling"),
    create_conf: Some(create_conf),
    init_conf: Some(init_conf),
};

const MAIN_TAKE1: u32 = NGX_MAIN_CONF | NGX_DIRECT_CONF | NGX_CONF_TAKE1;

static mut COMMANDS: [ngx_command_t; 11] = [
    command(
        ngx::ngx_string!("ssl_stapling_max_size"),
        MAIN_TAKE1,
        cmd_max_size,
    ),
    command(
        ngx::ngx_string!("ssl_stapling_dynamic_max"),
        MAIN_TAKE1,
        cmd_dynamic_max,
    ),
    command(ngx::ngx_string!("ssl_stapling_zone"), MAIN_TAKE1, cmd_zone),
    command(
        ngx::ngx_string!("ssl_stapling_fetch_timeout"),
        MAIN_TAKE1,
        cmd_fetch_timeout,
    ),
    command(ngx::ngx_string!("ssl_stapling_refresh"), MAIN_TAKE1, cmd_refresh),
    command(
        ngx::ngx_string!("ssl_stapling_serve_revoked"),
        MAIN_TAKE1,
        cmd_serve_revoked,
    ),
    command(
        ngx::ngx_string!("ssl_stapling_fetch_concurrency"),
        MAIN_TAKE1,
        cmd_fetch_concurrency,
    ),
    command(ngx::ngx_string!("ssl_stapling_max_age"), MAIN_TAKE1, cmd_max_age),
    command(
        ngx::ngx_string!("ssl_stapling_refresh_min_interval"),
        MAIN_TAKE1,
        cmd_refresh_min_interval,
    ),
    command(
        ngx::ngx_string!("ssl_stapling_time_skew"),
        MAIN_TAKE1,
        cmd_time_skew,
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

// What nginx's `load_module` reads: the module list, names and order.
// Written out: ngx::ngx_modules! (ngx 0.5.1) declares several modules in
// its pattern, but its count! helper fails on more than one ("unexpected
// end of macro invocation": the trailing comma it passes itself). nginx's
// own build system generates these itself.
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
