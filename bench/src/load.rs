//! The load client: threads making full TLS handshakes (no session
//! resumption) that ask for a staple, and counting those that carried a
//! valid one (successful, for the served certificate, status good, not
//! past nextUpdate).

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openssl::hash::MessageDigest;
use openssl::ocsp::{OcspCertId, OcspCertStatus, OcspResponse, OcspResponseStatus};
use openssl::ssl::{SslConnector, SslMethod, SslSessionCacheMode, SslVerifyMode};
use openssl::x509::{X509Ref, X509};

#[derive(Default, Debug, Clone, Copy)]
pub struct Counts {
    pub handshakes: u64,
    pub stapled: u64,
    pub failed: u64,
}

#[derive(Default)]
struct Shared {
    handshakes: AtomicU64,
    stapled: AtomicU64,
    failed: AtomicU64,
}

pub struct Client {
    connector: SslConnector,
    issuer: X509,
}

impl Client {
    pub fn new(issuer: &X509Ref) -> Result<Client, openssl::error::ErrorStack> {
        let mut b = SslConnector::builder(SslMethod::tls_client())?;
        b.set_verify(SslVerifyMode::NONE);
        b.set_session_cache_mode(SslSessionCacheMode::OFF);
        Ok(Client {
            connector: b.build(),
            issuer: issuer.to_owned(),
        })
    }

    /// One handshake to `addr` for `sni`: Ok(true) when it carried a valid
    /// staple.
    pub fn handshake(&self, addr: SocketAddr, sni: &str) -> Result<bool, Box<dyn std::error::Error>> {
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut cfg = self.connector.configure()?;
        cfg.set_verify_hostname(false);
        cfg.set_status_type(openssl::ssl::StatusType::OCSP)?;
        let stream = cfg.connect(sni, tcp)?;
        let ssl = stream.ssl();
        let Some(der) = ssl.ocsp_status() else {
            return Ok(false);
        };
        let Some(cert) = ssl.peer_certificate() else {
            return Ok(false);
        };
        Ok(valid_staple(der, &cert, &self.issuer))
    }
}

fn valid_staple(der: &[u8], cert: &X509Ref, issuer: &X509Ref) -> bool {
    let Ok(resp) = OcspResponse::from_der(der) else {
        return false;
    };
    if resp.status() != OcspResponseStatus::SUCCESSFUL {
        return false;
    }
    let Ok(basic) = resp.basic() else {
        return false;
    };
    let Ok(id) = OcspCertId::from_cert(MessageDigest::sha1(), cert, issuer) else {
        return false;
    };
    match basic.find_status(&id) {
        Some(st) => st.status == OcspCertStatus::GOOD && st.check_validity(0, None).is_ok(),
        None => false,
    }
}

/// Runs `threads` clients against `addr` for `duration`, each picking SNI
/// names round-robin from `names`.
pub fn run(
    client: Arc<Client>,
    addr: SocketAddr,
    names: Arc<Vec<String>>,
    threads: usize,
    duration: Duration,
) -> Counts {
    let shared = Arc::new(Shared::default());
    let end = Instant::now() + duration;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (client, names, shared) = (client.clone(), names.clone(), shared.clone());
            std::thread::spawn(move || {
                let mut i = t;
                while Instant::now() < end {
                    let name = &names[i % names.len()];
                    i += threads;
                    match client.handshake(addr, name) {
                        Ok(stapled) => {
                            shared.handshakes.fetch_add(1, Ordering::Relaxed);
                            if stapled {
                                shared.stapled.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(_) => {
                            shared.failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    Counts {
        handshakes: shared.handshakes.load(Ordering::Relaxed),
        stapled: shared.stapled.load(Ordering::Relaxed),
        failed: shared.failed.load(Ordering::Relaxed),
    }
}

/// Handshakes one after another until one is stapled, as a first client
/// would see it: whether one was, and the handshakes it took (counted in
/// `Counts`, so a stapled share includes the ones before).
pub fn until_first_staple(client: &Client, addr: SocketAddr, sni: &str, limit: Duration) -> (bool, Counts) {
    let start = Instant::now();
    let mut c = Counts::default();
    while start.elapsed() < limit {
        match client.handshake(addr, sni) {
            Ok(true) => {
                c.handshakes += 1;
                c.stapled += 1;
                return (true, c);
            }
            Ok(false) => c.handshakes += 1,
            Err(_) => c.failed += 1,
        }
    }
    (false, c)
}

impl Counts {
    pub fn add(self, o: Counts) -> Counts {
        Counts {
            handshakes: self.handshakes + o.handshakes,
            stapled: self.stapled + o.stapled,
            failed: self.failed + o.failed,
        }
    }
}
