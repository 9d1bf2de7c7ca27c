//! Any bytes as a file in the store: read the way the master reads it
//! (no link followed, no blocking, bounded), taken apart into a response
//! and a seal and the seal tried, then checked as a staple; any bytes
//! sealed and opened again; and any name as a store file name.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ngx_ssl_stapling_module::fuzzing::StapleKey;
use ngx_ssl_stapling_module::fuzzing::{check_response, peek_next_update, CertificateStatusId, NoSignatureCheck, TimeRules};
use ngx_ssl_stapling_module::fuzzing::read_file;
use ngx_ssl_stapling_module::fuzzing::{leading_response, take_apart, CertStatus, CheckedResponse, SealKey};
use openssl::x509::X509;

fn id() -> &'static CertificateStatusId {
    static ID: OnceLock<CertificateStatusId> = OnceLock::new();
    ID.get_or_init(|| {
        let leaf = X509::from_pem(include_bytes!("../../src/ocsp/fixtures/leaf.pem")).expect("leaf");
        let ca = X509::from_pem(include_bytes!("../../src/ocsp/fixtures/ca.pem")).expect("ca");
        CertificateStatusId::new(&leaf, Some(&ca))
    })
}

fn seal_key() -> &'static SealKey {
    static KEY: OnceLock<SealKey> = OnceLock::new();
    KEY.get_or_init(|| SealKey::from_bytes(&[7; 32]).expect("key"))
}

/// The bytes a seal would be over: a seal never opens on bytes it was not
/// made for, and what is sealed opens as it was whenever the bytes are one
/// whole DER element (what the store seals).
fn seal_round_trip(data: &[u8]) {
    let key = StapleKey([1; 32]);
    let stored = take_apart(data);
    assert!(data.starts_with(stored.der));
    assert!(seal_key().open(&key, &stored).is_none(), "a seal opened on bytes no key sealed");
    let resp = CheckedResponse {
        der: data.to_vec(),
        status: CertStatus::Good,
        this_update: 1_700_000_000,
        next_update: Some(1_700_086_400),
    };
    let Some(sealed) = seal_key().seal(&key, &resp) else { return };
    let opened = seal_key().open(&key, &take_apart(&sealed));
    match leading_response(data) {
        Some((_, rest)) if rest.is_empty() => assert_eq!(opened, Some(resp)),
        _ => assert!(opened.is_none() || opened == Some(resp)),
    }
    assert!(seal_key().open(&StapleKey([2; 32]), &take_apart(&sealed)).is_none());
}

fuzz_target!(|data: &[u8]| {
    // tmpfs when there is one: the write is most of an execution.
    let dir = match std::path::Path::new("/dev/shm") {
        d if d.is_dir() => d.to_path_buf(),
        _ => std::env::temp_dir(),
    };
    let path = dir.join(format!("ssl-stapling-fuzz-{}.der", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    match read_file(&path) {
        Ok(der) => {
            assert_eq!(der, data);
            seal_round_trip(&der);
            let der = take_apart(&der).der;
            let _ = check_response(der, id(), &NoSignatureCheck, 1_700_000_000, &TimeRules::default());
            let _ = peek_next_update(der);
        }
        Err(_) => assert!(data.len() > 64 * 1024),
    }
    if let Ok(name) = std::str::from_utf8(data) {
        if let Some(key) = StapleKey::parse(name) {
            assert_eq!(key.to_string(), name.to_ascii_lowercase());
        }
    }
});
