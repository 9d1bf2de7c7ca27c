//! One server as the registry is built from it: a plain description of a
//! server with an SSL context, filled in by `module/` from nginx's
//! configuration (`module/discover.rs`), with the certificates nginx loaded
//! for it.

use std::ffi::CStr;
use std::ptr::NonNull;

use foreign_types::ForeignTypeRef;
use nginx_sys::{ngx_msec_t, ngx_resolver_t, ngx_ssl_t};
use openssl::ssl::SslContextRef;
use openssl::x509::{X509Ref, X509};

use crate::ocsp::responder::ProxyUrl;
use crate::state::certificate::Protocol;

/// The stapling settings of one server, as nginx's own ssl module
/// configuration has them (`ngx_http_ssl_srv_conf_t` /
/// `ngx_stream_ssl_srv_conf_t`).
pub struct StaplingServer {
    pub protocol: Protocol,
    /// `ssl_stapling on` (servers without it matter only for must-staple
    /// certificates).
    pub stapling: bool,
    /// Its `server_name`s (http).
    pub names: Vec<String>,
    pub ssl: *mut ngx_ssl_t,
    pub verify: bool,
    pub file: Option<String>,
    pub responder: Option<String>,
    /// The server's `resolver`, if it has name servers (a resolver without
    /// any makes ngx_resolve_start return a sentinel, not a context).
    pub resolver: Option<(NonNull<ngx_resolver_t>, ngx_msec_t)>,
    /// The server's `ssl_stapling_proxy`.
    pub proxy: Option<ProxyUrl>,
    /// Its `ssl_certificate` has variables: its certificates are met only
    /// during handshakes.
    pub by_variables: bool,
}

impl StaplingServer {
    /// The certificates nginx loaded for this server (`ngx_ssl_t.certs`),
    /// with nginx's name for each.
    #[cfg(ngx_ssl_certs_array)]
    pub fn certificates(&self) -> Vec<(*mut openssl_sys::X509, X509, String)> {
        // SAFETY: as in `ssl_ctx`: the server's ngx_ssl_t is alive, and its
        // `certs` array holds `nelts` certificate pointers.
        unsafe {
            (*self.ssl)
                .certs
                .as_slice::<*mut openssl_sys::X509>()
                .iter()
                .filter(|p| !p.is_null())
                .map(|&p| (p, X509Ref::from_ptr(p).to_owned(), certificate_name(p)))
                .collect()
        }
    }

    /// The certificates nginx loaded for this server, before nginx 1.27
    /// kept them in an array: the first in the SSL_CTX's ex_data, each next
    /// one in the previous certificate's, as nginx's stapling code walks
    /// them.
    #[cfg(not(ngx_ssl_certs_array))]
    pub fn certificates(&self) -> Vec<(*mut openssl_sys::X509, X509, String)> {
        let mut out = Vec::new();
        let ctx = self.ssl_ctx().as_ptr();
        // SAFETY: as in `ssl_ctx`; the ex_data nginx keeps on the SSL_CTX and
        // on each certificate are certificates of this configuration.
        unsafe {
            let mut p = openssl_sys::SSL_CTX_get_ex_data(ctx, nginx_sys::ngx_ssl_certificate_index)
                as *mut openssl_sys::X509;
            // A bound, in case of a cycle: no server has this many certificates.
            while !p.is_null() && out.len() < 1024 {
                out.push((p, X509Ref::from_ptr(p).to_owned(), certificate_name(p)));
                p = crate::base::ffi::X509_get_ex_data(p, nginx_sys::ngx_ssl_next_certificate_index)
                    as *mut openssl_sys::X509;
            }
        }
        out
    }

    /// The server's SSL_CTX.
    pub fn ssl_ctx(&self) -> &SslContextRef {
        // SAFETY: `module::discover::ssl_servers` makes a StaplingServer only from a live
        // ngx_ssl_t with an SSL_CTX, and the list is used (and dropped)
        // while that configuration is read, the SSL_CTX alive.
        unsafe { SslContextRef::from_ptr((*self.ssl).ctx as *mut openssl_sys::SSL_CTX) }
    }
}

fn certificate_name(cert: *mut openssl_sys::X509) -> String {
    // SAFETY: nginx stores the certificate's file name (a C string in the
    // cycle pool) at this ex_data index of every certificate it loads.
    unsafe {
        let p =
            crate::base::ffi::X509_get_ex_data(cert, nginx_sys::ngx_ssl_certificate_name_index) as *const i8;
        if p.is_null() {
            return String::from("(unnamed)");
        }
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}
