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
