//! Logging through nginx's error log. The module's own lines start with
//! "ssl_stapling: " (the `log_<level>!` macros add it); lines about nginx's
//! directives keep the wording of nginx's own stapling code
//! ("\"ssl_stapling\" ignored, ...") and use `log!`.

use std::ptr::NonNull;

use nginx_sys::ngx_log_t;

/// An nginx log the module writes to: never null, and alive as long as
/// the value is used (whoever makes one promises it: a cycle's log lives
/// as long as its cycle). Safe code passes it around instead of a raw
/// pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Log(NonNull<ngx_log_t>);

impl Log {
    /// # Safety
    /// `log`, if not null, is an nginx log that outlives every use of the
    /// value (and of its copies).
    pub unsafe fn from_ptr(log: *mut ngx_log_t) -> Option<Log> {
        NonNull::new(log).map(Log)
    }

    /// The current cycle's log.
    ///
    /// # Safety
    /// Called where nginx has set its current cycle (the master after the
    /// configuration is read, the workers), and used while that cycle
    /// lives.
    pub unsafe fn of_cycle() -> Option<Log> {
        // SAFETY: the caller's contract: ngx_cycle is set (null-checked).
        unsafe {
            let cycle = nginx_sys::ngx_cycle;
            if cycle.is_null() {
                return None;
            }
            Log::from_ptr((*cycle).log)
        }
    }

    pub fn as_ptr(self) -> *mut ngx_log_t {
        self.0.as_ptr()
    }
}

/// What the macros below write to: a `Log`, or a raw pointer from nginx
/// (configuration handlers, where nginx hands one over).
pub trait LogTarget {
    fn log_ptr(&self) -> *mut ngx_log_t;
}

impl LogTarget for Log {
    fn log_ptr(&self) -> *mut ngx_log_t {
        self.as_ptr()
    }
}

/// `log!(level, log, "format", args...)`: one error-log line at `level`
/// (an `NGX_LOG_*` constant) when the log's level lets it through; `log`
/// is a `Log` or an nginx `*mut ngx_log_t`.
macro_rules! log {
    ($level:expr, $log:expr, $($arg:tt)+) => {
        ngx::ngx_log_error!($level, $crate::base::log::LogTarget::log_ptr(&$log), $($arg)+)
    };
}

/// `log!` with the module's "ssl_stapling: " prefix.
macro_rules! log_prefixed {
    ($level:expr, $log:expr, $($arg:tt)+) => {
        ngx::ngx_log_error!(
            $level,
            $crate::base::log::LogTarget::log_ptr(&$log),
            "ssl_stapling: {}",
            format_args!($($arg)+)
        )
    };
}

/// `log_<level>!(log_ptr, "format", args...)`: a line of the module's own,
/// prefixed "ssl_stapling: ", at that level.
macro_rules! log_alert {
    ($log:expr, $($arg:tt)+) => { $crate::base::log::log_prefixed!(nginx_sys::NGX_LOG_ALERT, $log, $($arg)+) };
}
macro_rules! log_crit {
    ($log:expr, $($arg:tt)+) => { $crate::base::log::log_prefixed!(nginx_sys::NGX_LOG_CRIT, $log, $($arg)+) };
}
macro_rules! log_error {
    ($log:expr, $($arg:tt)+) => { $crate::base::log::log_prefixed!(nginx_sys::NGX_LOG_ERR, $log, $($arg)+) };
}
macro_rules! log_warn {
    ($log:expr, $($arg:tt)+) => { $crate::base::log::log_prefixed!(nginx_sys::NGX_LOG_WARN, $log, $($arg)+) };
}
macro_rules! log_notice {
    ($log:expr, $($arg:tt)+) => { $crate::base::log::log_prefixed!(nginx_sys::NGX_LOG_NOTICE, $log, $($arg)+) };
}
macro_rules! log_info {
    ($log:expr, $($arg:tt)+) => { $crate::base::log::log_prefixed!(nginx_sys::NGX_LOG_INFO, $log, $($arg)+) };
}
pub(crate) use {log, log_alert, log_crit, log_error, log_info, log_notice, log_prefixed, log_warn};
