//! The main-context directives (`ssl_stapling_zone`, `_fetch_timeout`,
//! `_refresh`, `_fetch_concurrency`, `_dynamic_max`, `_max_size`,
//! `_serve_revoked`): each parses its one argument into the MainConf.

use std::ffi::c_char;

use nginx_sys::{
    ngx_conf_t, ngx_msec_t, ngx_parse_size, ngx_parse_time, ngx_str_t, NGX_LOG_EMERG, NGX_LOG_WARN,
};
use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};

use super::conf_values;
use crate::ocsp::responder;
use crate::ocsp::schedule::Refresh;
use crate::state::registry::{self, Settings, StaplingContext};
use crate::state::store;

pub(super) const DEFAULT_ZONE_NAME: &str = "ssl_stapling";
/// The smallest zone made without "ssl_stapling_zone".
pub(super) const DEFAULT_ZONE_SIZE: usize = 1024 * 1024;
/// nginx refuses slab zones under 8 pages.
pub(super) const MIN_ZONE_SIZE: usize = 32 * 1024;

/// The module's main configuration.
pub(super) struct MainConf {
    pub(super) zone_name: Option<Vec<u8>>,
    pub(super) zone_size: usize,
    pub(super) settings: Settings,
    /// The cycle's context, for the workers (null when nothing staples).
    pub(super) ctx: *mut StaplingContext,
    /// The directives already given (their command's address): a second
    /// one is "is duplicate", as nginx says for its own.
    pub(super) seen: Vec<usize>,
}

/// `ssl_stapling_zone name:size;`
pub(super) fn set_zone(cf: *mut ngx_conf_t, value: &ngx_str_t, conf: &mut MainConf) -> *mut c_char {
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

/// The directive's argument as a time in seconds (nginx's syntax: "90",
/// "15m", "1h 30m"), or `[emerg]`; zero only where `zero_ok`.
fn seconds_arg(cf: *mut ngx_conf_t, value: &ngx_str_t, zero_ok: bool) -> Option<i64> {
    let mut v = *value;
    // SAFETY: parses the string it is given.
    let secs = unsafe { ngx_parse_time(&mut v, 1) };
    if secs < 0 || (secs == 0 && !zero_ok) {
        ngx::ngx_conf_log_error!(NGX_LOG_EMERG, cf, "invalid value \"{}\"", value);
        return None;
    }
    Some(secs as i64)
}

/// `ssl_stapling_max_age time | off;`: responses whose thisUpdate is older
/// are refused (Apache's SSLStaplingResponseMaxAge); off by default, as
/// nginx has no such limit.
pub(super) fn set_max_age(cf: *mut ngx_conf_t, value: &ngx_str_t, conf: &mut MainConf) -> *mut c_char {
    if value.as_bytes() == b"off" {
        conf.settings.time.max_age = None;
        return NGX_CONF_OK;
    }
    match seconds_arg(cf, value, false) {
        Some(secs) => {
            conf.settings.time.max_age = Some(secs);
            NGX_CONF_OK
        }
        None => NGX_CONF_ERROR,
    }
}

/// `ssl_stapling_refresh_min_interval time;`: a refresh on demand of a
/// staple fetched less than this long ago is skipped; 0 turns it off.
pub(super) fn set_refresh_min_interval(
    cf: *mut ngx_conf_t,
    value: &ngx_str_t,
    conf: &mut MainConf,
) -> *mut c_char {
    match seconds_arg(cf, value, true) {
        Some(secs) => {
            conf.settings.refresh_min_interval = secs;
            NGX_CONF_OK
        }
        None => NGX_CONF_ERROR,
    }
}

/// `ssl_stapling_time_skew time;`: how far in the future a response's
/// thisUpdate may be (Apache's SSLStaplingResponseTimeSkew); 5m, nginx's
/// fixed value, by default.
pub(super) fn set_time_skew(cf: *mut ngx_conf_t, value: &ngx_str_t, conf: &mut MainConf) -> *mut c_char {
    match seconds_arg(cf, value, true) {
        Some(secs) => {
            conf.settings.time.skew = secs;
            NGX_CONF_OK
        }
        None => NGX_CONF_ERROR,
    }
}

/// `ssl_stapling_fetch_timeout time;`: one deadline for connecting to the
/// responder, sending the request and reading the response.
pub(super) fn set_fetch_timeout(cf: *mut ngx_conf_t, value: &ngx_str_t, conf: &mut MainConf) -> *mut c_char {
    let mut v = *value;
    // SAFETY: parses the string it is given.
    let ms = unsafe { ngx_parse_time(&mut v, 0) };
    if ms <= 0 {
        ngx::ngx_conf_log_error!(NGX_LOG_EMERG, cf, "invalid value \"{}\"", value);
        return NGX_CONF_ERROR;
    }
    // Leases in a shared store are bounded by it (`MAX_LEASE_AHEAD_SECS`).
    if ms as i64 > store::MAX_FETCH_TIMEOUT_SECS * 1000 {
        ngx::ngx_conf_log_error!(
            NGX_LOG_EMERG,
            cf,
            "\"{}\" is longer than the longest fetch timeout, {}m",
            value,
            store::MAX_FETCH_TIMEOUT_SECS / 60
        );
        return NGX_CONF_ERROR;
    }
    conf.settings.fetch_timeout_ms = ms as ngx_msec_t;
    NGX_CONF_OK
}

/// `ssl_stapling_refresh fraction | time;`: "0.5" or "50%" of the
/// response's validity, or a fixed interval such as "1h".
pub(super) fn set_refresh(cf: *mut ngx_conf_t, value: &ngx_str_t, conf: &mut MainConf) -> *mut c_char {
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
        conf_values::RefreshValue::Time => match seconds_arg(cf, value, false) {
            Some(secs) => Refresh::Interval(secs),
            None => return NGX_CONF_ERROR,
        },
    };
    conf.settings.policy.refresh = refresh;
    NGX_CONF_OK
}

