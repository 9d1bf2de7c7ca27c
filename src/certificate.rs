//! One certificate the module staples, as found at configuration time:
//! its id in shared memory, its OCSP identity, where its staple comes from.

use std::fmt;

use openssl::hash::{hash, MessageDigest};
use openssl::x509::{X509Ref, X509};

use crate::fetch::FetchPlan;
use crate::ocsp::{CertificateStatusId, ChainSignatureCheck, CheckedResponse};

/// The key of a certificate's entry in the zone: SHA-256 of its DER. A
/// certificate stapled from a `ssl_stapling_file` is keyed by its DER and
/// the file's path, since two servers may give one certificate two files.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(C)]
pub struct CertificateKey(pub [u8; 32]);

impl CertificateKey {
    pub fn of(cert: &X509Ref, file: Option<&str>) -> Option<CertificateKey> {
        let mut der = cert.to_der().ok()?;
        if let Some(path) = file {
            der.extend_from_slice(b"\0ssl_stapling_file:");
            der.extend_from_slice(path.as_bytes());
        }
        let digest = hash(MessageDigest::sha256(), &der).ok()?;
        let mut key = [0u8; 32];
        if digest.len() != key.len() {
            return None;
        }
        key.copy_from_slice(&digest);
        Some(CertificateKey(key))
    }
}

impl fmt::Display for CertificateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CertificateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Which nginx block a server came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http,
    Stream,
}

/// A certificate with `ssl_stapling on`, as the module registered it.
pub struct Certificate {
    pub key: CertificateKey,
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
    /// The names of the servers it is configured in (`server_name`), for
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
    use super::tls_features;

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
