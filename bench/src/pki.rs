//! A throwaway CA and its leaf certificates (ECDSA P-256, fast to make in
//! bulk), each with an AIA OCSP URL, plus the index `openssl ocsp` answers
//! from.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509Builder, X509Extension, X509NameBuilder, X509};

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn key() -> Result<PKey<Private>> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
}

fn name(cn: &str) -> Result<openssl::x509::X509Name> {
    let mut b = X509NameBuilder::new()?;
    b.append_entry_by_nid(Nid::COMMONNAME, cn)?;
    Ok(b.build())
}

pub struct Ca {
    pub cert: X509,
    key: PKey<Private>,
}

pub fn make_ca(dir: &Path) -> Result<Ca> {
    let key = key()?;
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    let serial = Asn1Integer::from_bn(&*BigNum::from_u32(1)?)?;
    b.set_serial_number(&serial)?;
    let subject = name("bench-ca")?;
    b.set_subject_name(&subject)?;
    b.set_issuer_name(&subject)?;
    b.set_pubkey(&key)?;
    let (from, to) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(30)?);
    b.set_not_before(&from)?;
    b.set_not_after(&to)?;
    b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .digital_signature()
            .build()?,
    )?;
    b.sign(&key, MessageDigest::sha256())?;
    let cert = b.build();
    fs::write(dir.join("ca.crt"), cert.to_pem()?)?;
    fs::write(dir.join("ca.key"), key.private_key_to_pem_pkcs8()?)?;
    Ok(Ca { cert, key })
}

/// Makes `count` leaf certificates `cN.bench.test` (N from 0), files
/// `cN.crt` (leaf + CA) and `cN.key`, and the CA's `index.txt`.
pub fn make_leaves(dir: &Path, ca: &Ca, count: usize, ocsp_url: &str) -> Result<Vec<String>> {
    let mut index = String::new();
    let mut names = Vec::with_capacity(count);
    let ca_pem = ca.cert.to_pem()?;
    for i in 0..count {
        let host = format!("c{i}.bench.test");
        let key = key()?;
        let serial = 1000 + i as u32;
        let mut b = X509Builder::new()?;
        b.set_version(2)?;
        let sn = Asn1Integer::from_bn(&*BigNum::from_u32(serial)?)?;
        b.set_serial_number(&sn)?;
        let subject = name(&host)?;
        b.set_subject_name(&subject)?;
        b.set_issuer_name(ca.cert.subject_name())?;
        b.set_pubkey(&key)?;
        let (from, to) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(10)?);
        b.set_not_before(&from)?;
        b.set_not_after(&to)?;
        let ctx = b.x509v3_context(Some(&ca.cert), None);
        let san = SubjectAlternativeName::new().dns(&host).build(&ctx)?;
        #[allow(deprecated)]
        let aia = X509Extension::new_nid(
            None,
            Some(&ctx),
            Nid::INFO_ACCESS,
            &format!("OCSP;URI:{ocsp_url}"),
        )?;
        b.append_extension(san)?;
        b.append_extension(aia)?;
        b.sign(&ca.key, MessageDigest::sha256())?;
        let cert = b.build();
        let mut pem = cert.to_pem()?;
        pem.extend_from_slice(&ca_pem);
        fs::write(dir.join(format!("c{i}.crt")), pem)?;
        fs::write(dir.join(format!("c{i}.key")), key.private_key_to_pem_pkcs8()?)?;
        // openssl writes serials as even-length upper-case hex
        let mut hex = format!("{serial:X}");
        if hex.len() % 2 == 1 {
            hex.insert(0, '0');
        }
        let _ = writeln!(index, "V\t301231235959Z\t\t{hex}\tunknown\t/CN={host}");
        names.push(host);
    }
    fs::write(dir.join("index.txt"), index)?;
    Ok(names)
}
