//! One certificate the module staples, as found at configuration time:
//! its id in shared memory, its OCSP identity, where its staple comes from.

use std::fmt;
use std::ptr::NonNull;

use nginx_sys::{ngx_msec_t, ngx_resolver_t};
use openssl::hash::MessageDigest;
use openssl::x509::{X509Ref, X509};

use crate::ocsp::responder::{ProxyUrl, ResponderUrl};
use crate::ocsp::response::{CertificateStatusId, ChainSignatureCheck, CheckedResponse};

/// Where and how a certificate's staple is fetched.
pub struct FetchPlan {
    /// The responders, tried in order until one answers: the server's
    /// `ssl_stapling_responder`, else every OCSP URL of the certificate's
    /// Authority Information Access. Never empty.
    pub urls: Vec<ResponderUrl>,
    /// The server's `resolver`, when it has name servers.
    pub resolver: Option<(NonNull<ngx_resolver_t>, ngx_msec_t)>,
    /// The server's `ssl_stapling_proxy`: responders are reached through it
    /// (the proxy resolves their names).
    pub proxy: Option<ProxyUrl>,
}

impl FetchPlan {
    /// The responders, for log lines and the status page.
    pub fn describe(&self) -> String {
        let urls: Vec<String> = self.urls.iter().map(|u| u.to_string()).collect();
        urls.join(", ")
    }
}

/// A staple fetched, and the responder that answered.
pub struct Fetched {
    pub response: CheckedResponse,
    pub from: String,
}

/// The id of one staple, in the zone and in the store: SHA-256 over the
/// certificate's DER and what decides which response is its staple. nginx
/// keeps a staple per server and certificate, fetched from that server's
/// responder and checked with that server's settings; here servers whose
/// settings agree share one staple (one entry, one lease, one fetch), and
/// servers whose settings differ never serve each other's.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(C)]
pub struct StapleKey(pub [u8; 32]);

/// What, besides the certificate, makes a staple.
pub enum StapleSettings<'a> {
    /// From a `ssl_stapling_file`: the file belongs to its server.
    File { path: &'a str },
    /// Fetched for a certificate in the configuration: the responder it is
    /// fetched from, the issuer its CertID names, the chain the signature
    /// check uses, and the server's check settings (`ServerChecks`).
    Fetched {
        responder: &'a str,
        issuer: Option<&'a X509Ref>,
        chain: &'a [X509],
        checks: &'a ServerChecks,
    },
    /// Fetched for a certificate loaded by variables: its server's
    /// `ssl_stapling_responder` (else its AIA) and check settings.
    Dynamic {
        responder: Option<&'a str>,
        checks: &'a ServerChecks,
    },
}

/// A server's settings for checking responses: `ssl_stapling_verify`, and
/// with it on, a digest of the trusted store (`ssl_trusted_certificate`
/// and the server's other CA certificates, CRLs and flags) the check
/// verifies against. Without verify, nginx checks the signature only and
/// the store plays no part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerChecks {
    pub verify: bool,
    pub trust: [u8; 32],
}

/// Length-prefixed fields into one SHA-256, so that no two field lists
/// hash alike.
struct FieldHasher(openssl::sha::Sha256);

impl FieldHasher {
    fn field(&mut self, bytes: &[u8]) {
        self.0.update(&(bytes.len() as u64).to_be_bytes());
        self.0.update(bytes);
    }
}

impl StapleKey {
    pub fn new(cert: &X509Ref, settings: &StapleSettings) -> Option<StapleKey> {
        let mut h = FieldHasher(openssl::sha::Sha256::new());
        h.field(&cert.to_der().ok()?);
        let checks = |h: &mut FieldHasher, c: &ServerChecks| {
            h.field(&[u8::from(c.verify)]);
            if c.verify {
                h.field(&c.trust);
            }
        };
        match settings {
            StapleSettings::File { path } => {
                h.field(b"file");
                h.field(path.as_bytes());
            }
            StapleSettings::Fetched {
                responder,
                issuer,
                chain,
                checks: c,
            } => {
                h.field(b"fetched");
                h.field(responder.as_bytes());
                h.field(&issuer.map(|i| i.to_der()).transpose().ok()?.unwrap_or_default());
                for c in chain.iter() {
                    h.field(&c.to_der().ok()?);
                }
                checks(&mut h, c);
            }
            StapleSettings::Dynamic { responder, checks: c } => {
                h.field(b"dynamic");
                h.field(responder.unwrap_or("").as_bytes());
                checks(&mut h, c);
            }
        }
        Some(StapleKey(h.0.finish()))
    }

