//! One OCSP fetch for one certificate: resolve the responder (nginx's
//! resolver; IP literals need none), connect to each address in turn,
//! send the request, read a bounded response, check it like nginx does.

use nginx_sys::{ngx_create_pool, ngx_destroy_pool, ngx_msec_t, ngx_str_t};
use ngx::async_::resolver::Resolver;
use ngx::core::Pool;
use openssl::ocsp::OcspRequest;

use crate::base::log::{log_info, Log};
use crate::fetch::net::{Connection, Deadline, NetError};
use crate::ocsp::responder::{build_request, HttpError, ProxyUrl, ResponderUrl, ResponseReader};
use crate::ocsp::response::{
    check_response, CertificateStatusId, ChainSignatureCheck, CheckedResponse, OcspError, TimeRules,
};
use crate::state::certificate::{FetchPlan, Fetched};

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
    TooLarge(#[from] crate::state::registry::TooLarge),
    #[error("through proxy {0}: {1}")]
    Proxy(String, Box<FetchError>),
    #[error("proxy {proxy} answered HTTP status {code}{}", proxy_reason(*.code))]
    ProxyStatus { proxy: String, code: u16 },
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

async fn targets(url: &ResponderUrl, plan: &FetchPlan, log: Log) -> Result<Vec<Target>, FetchError> {
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
    let raw = unsafe { ngx_create_pool(4096, log.as_ptr()) };
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
    pub rules: &'a TimeRules,
}

/// Fetches and checks one staple: from each responder of the plan in
/// turn until one gives a response that passes the checks, all within one
/// deadline. `now` is read after a response arrives.
pub async fn fetch(job: FetchJob<'_>, timeout_ms: ngx_msec_t, log: Log) -> Result<Fetched, FetchError> {
    let id = job.status_id.cert_id().ok_or(FetchError::Request)?;
    let mut req = OcspRequest::new().map_err(|_| FetchError::Request)?;
    req.add_id(id).map_err(|_| FetchError::Request)?;
    let der = req.to_der().map_err(|_| FetchError::Request)?;
    let deadline = Deadline::after_ms(timeout_ms);
    let mut last = FetchError::Net(NetError::TimedOut);
    let mut urls = job.plan.urls.iter().peekable();
    while let Some(url) = urls.next() {
        match fetch_from(&job, url, &der, deadline, log).await {
            Ok(response) => {
                return Ok(Fetched {
                    response,
                    from: url.to_string(),
                })
            }
            Err(e) => {
                let Some(next) = urls.peek() else {
                    return Err(e);
                };
                if deadline.remaining().is_none() {
                    return Err(e);
                }
                log_info!(
                    log,
                    "OCSP responder {url} for certificate \"{}\": {e}; trying the next one, {next}",
                    job.name
                );
                last = e;
            }
        }
    }
    Err(last)
}

/// Fetches and checks the staple from one responder, trying each of its
/// addresses in turn.
async fn fetch_from(
    job: &FetchJob<'_>,
    url: &ResponderUrl,
    der: &[u8],
    deadline: Deadline,
    log: Log,
) -> Result<CheckedResponse, FetchError> {
    let proxy = job.plan.proxy.as_ref();
    let request = build_request(url, der, &user_agent(), proxy);
    let mut last = None;
    let connect_to = proxy.map_or(url, |p| &p.url);
    let targets = targets(connect_to, job.plan, log)
        .await
        .map_err(|e| via(proxy, e))?;
    for target in targets {
        match exchange(&target, &request, log, deadline).await {
            Ok(body) => {
                let now = nginx_sys::ngx_time();
                return Ok(check_response(&body, job.status_id, &job.check, now, job.rules)?);
            }
            // A bad answer is the responder's answer: other addresses of
            // the same responder would give the same.
            Err(e @ FetchError::Http(_)) => return Err(via(proxy, e)),
            Err(e) => {
                log_info!(
                    log,
                    "OCSP responder {} for certificate \"{}\": {e}; trying the next address",
                    target.text,
                    job.name
                );
                last = Some(e)
            }
        }
        if deadline.remaining().is_none() {
            break;
        }
    }
    Err(via(proxy, last.unwrap_or(FetchError::Net(NetError::TimedOut))))
}

fn proxy_reason(code: u16) -> &'static str {
    match code {
        407 => " (Proxy Authentication Required: check the credentials of \"ssl_stapling_proxy\")",
        502 => " (Bad Gateway: it could not reach the responder)",
        503 => " (Service Unavailable)",
        504 => " (Gateway Timeout: the responder did not answer it in time)",
        _ => "",
    }
}

/// An error met through a proxy names it: was it the proxy or the
/// responder behind it? (A 407, 502 or 504 is the proxy's answer.)
fn via(proxy: Option<&ProxyUrl>, e: FetchError) -> FetchError {
    match (proxy, e) {
        (None, e) => e,
        (Some(p), FetchError::Http(HttpError::Status(code @ (407 | 502 | 503 | 504)))) => {
            FetchError::ProxyStatus {
                proxy: p.to_string(),
                code,
            }
        }
        (Some(p), e) => FetchError::Proxy(p.to_string(), Box::new(e)),
    }
}

async fn exchange(
    target: &Target,
    request: &[u8],
    log: Log,
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
