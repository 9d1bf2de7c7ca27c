//! The few OpenSSL calls the `openssl` crate does not wrap: walking the
//! SingleResponses of a basic response, the issuer lookup nginx does in its
//! trusted store, and the SSL_CTX controls behind C macros. All of them are
//! in the libcrypto/libssl that nginx itself links.

use std::collections::HashMap;
use std::ffi::{c_int, c_void};
use std::ptr;

use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::asn1::{Asn1GeneralizedTimeRef, Asn1IntegerRef};
use openssl::hash::MessageDigest;
use openssl::ocsp::{OcspBasicResponse, OcspBasicResponseRef};
use openssl::ssl::{SslContextRef, SslRef};
use openssl::stack::StackRef;
use openssl::x509::X509StoreContext;
use openssl::x509::{X509Ref, X509};
use openssl_sys as sys;

#[allow(non_camel_case_types)]
type OCSP_SINGLERESP = c_void;

extern "C" {
    fn OCSP_resp_count(bs: *mut sys::OCSP_BASICRESP) -> c_int;
    fn OCSP_resp_get0(bs: *mut sys::OCSP_BASICRESP, idx: c_int) -> *mut OCSP_SINGLERESP;
    fn OCSP_SINGLERESP_get0_id(single: *const OCSP_SINGLERESP) -> *const sys::OCSP_CERTID;
    fn OCSP_id_get0_info(
        name_hash: *mut *mut sys::ASN1_OCTET_STRING,
        md: *mut *mut sys::ASN1_OBJECT,
        key_hash: *mut *mut sys::ASN1_OCTET_STRING,
        serial: *mut *mut sys::ASN1_INTEGER,
        cid: *mut sys::OCSP_CERTID,
    ) -> c_int;
    fn OCSP_single_get0_status(
        single: *mut OCSP_SINGLERESP,
        reason: *mut c_int,
        revtime: *mut *mut sys::ASN1_GENERALIZEDTIME,
        thisupd: *mut *mut sys::ASN1_GENERALIZEDTIME,
        nextupd: *mut *mut sys::ASN1_GENERALIZEDTIME,
    ) -> c_int;
    fn X509_STORE_CTX_get1_issuer(
        issuer: *mut *mut sys::X509,
        ctx: *mut sys::X509_STORE_CTX,
        x: *mut sys::X509,
    ) -> c_int;
    pub fn X509_get_ex_data(x: *mut sys::X509, idx: c_int) -> *mut c_void;
    fn X509_OBJECT_get0_X509_CRL(obj: *const sys::X509_OBJECT) -> *mut sys::X509_CRL;
    fn X509_STORE_get0_param(store: *mut sys::X509_STORE) -> *mut sys::X509_VERIFY_PARAM;
    fn ASN1_STRING_get0_data(x: *const sys::ASN1_STRING) -> *const u8;
    fn d2i_OCSP_BASICRESP(
        a: *mut *mut sys::OCSP_BASICRESP,
        input: *mut *const u8,
        len: std::ffi::c_long,
    ) -> *mut sys::OCSP_BASICRESP;
    #[cfg(test)]
    fn i2d_OCSP_BASICRESP(a: *mut sys::OCSP_BASICRESP, out: *mut *mut u8) -> c_int;
    fn OCSP_basic_add1_cert(resp: *mut sys::OCSP_BASICRESP, cert: *mut sys::X509) -> c_int;
}

/// Makes `len` bytes that `fill` writes the handshake's OCSP staple
/// (OpenSSL takes the buffer over); false when it could not.
pub fn set_ocsp_status_with(ssl: &mut SslRef, len: usize, fill: impl FnOnce(&mut [u8])) -> bool {
    let Ok(c_len) = std::ffi::c_long::try_from(len) else {
        return false;
    };
    // SAFETY: a fresh OPENSSL_malloc buffer of `len` bytes, filled, then
    // handed to the SSL (which frees it), or freed here if it refused it.
    unsafe {
        let p = sys::OPENSSL_malloc(len.max(1)) as *mut u8;
        if p.is_null() {
            return false;
        }
        fill(std::slice::from_raw_parts_mut(p, len));
        if sys::SSL_set_tlsext_status_ocsp_resp(ssl.as_ptr(), p, c_len) == 1 {
            return true;
        }
        sys::OPENSSL_free(p.cast());
        false
    }
}

