//! OCSP response checks that need no nginx: parse a DER response, find the
//! SingleResponse for one certificate, check its validity window against a
//! given time. The same checks apply to staples read from `ssl_stapling_file`,
//! fetched from a responder, or read back from a store.

use std::collections::HashMap;

use foreign_types::ForeignTypeRef;
use openssl::asn1::{Asn1GeneralizedTimeRef, Asn1Time, Asn1TimeRef};
use openssl::error::ErrorStack;
use openssl::hash::{hash, MessageDigest};
use openssl::ocsp::{
    OcspBasicResponse, OcspBasicResponseRef, OcspCertId, OcspCertStatus, OcspFlag, OcspResponse,
    OcspResponseStatus,
};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreRef;
use openssl::x509::{X509Ref, X509};

use crate::base::ffi;

/// nginx accepts thisUpdate up to 5 minutes in the future and nextUpdate up
/// to 5 minutes in the past (`OCSP_check_validity(..., 300, -1)`).
pub const DEFAULT_SKEW_SECS: i64 = 300;

/// The time rules a response must pass besides its nextUpdate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRules {
    /// How far in the future thisUpdate may be (clocks differ):
    /// `ssl_stapling_time_skew`.
    pub skew: i64,
    /// How old thisUpdate may be, if limited: `ssl_stapling_max_age`.
    pub max_age: Option<i64>,
}

impl Default for TimeRules {
    fn default() -> Self {
        TimeRules {
            skew: DEFAULT_SKEW_SECS,
            max_age: None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OcspError {
    #[error("not a DER-encoded OCSP response")]
    Parse,
    #[error("OCSP response status is \"{0}\"")]
    NotSuccessful(&'static str),
    #[error("not a basic OCSP response")]
    NotBasic,
    #[error("no status for this certificate in the OCSP response (it is for another certificate)")]
    NoMatchingResponse,
    #[error("OCSP response has a thisUpdate {0} s in the future")]
    NotYetValid(i64),
    #[error("OCSP response expired {0} s ago (nextUpdate is in the past)")]
    Expired(i64),
    #[error("OCSP response is {age} s old (thisUpdate), more than ssl_stapling_max_age ({max} s)")]
    TooOld { age: i64, max: i64 },
    #[error("OCSP response has nextUpdate before thisUpdate")]
    BadValidity,
    #[error("unreadable time in the OCSP response")]
    BadTime,
    #[error("OCSP response signature verification failed: {0}")]
    Verify(String),
}

/// The revocation status a response gives for our certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    Good,
    Revoked,
    Unknown,
}

impl CertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CertStatus::Good => "good",
            CertStatus::Revoked => "revoked",
            CertStatus::Unknown => "unknown",
        }
    }
}

/// A response that passed every check, ready to be stapled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedResponse {
    pub der: Vec<u8>,
    pub status: CertStatus,
    /// Unix seconds.
    pub this_update: i64,
    /// Unix seconds; `None` when the responder gave no nextUpdate.
    pub next_update: Option<i64>,
}

/// What identifies one certificate in OCSP (RFC 6960 4.1.1): the issuer's
/// name and key hashes and the serial. Without the issuer only the issuer
/// name hash and the serial can be compared.
pub struct CertificateStatusId {
    cert: X509,
    issuer: Option<X509>,
}

impl CertificateStatusId {
    pub fn new(cert: &X509Ref, issuer: Option<&X509Ref>) -> Self {
        CertificateStatusId {
            cert: cert.to_owned(),
            issuer: issuer.map(|i| i.to_owned()),
        }
    }

    pub fn has_issuer(&self) -> bool {
        self.issuer.is_some()
    }

    /// The CertID nginx puts in its requests: SHA-1 hashes
    /// (`OCSP_cert_to_id(NULL, cert, issuer)`).
    pub fn cert_id(&self) -> Option<OcspCertId> {
        let issuer = self.issuer.as_ref()?;
        OcspCertId::from_cert(MessageDigest::sha1(), &self.cert, issuer).ok()
    }

    /// Finds our SingleResponse: (status, thisUpdate, nextUpdate).
    fn find(&self, basic: &OcspBasicResponseRef) -> Result<(CertStatus, i64, Option<i64>), OcspError> {
        if let Some(id) = self.cert_id() {
            let st = basic.find_status(&id).ok_or(OcspError::NoMatchingResponse)?;
            let this = generalized_to_unix(st.this_update)?;
            let next = st.next_update().map(generalized_to_unix).transpose()?;
            return Ok((cert_status(st.status), this, next));
        }
        self.find_by_serial_and_issuer_name(basic)
            .ok_or(OcspError::NoMatchingResponse)
    }

