//! One OCSP fetch for one certificate: resolve the responder (nginx's
//! resolver; IP literals need none), connect to each address in turn,
//! send the request, read a bounded response, check it like nginx does.

use std::ptr::NonNull;

use nginx_sys::{ngx_create_pool, ngx_destroy_pool, ngx_log_t, ngx_msec_t, ngx_resolver_t, ngx_str_t};
use ngx::async_::resolver::Resolver;
use ngx::core::Pool;
use openssl::ocsp::OcspRequest;

use crate::fetch::net::{Connection, Deadline, NetError};
use crate::module::log::log_info;
use crate::ocsp::responder::{build_request, HttpError, ResponderUrl, ResponseReader};
use crate::ocsp::response::{
    check_response, CertificateStatusId, ChainSignatureCheck, CheckedResponse, OcspError,
};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no resolver defined to resolve {0}")]
    NoResolver(String),
    #[error("{0} could not be resolved ({1})")]
    Resolve(String, String),
    #[error("cannot build the OCSP request")]
    Request,
    #[error("{0}")]
    Net(#[from] NetError),
    #[error("{0}")]
    Http(#[from] HttpError),
    #[error("{0}")]
    Ocsp(#[from] OcspError),
    #[error("out of memory")]
    NoMemory,
    #[error("{0}")]
    TooLarge(String),
}

/// Where and how a certificate's staple is fetched.
pub struct FetchPlan {
    pub url: ResponderUrl,
    /// The server's `resolver`, when it has name servers.
    pub resolver: Option<(NonNull<ngx_resolver_t>, ngx_msec_t)>,
}

pub fn user_agent() -> String {
    format!(
        "ngx_ssl_stapling_module/{} nginx/{}",
        env!("CARGO_PKG_VERSION"),
        nginx_sys::NGINX_VERSION.to_str().unwrap_or("unknown")
    )
}

/// A pool for one fetch (the resolver's answers live in it).
struct TempPool(*mut nginx_sys::ngx_pool_t);

impl Drop for TempPool {
    fn drop(&mut self) {
        // SAFETY: created by ngx_create_pool in `fetch`, destroyed once.
        unsafe { ngx_destroy_pool(self.0) }
    }
}

/// An address to try: a sockaddr and its text for log lines.
struct Target {
    sockaddr: Vec<u8>,
    text: String,
}

fn sockaddr_of(addr: std::net::SocketAddr) -> Vec<u8> {
    // SAFETY: plain-old-data socket address structs, filled field by field.
    unsafe {
        match addr {
            std::net::SocketAddr::V4(a) => {
                let mut sin: libc::sockaddr_in = std::mem::zeroed();
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = a.port().to_be();
                sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
                std::slice::from_raw_parts(
                    (&sin as *const libc::sockaddr_in).cast(),
                    std::mem::size_of_val(&sin),
                )
                .to_vec()
            }
            std::net::SocketAddr::V6(a) => {
                let mut sin6: libc::sockaddr_in6 = std::mem::zeroed();
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = a.port().to_be();
                sin6.sin6_addr.s6_addr = a.ip().octets();
                std::slice::from_raw_parts(
                    (&sin6 as *const libc::sockaddr_in6).cast(),
                    std::mem::size_of_val(&sin6),
                )
                .to_vec()
            }
        }
    }
}

/// The address in a sockaddr the resolver gave, for log lines.
fn socket_addr_of(sa: &[u8]) -> Option<std::net::SocketAddr> {
    let family = i32::from(*sa.first()?) | (i32::from(*sa.get(1)?) << 8);
    if family == libc::AF_INET && sa.len() >= std::mem::size_of::<libc::sockaddr_in>() {
        // SAFETY: long enough for a sockaddr_in; read unaligned.
        let sin: libc::sockaddr_in = unsafe { std::ptr::read_unaligned(sa.as_ptr().cast()) };
        let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
        return Some((ip, u16::from_be(sin.sin_port)).into());
    }
    if family == libc::AF_INET6 && sa.len() >= std::mem::size_of::<libc::sockaddr_in6>() {
        // SAFETY: long enough for a sockaddr_in6; read unaligned.
        let sin6: libc::sockaddr_in6 = unsafe { std::ptr::read_unaligned(sa.as_ptr().cast()) };
        let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
        return Some((ip, u16::from_be(sin6.sin6_port)).into());
    }
    None
}

async fn targets(plan: &FetchPlan, log: *mut ngx_log_t) -> Result<Vec<Target>, FetchError> {
    let url = &plan.url;
    if let Some(ip) = url.ip {
        let sa = std::net::SocketAddr::new(ip, url.port);
        return Ok(vec![Target {
            sockaddr: sockaddr_of(sa),
            text: sa.to_string(),
        }]);
    }
    let Some((resolver, timeout)) = plan.resolver else {
        return Err(FetchError::NoResolver(url.host.clone()));
    };
    // SAFETY: a fresh pool, destroyed when `_guard` drops, after every use
    // of the addresses allocated in it.
    let raw = unsafe { ngx_create_pool(4096, log) };
    if raw.is_null() {
        return Err(FetchError::NoMemory);
    }
    let _guard = TempPool(raw);
    // SAFETY: the live pool just made (above).
    let pool = unsafe { Pool::from_ngx_pool(raw) };
    let mut host = url.host.clone().into_bytes();
    let name = ngx_str_t {
        len: host.len(),
        data: host.as_mut_ptr(),
    };
    let addrs = Resolver::from_resolver(resolver, timeout)
        .resolve_name(&name, &pool)
        .await
        .map_err(|e| FetchError::Resolve(url.host.clone(), resolver_error_text(&e)))?;
    let mut out = Vec::new();
    for a in addrs.iter() {
        if a.sockaddr.is_null() || a.socklen == 0 {
            continue;
        }
        // SAFETY: the resolver filled sockaddr with socklen bytes.
        let mut sa =
            unsafe { std::slice::from_raw_parts(a.sockaddr.cast::<u8>(), a.socklen as usize) }.to_vec();
        // SAFETY: sa is a sockaddr of the resolver's family; set the port.
        unsafe { nginx_sys::ngx_inet_set_port(sa.as_mut_ptr().cast(), url.port) };
        let text =
            socket_addr_of(&sa).map_or_else(|| format!("{}:{}", url.host, url.port), |a| a.to_string());
        out.push(Target { sockaddr: sa, text });
    }
    if out.is_empty() {
        return Err(FetchError::Resolve(url.host.clone(), "no addresses".into()));
    }
    Ok(out)
}

fn resolver_error_text(e: &ngx::async_::resolver::Error) -> String {
    match e {
        ngx::async_::resolver::Error::Resolver(err, _) => err.to_string(),
        other => other.to_string(),
    }
}

/// What one fetch needs: which certificate (`name` for the log), how its
/// answer is checked, where it is fetched from.
pub struct FetchJob<'a> {
    pub name: &'a str,
    pub status_id: &'a CertificateStatusId,
    pub check: ChainSignatureCheck<'a>,
    pub plan: &'a FetchPlan,
}

/// Fetches and checks one staple. `now` is read after the response
/// arrives.
pub async fn fetch(
    job: FetchJob<'_>,
    timeout_ms: ngx_msec_t,
    log: *mut ngx_log_t,
) -> Result<CheckedResponse, FetchError> {
    let FetchJob {
        name,
        status_id,
        check,
        plan,
    } = job;
    let id = status_id.cert_id().ok_or(FetchError::Request)?;
    let mut req = OcspRequest::new().map_err(|_| FetchError::Request)?;
    req.add_id(id).map_err(|_| FetchError::Request)?;
    let der = req.to_der().map_err(|_| FetchError::Request)?;
    let request = build_request(&plan.url, &der, &user_agent());

    let deadline = Deadline::after_ms(timeout_ms);
    let mut last = None;
    for target in targets(plan, log).await? {
        match exchange(&target, &request, log, deadline).await {
            Ok(body) => {
                let now = nginx_sys::ngx_time();
                return Ok(check_response(&body, status_id, &check, now)?);
            }
            // A bad answer is the responder's answer: other addresses of
            // the same responder would give the same.
            Err(e @ FetchError::Http(_)) => return Err(e),
            Err(e) => {
                log_info!(
                    log,
                    "OCSP responder {} for certificate \"{}\": {e}; trying the next address",
                    target.text,
                    name
                );
                last = Some(e)
            }
        }
        if deadline.remaining().is_none() {
            break;
        }
    }
    Err(last.unwrap_or(FetchError::Net(NetError::TimedOut)))
}

async fn exchange(
    target: &Target,
    request: &[u8],
    log: *mut ngx_log_t,
    deadline: Deadline,
) -> Result<Vec<u8>, FetchError> {
    // SAFETY: `log` is the cycle's log, alive longer than any fetch.
    let mut conn = unsafe { Connection::connect(&target.sockaddr, &target.text, log, deadline) }.await?;
    conn.send_all(request, deadline).await?;
    let mut reader = ResponseReader::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = conn.recv(&mut buf, deadline).await?;
        if n == 0 {
            return Ok(reader.finish()?);
        }
        if let Some(body) = reader.feed(&buf[..n])? {
            return Ok(body);
        }
    }
}