/// A DER BasicOCSPResponse, parsed; `None` unless all of `der` is one.
pub fn basic_from_der(der: &[u8]) -> Option<OcspBasicResponse> {
    let len = std::ffi::c_long::try_from(der.len()).ok()?;
    let mut p = der.as_ptr();
    // SAFETY: d2i reads at most `len` bytes from `p` and advances it past
    // what it parsed; the result is a new object we own (or null).
    let basic = unsafe { d2i_OCSP_BASICRESP(ptr::null_mut(), &mut p, len) };
    if basic.is_null() {
        return None;
    }
    // SAFETY: a new object, owned from here on (freed on drop).
    let basic = unsafe { OcspBasicResponse::from_ptr(basic) };
    // SAFETY: `p` points into `der` or just past its end.
    let used = unsafe { p.offset_from(der.as_ptr()) };
    (used == der.len() as isize).then_some(basic)
}

/// Adds `cert` to the certificates a basic response carries (as parsing
/// a response with that certificate in it would have); false on failure.
pub fn basic_add_cert(basic: &OcspBasicResponseRef, cert: &X509Ref) -> bool {
    // SAFETY: both live; OCSP_basic_add1_cert takes its own reference.
    unsafe { OCSP_basic_add1_cert(basic.as_ptr(), cert.as_ptr()) == 1 }
}

/// A basic response's DER encoding.
#[cfg(test)]
pub fn basic_to_der(basic: &OcspBasicResponseRef) -> Option<Vec<u8>> {
    // SAFETY: i2d with a null output gives the length; then it writes
    // exactly that many bytes into a buffer of that size.
    unsafe {
        let len = i2d_OCSP_BASICRESP(basic.as_ptr(), ptr::null_mut());
        let mut out = vec![0u8; usize::try_from(len).ok()?];
        let mut p = out.as_mut_ptr();
        (i2d_OCSP_BASICRESP(basic.as_ptr(), &mut p) == len).then_some(out)
    }
}

/// `SSL_CTRL_SELECT_CURRENT_CERT` from ssl.h (OpenSSL 1.0.2+).
const SSL_CTRL_SELECT_CURRENT_CERT: c_int = 116;

/// The bytes of an ASN1 string (empty for null).
///
/// # Safety
/// `s` is null or a live ASN1_STRING that outlives `'a`.
unsafe fn octets<'a>(s: *const sys::ASN1_OCTET_STRING) -> &'a [u8] {
    if s.is_null() {
        return &[];
    }
    // SAFETY: a non-null ASN1_STRING from OpenSSL has `len` readable bytes at
    // `data`; the caller ties the slice to what owns the string.
    unsafe {
        let s = s as *const sys::ASN1_STRING;
        let len = usize::try_from(sys::ASN1_STRING_length(s)).unwrap_or(0);
        let data = ASN1_STRING_get0_data(s);
        if data.is_null() || len == 0 {
            return &[];
        }
        std::slice::from_raw_parts(data, len)
    }
}

/// One SingleResponse of a basic response, as OpenSSL reads it; borrowed
/// from the response. What it means is for `ocsp` to say.
pub struct SingleResponse<'a> {
    /// The CertID's issuer name hash when its hash algorithm is SHA-1.
    pub sha1_issuer_name_hash: Option<&'a [u8]>,
    /// The CertID's serial number.
    pub serial: Option<&'a Asn1IntegerRef>,
    /// `V_OCSP_CERTSTATUS_*`.
    pub status: c_int,
    pub this_update: Option<&'a Asn1GeneralizedTimeRef>,
    pub next_update: Option<&'a Asn1GeneralizedTimeRef>,
}