    /// The SHA-256 of a certificate's DER: how the status page names a
    /// certificate, and the name under which releases before staple keys
    /// stored its staple.
    pub fn certificate_sha256(cert: &X509Ref) -> Option<StapleKey> {
        let digest = cert.digest(MessageDigest::sha256()).ok()?;
        let mut key = [0u8; 32];
        if digest.len() != key.len() {
            return None;
        }
        key.copy_from_slice(&digest);
        Some(StapleKey(key))
    }

    /// Parses the 64 hex digits `Display` writes (nothing else: not even
    /// the sign `u8::from_str_radix` would take).
    pub fn parse(hex: &str) -> Option<StapleKey> {
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut key = [0u8; 32];
        for (i, b) in key.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(StapleKey(key))
    }
}

impl fmt::Display for StapleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for StapleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Which nginx block a server came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http,
    /// Made only where nginx has stream stapling (1.27.2 and later).
    #[cfg_attr(not(ngx_stream_stapling), allow(dead_code))]
    Stream,
}

/// A certificate with `ssl_stapling on`, as the module registered it.
pub struct Certificate {
    /// Its staple's id (the certificate and its server's settings).
    pub key: StapleKey,
    /// The SHA-256 of the certificate's DER.
    pub sha256: StapleKey,
    /// nginx's name for it (the `ssl_certificate` path), for log lines.
    pub name: String,
    pub x509: X509,
    pub chain: Vec<X509>,
    pub status_id: CertificateStatusId,
    /// `ssl_stapling_file`, when the staple comes from a file.
    pub file: Option<String>,
    /// The file's response, when it passed the checks.
    pub file_staple: Option<CheckedResponse>,
    pub verify: bool,
    pub protocol: Protocol,
    /// The SSL_CTX it was loaded into (its trusted store verifies
    /// responses); lives as long as the cycle.
    pub ssl_ctx: *mut openssl_sys::SSL_CTX,
    /// How its staple is fetched; None for staple files and certificates
    /// that cannot be fetched for (nginx has warned why).
    pub plan: Option<FetchPlan>,
    /// Carries the TLS Feature extension with status_request (RFC 7633):
    /// browsers refuse it without a staple.
    pub must_staple: bool,
    /// The names of the servers whose staple this is (`server_name`), for
    /// the status page.
    pub servers: Vec<String>,
    /// Met in a handshake (loaded by variables), not in the configuration.
    pub dynamic: bool,
}

/// `id-pe-tlsfeature` (1.3.6.1.5.5.7.1.24).
const NID_TLSFEATURE: std::ffi::c_int = 1020;
/// The TLS extension number of status_request.
const STATUS_REQUEST: u64 = 5;

/// Whether the certificate demands a staple (RFC 7633 "must-staple").
pub fn is_must_staple(cert: &X509Ref) -> bool {
    use foreign_types::ForeignTypeRef;
    // SAFETY: read-only looks into a live certificate; the extension data
    // is copied before `cert` can go away.
    let value = unsafe {
        let x = cert.as_ptr();
        let i = openssl_sys::X509_get_ext_by_NID(x, NID_TLSFEATURE, -1);
        if i < 0 {
            return false;
        }
        let ext = openssl_sys::X509_get_ext(x, i);
        if ext.is_null() {
            return false;
        }
        let data = openssl_sys::X509_EXTENSION_get_data(ext) as *const openssl_sys::ASN1_STRING;
        if data.is_null() {
            return false;
        }
        let len = usize::try_from(openssl_sys::ASN1_STRING_length(data)).unwrap_or(0);
        let p = openssl_sys::ASN1_STRING_get0_data(data);
        if p.is_null() || len == 0 {
            return false;
        }
        std::slice::from_raw_parts(p, len).to_vec()
    };
    tls_features(&value).is_some_and(|f| f.contains(&STATUS_REQUEST))
}

/// Parses the DER of a TLS Feature extension: SEQUENCE OF INTEGER.
pub fn tls_features(der: &[u8]) -> Option<Vec<u64>> {
    fn header(d: &[u8]) -> Option<(u8, usize, &[u8])> {
        let (&tag, rest) = d.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (first as usize, rest)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
            (len, &rest[n..])
        };
        (rest.len() >= len).then_some((tag, len, rest))
    }
    let (tag, len, rest) = header(der)?;
    if tag != 0x30 {
        return None;
    }
    let mut body = rest.get(..len)?;
    let mut out = Vec::new();
    while !body.is_empty() {
        let (tag, len, rest) = header(body)?;
        if tag != 0x02 || len == 0 || len > 8 {
            return None;
        }
        let v = rest.get(..len)?.iter().fold(0u64, |a, &b| (a << 8) | b as u64);
        out.push(v);
        body = rest.get(len..)?;
    }
    Some(out)
}

