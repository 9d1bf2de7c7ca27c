//! The `ssl_stapling_status` location: the status page (JSON or
//! Prometheus text) and, with `refresh`, refresh on demand.

use std::ffi::{c_char, c_void};
use std::ptr;

use nginx_sys::{
    ngx_chain_t, ngx_command_t, ngx_conf_t, ngx_http_request_t, ngx_int_t, ngx_str_t, NGX_LOG_EMERG,
};
use ngx::core::Buffer;
use ngx::core::{Status, NGX_CONF_ERROR, NGX_CONF_OK};
use ngx::http::{HTTPStatus, HttpModuleLocationConf, NgxHttpCoreModule, Request};

use super::arg;
use crate::base::guard::guard;
use crate::state::certificate::StapleKey;
use crate::state::registry::RefreshTarget;
use crate::status::select::{needs_attention, Query};
use crate::status::{collect, html, render};

const NGX_ERROR: ngx_int_t = Status::NGX_ERROR.0;

/// `ssl_stapling_status [refresh];`: the status page; with `refresh`, it
/// also takes `POST ?refresh=<id>|all` (fetch those staples now).
pub(super) unsafe extern "C" fn set_status(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    _conf: *mut c_void,
) -> *mut c_char {
    guard(NGX_CONF_ERROR, || {
        // SAFETY: nginx calls a directive handler with the configuration
        // being parsed.
        let refresh = match unsafe { arg(cf, 1) } {
            None => false,
            Some(v) if v.as_bytes() == b"refresh" => true,
            Some(v) => {
                ngx::ngx_conf_log_error!(
                    NGX_LOG_EMERG,
                    cf,
                    "invalid value \"{}\", it must be \"refresh\" or nothing",
                    v
                );
                return NGX_CONF_ERROR;
            }
        };
        // SAFETY: a location directive: `cf` is live and its ctx is the
        // location's http context.
        let Some(clcf) = NgxHttpCoreModule::location_conf_mut(unsafe { &*cf }) else {
            return NGX_CONF_ERROR;
        };
        clcf.handler = Some(if refresh {
            status_refresh_handler
        } else {
            status_handler
        });
        NGX_CONF_OK
    })
}

unsafe extern "C" fn status_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx calls a content handler with a live request.
    guard(
        nginx_sys::NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t,
        || unsafe { serve_status(r, false) },
    )
}

unsafe extern "C" fn status_refresh_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx calls a content handler with a live request.
    guard(
        nginx_sys::NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t,
        || unsafe { serve_status(r, true) },
    )
}

/// The value of `refresh=` in a query string.
fn refresh_arg(args: &[u8]) -> Option<&[u8]> {
    args.split(|&b| b == b'&')
        .find_map(|pair| pair.strip_prefix(b"refresh="))
}

/// What the status page is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Prometheus,
    Html,
}

/// `?format=json|prometheus|html` decides; else the Accept header: a
/// browser's (`text/html`) gets HTML, `text/plain` Prometheus text,
/// anything else JSON.
fn format_of(args: &[u8], accept: Option<&[u8]>) -> Format {
    for pair in args.split(|&b| b == b'&') {
        match pair {
            b"format=prometheus" => return Format::Prometheus,
            b"format=json" => return Format::Json,
            b"format=html" => return Format::Html,
            _ => {}
        }
    }
    let a = accept.map(|a| String::from_utf8_lossy(a).to_ascii_lowercase());
    match a {
        Some(a) if a.contains("application/json") => Format::Json,
        Some(a) if a.contains("text/html") => Format::Html,
        Some(a) if a.contains("text/plain") => Format::Prometheus,
        _ => Format::Json,
    }
}

/// # Safety
/// `r` is the live request nginx called the content handler with.
unsafe fn serve_status(r: *mut ngx_http_request_t, refresh: bool) -> ngx_int_t {
    // SAFETY: the contract above; the request is ours until we return.
    let req = unsafe { Request::from_ngx_http_request(r) };
    let method = req.as_ref().method as u32;
    let post = refresh && method & nginx_sys::NGX_HTTP_POST != 0;
    if method & (nginx_sys::NGX_HTTP_GET | nginx_sys::NGX_HTTP_HEAD) == 0 && !post {
        return nginx_sys::NGX_HTTP_NOT_ALLOWED as ngx_int_t;
    }
    let rc = req.discard_request_body();
    if rc != Status::NGX_OK {
        return rc.0;
    }
    // A copy: `req` is lent to `send` below.
    let args = req.as_ref().args.as_bytes().to_vec();
    if post {
        let (status, body) = refresh_now(&args);
        return send(req, status, b"application/json", body);
    }
    let accept = req
        .headers_in_iterator()
        .find(|(k, _)| k.as_bytes().eq_ignore_ascii_case(b"accept"))
        .map(|(_, v)| v.as_bytes().to_vec());
    let format = format_of(&args, accept.as_deref());
    let query = Query::parse(&args);

    let now = nginx_sys::ngx_time();
    let page = match super::context::current_context() {
        Some(ctx) => {
            // Only the certificates the page lists are described.
            let listed: &dyn Fn(&collect::CertView, i64) -> bool = match format {
                Format::Html => &|c, now| query.matches(c, now),
                Format::Prometheus if query.all => &|_, _| true,
                Format::Prometheus => &needs_attention,
                Format::Json => &|c, now| query.matches(c, now),
            };
            collect::collect(ctx, now, listed)
        }
        None => collect::Page {
            now,
            zone: None,
            certs: Vec::new(),
        },
    };
    let module_version = env!("CARGO_PKG_VERSION");
    let nginx_version = nginx_sys::NGINX_VERSION.to_str().unwrap_or("unknown");
    let (body, content_type): (String, &'static [u8]) = match format {
        Format::Prometheus => (
            render::render_prometheus(
                &page,
                module_version,
                nginx_version,
                if query.all {
                    render::Detail::All
                } else {
                    render::Detail::Attention
                },
            ),
            b"text/plain; version=0.0.4; charset=utf-8",
        ),
        Format::Html => (
            html::render_html(&page, module_version, nginx_version, &query),
            b"text/html; charset=utf-8",
        ),
        Format::Json => (
            render::render_json(&page, module_version, nginx_version, &query),
            b"application/json",
        ),
    };

    send(req, HTTPStatus::OK, content_type, body)
}