/// Every SingleResponse of `basic` (the `openssl` crate finds one by a full
/// CertID only).
pub fn single_responses(basic: &OcspBasicResponseRef) -> Vec<SingleResponse<'_>> {
    let bs = basic.as_ptr();
    let mut all = Vec::new();
    // SAFETY: `bs` is a live basic response; every pointer read below is
    // owned by it, and what is kept borrows `basic`.
    unsafe {
        for i in 0..OCSP_resp_count(bs) {
            let single = OCSP_resp_get0(bs, i);
            if single.is_null() {
                continue;
            }
            let mut this = ptr::null_mut();
            let mut next = ptr::null_mut();
            let status =
                OCSP_single_get0_status(single, ptr::null_mut(), ptr::null_mut(), &mut this, &mut next);
            let mut name_hash = ptr::null_mut();
            let mut md = ptr::null_mut();
            let mut serial = ptr::null_mut();
            let cid = OCSP_SINGLERESP_get0_id(single);
            let id_read = !cid.is_null()
                && OCSP_id_get0_info(
                    &mut name_hash,
                    &mut md,
                    ptr::null_mut(),
                    &mut serial,
                    cid as *mut _,
                ) == 1;
            let sha1 = id_read && !md.is_null() && sys::OBJ_obj2nid(md) == sys::NID_sha1;
            all.push(SingleResponse {
                sha1_issuer_name_hash: sha1.then(|| octets(name_hash)),
                serial: (id_read && !serial.is_null()).then(|| Asn1IntegerRef::from_ptr(serial)),
                status,
                this_update: (!this.is_null()).then(|| Asn1GeneralizedTimeRef::from_ptr(this)),
                next_update: (!next.is_null()).then(|| Asn1GeneralizedTimeRef::from_ptr(next)),
            });
        }
    }
    all
}

/// The chain nginx loaded with `cert` in `ctx`: what
/// `SSL_CTX_select_current_cert` and `SSL_CTX_get_extra_chain_certs` give,
/// as in ngx_ssl_stapling_certificate. Selects `cert` as the context's
/// current certificate, as nginx's own stapling code does at configuration
/// time.
pub fn chain_of(ctx: &SslContextRef, cert: &X509Ref) -> Vec<X509> {
    let mut chain: *mut sys::stack_st_X509 = ptr::null_mut();
    // SAFETY: `ctx` is a live SSL_CTX; both controls only select and read
    // its certificates (configuration time: nothing else uses it), and the
    // second writes a borrowed stack pointer into `chain`.
    unsafe {
        sys::SSL_CTX_ctrl(
            ctx.as_ptr(),
            SSL_CTRL_SELECT_CURRENT_CERT,
            0,
            cert.as_ptr().cast(),
        );
        sys::SSL_CTX_ctrl(
            ctx.as_ptr(),
            sys::SSL_CTRL_GET_EXTRA_CHAIN_CERTS,
            0,
            (&mut chain as *mut *mut sys::stack_st_X509).cast(),
        );
    }
    if chain.is_null() {
        return Vec::new();
    }
    // SAFETY: a non-null stack the context owns, copied out at once.
    let stack: &StackRef<X509> = unsafe { StackRef::from_ptr(chain) };
    stack.iter().map(|c| c.to_owned()).collect()
}

/// The issuer of `cert`: from its chain, else from the SSL_CTX's trusted
/// store (`ssl_trusted_certificate`), as ngx_ssl_stapling_issuer does.
pub fn issuer_of(ctx: &SslContextRef, cert: &X509Ref, chain: &[X509]) -> Option<X509> {
    if let Some(i) = chain
        .iter()
        .find(|i| i.issued(cert) == openssl::x509::X509VerifyResult::OK)
    {
        return Some(i.clone());
    }
    let store = ctx.cert_store();
    let sctx = X509StoreContext::new().ok()?;
    let mut issuer: *mut sys::X509 = ptr::null_mut();
    // SAFETY: a fresh store context, initialised on the live store (no
    // certificate to verify, no chain); get1_issuer writes a new reference
    // into `issuer` when it finds one.
    let found = unsafe {
        sys::X509_STORE_CTX_init(sctx.as_ptr(), store.as_ptr(), ptr::null_mut(), ptr::null_mut()) == 1
            && X509_STORE_CTX_get1_issuer(&mut issuer, sctx.as_ptr(), cert.as_ptr()) == 1
            && !issuer.is_null()
    };
    // SAFETY: get1 returned a new reference that X509 now owns.
    found.then(|| unsafe { X509::from_ptr(issuer) })
}