impl Certificate {
    pub fn signature_check(&self) -> ChainSignatureCheck<'_> {
        // SAFETY: the SSL_CTX outlives the cycle's certificates, and always
        // has a store.
        let store = unsafe {
            use foreign_types::ForeignTypeRef;
            openssl::x509::store::X509StoreRef::from_ptr(openssl_sys::SSL_CTX_get_cert_store(self.ssl_ctx))
        };
        ChainSignatureCheck {
            chain: &self.chain,
            store,
            verify: self.verify,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{tls_features, ServerChecks, StapleKey, StapleSettings};
    use openssl::x509::X509;

    fn pem(name: &str) -> X509 {
        let path = format!("{}/src/ocsp/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        X509::from_pem(&std::fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn staple_keys_follow_the_settings() {
        let (leaf, ca, other) = (pem("leaf.pem"), pem("ca.pem"), pem("other.pem"));
        let off = ServerChecks {
            verify: false,
            trust: [0; 32],
        };
        let off_other_trust = ServerChecks {
            verify: false,
            trust: [1; 32],
        };
        let on = ServerChecks {
            verify: true,
            trust: [1; 32],
        };
        let on_other_trust = ServerChecks {
            verify: true,
            trust: [2; 32],
        };
        let chain = [ca.clone()];
        let fetched = |cert: &X509, responder, checks| {
            StapleKey::new(
                cert,
                &StapleSettings::Fetched {
                    responder,
                    issuer: Some(&ca),
                    chain: &chain,
                    checks,
                },
            )
            .unwrap()
        };
        let base = fetched(&leaf, "http://a/", &off);
        assert_eq!(base, fetched(&leaf, "http://a/", &off));
        // Without verify, the trusted store plays no part.
        assert_eq!(base, fetched(&leaf, "http://a/", &off_other_trust));
        assert_ne!(base, fetched(&leaf, "http://b/", &off));
        assert_ne!(base, fetched(&leaf, "http://a/", &on));
        assert_ne!(
            fetched(&leaf, "http://a/", &on),
            fetched(&leaf, "http://a/", &on_other_trust)
        );
        assert_ne!(base, fetched(&other, "http://a/", &off));
        let no_chain = StapleKey::new(
            &leaf,
            &StapleSettings::Fetched {
                responder: "http://a/",
                issuer: Some(&ca),
                chain: &[],
                checks: &off,
            },
        );
        assert_ne!(Some(base), no_chain);
        let file = |path| StapleKey::new(&leaf, &StapleSettings::File { path }).unwrap();
        assert_ne!(file("/a.der"), file("/b.der"));
        assert_ne!(file("/a.der"), base);
        let dynamic = StapleKey::new(
            &leaf,
            &StapleSettings::Dynamic {
                responder: None,
                checks: &off,
            },
        )
        .unwrap();
        assert_ne!(dynamic, base);
        // The certificate hash is the plain SHA-256 of the DER.
        let sha = StapleKey::certificate_sha256(&leaf).unwrap();
        let want = openssl::sha::sha256(&leaf.to_der().unwrap());
        assert_eq!(sha.0, want);
        assert_eq!(StapleKey::parse(&sha.to_string()), Some(sha));
        assert_eq!(StapleKey::parse("zz"), None);
        assert_eq!(StapleKey::parse(&"g".repeat(64)), None);
        // Found by the fuzzer (store_file): "+E" passed from_str_radix.
        let signed = "0000+Ed0000aEdE0d0a000000aEdaaEdaaa000aEd0000aEd0000aEd0000aEdaa";
        assert_eq!(StapleKey::parse(signed), None);
    }

    #[test]
    fn tls_feature_status_request() {
        // SEQUENCE { INTEGER 5 }, as `openssl req -addext tlsfeature=status_request`.
        assert_eq!(tls_features(&[0x30, 0x03, 0x02, 0x01, 0x05]), Some(vec![5]));
        // status_request_v2 (17) and status_request.
        assert_eq!(
            tls_features(&[0x30, 0x06, 0x02, 0x01, 0x11, 0x02, 0x01, 0x05]),
            Some(vec![17, 5])
        );
        assert_eq!(tls_features(&[0x30, 0x00]), Some(vec![]));
    }

    #[test]
    fn tls_feature_garbage() {
        assert_eq!(tls_features(&[]), None);
        assert_eq!(tls_features(&[0x31, 0x03, 0x02, 0x01, 0x05]), None);
        assert_eq!(tls_features(&[0x30, 0x05, 0x02, 0x01, 0x05]), None);
        assert_eq!(tls_features(&[0x30, 0x03, 0x04, 0x01, 0x05]), None);
        assert_eq!(tls_features(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
    }
}