    /// Looks for a SHA-1 CertID with the certificate's serial and issuer
    /// name hash. Used only when the issuer certificate is unknown (a staple
    /// file for a certificate configured without its chain), where the key
    /// hash cannot be computed.
    fn find_by_serial_and_issuer_name(
        &self,
        basic: &OcspBasicResponseRef,
    ) -> Option<(CertStatus, i64, Option<i64>)> {
        let name_der = self.cert.issuer_name().to_der().ok()?;
        let want_name_hash = hash(MessageDigest::sha1(), &name_der).ok()?;
        let want_serial = self.cert.serial_number().to_bn().ok()?.to_vec();
        let single = ffi::single_responses(basic).into_iter().find(|s| {
            s.sha1_issuer_name_hash == Some(&want_name_hash[..])
                && s.serial
                    .and_then(|n| n.to_bn().ok())
                    .is_some_and(|n| n.to_vec() == want_serial)
        })?;
        let this = generalized_to_unix(single.this_update?).ok()?;
        let next = match single.next_update {
            Some(t) => Some(generalized_to_unix(t).ok()?),
            None => None,
        };
        let status = match single.status {
            openssl_sys::V_OCSP_CERTSTATUS_GOOD => CertStatus::Good,
            openssl_sys::V_OCSP_CERTSTATUS_REVOKED => CertStatus::Revoked,
            _ => CertStatus::Unknown,
        };
        Some((status, this, next))
    }
}

fn cert_status(s: OcspCertStatus) -> CertStatus {
    if s == OcspCertStatus::GOOD {
        CertStatus::Good
    } else if s == OcspCertStatus::REVOKED {
        CertStatus::Revoked
    } else {
        CertStatus::Unknown
    }
}

pub(crate) fn generalized_to_unix(t: &Asn1GeneralizedTimeRef) -> Result<i64, OcspError> {
    // SAFETY: ASN1_GENERALIZEDTIME and ASN1_TIME are both ASN1_STRING in
    // OpenSSL; the ASN1_TIME functions accept either.
    let t = unsafe { Asn1TimeRef::from_ptr(t.as_ptr().cast()) };
    asn1_to_unix(t)
}

pub(crate) fn asn1_to_unix(t: &Asn1TimeRef) -> Result<i64, OcspError> {
    let epoch = Asn1Time::from_unix(0).map_err(|_| OcspError::BadTime)?;
    let d = epoch.diff(t).map_err(|_| OcspError::BadTime)?;
    Ok(i64::from(d.days) * 86_400 + i64::from(d.secs))
}

fn response_status_name(s: OcspResponseStatus) -> &'static str {
    match s {
        OcspResponseStatus::MALFORMED_REQUEST => "malformedRequest",
        OcspResponseStatus::INTERNAL_ERROR => "internalError",
        OcspResponseStatus::TRY_LATER => "tryLater",
        OcspResponseStatus::SIG_REQUIRED => "sigRequired",
        OcspResponseStatus::UNAUTHORIZED => "unauthorized",
        _ => "unknown",
    }
}

/// How a basic response's signature is checked before anything else is
/// looked at (nginx: `OCSP_basic_verify(basic, chain, store, flags)`).
pub trait SignatureCheck {
    fn verify(&self, basic: &OcspBasicResponseRef) -> Result<(), OcspError>;
}

/// For staples nginx does not verify (`ssl_stapling_file`).
pub struct NoSignatureCheck;

impl SignatureCheck for NoSignatureCheck {
    fn verify(&self, _basic: &OcspBasicResponseRef) -> Result<(), OcspError> {
        Ok(())
    }
}

/// nginx's check of fetched responses: `OCSP_basic_verify` with the
/// certificate's chain and the SSL_CTX's trusted store, `OCSP_TRUSTOTHER`
/// with `ssl_stapling_verify on`, `OCSP_NOVERIFY` (signature only) without.
pub struct ChainSignatureCheck<'a> {
    pub chain: &'a [X509],
    pub store: &'a X509StoreRef,
    pub verify: bool,
}

impl SignatureCheck for ChainSignatureCheck<'_> {
    fn verify(&self, basic: &OcspBasicResponseRef) -> Result<(), OcspError> {
        let err = |e: ErrorStack| OcspError::Verify(first_reason(&e));
        let mut stack = Stack::new().map_err(err)?;
        for c in self.chain {
            stack.push(c.clone()).map_err(err)?;
        }
        let flags = if self.verify {
            OcspFlag::TRUST_OTHER
        } else {
            OcspFlag::NO_VERIFY
        };
        basic.verify(&stack, self.store, flags).map_err(err)
    }
}

fn first_reason(e: &ErrorStack) -> String {
    e.errors()
        .iter()
        .rev()
        .find_map(|e| e.reason().map(str::to_string))
        .unwrap_or_else(|| "verification failed".to_string())
}

/// Certificates met in responses, each parsed once: a responder puts the
/// same certificate (its own, or its CA's) into every response it signs.
#[derive(Default)]
pub struct CertCache(HashMap<Vec<u8>, X509>);

/// The most distinct certificates a cache keeps (responses from a hostile
/// store may each carry another).
const CERT_CACHE_MAX: usize = 64;

impl CertCache {
    fn get(&mut self, der: &[u8]) -> Option<X509> {
        if let Some(c) = self.0.get(der) {
            return Some(c.clone());
        }
        let c = X509::from_der(der).ok()?;
        if self.0.len() < CERT_CACHE_MAX {
            self.0.insert(der.to_vec(), c.clone());
        }
        Some(c)
    }
}

