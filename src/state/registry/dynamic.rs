//! Certificates loaded by variables: met during handshakes, registered
//! in the worker that met them, with their server's settings.

use std::collections::HashMap;
use std::rc::Rc;

use foreign_types::ForeignTypeRef;
use openssl::ssl::SslRef;
use openssl::x509::X509Ref;

use super::{responder_urls, subject_of, DynamicCert, StaplingContext};
use crate::base::ffi;
use crate::base::log::{log_warn, Log};
use crate::ocsp::response::CertificateStatusId;
use crate::state::certificate::FetchPlan;
use crate::state::certificate::{is_must_staple, Certificate, StapleKey};

impl StaplingContext {
    /// This worker's registration of a certificate loaded by variables,
    /// marked as used now.
    pub fn dynamic_cert(&self, key: &StapleKey, now: i64) -> Option<Rc<Certificate>> {
        let mut d = self.dynamic.borrow_mut();
        let e = d.get_mut(key)?;
        e.last_used = now;
        Some(e.cert.clone())
    }

    /// Registers, in this worker, a certificate a handshake of `ssl` used
    /// that the configuration did not show: its issuer from the chain nginx
    /// loaded with it (else the trusted store), its responder from the
    /// server's `ssl_stapling_responder` or its AIA. Keeps at most
    /// `dynamic_max` of them, dropping the least recently used.
    ///
    /// `x509` is the certificate `ssl` uses.
    pub fn add_dynamic(
        &self,
        ssl: &SslRef,
        x509: &X509Ref,
        key: StapleKey,
        log_: Log,
        now: i64,
    ) -> Option<Rc<Certificate>> {
        let ssl_ctx = ssl.ssl_context();
        let server = self.server_of(ssl_ctx.as_ptr())?;
        let chain = ffi::connection_chain(ssl);
        let issuer = ffi::issuer_of(ssl_ctx, x509, &chain);
        let status_id = CertificateStatusId::new(x509, issuer.as_deref());
        let name = subject_of(x509);
        let plan = if status_id.has_issuer() {
            let mut parsed = HashMap::new();
            let urls = responder_urls(server.responder.as_deref(), x509, &name, &mut parsed, log_);
            (!urls.is_empty()).then_some(FetchPlan {
                urls,
                resolver: server.resolver,
                proxy: server.proxy.clone(),
            })
        } else {
            log_warn!(
                log_,
                "no issuer certificate for certificate \"{name}\" loaded by variables; \
                 it is not stapled (add the chain to its file or \"ssl_trusted_certificate\")"
            );
            None
        };
        let cert = Rc::new(Certificate {
            key,
            sha256: StapleKey::certificate_sha256(x509)?,
            name,
            x509: x509.to_owned(),
            chain,
            status_id,
            file: None,
            file_staple: None,
            verify: server.checks.verify,
            protocol: server.protocol,
            ssl_ctx: ssl_ctx.as_ptr(),
            plan,
            must_staple: is_must_staple(x509),
            servers: server.names.clone(),
            dynamic: true,
        });
        let mut d = self.dynamic.borrow_mut();
        while d.len() >= self.settings.dynamic_max.max(1) {
            let Some(oldest) = d.iter().min_by_key(|(_, c)| c.last_used).map(|(k, _)| *k) else {
                break;
            };
            d.remove(&oldest);
        }
        d.insert(
            key,
            DynamicCert {
                cert: cert.clone(),
                last_used: now,
            },
        );
        Some(cert)
    }

    /// This worker's certificates loaded by variables (a snapshot: the
    /// fetch loop must not hold the map across its awaits).
    pub fn dynamic_snapshot(&self) -> Vec<Rc<Certificate>> {
        self.dynamic.borrow().values().map(|d| d.cert.clone()).collect()
    }
}