/// A digest of what a check against `ctx`'s trusted store depends on: its
/// certificates and CRLs (in any order) and its verification flags. Two
/// servers that load the same `ssl_trusted_certificate` get the same
/// digest. Certificate digests are remembered by pointer in `memo`: nginx's
/// certificate cache shares one X509 between the stores of many servers.
///
/// `memo`'s keys are addresses of X509 objects of the cycle: used only
/// while the cycle's configuration is being read.
pub fn trust_digest(ctx: &SslContextRef, memo: &mut HashMap<usize, [u8; 32]>) -> [u8; 32] {
    let mut parts: Vec<[u8; 32]> = Vec::new();
    let mut flags: u64 = 0;
    let store = ctx.cert_store().as_ptr();
    // SAFETY: the live context's store, read at configuration time in the
    // single-threaded master (no one changes it meanwhile); every object,
    // certificate and CRL read below is owned by it.
    unsafe {
        // Read at configuration time, in the single-threaded master: no
        // one changes the store meanwhile.
        let objects = sys::X509_STORE_get0_objects(store) as *const sys::OPENSSL_STACK;
        let n = if objects.is_null() {
            0
        } else {
            sys::OPENSSL_sk_num(objects)
        };
        for i in 0..n {
            let obj = sys::OPENSSL_sk_value(objects, i) as *const sys::X509_OBJECT;
            if obj.is_null() {
                continue;
            }
            let cert = sys::X509_OBJECT_get0_X509(obj);
            if !cert.is_null() {
                let d = *memo.entry(cert as usize).or_insert_with(|| {
                    let mut d = [0u8; 32];
                    if let Ok(h) = X509Ref::from_ptr(cert).digest(MessageDigest::sha256()) {
                        let n = h.len().min(32);
                        d[..n].copy_from_slice(&h[..n]);
                    }
                    d
                });
                parts.push(d);
                continue;
            }
            let crl = X509_OBJECT_get0_X509_CRL(obj);
            if crl.is_null() {
                continue;
            }
            let mut md = [0u8; 64];
            let mut len: std::ffi::c_uint = 0;
            if sys::X509_CRL_digest(crl, sys::EVP_sha256(), md.as_mut_ptr(), &mut len) == 1 && len == 32 {
                let mut d = [0u8; 32];
                d.copy_from_slice(&md[..32]);
                parts.push(d);
            }
        }
        let param = X509_STORE_get0_param(store);
        if !param.is_null() {
            flags = sys::X509_VERIFY_PARAM_get_flags(param) as u64;
        }
    }
    parts.sort_unstable();
    let mut h = openssl::sha::Sha256::new();
    h.update(&flags.to_be_bytes());
    for p in &parts {
        h.update(p);
    }
    h.finish()
}

pub type StatusCallback = unsafe extern "C" fn(*mut sys::SSL, *mut c_void) -> c_int;

/// Replaces the SSL_CTX's certificate status callback and its argument.
///
/// # Safety
/// `ctx` must be a live SSL_CTX; `arg` must outlive it.
pub unsafe fn set_status_callback(ctx: &SslContextRef, cb: StatusCallback, arg: *mut c_void) {
    // SAFETY: a live SSL_CTX; the caller keeps `arg` alive as long as it.
    unsafe {
        sys::SSL_CTX_set_tlsext_status_cb(ctx.as_ptr(), Some(cb));
        sys::SSL_CTX_set_tlsext_status_arg(ctx.as_ptr(), arg);
    }
}

/// `SSL_CTRL_GET_CHAIN_CERTS` from ssl.h.
const SSL_CTRL_GET_CHAIN_CERTS: c_int = 115;

/// The chain of the certificate in use on a connection (nginx sets it with
/// `SSL_set0_chain` when it loads certificates by variables), else the
/// chain of the SSL_CTX's current certificate.
pub fn connection_chain(ssl: &SslRef) -> Vec<X509> {
    let mut chain: *mut sys::stack_st_X509 = ptr::null_mut();
    // SAFETY: a live connection; the control writes a borrowed stack
    // pointer into `chain`.
    unsafe {
        sys::SSL_ctrl(
            ssl.as_ptr(),
            SSL_CTRL_GET_CHAIN_CERTS,
            0,
            (&mut chain as *mut *mut sys::stack_st_X509).cast(),
        );
    }
    if chain.is_null() {
        return Vec::new();
    }
    // SAFETY: a non-null stack the connection owns, copied out at once.
    let stack: &StackRef<X509> = unsafe { StackRef::from_ptr(chain) };
    stack.iter().map(|c| c.to_owned()).collect()
}
