//! Logging through nginx's error log. The module's own lines start with
//! "ssl_stapling: " (the `log_<level>!` macros add it); lines about nginx's
//! directives keep the wording of nginx's own stapling code
//! ("\"ssl_stapling\" ignored, ...") and use `log!`.

/// `log!(level, log_ptr, "format", args...)`: one error-log line at `level`
/// (an `NGX_LOG_*` constant) when the log's level lets it through.
macro_rules! log {
    ($level:expr, $log:expr, $($arg:tt)+) => {
        ngx::ngx_log_error!($level, $log, $($arg)+)
    };
}

/// `log!` with the module's "ssl_stapling: " prefix.
macro_rules! log_prefixed {
    ($level:expr, $log:expr, $($arg:tt)+) => {
        ngx::ngx_log_error!($level, $log, "ssl_stapling: {}", format_args!($($arg)+))
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