/// `POST ?refresh=<id>|all`: the staples named are due now (a staple id or
/// a certificate's SHA-256, as the status page shows them); one worker
/// fetches each (lease as usual). 202 with the ids queued and those
/// skipped (being fetched, or fetched less than
/// `ssl_stapling_refresh_min_interval` ago) with the reason, 404 for an
/// id no staple has, 400 without `refresh=`.
fn refresh_now(args: &[u8]) -> (HTTPStatus, String) {
    let Some(which) = refresh_arg(args) else {
        return (
            HTTPStatus::BAD_REQUEST,
            "{\"error\":\"POST needs ?refresh=<id> or ?refresh=all\"}\n".to_string(),
        );
    };
    let target = if which == b"all" {
        RefreshTarget::All
    } else {
        match std::str::from_utf8(which).ok().and_then(StapleKey::parse) {
            Some(key) => RefreshTarget::Id(key),
            None => {
                return (
                    HTTPStatus::NOT_FOUND,
                    "{\"error\":\"no such staple\"}\n".to_string(),
                )
            }
        }
    };
    let done = match super::context::current_context() {
        Some(ctx) => ctx.refresh_now(target, nginx_sys::ngx_time()),
        None => Default::default(),
    };
    if done.queued.is_empty() && done.skipped.is_empty() && target != RefreshTarget::All {
        return (
            HTTPStatus::NOT_FOUND,
            "{\"error\":\"no such staple\"}\n".to_string(),
        );
    }
    let queued: Vec<String> = done.queued.iter().map(|k| format!("\"{k}\"")).collect();
    let skipped: Vec<String> = done
        .skipped
        .iter()
        .map(|(k, why)| format!("{{\"id\":\"{k}\",\"reason\":\"{}\"}}", why.reason()))
        .collect();
    (
        HTTPStatus::ACCEPTED,
        format!(
            "{{\"queued\":[{}],\"skipped\":[{}]}}\n",
            queued.join(","),
            skipped.join(",")
        ),
    )
}

/// Sends a whole response through ngx's request helpers; the body is
/// copied into a buffer of the request's pool.
fn send(req: &mut Request, status: HTTPStatus, content_type: &'static [u8], body: String) -> ngx_int_t {
    req.set_status(status);
    let headers = &mut req.as_mut().headers_out;
    headers.content_type_len = content_type.len();
    // A static string: nginx only reads it.
    headers.content_type = ngx_str_t {
        len: content_type.len(),
        data: content_type.as_ptr().cast_mut(),
    };
    req.set_content_length_n(body.len());
    let rc = req.send_header();
    if rc == Status::NGX_ERROR || rc.0 > 0 || req.header_only() {
        return rc.0;
    }
    let Some(mut buf) = req.pool().create_buffer_from_str(&body) else {
        return NGX_ERROR;
    };
    buf.set_last_buf(req.is_main());
    buf.set_last_in_chain(true);
    let mut out = ngx_chain_t {
        buf: buf.as_ngx_buf_mut(),
        next: ptr::null_mut(),
    };
    req.output_filter(&mut out).0
}

#[cfg(test)]
mod tests {
    use super::{format_of, Format};

    #[test]
    fn format_choice() {
        assert_eq!(format_of(b"", None), Format::Json);
        assert_eq!(format_of(b"", Some(b"*/*")), Format::Json);
        assert_eq!(format_of(b"format=prometheus", None), Format::Prometheus);
        assert_eq!(
            format_of(b"a=1&format=prometheus", Some(b"application/json")),
            Format::Prometheus
        );
        assert_eq!(format_of(b"format=json", Some(b"text/plain")), Format::Json);
        assert_eq!(
            format_of(b"", Some(b"text/plain;version=0.0.4")),
            Format::Prometheus
        );
        assert_eq!(
            format_of(b"", Some(b"application/json, text/plain, */*")),
            Format::Json
        );
        // Prometheus's own scrape, and Firefox's.
        assert_eq!(
            format_of(
                b"",
                Some(b"application/openmetrics-text;version=1.0.0;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
            ),
            Format::Prometheus
        );
        assert_eq!(
            format_of(
                b"",
                Some(b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
            ),
            Format::Html
        );
        assert_eq!(format_of(b"format=html", None), Format::Html);
    }
}
