//! A DER OCSPResponse taken apart without parsing the certificates it
//! carries (RFC 6960 4.2.1):
//!
//! ```text
//! OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED,
//!     responseBytes [0] EXPLICIT SEQUENCE { responseType OID, response OCTET STRING } OPTIONAL }
//! BasicOCSPResponse ::= SEQUENCE { tbsResponseData, signatureAlgorithm, signature BIT STRING,
//!     certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
//! ```
//!
//! A responder puts the same certificate (its own, or its CA's) into every
//! response; at a start that reads thousands of stored staples, parsing it
//! again for each is most of the cost. `split` gives the basic response
//! without its certificates, and each certificate's bytes, so that each
//! distinct certificate is parsed once. Only a strict, definite-length
//! encoding is taken apart; anything else gives `None`, and the caller
//! parses the whole response as before.

/// id-pkix-ocsp-basic (1.3.6.1.5.5.7.48.1.1), its DER content.
const OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];

const SEQUENCE: u8 = 0x30;
const ENUMERATED: u8 = 0x0a;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
const BIT_STRING: u8 = 0x03;
const EXPLICIT_0: u8 = 0xa0;

/// A successful response's basic response, taken apart.
#[derive(Debug, PartialEq, Eq)]
pub struct Split<'a> {
    /// The BasicOCSPResponse re-encoded without its `certs`.
    pub basic_without_certs: Vec<u8>,
    /// The DER of each certificate in `certs`, in order.
    pub certs: Vec<&'a [u8]>,
}

/// One TLV: its tag, its content, and what follows it.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    // Multi-byte tags do not occur in these structures.
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        // 0x80 is the indefinite length, which DER forbids.
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        if bytes.first() == Some(&0) {
            return None;
        }
        let len = bytes.iter().fold(0usize, |l, &b| (l << 8) | usize::from(b));
        if len < 0x80 {
            return None;
        }
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (content, rest) = rest.split_at(len);
    Some((tag, content, rest))
}

/// One TLV with tag `want`: its content and what follows.
fn expect(input: &[u8], want: u8) -> Option<(&[u8], &[u8])> {
    let (tag, content, rest) = tlv(input)?;
    (tag == want).then_some((content, rest))
}

/// A TLV of tag `want` that is all of `input`: its content.
fn whole(input: &[u8], want: u8) -> Option<&[u8]> {
    let (content, rest) = expect(input, want)?;
    rest.is_empty().then_some(content)
}

/// The whole TLV at the start of `input` (tag, length and content) and
/// what follows it.
fn element(input: &[u8], want: u8) -> Option<(&[u8], &[u8])> {
    let (_, rest) = expect(input, want)?;
    Some((&input[..input.len() - rest.len()], rest))
}

/// The DER element at the start of `bytes` when it is a SEQUENCE (as an
/// OCSPResponse is), and the bytes after it.
pub fn leading_sequence(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    element(bytes, SEQUENCE)
}

/// A DER length.
fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    out.push(0x80 | (bytes.len() - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// The basic response of a successful OCSPResponse, without its
/// certificates; `None` for any other response or encoding.
pub fn split(der: &[u8]) -> Option<Split<'_>> {
    let response = whole(der, SEQUENCE)?;
    let (status, rest) = expect(response, ENUMERATED)?;
    // successful (0), encoded as one byte
    if status != [0] {
        return None;
    }
    let bytes = whole(rest, EXPLICIT_0)?;
    let bytes = whole(bytes, SEQUENCE)?;
    let (oid, rest) = expect(bytes, OID)?;
    if oid != OCSP_BASIC {
        return None;
    }
    let basic = whole(rest, OCTET_STRING)?;
    let basic = whole(basic, SEQUENCE)?;
    let (tbs, rest) = element(basic, SEQUENCE)?;
    let (alg, rest) = element(rest, SEQUENCE)?;
    let (sig, rest) = element(rest, BIT_STRING)?;
    let mut certs = Vec::new();
    if !rest.is_empty() {
        let list = whole(rest, EXPLICIT_0)?;
        let mut list = whole(list, SEQUENCE)?;
        while !list.is_empty() {
            let (cert, next) = element(list, SEQUENCE)?;
            certs.push(cert);
            list = next;
        }
    }
    let len = tbs.len() + alg.len() + sig.len();
    let mut basic_without_certs = Vec::with_capacity(len + 6);
    basic_without_certs.push(SEQUENCE);
    push_len(&mut basic_without_certs, len);
    basic_without_certs.extend_from_slice(tbs);
    basic_without_certs.extend_from_slice(alg);
    basic_without_certs.extend_from_slice(sig);
    Some(Split {
        basic_without_certs,
        certs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/src/ocsp/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn lengths() {
        for len in [0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000] {
            let mut v = vec![SEQUENCE];
            push_len(&mut v, len);
            v.resize(v.len() + len, 0);
            let (tag, content, rest) = tlv(&v).unwrap();
            assert_eq!((tag, content.len(), rest.len()), (SEQUENCE, len, 0));
        }
        // indefinite, non-minimal, truncated
        assert!(tlv(&[SEQUENCE, 0x80, 0, 0]).is_none());
        assert!(tlv(&[SEQUENCE, 0x81, 0x05, 0, 0, 0, 0, 0]).is_none());
        assert!(tlv(&[SEQUENCE, 0x82, 0x00, 0x85]).is_none());
        assert!(tlv(&[SEQUENCE, 0x05, 0]).is_none());
    }

    #[test]
    fn the_basic_response_without_its_certificates() {
        use crate::base::ffi::{basic_add_cert, basic_from_der, basic_to_der};
        let full = der("good.der");
        let s = split(&full).unwrap();
        assert!(!s.certs.is_empty());
        // Its certificates put back, it encodes as the response's own.
        let basic = basic_from_der(&s.basic_without_certs).unwrap();
        for c in &s.certs {
            assert!(basic_add_cert(&basic, &openssl::x509::X509::from_der(c).unwrap()));
        }
        let resp = openssl::ocsp::OcspResponse::from_der(&full).unwrap();
        assert_eq!(basic_to_der(&basic), basic_to_der(&resp.basic().unwrap()));
        // And a response without certificates splits into none.
        let none = der("no-next-update.der");
        let s = split(&none).unwrap();
        let basic = basic_from_der(&s.basic_without_certs).unwrap();
        for c in &s.certs {
            assert!(basic_add_cert(&basic, &openssl::x509::X509::from_der(c).unwrap()));
        }
        let resp = openssl::ocsp::OcspResponse::from_der(&none).unwrap();
        assert_eq!(basic_to_der(&basic), basic_to_der(&resp.basic().unwrap()));
    }

    #[test]
    fn anything_else_is_left_whole() {
        let full = der("good.der");
        for cut in [1, 10, full.len() / 2, full.len() - 1] {
            assert!(split(&full[..cut]).is_none(), "cut at {cut}");
        }
        let mut trailing = full.clone();
        trailing.push(0);
        assert!(split(&trailing).is_none());
        // tryLater: status 3, no responseBytes
        assert!(split(&[SEQUENCE, 3, ENUMERATED, 1, 3]).is_none());
        assert!(split(b"garbage").is_none());
    }
}