/// The basic response of a successful response, its certificates taken
/// from `cache`: what parsing the whole response gives, without parsing a
/// certificate met before. `None` when the response must be parsed whole
/// (another status, another encoding, anything that does not parse).
fn basic_with_cache(der: &[u8], cache: &mut CertCache) -> Option<OcspBasicResponse> {
    let parts = split::split(der)?;
    let basic = ffi::basic_from_der(&parts.basic_without_certs)?;
    for c in parts.certs {
        let cert = cache.get(c)?;
        if !ffi::basic_add_cert(&basic, &cert) {
            return None;
        }
    }
    Some(basic)
}

/// Checks one DER response for one certificate at time `now` (Unix seconds),
/// the way nginx checks fetched responses, plus the check nginx leaves out:
/// a response already past its nextUpdate is refused, since it would never
/// be served; and, when `rules` limit it, one whose thisUpdate is too old.
pub fn check_response(
    der: &[u8],
    id: &CertificateStatusId,
    signature: &dyn SignatureCheck,
    now: i64,
    rules: &TimeRules,
) -> Result<CheckedResponse, OcspError> {
    check_response_cached(der, id, signature, now, rules, &mut CertCache::default())
}

/// `check_response`, with the certificates responses carry parsed once
/// per `cache`.
pub fn check_response_cached(
    der: &[u8],
    id: &CertificateStatusId,
    signature: &dyn SignatureCheck,
    now: i64,
    rules: &TimeRules,
    cache: &mut CertCache,
) -> Result<CheckedResponse, OcspError> {
    if let Some(basic) = basic_with_cache(der, cache) {
        return check_basic(der, &basic, id, signature, now, rules);
    }
    check_whole(der, id, signature, now, rules)
}

/// `check_response` parsing the whole response, certificates and all:
/// the reference the faster path is compared with (unit tests, fuzzing).
pub fn check_whole(
    der: &[u8],
    id: &CertificateStatusId,
    signature: &dyn SignatureCheck,
    now: i64,
    rules: &TimeRules,
) -> Result<CheckedResponse, OcspError> {
    let resp = OcspResponse::from_der(der).map_err(|_| OcspError::Parse)?;
    let status = resp.status();
    if status != OcspResponseStatus::SUCCESSFUL {
        return Err(OcspError::NotSuccessful(response_status_name(status)));
    }
    let basic = resp.basic().map_err(|_| OcspError::NotBasic)?;
    check_basic(der, &basic, id, signature, now, rules)
}

/// The checks of a successful response's basic response.
fn check_basic(
    der: &[u8],
    basic: &OcspBasicResponseRef,
    id: &CertificateStatusId,
    signature: &dyn SignatureCheck,
    now: i64,
    rules: &TimeRules,
) -> Result<CheckedResponse, OcspError> {
    signature.verify(basic)?;
    let (status, this_update, next_update) = id.find(basic)?;
    check_validity(this_update, next_update, now, rules)?;
    Ok(CheckedResponse {
        der: der.to_vec(),
        status,
        this_update,
        next_update,
    })
}

/// An OCSPResponse's DER at the start of `bytes`, and what follows it
/// (a stored staple's seal); `None` when `bytes` do not start with one
/// strict DER SEQUENCE.
pub fn leading_response(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    split::leading_sequence(bytes)
}

/// The latest nextUpdate in a response, whichever certificate it is for;
/// `Err` when it is not a successful basic response.
pub fn peek_next_update(der: &[u8]) -> Result<Option<i64>, OcspError> {
    let resp = OcspResponse::from_der(der).map_err(|_| OcspError::Parse)?;
    if resp.status() != OcspResponseStatus::SUCCESSFUL {
        return Err(OcspError::NotSuccessful(response_status_name(resp.status())));
    }
    let basic = resp.basic().map_err(|_| OcspError::NotBasic)?;
    Ok(ffi::single_responses(&basic)
        .iter()
        .filter_map(|s| generalized_to_unix(s.next_update?).ok())
        .max())
}

/// RFC 6960 4.2.2.1 validity window, with a skew allowance for thisUpdate
/// (nginx's is 5 minutes) and, if set, a maximum age; a nextUpdate in the
/// past is always refused.
pub fn check_validity(
    this_update: i64,
    next_update: Option<i64>,
    now: i64,
    rules: &TimeRules,
) -> Result<(), OcspError> {
    if this_update > now.saturating_add(rules.skew) {
        return Err(OcspError::NotYetValid(this_update - now));
    }
    if let Some(max) = rules.max_age {
        let age = now.saturating_sub(this_update);
        if age > max {
            return Err(OcspError::TooOld { age, max });
        }
    }
    if let Some(next) = next_update {
        if next < this_update {
            return Err(OcspError::BadValidity);
        }
        if next <= now {
            return Err(OcspError::Expired(now - next));
        }
    }
    Ok(())
}

mod split;

#[cfg(test)]
mod tests;
