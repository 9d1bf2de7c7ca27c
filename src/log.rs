//! Logging through nginx's error log. Messages keep the wording style of
//! nginx's own stapling code ("\"ssl_stapling\" ignored, ...").

/// `log!(level, log_ptr, "format", args...)`: one error-log line at `level`
/// (an `NGX_LOG_*` constant) when the log's level lets it through.
macro_rules! log {
    ($level:expr, $log:expr, $($arg:tt)+) => {
        ngx::ngx_log_error!($level, $log, $($arg)+)
    };
}

pub(crate) use log;