/// Sets `field` to the directive's argument, a count within `range`, or
/// says `[emerg]` why it is not one.
fn set_count(
    cf: *mut ngx_conf_t,
    value: &ngx_str_t,
    range: std::ops::RangeInclusive<usize>,
    field: &mut usize,
) -> *mut c_char {
    match conf_values::count(value.as_bytes(), range.clone()) {
        Some(n) => {
            *field = n;
            NGX_CONF_OK
        }
        None => {
            ngx::ngx_conf_log_error!(
                NGX_LOG_EMERG,
                cf,
                "invalid value \"{}\", it must be {}..{}",
                value,
                range.start(),
                range.end()
            );
            NGX_CONF_ERROR
        }
    }
}

/// `ssl_stapling_fetch_concurrency number;`: fetches each worker runs at
/// the same time (the responder sees at most this times the workers).
pub(super) fn set_fetch_concurrency(
    cf: *mut ngx_conf_t,
    value: &ngx_str_t,
    conf: &mut MainConf,
) -> *mut c_char {
    set_count(cf, value, 1..=1024, &mut conf.settings.fetch_concurrency)
}

/// `ssl_stapling_dynamic_max number;`: certificates loaded by variables
/// kept in the zone (least recently used evicted).
pub(super) fn set_dynamic_max(cf: *mut ngx_conf_t, value: &ngx_str_t, conf: &mut MainConf) -> *mut c_char {
    set_count(cf, value, 1..=1_000_000, &mut conf.settings.dynamic_max)
}

/// `ssl_stapling_max_size size;`: the largest OCSP response stapled
/// (16k by default, as nginx's own code; at most what is read, 64k). Over
/// 16k is a warning: TLS 1.2 OpenSSL clients refuse such a staple.
pub(super) fn set_max_size(cf: *mut ngx_conf_t, value: &ngx_str_t, conf: &mut MainConf) -> *mut c_char {
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
pub(super) fn set_serve_revoked(cf: *mut ngx_conf_t, value: &ngx_str_t, conf: &mut MainConf) -> *mut c_char {
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
